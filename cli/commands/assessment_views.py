"""How ``caseledger clocks`` and ``delays`` are shown to people: the clocks in a table, the
most urgent first when there are many, and the intervals with their summary.  Beside
:mod:`cli.commands.assessments`, which parses and calls, so that the fast path
(:mod:`cli.fast_path`) draws the same without importing typer."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cli.commands.case_views import on_line
from cli.consoles import escape, out
from cli.render import Column, print_people_table

if TYPE_CHECKING:
    from projections.api import DelayReport
    from projections.assess.clocks import ClockState


STATUS_STYLE = {
    "met": "green",
    "running": "cyan",
    "late": "bold red",
    "overdue": "bold red",
    "withdrawn": "magenta",
    "not-started": "dim",
}
#: Most rows a table for people shows (``--json`` and ``--csv`` always give every row).
PEOPLE_ROWS = 200


#: The columns of ``clocks``: the case, dates and status whole; at a narrow terminal the
#: day the clock ended goes first, then the day it started, then the note.
CLOCK_COLUMNS = (
    Column("case", whole=True),
    Column("clock", min_width=12),
    Column("started", whole=True, drop=3),
    Column("due", whole=True),
    Column("ended", whole=True, drop=4),
    Column("status", whole=True),
    Column("note", drop=2, min_width=16),
)


def _clock_note(state: ClockState) -> str:
    parts: list[str] = []
    if state.delay is not None and (state.justified or state.status == "running"):
        d = state.delay
        parts.append(
            f"delay {d.ref} approved by {d.approved_by}, expected by {d.expected_by}: {d.reason}"
        )
    if state.beyond_expected:
        parts.append("past the expected date")
    if state.not_justified_reason is not None:
        parts.append(state.not_justified_reason)
    if state.status == "withdrawn":
        parts.append(f"stood down by {state.end_ref}")
    parts.extend(state.flags)
    parts.extend(f"{m.label} {m.day}" for m in state.marks)  # e.g. "decided 2026-03-06"
    if state.due_before is not None:
        parts.append(f"due ahead of {state.due_before}")
    return "; ".join(parts)


def show_clocks(
    shown: list[ClockState],
    states: list[ClockState],
    case: str | None,
    as_of: datetime | None,
    on: datetime,
) -> None:
    """The clocks in a table for people (the most urgent :data:`PEOPLE_ROWS` of many),
    what has not started, and the counts by status."""
    # lazy: rich's boxes (~2 ms), for people only
    from rich import box

    title = f"Statutory clocks of {case}" if case else "Statutory clocks of every case"
    hidden = 0
    if len(shown) > PEOPLE_ROWS:
        # Thousands of rows help nobody on a terminal: the ones that need action first.
        order = {"overdue": 0, "running": 1, "late": 2, "met": 3, "withdrawn": 4, "not-started": 5}
        ranked = sorted(shown, key=lambda s: (order.get(s.status, 6), -(s.days_over or 0)))
        hidden = len(shown) - PEOPLE_ROWS
        shown = ranked[:PEOPLE_ROWS]
    rows = []
    for s in shown:
        rule = s.rule
        unit = rule.unit.replace("_", " ")
        if rule.limit == 1:
            unit = unit.rstrip("s")
        limit = f"{rule.limit} {unit}" + (f" ({rule.note})" if rule.note else "")
        style = STATUS_STYLE.get(s.status, "")
        status_text = f"[{style}]{s.status}[/]" if style else s.status
        if s.days_over is not None:
            status_text += f"\n{s.days_over} day{'s' if s.days_over != 1 else ''} over"
        if s.days_left is not None:
            status_text += f"\n{s.days_left} day{'s' if s.days_left != 1 else ''} left"
        if s.status in ("late", "overdue"):
            status_text += "\n[green]justified[/]" if s.justified else "\n[red]not justified[/]"
        row = [
            f"{escape(rule.words)}\n[dim]{escape(limit)}[/]",
            s.started.isoformat() if s.started else "",
            s.due.isoformat() if s.due else "",
            s.ended.isoformat() if s.ended else "",
            status_text,
            escape(_clock_note(s)),
        ]
        rows.append([*([escape(s.case)] if case is None else []), *row])
    if not shown:
        out.print(f"No clocks to show {on_line(as_of, on)}.")
    else:
        columns = CLOCK_COLUMNS if case is None else CLOCK_COLUMNS[1:]
        print_people_table(
            columns, rows, console=out, title=f"{title}, {on_line(as_of, on)}", box=box.SIMPLE_HEAVY
        )
    if hidden:
        out.print(
            f"[dim]{hidden} more not shown (overdue and running first, then the latest "
            "over due); narrow with --status, or use --json.[/]"
        )
    not_started = [s for s in states if s.status == "not-started"]
    if case is not None and not_started and not any(s.status == "not-started" for s in shown):
        names = ", ".join(s.rule.words for s in not_started)
        out.print(f"[dim]Not started yet: {escape(names)}.[/]")
    if case is None and states:
        counts: dict[str, int] = {}
        for s in states:
            counts[s.status] = counts.get(s.status, 0) + 1
        cases = len({s.case for s in states})
        out.print(
            f"{cases} case{'s' if cases != 1 else ''}: "
            + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        )


def show_delays(answer: DelayReport) -> None:
    """The intervals in a table for people (the longest :data:`PEOPLE_ROWS` of many), the
    completed ones summed up, and those still waiting."""
    # lazy: rich's tables (~10 ms), for people only
    from rich import box
    from rich.table import Table

    intervals = list(answer.intervals)
    from_type, to_type, over, as_of, on = (
        answer.from_type,
        answer.to_type,
        answer.over,
        answer.as_of,
        answer.on,
    )
    heading = f"{from_type} to {to_type}"
    if over is not None:
        heading += f", over {over} working days"
    table = Table(title=f"{heading}, {on_line(as_of, on)}", box=box.SIMPLE_HEAVY)
    table.add_column("case", no_wrap=True)
    table.add_column("from", no_wrap=True)
    table.add_column("to", no_wrap=True)
    table.add_column("calendar days", justify="right")
    table.add_column("working days", justify="right")

    def short(ref: str | None) -> str:
        return "#" + ref.rsplit("#", 1)[-1] if ref else ""

    listed = intervals
    if len(intervals) > PEOPLE_ROWS:
        listed = sorted(intervals, key=lambda i: -i.working_days)[:PEOPLE_ROWS]
    for i in listed:
        table.add_row(
            escape(i.case),
            f"{i.start} [dim]{short(i.from_ref)}[/]",
            f"{i.end} [dim]{short(i.to_ref)}[/]" if i.end else "[yellow]waiting[/]",
            str(i.calendar_days),
            str(i.working_days),
        )
    if intervals:
        out.print(table)
        if len(listed) < len(intervals):
            out.print(
                f"[dim]The {len(listed)} longest of {len(intervals)} shown; --json or --csv "
                "for all.[/]"
            )
    else:
        out.print(
            f"No case has a {escape(from_type)} entry to measure from ({on_line(as_of, on)})."
        )
        return
    s = answer.summary()
    if s.count:
        out.print(
            f"[bold]{s.count}[/] completed: working days median {s.median_working_days:g}, "
            f"90th percentile {s.p90_working_days}, maximum {s.max_working_days}; calendar "
            f"days median {s.median_calendar_days:g}, 90th percentile {s.p90_calendar_days}, "
            f"maximum {s.max_calendar_days}."
        )
    else:
        out.print("None completed yet.")
    waiting = [i for i in intervals if i.waiting]
    if waiting:
        out.print(
            f"[yellow]{len(waiting)} still waiting[/] for {escape(to_type)}: "
            + ", ".join(
                f"{escape(i.case)} ({i.working_days} working days)"
                for i in sorted(waiting, key=lambda i: -i.working_days)[:PEOPLE_ROWS]
            )
            + (f" and {len(waiting) - PEOPLE_ROWS} more" if len(waiting) > PEOPLE_ROWS else "")
        )
