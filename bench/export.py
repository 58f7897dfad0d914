"""The export's and the bundle verifier's streamed baselines, and the verifier's memory.

Issue 18 sets export and bundle verify "within 1.2x of a streamed baseline that reads,
hashes and writes the same bytes", and the verifier's memory "flat in total across its
processes".  The baselines, measured in the same child process right before and right
after the figure they are beside (so that a busy moment of the shared machine weighs on
both alike):

- :func:`export_baseline`: the stored states read in position order with the store's
  own driver (``sqlite3`` or ``psycopg``, binary, no library in between), in pages of
  5,000 rows as the export reads them; each written as the bundle's ``events.jsonl``
  line (its ``position`` put in its sorted place, as the export puts it), then every
  other file of the bundle the export wrote, copied; all through 1 MiB buffers, each
  file's SHA-256 taken as it is written.  The same bytes read from the store, and the
  same bytes written and hashed, with none of the export's work on them.
- :func:`verify_baseline`: every file of the bundle read in 1 MiB blocks and its SHA-256
  taken, and each line of ``events.jsonl`` hashed on its own (SHA-256), as the verifier
  must hash each entry.  The same bytes read and hashed, nothing parsed.

:class:`TreeRss` samples the resident memory of a process and all its descendants (the
verifier's worker processes) every few milliseconds and keeps the peak of their sum.
Shared pages (a forked worker's copy of its parent) count in each process, so the sum
is an upper bound of what the processes hold together.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from .stores import PG_EVENTS, SQLITE_EVENTS

_BUFFER = 1 << 20
_PAGE = 5000
_PREV = b',"prev_hash":"'


def _states(url: str) -> Any:
    """``(position, state)`` of every stored entry, in pages, with the raw driver."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, query = url.partition("?")
        schema = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("schema")
        table = SQL("{}").format(Identifier(PG_EVENTS))
        if schema:
            table = SQL("{}.{}").format(Identifier(schema), Identifier(PG_EVENTS))
        with psycopg.connect(base) as conn:
            after = 0
            while True:
                rows = conn.execute(
                    SQL(
                        "SELECT notification_id, state FROM {} WHERE notification_id>%s "
                        "ORDER BY notification_id LIMIT %s"
                    ).format(table),
                    (after, _PAGE),
                    binary=True,
                ).fetchall()
                yield from rows
                if len(rows) < _PAGE:
                    return
                after = rows[-1][0]
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    lite = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        after = 0
        while True:
            rows = lite.execute(
                f"SELECT rowid, state FROM {SQLITE_EVENTS} WHERE rowid>? ORDER BY rowid LIMIT ?",
                (after, _PAGE),
            ).fetchall()
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]
    finally:
        lite.close()


def export_baseline(url: str, bundle: Path | None, out: Path) -> dict[str, Any]:
    """Read the store's entries, write and hash them as ``events.jsonl`` and copy the
    other files of ``bundle`` (if given) beside, in ``out`` (removed after); seconds
    (``events_s`` of the entries, ``copy_s`` of the other files) and bytes."""
    out.mkdir()
    cpu = time.process_time()
    start = time.perf_counter()
    read = written = 0
    copy_s = 0.0
    try:
        sha = hashlib.sha256()
        with open(out / "events.jsonl", "wb", buffering=_BUFFER) as f:
            lines: list[bytes] = []
            for position, state in _states(url):
                plain = bytes(state)
                read += len(plain)
                at = plain.rfind(_PREV)
                lines.append(b'%s,"position":%d%s\n' % (plain[:at], position, plain[at:]))
                if len(lines) >= 2000:
                    data = b"".join(lines)
                    f.write(data)
                    sha.update(data)
                    written += len(data)
                    lines.clear()
            data = b"".join(lines)
            f.write(data)
            sha.update(data)
            written += len(data)
        events_s = time.perf_counter() - start
        start = time.perf_counter()
        for source in sorted(bundle.iterdir()) if bundle is not None else ():
            if source.name == "events.jsonl":
                continue
            sha = hashlib.sha256()
            with open(source, "rb") as src, open(out / source.name, "wb") as dst:
                while block := src.read(_BUFFER):
                    dst.write(block)
                    sha.update(block)
                    written += len(block)
        copy_s = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "seconds": events_s + copy_s,
        "cpu_s": time.process_time() - cpu,
        "events_s": events_s,
        "copy_s": copy_s,
        "bytes_read": read,
        "bytes_written": written,
    }


def verify_baseline(bundle: Path) -> dict[str, Any]:
    """Read and hash every file of the bundle, and each line of events.jsonl on its
    own; seconds and bytes."""
    cpu = time.process_time()
    start = time.perf_counter()
    total = lines = 0
    for path in sorted(bundle.iterdir()):
        sha = hashlib.sha256()
        each = path.name == "events.jsonl"
        tail = b""
        with open(path, "rb") as f:
            while block := f.read(_BUFFER):
                sha.update(block)
                total += len(block)
                if each:
                    parts = (tail + block).split(b"\n")
                    tail = parts.pop()
                    for line in parts:
                        hashlib.sha256(line).digest()
                    lines += len(parts)
        sha.hexdigest()
    return {
        "seconds": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
        "bytes": total,
        "lines": lines,
    }


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """The summed resident memory of a process and its descendants (MiB), and how many
    processes that is."""
    total = 0
    count = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        total += _rss_kib(current)
        count += 1
        stack.extend(_children(current))
    return total / 1024, count


class TreeRss:
    """Samples :func:`tree_rss_mb` of a process (default: this one) every ``interval``
    seconds in a thread; ``peak_mb`` is the highest sum seen and ``processes`` the most
    processes at once."""

    def __init__(self, pid: int | None = None, interval: float = 0.02) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.peak_mb = 0.0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-rss", daemon=True)

    def _run(self) -> None:
        while True:
            mb, count = tree_rss_mb(self.pid)
            self.peak_mb = max(self.peak_mb, mb)
            self.processes = max(self.processes, count)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
