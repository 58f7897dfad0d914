"""How ``caseledger due`` is shown to people: every open deadline in a table.  Beside
:mod:`cli.commands.desk`, which parses and calls, so that the fast path
(:mod:`cli.fast_path`) draws the same without importing typer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cli.commands.case_views import on_line
from cli.consoles import escape, out
from cli.render import Column, print_people_table

if TYPE_CHECKING:
    from projections.api import DueList
    from projections.queries.desk import Deadline


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


def show_due(answer: DueList) -> None:
    """Every open deadline in a table for people, and the counts under it."""
    # lazy: rich's boxes (~2 ms), for people only
    from rich import box

    heading = "What is due"
    if answer.case is not None:
        heading += f" in {answer.case}"
    if answer.within is not None:
        heading += f" within {answer.within} working day{'s' if answer.within != 1 else ''}"
    when = on_line(answer.as_of, answer.on)
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
