"""The desk: ``due``, every open deadline across the open cases, soonest first.

Thin by design: parse the options, call :func:`projections.api.due`, render a table for
people, or ``--json`` / ``--csv`` for programs (nothing else on standard output).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.commands.desk_views import show_due
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
)
from cli.completion import complete_case
from ledger.errors import UsageError

if TYPE_CHECKING:
    pass


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
        show_due(answer)
