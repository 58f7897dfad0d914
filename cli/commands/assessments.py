"""Assessment commands: ``clocks``, ``delays``, ``quality`` and ``rules``.

Thin by design: parse the options, call one function of :mod:`projections.api`, render.
One case is folded (exactly current); every case at once is answered from the cross-case
index's milestone rows.  ``--json`` (and ``--csv`` for ``delays``) print the content for
programs and nothing else on standard output.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cli.commands.assessment_views import show_clocks, show_delays
from cli.commands.case_views import on_line
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
from cli.completion import (
    complete_case,
    complete_clock_status,
    complete_entry_type,
    complete_regime,
)
from ledger.errors import UsageError

if TYPE_CHECKING:
    from projections.assess.quality import Answer


ANSWER_STYLE = {"yes": "bold green", "partly": "yellow", "no": "bold red", "not-applicable": "dim"}


# --- clocks ---------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger clocks RR-2026-004  |  caseledger clocks RR-2026-004 --on "
        "2026-03-05 --json  |  caseledger clocks --status overdue  |  caseledger clocks "
        "--csv > clocks.csv"
    )
)
def clocks(
    ctx: typer.Context,
    case: str | None = typer.Argument(
        None, help="A case reference; without it, every case.", autocompletion=complete_case
    ),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    status: list[str] | None = typer.Option(
        None,
        "--status",
        help=(
            "Only clocks with this status (running, met, overdue, late, withdrawn); repeat "
            "for several."
        ),
        autocompletion=complete_clock_status,
    ),
    include_not_started: bool = typer.Option(
        False, "--all", help="Also list clocks that have not started (status not-started)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (one row per clock)."),
    rules: Path | None = typer.Option(None, "--rules", envvar=RULES_ENV, help=RULES_HELP),
) -> None:
    """The statutory clocks of a case's regime, or of every case.

    Started, due, ended, and met, late, running, overdue or withdrawn (a review stood
    down by a later no-review decision) on --on; a late or overdue clock with an approved
    DecisionDelayed recorded by the day the clock ended is justified, shown with its
    reason (one recorded later is listed, and does not justify it).
    """
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    if as_json and as_csv:
        raise UsageError("give --json or --csv, not both", field="--csv")
    answer = api.clocks(
        lambda: ledger(ctx),  # opened once the options are found good
        case,
        as_of=as_of,
        on=on,
        status=status,
        include_not_started=include_not_started,
        rules=rules,
    )
    disclose_rules(answer.local_rules, to_stderr=as_json or as_csv)
    if as_json:
        emit_json(answer.to_json())
        return
    if as_csv:
        emit_csv(answer.csv_rows())
        return
    show_clocks(list(answer.shown), list(answer.states), case, answer.as_of, answer.on)


# --- delays ---------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger delays --from IncidentNotified --to DecisionMade  |  "
        "caseledger delays --from CaseReferred --to IncidentNotified --over 5 --csv"
    )
)
def delays(
    ctx: typer.Context,
    from_type: str = typer.Option(
        ...,
        "--from",
        help="The entry type that starts the interval (e.g. IncidentNotified).",
        autocompletion=complete_entry_type,
    ),
    to_type: str = typer.Option(
        ...,
        "--to",
        help="The entry type that ends it (the first one on or after the start).",
        autocompletion=complete_entry_type,
    ),
    case: str | None = typer.Option(
        None, "--case", help="Only this case.", autocompletion=complete_case
    ),
    over: int | None = typer.Option(
        None, "--over", min=0, help="Only intervals longer than N working days."
    ),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (cli.md's columns)."),
) -> None:
    """How long cases took from one entry type to another, in calendar and working days.

    Per case, from the first --from entry to the first --to entry on or after it (by
    occurred_at); an interval still open runs to --on.
    """
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    if as_json and as_csv:
        raise UsageError("give --json or --csv, not both", field="--csv")
    answer = api.delays(
        lambda: ledger(ctx),
        from_type=from_type,
        to_type=to_type,
        case=case,
        over=over,
        as_of=as_of,
        on=on,
    )
    if as_json:
        emit_json(answer.to_json())
    elif as_csv:
        emit_csv(answer.csv_rows())
    else:
        show_delays(answer)


# --- quality --------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger quality RR-2026-004  |  caseledger quality RR-2026-004 --json"
        "  |  caseledger quality RR-2026-004 --rules our-agencies.toml"
    )
)
def quality(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="A case reference.", autocompletion=complete_case),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    rules: Path | None = typer.Option(
        None,
        "--rules",
        help=(
            "A quality data file (key agencies and their name patterns ...) instead of the "
            "shipped one or $CASELEDGER_QUALITY_RULES."
        ),
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    clock_rules: Path | None = typer.Option(
        None, "--clock-rules", envvar=RULES_ENV, help=RULES_HELP + " (--rules is the quality file.)"
    ),
) -> None:
    """The nine QM2 (decision making) questions answered from the record.

    Each is yes, partly, no or not-applicable, with the entries that evidence it and one
    sentence saying why (the rules: docs/quality.md).
    """
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    answer = api.quality(
        lambda: ledger(ctx), case, as_of=as_of, on=on, rules=rules, clock_rules=clock_rules
    )
    disclose_rules(answer.local_rules, to_stderr=as_json)
    if as_json:
        emit_json(answer.to_json())
        return
    _show_quality(case, list(answer.answers), answer.as_of, answer.on)


def _show_quality(case: str, answers: list[Answer], as_of: datetime | None, on: datetime) -> None:
    table = Table(
        title=f"QM2 decision making: {escape(case)}, {on_line(as_of, on)}",
        box=box.SIMPLE_HEAVY,
        show_lines=True,
    )
    table.add_column("#", justify="right")
    table.add_column("question", ratio=3)
    table.add_column("answer", no_wrap=True)
    table.add_column("why", ratio=4)
    table.add_column("evidence", ratio=2)
    for a in answers:
        style = ANSWER_STYLE.get(a.answer, "")
        table.add_row(
            str(a.question),
            escape(a.text),
            f"[{style}]{a.answer}[/]",
            escape(a.explanation),
            escape(", ".join(a.evidence)),
        )
    out.print(table)
    counts: dict[str, Any] = {}
    for a in answers:
        counts[a.answer] = counts.get(a.answer, 0) + 1
    out.print(", ".join(f"{n} {k}" for k, n in counts.items()))


# --- rules ----------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger rules  |  caseledger rules wt2015 --json  |  caseledger rules "
        "--on 2019-01-15  |  caseledger rules --rules local-rules.toml --on 2025-01-06"
    )
)
def rules(
    regime: str | None = typer.Argument(
        None, help="One regime (wt2015, wt2018, wt2023).", autocompletion=complete_regime
    ),
    on: str | None = typer.Option(
        None, "--on", help="The rules in force on this day (YYYY-MM-DD; default: today)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    rules: Path | None = typer.Option(None, "--rules", envvar=RULES_ENV, help=RULES_HELP),
) -> None:
    """The statutory clocks of each regime's rule pack in force on a day: limit, unit,
    effective dates and public source (a source marked (check) is still to be confirmed)."""
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    answer = api.rules(regime, on=on, rules=rules)
    disclose_rules(answer.local_rules, to_stderr=as_json)
    if as_json:
        emit_json(answer.to_json())
        return
    out.print(f"Rules in force on {answer.on:%d %b %Y}")
    for pack in answer.packs:
        out.print(f"[bold]{escape(pack.regime)}[/]: {escape(pack.title)} ({pack.calendar})")
        if not pack.clocks:
            out.print("  no clock rule of this regime is in force on that day")
        for rule, text in zip(pack.clocks, answer.descriptions(pack), strict=True):
            since = rule.effective_from.isoformat() if rule.effective_from else "the start"
            until = f" to {rule.effective_to.isoformat()}" if rule.effective_to else ""
            out.print(f"  {escape(text)} [dim](in force from {since}{until})[/]")
