"""``python -m bench [--quick | --tiny] [--json]``: measure issue 6's figures.

Default size: 1,000,000 events (about 10,000 cases); ``--quick``: 100,000 events (under
two minutes for both stores); ``--tiny``: 3,000 events (for the tests).  Progress goes to
standard error; standard output gets a table, or with ``--json`` one JSON object.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from .runner import DEFAULT_PG_URL, KEYS, PG_ONLY, TARGETS, met, run, settings_for


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmarks of issue 6 (see docs/performance.md)."
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="100,000 events (< 2 minutes)")
    size.add_argument("--tiny", action="store_true", help="3,000 events (for the tests)")
    parser.add_argument("--events", type=int, help="override the number of events")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--stores",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres (default: both; PostgreSQL when reachable)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("CASELEDGER_BENCH_POSTGRES", DEFAULT_PG_URL),
        help="PostgreSQL database to use (a fresh schema is made and dropped); "
        "default $CASELEDGER_BENCH_POSTGRES or %(default)s",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--only", default="", help="only the figures starting with this, e.g. append_"
    )
    parser.add_argument("--dir", default="", help="folder for the SQLite files (default: tmp)")
    parser.add_argument(
        "--library",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure the plain eventsourcing library for reference "
        "(default: yes, except --tiny)",
    )
    return parser.parse_args(argv)


def render(result: dict[str, Any], console: Console) -> None:
    """The figures as a table for people."""
    table = Table(title=f"caseledger benchmarks ({result['meta']['sizes']['events']:,} events)")
    table.add_column("figure")
    table.add_column("target", justify="right")
    table.add_column("SQLite", justify="right")
    table.add_column("PostgreSQL", justify="right")
    pg = result["postgres"]

    def cell(key: str, value: Any) -> str:
        if value is None:
            return "[dim]n/a[/]"
        ok = met(key, value)
        return f"[{'green' if ok else 'red'}]{value:,}[/]"

    for key in KEYS:
        op, target = TARGETS[key]
        sqlite_value = None if key in PG_ONLY else result[key]
        table.add_row(key, f"{op} {target:,}", cell(key, sqlite_value), cell(key, pg.get(key)))
    console.print(table)
    for label, reasons in (("SQLite", result["reasons"]), ("PostgreSQL", pg["reasons"])):
        for key, reason in reasons.items():
            if key in PG_ONLY and label == "SQLite":
                continue
            console.print(f"[dim]{label} {key}: {reason}[/]")
    meta = result["meta"]
    machine = meta["machine"]
    console.print(
        f"[dim]{machine.get('nproc')} cores, {machine.get('memory_gib')} GiB, Python "
        f"{machine['python']}, SQLite {machine['sqlite']}, PostgreSQL "
        f"{machine.get('postgres') or 'n/a'}; durability {meta['durability']}; "
        f"{meta['elapsed_s']} s[/]"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    size = "quick" if args.quick else "tiny" if args.tiny else "full"
    stores = tuple(s.strip() for s in args.stores.split(",") if s.strip())
    unknown = set(stores) - {"sqlite", "postgres"}
    if unknown:
        raise SystemExit(f"unknown store(s): {', '.join(sorted(unknown))}")
    settings = settings_for(
        size,
        events=args.events,
        seed=args.seed,
        stores=stores,
        pg_url=args.pg_url,
        workdir=args.dir,
        library_reference=args.library,
        only=args.only,
    )
    errors = Console(stderr=True, highlight=False)
    result = run(settings, lambda message: errors.print(message, markup=False))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        render(result, Console(highlight=False))


if __name__ == "__main__":
    main()
