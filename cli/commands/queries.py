"""Read commands: ``status``, ``timeline``, ``why`` and ``reindex``.

Thin by design: parse the options, call :mod:`projections.queries.cases` / the index, render.
``--json`` prints the same content for programs and nothing else on standard output.
"""

from __future__ import annotations

import csv
import sys
import time
from datetime import datetime
from typing import Any

import typer
from rich import box
from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from cli.common import app, emit_json, err, ledger, out
from ledger.catalogue.models import ALL_CRITERIA, FACTORS
from ledger.errors import UsageError
from projections.fold.describe import describe
from projections.fold.when import LONDON, parse_as_of, parse_on

AS_OF_HELP = (
    "The record as it stood at T: only entries recorded up to T count. YYYY-MM-DD (the end "
    "of that day, Europe/London) or an ISO 8601 date and time (with an offset, or "
    "Europe/London). Default: now."
)
ON_HELP = (
    "The world as at D: only entries that happened (occurred_at) up to D count, and clocks "
    "run to D. Same forms as --as-of. Default: now."
)
JSON_HELP = "Print JSON for programs (and nothing else on standard output)."

FINDING_STYLE = {"met": "bold green", "not-met": "red", "unclear": "yellow"}


def show(renderable: Any) -> None:
    """Print a panel for people, wrapping its text to the terminal."""
    out.print(renderable, soft_wrap=False)


def _open(ctx: typer.Context) -> Any:
    """The invocation's ledger, closed (its connections released) when the command ends."""
    led = ledger(ctx)
    ctx.call_on_close(led.close)
    return led


def _times(
    ctx: typer.Context, as_of: str | None, on: str | None
) -> tuple[Any, datetime | None, datetime | None, datetime]:
    led = _open(ctx)
    now = led.clock()
    as_of_time = parse_as_of(as_of, now) if as_of else None
    on_time = parse_on(on, now) if on else None
    return led, as_of_time, on_time, now


def _when_line(as_of: datetime | None, on: datetime | None) -> str:
    parts = []
    if as_of is not None:
        parts.append(f"as the record stood at {as_of.astimezone(LONDON):%d %b %Y %H:%M} (London)")
    if on is not None:
        parts.append(f"the world as at {on.astimezone(LONDON):%d %b %Y %H:%M} (London)")
    return "; ".join(parts) or "now"


# --- status ---------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger status RR-2026-004  |  caseledger status RR-2026-004 --on "
        "2026-02-24 --json  |  caseledger status --stage decided --regime wt2023"
    )
)
def status(
    ctx: typer.Context,
    case: str | None = typer.Argument(None, help="A case reference; without it, every case."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    stage: str | None = typer.Option(None, "--stage", help="Only cases at this stage."),
    regime: str | None = typer.Option(None, "--regime", help="Only cases under this regime."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Where a case stands (stage, decision in force, open requests, overdue clocks), or
    every case, answered from the cross-case index."""
    # lazy: the queries cost ~8 ms at start-up
    from projections.queries import cases as queries

    led, as_of_time, on_time, now = _times(ctx, as_of, on)
    if case is not None:
        if stage is not None or regime is not None:
            raise UsageError(
                "--stage and --regime filter the list of every case; give no CASE with them",
                field="--stage" if stage is not None else "--regime",
            )
        payload = queries.status(led, case, as_of_time, on_time, now=now)
        if as_json:
            emit_json(payload)
        else:
            _show_status(payload, as_of_time, on_time)
        return
    index = _caught_up_index(led) if as_of_time is None and on_time is None else None
    rows = queries.statuses(
        led, as_of_time, on_time, stage=stage, regime=regime, now=now, index=index
    )
    if as_json:
        emit_json(rows)
    else:
        _show_statuses(rows, as_of_time, on_time)


BACKLOG_BAR = 20_000
"""A catch-up of more entries than this shows a progress bar (on standard error)."""


def _caught_up_index(led: Any) -> Any:
    """The cross-case index, caught up, with a transient progress bar on standard error
    when there is a large backlog (the first query after a big import).  A user who may
    only read the index gets it with the backlog folded in memory, nothing written."""
    # lazy: the index (with the clock facts) costs ~55 ms at start-up
    from projections.index.case_index import CaseIndex

    bar: Progress | None = None
    task: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar, task
        if bar is None:
            if total < BACKLOG_BAR:
                return
            bar = Progress(
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
        index = CaseIndex(led)
        index.catch_up(progress)
    finally:
        if bar is not None:
            bar.stop()
    return index


def _show_status(payload: dict[str, Any], as_of: datetime | None, on: datetime | None) -> None:
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
    overdue = payload["overdue"]
    grid.add_row("overdue clocks", "[bold red]" + ", ".join(overdue) + "[/]" if overdue else "none")
    grid.add_row("next deadline", _deadline_text(payload.get("next_deadline")))
    grid.add_row("entries", f"{payload['entries']} (last recorded {payload['last_recorded_at']})")
    parts: list[Any] = [grid]
    requests = payload["open_requests"]
    if requests:
        table = Table(title="Open information requests", box=box.SIMPLE_HEAD, title_justify="left")
        for column in ("agency", "request", "due", "overdue", "ref"):
            table.add_column(column)
        for r in requests:
            late = r.get("days_overdue") or 0
            table.add_row(
                escape(r["agency"]),
                escape(r["request_id"] or "-"),
                r["due"] or "-",
                f"[bold red]{late} working day{'s' if late != 1 else ''}[/]"
                if r.get("overdue")
                else "-",
                r["ref"],
            )
        parts.append(table)
    else:
        parts.append(Text("No open information requests.", style="dim"))
    show(
        Panel(
            Group(*parts),
            title=f"[bold]{escape(payload['case'])}[/] · {escape(payload['subject'])}",
            subtitle=_when_line(as_of, on),
            expand=False,
        )
    )


def _deadline_text(deadline: dict[str, Any] | None) -> str:
    """``rapid_review due 2026-11-26 (6 days left)``, or ``-``."""
    if not deadline:
        return "-"
    left = deadline.get("days_left")
    suffix = f" ({left} day{'s' if left != 1 else ''} left)" if left is not None else ""
    return f"{deadline['clock']} due {deadline['due']}{suffix}"


def _requests_text(requests: list[dict[str, Any]]) -> str:
    """``3``, ``3 ([red]1 overdue[/])`` or ``-``: the open requests of a case."""
    if not requests:
        return "-"
    late = sum(1 for r in requests if r.get("overdue"))
    return f"{len(requests)} ([red]{late} overdue[/])" if late else str(len(requests))


def _show_statuses(rows: list[dict[str, Any]], as_of: datetime | None, on: datetime | None) -> None:
    table = Table(
        title=f"{len(rows)} case{'s' if len(rows) != 1 else ''} · {_when_line(as_of, on)}",
        box=box.SIMPLE_HEAD,
    )
    columns = (
        "case",
        "regime",
        "stage",
        "decision",
        "made on",
        "open requests",
        "overdue",
        "next deadline",
    )
    for column in columns:
        table.add_column(column)
    for r in rows:
        decision = r["decision"]
        table.add_row(
            escape(r["case"]),
            r["regime"],
            r["stage"],
            decision["outcome"] if decision else "-",
            decision["occurred_at"][:10] if decision else "-",
            _requests_text(r["open_requests"]),
            "[red]" + ", ".join(r["overdue"]) + "[/]" if r["overdue"] else "-",
            _deadline_text(r.get("next_deadline")),
        )
    out.print(table)


# --- timeline -------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger timeline RR-2026-004  |  caseledger timeline RR-2026-004 "
        "--as-of 2026-03-10 --csv > timeline.csv"
    )
)
def timeline(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="A case reference."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (one row per entry)."),
) -> None:
    """Every entry of a case in the order it happened (occurred_at), corrections applied."""
    # lazy: the queries cost ~8 ms at start-up
    from projections.queries.cases import (
        TIMELINE_FIELDS,
        case_view,
        timeline_entries,
        timeline_rows,
    )

    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv", field="--csv")
    led, as_of_time, on_time, _ = _times(ctx, as_of, on)
    view = case_view(led, case, as_of_time, on_time)
    entries = timeline_entries(view, on_time)
    rows = timeline_rows(entries)
    if as_json:
        emit_json(rows)
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(TIMELINE_FIELDS)
        for row in rows:
            writer.writerow([_csv_cell(v) for v in (row[f] for f in TIMELINE_FIELDS)])
        sys.stdout.flush()
        return

    table = Table(
        title=f"{escape(view.case)} · {escape(view.subject)} · {_when_line(as_of_time, on_time)}",
        box=box.SIMPLE_HEAD,
    )
    for column in ("occurred", "ref", "type", "what", "recorded (UTC)", "by"):
        table.add_column(column, overflow="fold")
    for entry, row in zip(entries, rows, strict=True):
        what = escape(describe(entry.type, entry.body))
        if entry.corrected:
            was = row["original_occurred_at"]
            what += f" [magenta](corrected by {', '.join(entry.corrected_by)}"
            what += f"; was dated {was})[/]" if was else ")[/]"
        table.add_row(
            entry.occurred_at.replace("T", " ")[:16],
            f"#{entry.seq}",
            entry.type,
            what,
            entry.recorded_at[:16].replace("T", " "),
            escape(entry.actor),
        )
    out.print(table)


def _csv_cell(value: Any) -> Any:
    """Lists as space-separated refs, booleans as true/false, None as empty."""
    if isinstance(value, list):
        return " ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


# --- why ------------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples: caseledger why RR-2026-004  |  caseledger why RR-2026-004 --as-of "
        "2026-03-10 --json"
    )
)
def why(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="A case reference."),
    as_of: str | None = typer.Option(None, "--as-of", help=AS_OF_HELP),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The decision in force as the record stood at T: who decided what and why, what was
    known then, what it relied on, what has been learned since, and any flags."""
    # lazy: the queries cost ~8 ms at start-up
    from projections.queries import cases as queries

    led, as_of_time, on_time, now = _times(ctx, as_of, on)
    answer = queries.why(led, case, as_of_time, on_time, now=now)
    if as_json:
        emit_json(answer.as_dict())
    else:
        _show_why(answer, as_of_time, on_time)


def _entry_table(title: str, entries: Any, marks: dict[str, str] | None = None) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("ref", "occurred", "recorded (UTC)", "what", ""):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            f"#{e.seq}",
            e.occurred_at.replace("T", " ")[:16],
            e.recorded_at[:16].replace("T", " "),
            escape(describe(e.type, e.body, 80)),
            (marks or {}).get(e.ref, ""),
        )
    return table


def _show_why(answer: Any, as_of: datetime | None, on: datetime | None) -> None:
    # lazy: the fold costs ~4 ms; the why answer costs ~7 ms at start-up
    from projections.fold.case_view import Decision
    from projections.fold.why import LATE_RECORDING_DAYS

    title = f"Why · {escape(answer.case)} · {escape(answer.subject)} ({answer.regime})"
    subtitle = _when_line(as_of, on) if (as_of or on) else "as the record stands now"
    decision: Decision | None = answer.decision
    if decision is None:
        show(
            Panel(
                "[yellow]No decision is in force[/] in this view.\n"
                f"The record held {answer.entries} entr{'y' if answer.entries == 1 else 'ies'} "
                "for the case: [bold]caseledger timeline[/] with the same options lists them.",
                title=title,
                subtitle=subtitle,
                expand=False,
            )
        )
        return
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("decision", f"[bold]{decision.outcome}[/] ({decision.ref})")
    facts.add_row("decided by", escape(", ".join(decision.decided_by)))
    facts.add_row("made on", decision.occurred_at)
    facts.add_row("recorded", f"{decision.recorded_at} by {escape(decision.actor)}")
    if decision.nature:
        facts.add_row("nature", escape(decision.nature))
    facts.add_row("rationale", escape(decision.rationale))
    if decision.corrected_by:
        facts.add_row("corrected by", ", ".join(decision.corrected_by))
    show(Panel(facts, title=title, subtitle=subtitle, expand=False))

    criteria = Table(title="The statutory criteria", box=box.SIMPLE_HEAD, title_justify="left")
    criteria.add_column("criterion")
    criteria.add_column("finding")
    criteria.add_column("reason", overflow="fold")
    order = {name: i for i, name in enumerate(ALL_CRITERIA)}
    for name, found in sorted(decision.criteria.items(), key=lambda kv: order.get(kv[0], 99)):
        style = FINDING_STYLE.get(found.finding, "")
        criteria.add_row(
            name.replace("_", " "), f"[{style}]{found.finding}[/]", escape(found.reason)
        )
    out.print(criteria)
    if decision.factors:
        factors = Table(title="Factors weighed", box=box.SIMPLE_HEAD, title_justify="left")
        factors.add_column("factor")
        factors.add_column("view", overflow="fold")
        rank = {name: i for i, name in enumerate(FACTORS)}
        for name, text in sorted(decision.factors.items(), key=lambda kv: rank.get(kv[0], 99)):
            factors.add_row(name.replace("_", " "), escape(text))
        out.print(factors)
    relied = set(answer.relied_on)
    out.print(
        _entry_table(
            f"Known when the decision was recorded ({len(answer.known_then)} entries; "
            f"★ = relied on)",
            answer.known_then,
            {ref: "★ relied on" for ref in relied},
        )
    )
    if not relied:
        out.print(Text("The decision names no entry it relied on.", style="yellow"))
    if answer.learned_since:
        backdated = {e.ref for e in answer.learned_since_backdated}
        out.print(
            _entry_table(
                f"Learned since the decision was recorded ({len(answer.learned_since)})",
                answer.learned_since,
                {ref: "[magenta]dated before the decision[/]" for ref in backdated},
            )
        )
    else:
        out.print(Text("Nothing has been recorded since the decision.", style="dim"))
    if answer.superseded:
        table = Table(title="Superseded decisions", box=box.SIMPLE_HEAD, title_justify="left")
        for column in ("ref", "made on", "recorded (UTC)", "outcome", "rationale"):
            table.add_column(column, overflow="fold")
        for d in answer.superseded:
            table.add_row(d.ref, d.occurred_at, d.recorded_at[:16], d.outcome, escape(d.rationale))
        out.print(table)
    if answer.flags:
        lines = "\n".join(f"[bold]{f.code}[/]: {escape(f.explanation)}" for f in answer.flags)
        show(Panel(lines, title="[bold red]Flags[/]", border_style="red", expand=False))
    else:
        show(
            Panel(
                "[green]No flags.[/] The criteria and outcome agree, the decision names what "
                "it relied on, no request was open when it was made, and it was recorded "
                f"within {LATE_RECORDING_DAYS} days.",
                border_style="green",
                expand=False,
            )
        )


# --- reindex --------------------------------------------------------------------------


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
    # lazy: the index (with the clock facts) costs ~55 ms at start-up
    from projections.index.case_index import CaseIndex

    led = _open(ctx)
    index = CaseIndex(led)
    index.require_keeper()
    started = time.perf_counter()
    with Progress(
        TextColumn(
            "[bold]Updating the case index" if catch_up else "[bold]Rebuilding the case index"
        ),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("entries"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=as_json,
    ) as progress:
        task = progress.add_task("reindex", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        if catch_up:
            applied = index.catch_up(advance)
            index.refresh_clock_facts()
        else:
            applied = index.rebuild(advance)
        progress.update(task, completed=applied, total=applied)
    seconds = time.perf_counter() - started
    cases = index.count_cases()
    payload = {
        "entries": applied,
        "cases": cases,
        "position": index.position(),
        "seconds": round(seconds, 3),
        "entries_per_second": int(applied / seconds) if seconds > 0 else applied,
    }
    if as_json:
        emit_json(payload)
    else:
        out.print(
            f"[green]ok[/green] {'applied' if catch_up else 'indexed'} {applied} entries "
            f"({cases} cases) in "
            f"{seconds:.2f} s ({payload['entries_per_second']} entries/s)"
        )
