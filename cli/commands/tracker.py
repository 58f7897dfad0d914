"""``caseledger import-tracker``: bring a spreadsheet tracker's history into the ledger."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from cli.common import app, emit_json, err, input_in_cli_words, ledger, out
from ledger.application import Receipt
from ledger.errors import InputError

if TYPE_CHECKING:
    from ledger.importing.tracker import ImportPlan, RowPlan

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
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    with _Bars(enabled=not as_json) as bars:  # the files are read before the store is opened
        report = api.import_tracker(
            lambda: ledger(ctx, create=not dry_run, vacant_as_empty=dry_run),
            file,
            mapping=mapping,
            dry_run=dry_run,
            skip_bad_rows=skip_bad_rows,
            role=role,
            progress=bars.checking,
            recording=bars.recording,
        )
    if as_json:
        emit_json(report.to_json(told=input_in_cli_words))
    else:
        _show(report.plan, report.receipts, dry_run=dry_run, blocked=report.blocked)
    refusal = report.refusal()
    if refusal is not None:
        raise refusal


def _told(row: RowPlan) -> InputError | None:
    """Why the row cannot be imported, in the CLI's words (:func:`input_in_cli_words`)."""
    return input_in_cli_words(row.problem) if row.problem is not None else None


class _Bars:
    """A transient progress bar on standard error while the rows are checked, then a
    spinner while they are recorded; nothing for programs (``--json``) or pipes."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and err.is_terminal
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def checking(self, done: int, total: int) -> None:
        """Rows checked so far (each row is two steps)."""
        if not self.enabled or total == 0:
            return
        if self.progress is None:
            self.progress = Progress(
                TextColumn(f"checking {total // 2} rows"),
                BarColumn(),
                TaskProgressColumn(),
                console=err,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("rows", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def recording(self, entries: int) -> AbstractContextManager[object]:
        """The spinner around the one batch of ``entries``."""
        self._stop()
        if not self.enabled:
            return nullcontext()
        return err.status(f"recording {entries} entries in one batch", spinner="dots")

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


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
