"""How one case's decision is shown to people: the panels and tables of ``caseledger why``,
and the helpers every read command shares (a panel printed whole, the line saying which
moment is shown).  Beside :mod:`cli.commands.queries`, which parses and calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cli.consoles import escape, out
from cli.render import Column, print_people_table

FINDING_STYLE = {"met": "bold green", "not-met": "red", "unclear": "yellow"}


def show(renderable: Any) -> None:
    """Print a panel for people, wrapping its text to the terminal."""
    out.print(renderable, soft_wrap=False)


def when_line(as_of: datetime | None, on: datetime | None) -> str:
    # lazy: the catalogue's pydantic models (under the moments) cost ~60 ms at start-up
    from projections.fold.when import LONDON

    parts = []
    if as_of is not None:
        parts.append(f"as the record stood at {as_of.astimezone(LONDON):%d %b %Y %H:%M} (London)")
    if on is not None:
        parts.append(f"the world as at {on.astimezone(LONDON):%d %b %Y %H:%M} (London)")
    return "; ".join(parts) or "now"


def on_line(as_of: datetime | None, on: datetime) -> str:
    """``on 01 Dec 2026``, with the time the record stood at when one was given (London)."""
    # lazy: the catalogue's time zone (its terms, ~5 ms)
    from projections.fold.when import LONDON

    text = f"on {on.astimezone(LONDON):%d %b %Y}"
    if as_of is not None:
        text += f", as the record stood at {as_of.astimezone(LONDON):%d %b %Y %H:%M} (London)"
    return text


WHY_ENTRY_COLUMNS = (
    Column("ref", whole=True),
    Column("occurred", whole=True),
    Column("recorded (UTC)", drop=1, min_width=10),
    Column("what", min_width=20),
    Column("", min_width=8),
)


def _entry_table(
    report: Any, title: str, entries: Any, marks: dict[str, str] | None = None
) -> None:
    cells = [
        [
            f"#{e.seq}",
            e.occurred_at.replace("T", " ")[:16],
            e.recorded_at[:16].replace("T", " "),
            escape(report.what(e)),
            (marks or {}).get(e.ref, ""),
        ]
        for e in entries
    ]
    print_people_table(WHY_ENTRY_COLUMNS, cells, console=out, title=title, title_justify="left")


def show_why(report: Any, as_of: datetime | None, on: datetime | None) -> None:
    # lazy: the fold costs ~4 ms; the why answer costs ~7 ms at start-up; rich's
    # panels and tables ~40 ms, which `why --json` does not need
    from rich import box
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    # lazy: the catalogue's criteria and the fold cost ~4 ms at start-up
    from ledger.catalogue.terms import ALL_CRITERIA, FACTORS
    from projections.fold.case_view import Decision
    from projections.fold.why import LATE_RECORDING_DAYS

    answer = report.answer
    title = f"Why · {escape(answer.case)} · {escape(answer.subject)} ({answer.regime})"
    subtitle = when_line(as_of, on) if (as_of or on) else "as the record stands now"
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
    _entry_table(
        report,
        f"Known when the decision was recorded ({len(answer.known_then)} entries; ★ = relied on)",
        answer.known_then,
        {ref: "★ relied on" for ref in relied},
    )
    if not relied:
        out.print(Text("The decision names no entry it relied on.", style="yellow"))
    if answer.learned_since:
        backdated = {e.ref for e in answer.learned_since_backdated}
        _entry_table(
            report,
            f"Learned since the decision was recorded ({len(answer.learned_since)})",
            answer.learned_since,
            {ref: "[magenta]dated before the decision[/]" for ref in backdated},
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


#: The columns of a timeline: when and which entry whole; at a narrow terminal the time
#: it was recorded goes first, then who recorded it, then its type (its words stay).
TIMELINE_COLUMNS = (
    Column("occurred", whole=True),
    Column("ref", whole=True),
    Column("type", drop=1, min_width=12),
    Column("what", min_width=20),
    Column("recorded (UTC)", drop=3, min_width=10),
    Column("by", drop=2, min_width=8),
)


def show_timeline(answer: Any) -> None:
    """Every entry of a case in a table for people (``caseledger timeline``)."""
    cells = []
    for entry, row in zip(answer.entries, answer.rows, strict=True):
        what = escape(answer.what(entry))
        if entry.corrected:
            was = row["original_occurred_at"]
            what += f" [magenta](corrected by {', '.join(entry.corrected_by)}"
            what += f"; was dated {was})[/]" if was else ")[/]"
        cells.append(
            [
                entry.occurred_at.replace("T", " ")[:16],
                f"#{entry.seq}",
                entry.type,
                what,
                entry.recorded_at[:16].replace("T", " "),
                escape(entry.actor),
            ]
        )
    print_people_table(
        TIMELINE_COLUMNS,
        cells,
        console=out,
        title=f"{escape(answer.case)} · {escape(answer.subject)} · "
        f"{when_line(answer.as_of, answer.on)}",
    )
