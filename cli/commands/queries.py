"""Read commands: ``status``, ``timeline``, ``why``, ``related`` and ``reindex``.

Thin by design: parse the options, call one function of :mod:`projections.api`, render.
``--json`` prints the same content for programs and nothing else on standard output.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.commands.case_views import show_timeline, show_why, when_line
from cli.commands.status_views import index_progress, show_status, show_statuses
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
    err,
    escape,
    ledger,
    out,
)
from cli.completion import complete_case, complete_regime, complete_stage
from cli.render import Column, print_people_table
from ledger.errors import UsageError

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress


FULL_HELP = "Show each entry's account in words whole, not shortened to a line."


def _open(ctx: typer.Context) -> Any:
    """The invocation's ledger, closed (its connections released) when the command ends."""
    led = ledger(ctx)
    ctx.call_on_close(led.close)
    return led


# --- status ---------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger status RR-2026-004  |  caseledger status RR-2026-004 --on "
        "2026-02-24 --json  |  caseledger status --stage decided --regime wt2023  |  "
        "caseledger status --sort ref --all --csv > cases.csv"
    )
)
def status(
    ctx: typer.Context,
    case: str | None = typer.Argument(
        None, help="A case reference; without it, every case.", autocompletion=complete_case
    ),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    stage: str | None = typer.Option(
        None, "--stage", help="Only cases at this stage.", autocompletion=complete_stage
    ),
    regime: str | None = typer.Option(
        None, "--regime", help="Only cases under this regime.", autocompletion=complete_regime
    ),
    sort: str = typer.Option(
        "urgency",
        "--sort",
        help="The order of every case: urgency (overdue first, then the soonest next "
        "deadline, then the rest) or ref (by case reference).",
    ),
    include_closed: bool = typer.Option(
        False, "--all", help="Also list closed cases (left out otherwise)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (one row per case)."),
    rules: Path | None = typer.Option(None, "--rules", envvar=RULES_ENV, help=RULES_HELP),
) -> None:
    """Where a case stands (stage, decision in force, open requests, overdue clocks), or
    every open case, the most urgent first, answered from the cross-case index."""
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv", field="--csv")
    with index_progress() as progress:
        answer = api.status(
            _open(ctx),
            case,
            as_of=as_of,
            on=on,
            stage=stage,
            regime=regime,
            sort=sort,
            include_closed=include_closed,
            progress=progress,
            rules=rules,
        )
    if not (as_json and case is not None):  # one case's JSON object says it: local_rules
        disclose_rules(answer.local_rules, to_stderr=as_json or as_csv)
    if as_json:
        emit_json(answer.to_json())
    elif as_csv:
        emit_csv(answer.csv_rows())
    elif case is not None:
        show_status(answer.to_json(), answer.as_of, answer.on)
    else:
        show_statuses(answer.to_json(), answer.as_of, answer.on)


# --- timeline -------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger timeline RR-2026-004  |  caseledger timeline RR-2026-004 "
        "--as-of 2026-03-10 --csv > timeline.csv"
    )
)
def timeline(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="A case reference.", autocompletion=complete_case),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    full: bool = typer.Option(False, "--full", help=FULL_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (one row per entry)."),
) -> None:
    """Every entry of a case in the order it happened (occurred_at), corrections applied."""
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv", field="--csv")
    answer = api.timeline(_open(ctx), case, as_of=as_of, on=on, full=full)
    if as_json:
        emit_json(answer.to_json())
        return
    if as_csv:
        emit_csv(answer.csv_rows())
        return

    show_timeline(answer)


# --- why ------------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger why RR-2026-004  |  caseledger why RR-2026-004 --as-of "
        "2026-03-10 --json"
    )
)
def why(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="A case reference.", autocompletion=complete_case),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    full: bool = typer.Option(False, "--full", help=FULL_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The decision in force as the record stood at T: who decided what and why, what was
    known then, what it relied on, what has been learned since, and any flags."""
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    answer = api.why(_open(ctx), case, as_of=as_of, on=on, full=full)
    if as_json:
        emit_json(answer.to_json())
    else:
        show_why(answer, answer.as_of, answer.on)


# --- related --------------------------------------------------------------------------

#: The columns of ``related``: the case and its shared themes whole; at a narrow terminal
#: the recommendations go first.
RELATED_COLUMNS = (
    Column("case", whole=True),
    Column("aware", whole=True, drop=2),
    Column("shared themes", min_width=12),
    Column("learning", min_width=20),
    Column("recommendations", drop=1, min_width=16),
)


@app.command(
    epilog=(
        "Examples: caseledger related RR-2026-031  |  caseledger related RR-2026-031 "
        "--as-of 2026-05-01 --json"
    )
)
def related(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="A case reference.", autocompletion=complete_case),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Earlier cases sharing this case's practice themes, with the learning they recorded.

    Earlier means referred before it; most shared themes first, then the most recent.
    """
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    report = api.related(_open(ctx), case, as_of=as_of, on=on)
    if as_json:
        emit_json(report.to_json())
        return
    if not report.themes:
        out.print(
            f"{escape(case)} has no practice themes recorded "
            f"({when_line(report.as_of, report.on)}): record them with "
            "[bold]caseledger record-themes[/] to find related cases."
        )
        return
    themes = ", ".join(report.themes)
    if not report.cases:
        out.print(
            f"No earlier case shares the themes of {escape(case)} ({escape(themes)}); "
            f"{when_line(report.as_of, report.on)}."
        )
        return
    rows = []
    for found in report.cases:
        learning = found.learning or ()
        rows.append(
            [
                found.case,
                found.aware_date,
                escape(", ".join(found.themes)),
                escape("\n".join(f"{item.summary} ({item.ref})" for item in learning))
                or "[dim]none recorded[/]",
                escape("\n".join(r for item in learning for r in item.recommendations)),
            ]
        )
    print_people_table(
        RELATED_COLUMNS,
        rows,
        console=out,
        title=f"Related to {escape(case)} (themes: {escape(themes)}) · "
        f"{when_line(report.as_of, report.on)}",
        title_justify="left",
    )


#: The columns of ``why``'s lists of entries: the ref and dates whole; at a narrow
#: terminal the time each was recorded goes first.
@app.command(
    epilog="Examples: caseledger reindex  |  caseledger reindex --catch-up --json (a cron job)"
)
def reindex(
    ctx: typer.Context,
    catch_up: bool = typer.Option(
        False,
        "--catch-up",
        help="Only apply what was recorded since the index's tracked position (for a cron "
        "job of the indexer role), instead of rebuilding from zero.",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Rebuild the cross-case index from zero, from the store's log, or bring it up to
    date (--catch-up). Only a user who may write the index does this (the store's owner
    or the indexer role); everybody else's queries fold what it has not applied yet."""
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    bar: RichProgress | None = None
    task: Any = None

    def progress(what: str, done: int, total: int | None) -> None:
        # The bar starts once the index may be written (a refused user sees none).
        nonlocal bar, task
        if bar is None:
            # lazy: rich's progress bars cost ~10 ms at start-up
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            bar = RichProgress(
                TextColumn(f"[bold]{what.capitalize()} the case index"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("entries"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=as_json,
            )
            bar.start()
            task = bar.add_task("reindex", total=None)
        bar.update(task, completed=done, total=total)

    try:
        done = api.reindex(_open(ctx), catch_up=catch_up, progress=progress)
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        emit_json(done.to_json())
    else:
        out.print(
            f"[green]ok[/green] {'applied' if catch_up else 'indexed'} {done.entries} entries "
            f"({done.cases} cases) in "
            f"{done.seconds:.2f} s ({done.entries_per_second} entries/s)"
        )
