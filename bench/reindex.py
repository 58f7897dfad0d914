"""``python -m bench.reindex --store URL``: the reindex part of the bench alone, on a store
that is already loaded (``python -m bench`` builds its own each time, which at 1,000,000
events takes most of its run).

Each round rebuilds the index in a child process (``python -m bench.child reindex``: its
seconds, CPU seconds and peak memory), then runs the baseline, the same fold in SQL
(:mod:`bench.sqlfold`), here on the ledger's own connection; rounds are interleaved so
both see the same load.  Prints one JSON object: every round, the medians, and the
figures of ``python -m bench`` (``index_rebuild_events_per_s``, ``index_rebuild_ratio_sql``,
``index_rebuild_peak_rss_mb``) with each baseline beside them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

import orjson

from .runner import median


def rebuild_child(url: str) -> dict[str, Any]:
    """``CaseIndex.rebuild`` of the store in a new process; its figures."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.child", "reindex", url],
        capture_output=True,
        check=True,
    )
    figures: dict[str, Any] = orjson.loads(done.stdout)
    return figures


def measure(url: str, rounds: int) -> dict[str, Any]:
    """``rounds`` interleaved rounds of the rebuild and of the fold in SQL."""
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    from .sqlfold import sql_fold

    rebuilds: list[dict[str, Any]] = []
    folds: list[dict[str, Any]] = []
    loads: list[float] = []
    for _ in range(rounds):
        loads.append(os.getloadavg()[0])
        rebuilds.append(rebuild_child(url))
        ledger = CaseLedger(parse_store(url))
        try:
            folds.append(sql_fold(ledger))
        finally:
            ledger.close()
        print(
            f"rebuild {rebuilds[-1]['seconds']:.2f}s (CPU {rebuilds[-1]['cpu_seconds']:.2f}s, "
            f"{rebuilds[-1]['peak_rss_mb']:.0f} MiB); fold in SQL {folds[-1]['seconds']:.2f}s "
            f"(CPU {folds[-1]['cpu_seconds'] or 0:.2f}s)",
            file=sys.stderr,
        )
    events = rebuilds[0]["events"]
    seconds = median([r["seconds"] for r in rebuilds])
    sql_seconds = median([f["seconds"] for f in folds])
    cpu = [f["cpu_seconds"] for f in folds]
    ratio_cpu = (
        round(median([r["cpu_seconds"] for r in rebuilds]) / median(cpu), 3) if all(cpu) else None
    )
    return {
        "index_rebuild_events_per_s": round(events / seconds),
        "index_rebuild_events_per_cpu_s": round(
            events / median([r["cpu_seconds"] for r in rebuilds])
        ),
        "index_rebuild_ratio_sql_cpu": ratio_cpu,
        "index_rebuild_ratio_sql": round(seconds / sql_seconds, 3),
        "index_rebuild_peak_rss_mb": round(max(r["peak_rss_mb"] for r in rebuilds), 1),
        "baseline_sql_fold_events_per_s": round(folds[0]["milestones"] / sql_seconds),
        "events": events,
        "cases": folds[0]["cases"],
        "rounds": [
            {
                "rebuild_s": round(r["seconds"], 3),
                "rebuild_cpu_s": round(r["cpu_seconds"], 3),
                "rebuild_peak_rss_mb": round(r["peak_rss_mb"], 1),
                "rss_before_mb": round(r["rss_before_mb"], 1),
                "sql_fold_s": round(f["seconds"], 3),
                "ratio_sql": round(r["seconds"] / f["seconds"], 3),
                # CPU seconds of both (SQLite's fold runs in this process): the ratio
                # the scheduler of a loaded machine does not decide.
                **(
                    {
                        "sql_fold_cpu_s": round(f["cpu_seconds"], 3),
                        "ratio_sql_cpu": round(r["cpu_seconds"] / f["cpu_seconds"], 3),
                    }
                    if f.get("cpu_seconds")
                    else {}
                ),
                "load_average": round(load, 2),
            }
            for r, f, load in zip(rebuilds, folds, loads, strict=True)
        ],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reindex", description=__doc__)
    parser.add_argument("--store", required=True, help="a loaded store (path or URL)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    result = measure(args.store, args.rounds)
    sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()
