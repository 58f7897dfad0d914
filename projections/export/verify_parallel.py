"""The events pass of a large folder bundle in worker processes: each checks the lines of a
byte range on its own, and this process takes their results in line order through the
sequential checks, so the verdict and the first failure are the sequential ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from projections.export.verify_common import EVENTS, READ_CHUNK, BundleFailure
from projections.export.verify_events import EventsPass, LineFacts, SequenceCheck, check_event_line

#: Bundles whose events.jsonl is at least this big are checked by worker processes, in
#: ranges of about ``projections.export.verify.PARALLEL_CHUNK`` bytes.
PARALLEL_FROM_BYTES: Final = 64 << 20


def worker_count(workers: int | None, size: int) -> int:
    if workers is not None:
        return workers
    if size < PARALLEL_FROM_BYTES:
        return 1
    import os

    return min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _check_chunk(
    path: str, start: int, end: int, want_personal: bool
) -> tuple[list[LineFacts], int | None, bytes | None]:
    """In a worker: the per-line checks of the lines in ``[start, end)``.  Returns the
    facts of the lines that pass, then the index and bytes of the first line that does
    not (the main process checks that line again, to raise its failure in order)."""
    with open(path, "rb") as stream:
        stream.seek(start)
        data = stream.read(end - start)
    lines: list[bytes | None] = list(data.split(b"\n"))
    tail = lines.pop()
    if tail:
        lines.append(None)  # the file ends mid-line
    facts: list[LineFacts] = []
    for index, text in enumerate(lines):
        try:
            facts.append(check_event_line(text, index + 1, want_personal))
        except BundleFailure:
            return facts, index, text
    return facts, None, None


def _chunks(path: Path, size: int, chunk_bytes: int) -> Iterator[tuple[int, int]]:
    """Byte ranges of whole lines, about ``chunk_bytes`` each."""
    with open(path, "rb") as stream:
        start = 0
        while start < size:
            end = start + chunk_bytes
            if end >= size:
                yield start, size
                return
            stream.seek(end)
            while True:
                block = stream.read(1 << 16)
                if not block:
                    end = size
                    break
                at = block.find(b"\n")
                if at >= 0:
                    end += at + 1
                    break
                end += len(block)
            yield start, end
            start = end


def check_events_in_parallel(
    path: Path, sequence: SequenceCheck, want_personal: bool, workers: int, chunk_bytes: int
) -> EventsPass:
    """Workers check lines on their own; this process checks them in order (positions,
    chains, gaps, the Merkle root) and hashes the file in a thread meanwhile.  The first
    failure is the one the sequential check would report: results are taken in line
    order, and a line a worker rejects is checked again here at its place."""
    import multiprocessing
    import threading
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    size = path.stat().st_size
    digest: dict[str, Any] = {}
    stop = threading.Event()

    def hash_file() -> None:
        sha = hashlib.sha256()
        total = 0
        try:
            with open(path, "rb") as stream:
                while not stop.is_set() and (block := stream.read(READ_CHUNK)):
                    sha.update(block)
                    total += len(block)
        except OSError as exc:
            digest["error"] = exc
        digest["sha256"], digest["size"] = sha.hexdigest(), total

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    hasher = threading.Thread(target=hash_file, name="events-sha256", daemon=True)
    pending: deque[Future[tuple[list[LineFacts], int | None, bytes | None]]] = deque()
    ranges = _chunks(path, size, chunk_bytes)
    number = 0
    step = sequence.step
    failed_here = True
    try:
        for _ in range(workers * 2):
            chunk = next(ranges, None)
            if chunk is None:
                break
            pending.append(pool.submit(_check_chunk, str(path), *chunk, want_personal))
        hasher.start()  # after the workers are forked: no thread is running when they are
        while pending:
            facts, failed, text = pending.popleft().result()
            chunk = next(ranges, None)
            if chunk is not None:
                pending.append(pool.submit(_check_chunk, str(path), *chunk, want_personal))
            for item in facts:
                number += 1
                step(item)
            if failed is not None:
                check_event_line(text, number + 1, want_personal)  # raises, numbered in order
                raise AssertionError("a worker rejected a line the main process accepts")
        failed_here = False
    finally:
        if failed_here:
            stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    if hasher.is_alive() or hasher.ident is not None:
        hasher.join()
    if "error" in digest:
        raise BundleFailure(EVENTS, f"cannot be read ({digest['error']})")
    return sequence.result(digest["sha256"], digest["size"])
