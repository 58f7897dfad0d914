"""How ``caseledger status`` is shown to people: one case's panel, the list of cases, and
the progress bar while the cross-case index catches up.  Beside
:mod:`cli.commands.queries`, which parses and calls, so that the fast path
(:mod:`cli.fast_path`) draws the same without importing typer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cli.commands.case_views import show, when_line
from cli.consoles import err, escape, out
from cli.render import Column, people_table, print_people_table

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress

    from projections.api import Progress


BACKLOG_BAR = 20_000
"""A catch-up of more entries than this shows a progress bar (on standard error)."""


@contextmanager
def index_progress() -> Iterator[Progress]:
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


def show_status(payload: dict[str, Any], as_of: datetime | None, on: datetime | None) -> None:
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


def show_statuses(rows: list[dict[str, Any]], as_of: datetime | None, on: datetime | None) -> None:
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
