"""Work the runner does in child processes: an export (for its peak memory) and writers.

``python -m bench.child export URL OUT`` exports the whole store to ``OUT``, then verifies
the bundle, and prints one JSON object: the events, the seconds each took, and the peak
resident memory of the process after the export (``ru_maxrss``; the verify comes after
that reading, so it cannot inflate it) and before it (the interpreter and imports).

:func:`writer` is the body of one concurrent writer process (started with the ``spawn``
method): it appends one entry per command to its own cases, as ``caseledger record`` of
a one-line file does, and reports its start and end times.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    Linux's ``VmHWM`` of this process's own address space.  Not ``ru_maxrss``: Linux
    carries the parent's high-water mark across fork and exec into it, so a child of a
    big parent would report the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class BenchClock:
    """The ledger clock for the runner: a set time, moving on by ``tick`` at each call."""

    def __init__(self, start: datetime, tick: timedelta = timedelta(0)) -> None:
        self.now = start
        self.tick = tick

    def __call__(self) -> datetime:
        moment = self.now
        self.now = moment + self.tick
        return moment


def export_and_verify(url: str, out: str) -> dict[str, Any]:
    """Export the whole store to ``out`` and verify the bundle, timing each."""
    from ledger.application import CaseLedger
    from ledger.store import parse_store
    from projections.bundle_verify import verify_bundle
    from projections.export import export_bundle

    ledger = CaseLedger(parse_store(url))
    before = peak_rss_mb()
    start = time.perf_counter()
    summary = export_bundle(ledger, out)
    exported = time.perf_counter() - start
    peak = peak_rss_mb()
    ledger.close()
    start = time.perf_counter()
    result = verify_bundle(out)
    verified = time.perf_counter() - start
    return {
        "events": summary.events,
        "export_s": exported,
        "export_peak_rss_mb": peak,
        "rss_before_export_mb": before,
        "verify_s": verified,
        "verify_ok": result.ok,
        "verify_events": result.events,
        "verify_failure": None if result.ok else str(result.failure),
    }


def record_file(url: str, path: str, clock: str) -> dict[str, Any]:
    """``record`` of a whole JSON Lines file in one command, on a store whose users are
    enrolled, the ledger clock set to ``clock``; the seconds it took and peak memory."""
    from ledger.application import CaseLedger, Recorder
    from ledger.store import parse_store

    lines = Path(path).read_bytes().splitlines()
    ledger = CaseLedger(parse_store(url), clock=BenchClock(datetime.fromisoformat(clock)))
    recorder = Recorder("bench.loader")
    authorise = getattr(ledger, "authorise", None)
    if authorise is not None:  # a real store has its users enrolled already
        authorise(recorder)
    before = peak_rss_mb()
    start = time.perf_counter()
    receipts = ledger.record_lines(lines, recorder)
    seconds = time.perf_counter() - start
    ledger.close()
    return {
        "events": len(receipts),
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }


def writer(
    url: str,
    lines: Sequence[bytes],
    start: datetime,
    barrier: Any,
    results: Any,
) -> None:
    """One writer process: wait for the others, then record each line as one command."""
    from ledger.application import CaseLedger, Recorder
    from ledger.store import parse_store

    ledger = CaseLedger(parse_store(url), clock=BenchClock(start, timedelta(milliseconds=1)))
    recorder = Recorder("bench.writer")
    ledger.record_lines(lines[:1], recorder)  # enrolment and connections, not timed
    barrier.wait()
    began = time.time()
    for line in lines[1:]:
        ledger.record_lines([line], recorder)
    results.put((began, time.time(), len(lines) - 1))
    ledger.close()


def raw_writer(
    base_url: str,
    schema: str,
    rows: Sequence[tuple[Any, int, str, bytes]],
    lock: bool,
    synchronous_commit: str,
    barrier: Any,
    results: Any,
) -> None:
    """A raw psycopg writer: INSERT and COMMIT each row, optionally taking the library's
    ``LOCK TABLE ... IN EXCLUSIVE MODE`` first (to separate the lock from the rest)."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    from .stores import RAW_TABLE

    table = SQL("{}.{}").format(Identifier(schema), Identifier(RAW_TABLE))
    insert = SQL(
        "INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s,%s,%s,%s)"
    ).format(table)
    locking = SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table)
    with psycopg.connect(base_url) as conn:
        conn.execute(SQL("SET synchronous_commit = {}").format(SQL(synchronous_commit)))
        conn.commit()
        barrier.wait()
        began = time.time()
        with conn.cursor() as cur:
            for row in rows:
                if lock:
                    cur.execute(locking)
                cur.execute(insert, row)
                conn.commit()
        results.put((began, time.time(), len(rows)))


def main(argv: list[str]) -> None:
    """``python -m bench.child export URL OUT`` or ``... record URL FILE CLOCK``."""
    if len(argv) == 3 and argv[0] == "export":
        figures = export_and_verify(argv[1], argv[2])
    elif len(argv) == 4 and argv[0] == "record":
        figures = record_file(argv[1], argv[2], argv[3])
    else:
        raise SystemExit("usage: python -m bench.child export URL OUT | record URL FILE CLOCK")
    sys.stdout.buffer.write(orjson.dumps(figures) + b"\n")


if __name__ == "__main__":
    main(sys.argv[1:])
