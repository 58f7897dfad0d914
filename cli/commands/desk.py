"""The desk: ``due``, every open deadline across the open cases, soonest first.

Thin by design: parse the options, call :func:`projections.api.due`, render a table for
people, or ``--json`` / ``--csv`` for programs (nothing else on standard output).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.markup import escape

from cli.commands.assessments import _when
from cli.common import (
    AS_OF_HELP,
    JSON_HELP,
    ON_HELP,
    RULES_ENV,
    RULES_HELP,
    app,
    disclose_rules,
    emit_csv,
    emit_json,
    ledger,
    out,
)
from cli.completion import complete_case
from cli.render import Column, print_people_table
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
    rules: Path | None = typer.Option(None, "--rules", envvar=RULES_ENV, help=RULES_HELP),
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
        rules=rules,
    )
    disclose_rules(answer.local_rules, to_stderr=as_json or as_csv)
    if as_json:
        emit_json(answer.to_json())
    elif as_csv:
        emit_csv(answer.csv_rows())
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
    """What is due, for the table: the clock in words with who must act
    (``rapid review, by the lead safeguarding partners``), or the reply with the agency to
    chase and the request (``reply from Northshire Police (request R3)``)."""
    if d.kind == "clock" and d.from_:
        return f"{d.what}, by {d.from_}"
    return d.what


#: The columns of ``due``: the case, the due day and how far over whole; what is due
#: (with the agency to chase) and how long is left wrap at word boundaries, so the table
#: fits 80 columns without cutting a reference, a date or a word.
DUE_COLUMNS = (
    Column("case", whole=True),
    Column("what", min_width=16),
    Column("due", whole=True),
    Column("left / over", min_width=10),
)


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
    rows = [
        [
            escape(d.case),
            escape(_what(d)),
            d.due.isoformat(),
            # Whether a delay justifies an overdue clock goes under how far over it is.
            "\n".join(part for part in (_left(d), _justified(d)) if part),
        ]
        for d in deadlines
    ]
    print_people_table(
        DUE_COLUMNS, rows, console=out, title=f"{heading}, {when}", box=box.SIMPLE_HEAVY
    )
    overdue = sum(1 for d in deadlines if d.overdue)
    clocks = sum(1 for d in deadlines if d.kind == "clock")
    out.print(
        f"{len(deadlines)} open deadline{'s' if len(deadlines) != 1 else ''}: {overdue} "
        f"overdue; {clocks} clock{'s' if clocks != 1 else ''}, {len(deadlines) - clocks} "
        f"repl{'ies' if len(deadlines) - clocks != 1 else 'y'}"
    )
