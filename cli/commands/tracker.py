"""``caseledger import-tracker``: bring a spreadsheet tracker's history into the ledger."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from ledger.application import Receipt
from ledger.errors import InputError

if TYPE_CHECKING:
    from ledger.importing.tracker import ImportPlan, RowPlan

from cli.common import app, emit_json, err, input_in_cli_words, ledger, out

EPILOG = (
    "Example: caseledger import-tracker docs/examples/tracker-sample.csv "
    "--mapping docs/examples/tracker-mapping.toml --dry-run  |  the same without --dry-run "
    "records it; run it again and nothing new is recorded. The mapping format is in "
    "docs/importing.md."
)


@app.command("import-tracker", epilog=EPILOG)
def import_tracker(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The tracker: a .csv or an .xlsx file."),
    mapping: Path = typer.Option(
        ..., "--mapping", "-m", help="The TOML mapping: which column holds what."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be recorded; write nothing."
    ),
    skip_bad_rows: bool = typer.Option(
        False,
        "--skip-bad-rows",
        help="Record the good rows even if some rows cannot be converted (they are listed). "
        "Without it, one bad row stops the import and nothing is written.",
    ),
    role: str | None = typer.Option(
        None, "--role", help="Record under this of your enrolled roles (default business-unit)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
) -> None:
    """Import a spreadsheet tracker (CSV or .xlsx): each row becomes the entries it
    evidences, every entry citing its row in `sources`. All new rows are recorded in one
    batch; rows already imported are skipped; a row that cannot be converted is listed
    with its row number and reason, and then nothing is written (unless --skip-bad-rows)."""
    # lazy: the tracker import (openpyxl) costs ~17 ms at start-up
    from ledger.importing.tracker import (  # imported when used: start-up time
        load_mapping,
        plan_import,
        read_tracker,
        record_plan,
    )

    spec = load_mapping(mapping)
    tracker = read_tracker(file, spec)
    led = ledger(ctx, create=not dry_run, vacant_as_empty=dry_run)
    who = led.recorder_for(role)
    show_progress = not as_json and err.is_terminal and len(tracker.rows) > 0
    with Progress(
        TextColumn(f"checking {len(tracker.rows)} rows"),
        BarColumn(),
        TaskProgressColumn(),
        console=err,
        transient=True,
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("rows", total=len(tracker.rows))
        plan = plan_import(
            led,
            tracker,
            spec,
            who,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )

    bad = plan.having("bad")
    blocked = bool(bad) and not skip_bad_rows
    receipts: list[Receipt] = []
    if not dry_run and not blocked and plan.having("new"):
        with (
            err.status(f"recording {len(plan.lines)} entries in one batch", spinner="dots")
            if show_progress
            else nullcontext()
        ):
            receipts = record_plan(led, plan, who)

    if as_json:
        emit_json(_report(plan, receipts, dry_run=dry_run, blocked=blocked))
    else:
        _show(plan, receipts, dry_run=dry_run, blocked=blocked)

    if blocked:
        raise InputError(
            f"{len(bad)} row{'s' if len(bad) != 1 else ''} of {tracker.name} cannot be "
            "imported (listed above); nothing was written. Fix them in the tracker or the "
            "mapping, or pass --skip-bad-rows to record the other rows."
        )
    if bad and not plan.having("new"):
        raise InputError(
            f"{len(bad)} row{'s' if len(bad) != 1 else ''} of {tracker.name} cannot be "
            "imported (listed above) and no other row holds anything new; nothing was "
            "written."
        )


SHOWN_ROWS = 100
"""At most this many rows in a table for people (``--json`` has them all)."""


def _ranges(numbers: list[int]) -> str:
    """``2-5, 7, 9-11`` for a sorted list of row numbers."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _told(row: RowPlan) -> InputError | None:
    """Why the row cannot be imported, in the CLI's words (:func:`input_in_cli_words`)."""
    return input_in_cli_words(row.problem) if row.problem is not None else None


def _row_json(row: RowPlan) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "line": row.number,
        "case": row.case,
        "status": row.status,
        "row_hash": row.row_hash,
        "entries": len(row.lines) if row.status == "new" else 0,
    }
    problem = _told(row)
    if problem is not None:
        entry["field"] = problem.field
        entry["reason"] = problem.reason
    if row.status in ("changed", "exists", "imported"):
        entry["imported_from"] = row.imported_from
        entry["reason"] = row.message()
    if row.status == "changed":
        entry["differences"] = row.differences
    return entry


def _report(
    plan: ImportPlan, receipts: list[Receipt], *, dry_run: bool, blocked: bool
) -> dict[str, Any]:
    """What ``--json`` prints: every row's fate, and the entries recorded or to record."""
    would_record = not blocked
    return {
        "file": plan.file,
        "dry_run": dry_run,
        "written": bool(receipts),
        "recorded": [
            {"ref": r.ref, "hash": r.hash, "recorded_at": r.recorded_at} for r in receipts
        ],
        "events": plan.lines if dry_run and would_record else [],
        "rows": [_row_json(row) for row in plan.rows],
        "bad": [
            {"line": r.number, "case": r.case, "field": p.field, "reason": p.reason}
            for r in plan.having("bad")
            if (p := _told(r)) is not None
        ],
        "changed": [_row_json(row) for row in plan.having("changed", "exists")],
    }


def _more(table: Table, rows: int) -> None:
    if rows > SHOWN_ROWS:
        table.caption = f"… and {rows - SHOWN_ROWS} more rows (--json lists them all)"


def _show(plan: ImportPlan, receipts: list[Receipt], *, dry_run: bool, blocked: bool) -> None:
    new = plan.having("new")
    if dry_run and not blocked and new:
        table = Table(
            title=f"Would record {_count(len(plan.lines), 'entry', 'entries')} for "
            f"{_count(len(new), 'case', 'cases')}"
        )
        for column in ("row", "case", "type", "occurred_at"):
            table.add_column(column)
        for row in new[:SHOWN_ROWS]:
            for line in row.lines:
                table.add_row(str(row.number), row.case or "", line["type"], line["occurred_at"])
        _more(table, len(new))
        out.print(table)
        out.print("[yellow]dry run: nothing was written[/]")
    elif receipts:
        by_case: dict[str, list[Receipt]] = {}
        for receipt in receipts:
            by_case.setdefault(receipt.ref.rsplit("#", 1)[0], []).append(receipt)
        table = Table(
            title=f"Recorded {_count(len(receipts), 'entry', 'entries')} for "
            f"{_count(len(by_case), 'case', 'cases')}"
        )
        for column in ("row", "case", "entries", "refs"):
            table.add_column(column)
        for row in new[:SHOWN_ROWS]:
            mine = by_case.get(row.case or "", [])
            refs = f"{mine[0].ref} … {mine[-1].ref}" if len(mine) > 1 else mine[0].ref
            table.add_row(str(row.number), row.case or "", str(len(mine)), refs)
        _more(table, len(new))
        out.print(table)
    imported = plan.having("imported")
    if imported:
        rows = _ranges([r.number for r in imported])
        out.print(
            f"{len(imported)} row{'s' if len(imported) != 1 else ''} already imported, "
            f"nothing new (rows {rows})"
        )
    if not new and not plan.having("bad", "changed", "exists"):
        out.print("nothing new to record")
    for row in plan.having("changed", "exists"):
        err.print(f"[yellow]not imported:[/] row {row.number}: {escape(row.message())}")
    bad = plan.having("bad")
    if bad:
        heading = (
            "cannot be imported (nothing was written)"
            if blocked
            else "cannot be imported (skipped; the other rows were "
            + ("checked" if dry_run else "recorded")
            + ")"
        )
        err.print(f"[bold red]{len(bad)} row{'s' if len(bad) != 1 else ''} {heading}:[/]")
        for row in bad:
            problem = _told(row)
            err.print(f"  {escape(problem.describe() if problem else row.message())}")


__all__ = ["import_tracker"]
