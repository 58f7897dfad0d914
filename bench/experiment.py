"""``python -m bench.experiment``: the write-path changes proposed in docs/performance.md,
applied to the ledger in this process only (monkeypatching), and measured.

Variants are cumulative:

- ``A``: the ledger as it is;
- ``B``: A, and aggregates replayed without the library's per-event runtime protocol check
  (``assert isinstance(event, CanMutateProtocol)`` in ``project_aggregate``), for loads
  and for snapshots;
- ``C``: B, and snapshots taken from the in-memory aggregates just saved, all in one
  transaction per command, instead of re-reading and re-projecting each one from the
  store in a transaction of its own;
- ``D``: C, and Python's cyclic garbage collector paused for the duration of a command.

``--no-pipeline`` also replaces the PostgreSQL recorder's pipelined insert by plain
statements in one transaction (the fix for the hang in docs/performance.md).

Examples::

    python -m bench.experiment batch --variant A     # record of 100,000 lines, fresh store
    python -m bench.experiment single --variant B --store /tmp/base.db
    python -m bench.experiment batch --variant A --no-pipeline \\
        --url 'postgresql://postgres@127.0.0.1:5432/test?schema=bench_x'

Nothing here is used by the runner or the ledger.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import shutil
import tempfile
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from ledger.application import CaseLedger, Recorder
from ledger.case import Case, CaseSnapshot, case_id
from ledger.store import parse_store

from .child import BenchClock, peak_rss_mb
from .generate import batches, follow_up, iter_lines, open_cases, plan_ledger
from .runner import ACTOR, after_horizon


def project_case(aggregate: Any, events: Iterable[Any]) -> Any:
    """Replay events onto a case, as the library's ``project_aggregate`` does, without its
    per-event ``isinstance`` check against a runtime-checkable Protocol."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _load_case(self: CaseLedger, ref: str) -> Case | None:
    try:
        case = self.repository.get(case_id(ref), projector_func=project_case)
    except AggregateNotFoundError:
        return None
    assert isinstance(case, Case)
    return case


def _take_snapshots(self: CaseLedger, processing_event: Any) -> None:
    """One snapshot per saved case whose version crossed a multiple of the interval,
    taken from the aggregate in memory, all put in one transaction."""
    interval = self.snapshotting_intervals[Case]
    first: dict[Any, int] = {}
    for event in processing_event.events:
        first.setdefault(event.originator_id, event.originator_version)
    taken = []
    for aggregate_id, aggregate in processing_event.aggregates.items():
        start = first.get(aggregate_id)
        if start is not None and aggregate.version // interval > (start - 1) // interval:
            taken.append(CaseSnapshot.take(aggregate))
    if taken:
        assert self.snapshots is not None
        self.snapshots.put(taken)


def _insert_events_without_pipeline(self: Any, stored_events: Any, **kwargs: Any) -> Any:
    with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
        self._insert_events(curs, stored_events, **kwargs)
        if not stored_events:
            return []
        self._insert_stored_events(curs, stored_events, **kwargs)
        return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)


def apply(variant: str, no_pipeline: bool) -> None:
    """Patch the ledger class for a variant."""
    if variant in "BCD":
        CaseLedger._load_case = _load_case  # type: ignore[method-assign]
        CaseLedger.snapshotting_projectors = {Case: project_case}
    if variant in "CD":
        CaseLedger._take_snapshots = _take_snapshots  # type: ignore[method-assign,assignment]
    if variant == "D":
        record = CaseLedger.record

        def paused(self: CaseLedger, parsed: Any, recorder: Recorder) -> Any:
            gc.disable()
            try:
                return record(self, parsed, recorder)
            finally:
                gc.enable()

        CaseLedger.record = paused  # type: ignore[method-assign]
    if no_pipeline:
        from ledger.pgstore import LedgerPostgresRecorder

        LedgerPostgresRecorder.insert_events = _insert_events_without_pipeline  # type: ignore[method-assign]


def batch(url: str, lines: int, seed: int) -> str:
    """``record`` of the first ``lines`` lines of the ledger, in one command."""
    planned = list(itertools.islice(iter_lines(plan_ledger(seed, 100_000)), lines))
    data = [line for _, line in planned]
    CaseLedger(parse_store(url)).close()  # create the store first, as the runner does
    ledger = CaseLedger(parse_store(url), clock=BenchClock(planned[-1][0] + timedelta(seconds=1)))
    del planned
    ledger.authorise(Recorder(ACTOR))
    wall, cpu = time.perf_counter(), time.process_time()
    ledger.record_lines(data, Recorder(ACTOR))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ledger.close()
    return (
        f"record of {lines:,} lines: {wall:.2f}s wall ({lines / wall:,.0f}/s), "
        f"{cpu:.2f}s CPU, peak RSS {peak_rss_mb():.0f} MiB"
    )


def single(url: str, ops: int, seed: int, events: int) -> str:
    """``ops`` one-entry commands to open cases of about 100 entries."""
    clock = BenchClock(after_horizon(), timedelta(milliseconds=1))
    ledger = CaseLedger(parse_store(url), clock=clock)
    cases = open_cases(plan_ledger(seed, events))
    counter = itertools.count()
    day = after_horizon().date()
    for case in cases[:5]:
        ledger.record_lines([follow_up(case.ref, next(counter), day)], Recorder(ACTOR))
    lines = [follow_up(cases[i % len(cases)].ref, next(counter), day) for i in range(ops)]
    wall, cpu = time.perf_counter(), time.process_time()
    for line in lines:
        ledger.record_lines([line], Recorder(ACTOR))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ledger.close()
    return f"{ops} single appends: {1000 * wall / ops:.3f} ms/op wall, {1000 * cpu / ops:.3f} CPU"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.experiment", description=__doc__)
    parser.add_argument("task", choices=("batch", "single"))
    parser.add_argument("--variant", choices=tuple("ABCD"), default="A")
    parser.add_argument("--no-pipeline", action="store_true")
    parser.add_argument("--url", help="a PostgreSQL store URL (default: a new SQLite file)")
    parser.add_argument("--store", help="single: an SQLite store to copy (built if missing)")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="caseledger-experiment-"))
    try:
        url = args.url or str(work / "ledger.db")
        if args.task == "single" and not args.url:
            base = Path(args.store or work / "base.db")
            if not base.exists():  # built with the unpatched ledger
                clock = BenchClock(after_horizon())
                ledger = CaseLedger(parse_store(str(base)), clock=clock)
                for moment, lines in batches(plan_ledger(args.seed, args.events), 10_000):
                    clock.now = moment + timedelta(seconds=1)
                    ledger.record_lines(lines, Recorder(ACTOR))
                ledger.close()
            shutil.copy(base, url)
        apply(args.variant, args.no_pipeline)
        if args.task == "batch":
            found = batch(url, args.lines, args.seed)
        else:
            found = single(url, args.ops, args.seed, args.events)
        print(f"{args.variant}{' no-pipeline' if args.no_pipeline else ''}: {found}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
