"""The desk: ``due``, every open deadline across the open cases, soonest first.

Thin by design: parse the options, call :func:`projections.api.due`, render a table for
people, or ``--json`` / ``--csv`` for programs (nothing else on standard output).
"""

from __future__ import annotations

import csv
import sys
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.commands.assessments import AS_OF_HELP, JSON_HELP, ON_HELP, _when
from cli.common import app, emit_json, ledger, out
from cli.completion import complete_case
from ledger.errors import UsageError

if TYPE_CHECKING:
    from projections.api import DueList
    from projections.queries.desk import Deadline


@app.command(
    epilog=(
        "Examples: caseledger due  |  caseledger due --within 5  |  caseledger due --kind "
        "reply --on 2026-12-01 --csv  |  caseledger due --case RR-2026-031 --json"
    )
)
def due(
    ctx: typer.Context,
    within: int | None = typer.Option(
        None,
        "--within",
        help="Only deadlines due within N working days of --on (0: today), and every overdue one.",
    ),
    case: str | None = typer.Option(
        None, "--case", help="Only this case.", autocompletion=complete_case
    ),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help="Only clocks (statutory clocks) or replies (due from agencies).",
        autocompletion=lambda incomplete: [
            k for k in ("clock", "reply") if k.startswith(incomplete)
        ],
    ),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (cli.md's keys, then ids)."),
) -> None:
    """What is due: every open deadline across the open cases, overdue first, then soonest.

    Statutory clocks that are running or overdue on --on, and replies due from agencies
    (an information request with a due date, not yet answered or declined), each with how
    long is left or how far over it is: working days for working-day clocks and replies,
    calendar days for clocks counted in calendar days or months. Closed cases are left
    out. An overdue clock is justified when an approved delay was recorded in time.
    """
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    if as_json and as_csv:
        raise UsageError("give --json or --csv, not both", field="--csv")
    answer = api.due(
        lambda: ledger(ctx),  # opened once the options are found good
        within=within,
        case=case,
        kind=kind,
        on=on,
        as_of=as_of,
    )
    if as_json:
        emit_json(answer.to_json())
    elif as_csv:
        csv.writer(sys.stdout, lineterminator="\n").writerows(answer.csv_rows())
        sys.stdout.flush()
    else:
        _show_due(answer)


def _left(d: Deadline) -> str:
    """``4 working days left``, ``due today``, ``3 calendar days over`` (styled)."""
    unit = d.unit.replace("-", " ")
    count = abs(d.left)
    if count == 1:
        unit = unit.removesuffix("s")
    if d.overdue:
        return f"[bold red]{count} {unit} over[/]"
    if d.left == 0:
        return "[yellow]due today[/]"
    return f"{count} {unit} left"


def _what(d: Deadline) -> str:
    """What is due, for the table: the clock in words, or the request (its agency is in
    the next column)."""
    if d.kind == "reply":
        return f"reply to request {d.request_id}"
    return d.what


def _justified(d: Deadline) -> str:
    if d.kind != "clock" or not d.overdue:
        return ""
    return "[green]justified[/]" if d.justified else "[red]not justified[/]"


def _show_due(answer: DueList) -> None:
    heading = "What is due"
    if answer.case is not None:
        heading += f" in {answer.case}"
    if answer.within is not None:
        heading += f" within {answer.within} working day{'s' if answer.within != 1 else ''}"
    when = _when(answer.as_of, answer.on)
    deadlines = answer.deadlines
    if not deadlines:
        out.print(f"Nothing is due {when}.")
        return
    table = Table(title=f"{heading}, {when}", box=box.SIMPLE_HEAVY)
    # A case reference and a date are never cut; the words wrap, widest columns first.
    table.add_column("case", no_wrap=True)
    table.add_column("what", min_width=12, overflow="fold")
    table.add_column("from", min_width=10, overflow="fold")
    table.add_column("due", no_wrap=True)
    # Whether a delay justifies an overdue clock goes under how far over it is.
    table.add_column("left / over", min_width=10, overflow="fold")
    for d in deadlines:
        table.add_row(
            escape(d.case),
            escape(_what(d)),
            escape(d.from_ or ""),
            d.due.isoformat(),
            "\n".join(part for part in (_left(d), _justified(d)) if part),
        )
    out.print(table)
    overdue = sum(1 for d in deadlines if d.overdue)
    clocks = sum(1 for d in deadlines if d.kind == "clock")
    out.print(
        f"{len(deadlines)} open deadline{'s' if len(deadlines) != 1 else ''}: {overdue} "
        f"overdue; {clocks} clock{'s' if clocks != 1 else ''}, {len(deadlines) - clocks} "
        f"repl{'ies' if len(deadlines) - clocks != 1 else 'y'}"
    )
