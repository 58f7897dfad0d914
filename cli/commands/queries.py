"""Read commands: ``status``, ``timeline``, ``why``, ``related`` and ``reindex``.

Thin by design: parse the options, call one function of :mod:`projections.api`, render.
``--json`` prints the same content for programs and nothing else on standard output.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.commands.case_views import show, show_timeline, show_why, when_line
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
from cli.render import Column, people_table, print_people_table
from ledger.errors import UsageError

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress

    from projections.api import Progress

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
    with _index_progress() as progress:
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
        _show_status(answer.to_json(), answer.as_of, answer.on)
    else:
        _show_statuses(answer.to_json(), answer.as_of, answer.on)


BACKLOG_BAR = 20_000
"""A catch-up of more entries than this shows a progress bar (on standard error)."""


@contextmanager
def _index_progress() -> Iterator[Progress]:
    """A transient progress bar on standard error while the cross-case index catches up
    with a large backlog (the first query after a big import); nothing otherwise."""
    bar: RichProgress | None = None
    task: Any = None

    def progress(what: str, done: int, total: int | None) -> None:
        nonlocal bar, task
        if bar is None:
            if total is None or total < BACKLOG_BAR:
                return
            # lazy: rich's progress bars cost ~10 ms at start-up, for a rare backlog
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            bar = RichProgress(
                TextColumn("[bold]Updating the case index"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            bar.start()
            task = bar.add_task("index", total=total)
        bar.update(task, completed=done, total=total)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.stop()


def _show_status(payload: dict[str, Any], as_of: datetime | None, on: datetime | None) -> None:
    # lazy: the fold costs ~4 ms at start-up; rich's tables ~40 ms, for people only
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    # lazy: the fold costs ~4 ms at start-up
    from projections.fold.case_view import STAGES

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    stage = payload["stage"]
    grid.add_row("regime", payload["regime"])
    grid.add_row("stage", f"[bold cyan]{stage}[/] ({STAGES.index(stage) + 1} of {len(STAGES)})")
    decision = payload["decision"]
    if decision is None:
        grid.add_row("decision", "[yellow]none yet[/]")
    else:
        grid.add_row(
            "decision",
            f"[bold]{decision['outcome']}[/] ({decision['ref']}), made {decision['occurred_at']}, "
            f"recorded {decision['recorded_at']}",
        )
    overdue = _clock_list(payload)
    grid.add_row("overdue clocks", f"[bold red]{overdue}[/]" if overdue else "none")
    grid.add_row("next deadline", _deadline_text(payload))
    grid.add_row("entries", f"{payload['entries']} (last recorded {payload['last_recorded_at']})")
    parts: list[Any] = [grid]
    requests = payload["open_requests"]
    if requests:
        cells = []
        for r in requests:
            late = r.get("days_overdue") or 0
            cells.append(
                [
                    escape(r["agency"]),
                    escape(r["request_id"] or "-"),
                    r["due"] or "-",
                    f"[bold red]{late} working day{'s' if late != 1 else ''}[/]"
                    if r.get("overdue")
                    else "-",
                    "#" + r["ref"].rsplit("#", 1)[-1],
                ]
            )
        fitted = people_table(
            REQUEST_COLUMNS,
            cells,
            console=out,
            title="Open information requests",
            title_justify="left",
            width=out.width - 4,  # inside the panel's borders and padding
        )
        parts.append(fitted.table)
    else:
        parts.append(Text("No open information requests.", style="dim"))
    show(
        Panel(
            Group(*parts),
            title=f"[bold]{escape(payload['case'])}[/] · {escape(payload['subject'])}",
            subtitle=when_line(as_of, on),
            expand=False,
        )
    )


def _clock_list(row: dict[str, Any]) -> str:
    """The case's overdue clocks in words (``rapid review, notification``), or ``""``."""
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections.api import clock_words

    return ", ".join(clock_words(row["regime"], name) for name in row["overdue"])


#: The columns of one case's open requests: request, dates and the entry whole.
REQUEST_COLUMNS = (
    Column("agency", min_width=12),
    Column("request", whole=True),
    Column("due", whole=True),
    Column("overdue", whole=True),
    Column("ref", whole=True),
)


def _deadline_text(row: dict[str, Any]) -> str:
    """``rapid review due 2026-11-26 (6 days left)``, or ``-``: the case's next deadline."""
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections.api import clock_words

    deadline = row.get("next_deadline")
    if not deadline:
        return "-"
    left = deadline.get("days_left")
    suffix = f" ({left} day{'s' if left != 1 else ''} left)" if left is not None else ""
    return f"{clock_words(row['regime'], deadline['clock'])} due {deadline['due']}{suffix}"


def _requests_text(requests: list[dict[str, Any]]) -> str:
    """``3``, ``3 ([red]1 overdue[/])`` or ``-``: the open requests of a case."""
    if not requests:
        return "-"
    late = sum(1 for r in requests if r.get("overdue"))
    return f"{len(requests)} ([red]{late} overdue[/])" if late else str(len(requests))


#: The columns of the list of cases: the reference, stage, decision and dates whole; at a
#: narrow terminal the regime goes first, then the decision's date, the decision, the
#: requests (the deadlines, overdue replies included, always stay).
STATUS_COLUMNS = (
    Column("case", whole=True),
    Column("regime", whole=True, drop=4),
    Column("stage", whole=True),
    Column("decision", whole=True, drop=2),
    Column("made on", whole=True, drop=3),
    Column("open requests", drop=1, min_width=8),
    Column("deadlines", min_width=16),
)


def _deadlines_text(row: dict[str, Any]) -> str:
    """What is overdue in a case (clocks in words, agency replies counted) and its next
    deadline, one line each (markup)."""
    lines = []
    overdue = _clock_list(row)
    if overdue:
        lines.append(f"[red]overdue: {escape(overdue)}[/]")
    late = sum(1 for r in row["open_requests"] if r.get("overdue"))
    if late:
        lines.append(f"[red]{late} agency repl{'y' if late == 1 else 'ies'} overdue[/]")
    if row.get("next_deadline"):
        lines.append(f"next: {escape(_deadline_text(row))}")
    return "\n".join(lines) or "-"


def _show_statuses(rows: list[dict[str, Any]], as_of: datetime | None, on: datetime | None) -> None:
    cells = []
    for r in rows:
        decision = r["decision"]
        cells.append(
            [
                escape(r["case"]),
                r["regime"],
                r["stage"],
                decision["outcome"] if decision else "-",
                decision["occurred_at"][:10] if decision else "-",
                _requests_text(r["open_requests"]),
                _deadlines_text(r),
            ]
        )
    print_people_table(
        STATUS_COLUMNS,
        cells,
        console=out,
        title=f"{len(rows)} case{'s' if len(rows) != 1 else ''} · {when_line(as_of, on)}",
    )


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
