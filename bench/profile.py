"""``python -m bench.profile WHAT``: profile one measured path with pyinstrument.

Builds (or reuses) an SQLite store of the synthetic ledger, then runs one path under the
profiler and prints its call tree::

    python -m bench.profile single --events 100000 --store /tmp/prof.db
    python -m bench.profile batch --events 100000
    python -m bench.profile rebuild --store /tmp/prof.db

Needs the ``bench`` extra (``pip install -e '.[bench]'``).  ``--store`` keeps the store
between runs (it is built only when empty).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from ledger.application import CaseLedger
from ledger.store.locations import parse_store

from .child import BenchClock, enrolled_recorder
from .generate import batches, follow_up, iter_lines, open_cases, plan_ledger
from .runner import DELAY, after_horizon

WHAT = ("single", "batch", "rebuild", "status", "delays", "clocks", "why", "export", "verify")


def build(path: str, events: int, seed: int) -> CaseLedger:
    """The ledger at ``path``, loaded with the synthetic ledger if it is empty."""
    clock = BenchClock(after_horizon())
    ledger = CaseLedger(parse_store(path), clock=clock)
    if ledger.count_events() == 0:
        start = time.perf_counter()
        recorder = enrolled_recorder(ledger)
        for moment, lines in batches(plan_ledger(seed, events), 10_000):
            clock.now = moment + timedelta(seconds=1)
            ledger.record_lines(lines, recorder)
        print(f"built {events:,} events in {time.perf_counter() - start:.1f}s")
    clock.now = after_horizon()
    clock.tick = timedelta(milliseconds=1)
    return ledger


def job(what: str, ledger: CaseLedger, args: argparse.Namespace, work: Path) -> Callable[[], Any]:
    """The call to profile (set up, not yet run)."""
    spec = plan_ledger(args.seed, args.events)
    now = after_horizon()
    if what == "single":
        cases = open_cases(spec)
        counter = itertools.count()
        lines = [
            follow_up(cases[i % len(cases)].ref, next(counter), now.date()) for i in range(args.ops)
        ]
        recorder = enrolled_recorder(ledger)
        ledger.record_lines(lines[:1], recorder)
        return lambda: [ledger.record_lines([line], recorder) for line in lines[1:]]
    if what == "batch":
        planned = list(itertools.islice(iter_lines(spec), min(args.events, 100_000)))
        fresh = CaseLedger(
            parse_store(str(work / "batch.db")),
            clock=BenchClock(planned[-1][0] + timedelta(seconds=1)),
        )
        lines = [line for _, line in planned]
        fresh_recorder = enrolled_recorder(fresh)
        return lambda: fresh.record_lines(lines, fresh_recorder)
    if what == "why":
        from projections.queries.cases import why

        case = max(spec.cases, key=lambda c: (c.length, -c.index)).ref
        return lambda: [why(CaseLedger(ledger.location), case).as_dict() for _ in range(50)]
    if what in ("export", "verify"):
        from projections.export.bundle import export_bundle
        from projections.export.verify import verify_bundle

        out = work / "bundle"
        if what == "verify":
            export_bundle(ledger, out)
            return lambda: verify_bundle(out)
        return lambda: export_bundle(ledger, out)
    from projections.index.case_index import CaseIndex

    index = CaseIndex(ledger)
    if what == "rebuild":
        return index.rebuild
    index.catch_up()
    if what == "status":
        from projections.queries.cases import statuses

        return lambda: statuses(ledger)
    if what == "delays":
        from projections.queries.delays import indexed_intervals

        return lambda: indexed_intervals(ledger, *DELAY, now)
    from projections.index.records import all_clocks

    return lambda: all_clocks(ledger, now)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("what", choices=WHAT)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", help="an SQLite file to build once and reuse")
    parser.add_argument("--ops", type=int, default=500, help="single appends to profile")
    parser.add_argument("--interval", type=float, default=0.001)
    parser.add_argument("--all", action="store_true", help="show library frames too")
    args = parser.parse_args(argv)
    from pyinstrument import Profiler

    work = Path(tempfile.mkdtemp(prefix="caseledger-profile-"))
    try:
        ledger = build(args.store or str(work / "ledger.db"), args.events, args.seed)
        call = job(args.what, ledger, args, work)
        profiler = Profiler(interval=args.interval)
        wall, cpu = time.perf_counter(), time.process_time()
        profiler.start()
        call()
        profiler.stop()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(profiler.output_text(unicode=True, color=False, show_all=args.all))
        print(f"{args.what}: {wall:.2f}s wall, {cpu:.2f}s CPU (under the profiler)")
        ledger.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
