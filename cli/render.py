"""Tables for people that fit the terminal without cutting what tells cases apart.

Every list of cases (``status``, ``clocks``, ``due``) is a :func:`people_table`: each
column says whether its cells must be shown whole (a case reference, a date, a status:
never wrapped, never cut) and how readily it is dropped when the console is too narrow.
The table is fitted to the console's width (the terminal's, or ``COLUMNS``, or 80 when
piped): the columns that may wrap are given what is left, never less than their longest
word, so no word is broken or cut with an ellipsis; when even that does not fit, the
least important columns are left out (and named under the table); and when the columns
that are never dropped do not fit either, the table is wider than the console rather
than cut.

The wrapping itself is rich's: this module only chooses each column's width
(``Column(width=..., no_wrap=...)``) from rich's own measurements of the cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # rich is imported when a table is drawn: ~40 ms that --json does not need
    from rich.box import Box
    from rich.console import Console, RenderableType
    from rich.table import Table

__all__ = ["Column", "Fitted", "people_table", "print_people_table"]

Justify = Literal["left", "center", "right"]

#: A very wide measuring width: cells are measured as they are, not as a terminal cuts them.
_MEASURE_WIDTH = 100_000


@dataclass(frozen=True)
class Column:
    """One column of a table for people.

    ``whole``: its cells are shown on one line each and never cut (case references,
    dates, statuses; a cell may still hold several lines of its own).  ``drop``: 0 for a
    column always shown; otherwise it may be left out when the terminal is too narrow,
    the highest number first.  ``min_width``: the fewest columns a wrapping column is
    given when others need the room (never fewer than its longest word)."""

    header: str
    whole: bool = False
    drop: int = 0
    min_width: int = 0
    justify: Justify = "left"
    style: str | None = None


@dataclass(frozen=True)
class Fitted:
    """A table fitted to a width, and the headers of the columns left out to fit it."""

    table: Table
    dropped: tuple[str, ...]
    width: int
    """The width it was fitted to (the table is wider only when the columns never left
    out do not fit in it)."""


def _cell(value: RenderableType | None) -> RenderableType:
    """Markup text as rich text (measured and printed the same); other renderables as
    they are."""
    from rich.text import Text

    if value is None:
        return Text("")
    if isinstance(value, str):
        return Text.from_markup(value)
    return value


def _spread(slack: int, growth: list[int]) -> list[int]:
    """``slack`` columns of width shared among columns that could use ``growth`` more
    each, in proportion to what each could use (none gets more than it can use)."""
    wanted = sum(growth)
    if wanted <= slack:
        return list(growth)
    shares = [slack * g // wanted for g in growth]
    left = slack - sum(shares)
    for i in sorted(range(len(growth)), key=lambda i: growth[i] - shares[i], reverse=True):
        if left <= 0:
            break
        if shares[i] < growth[i]:
            shares[i] += 1
            left -= 1
    return shares


def people_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[RenderableType | None]],
    *,
    console: Console,
    title: str | None = None,
    box: Box | None = None,
    show_lines: bool = False,
    title_justify: Justify = "center",
    width: int | None = None,
) -> Fitted:
    """``rows`` (markup strings or renderables, one per column) as a table that fits
    ``console`` (or ``width`` columns of it, for a table inside a panel): whole columns
    at their widest cell, the others wrapped at word boundaries, columns dropped
    (``Column.drop``, highest first) only when the console is too narrow for the rest.
    See the module's docstring.  ``box``: rich's ``SIMPLE_HEAD`` unless given."""
    from rich import box as boxes
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    room = console.width if width is None else width
    cells = [[_cell(value) for value in row] for row in rows]
    options = console.options.update_width(_MEASURE_WIDTH)
    least: list[int] = []
    most: list[int] = []
    for i, column in enumerate(columns):
        header = Measurement.get(console, options, Text(column.header))
        measured = [Measurement.get(console, options, row[i]) for row in cells]
        widest = max([header.maximum, *(m.maximum for m in measured)])
        longest_word = max([header.minimum, *(m.minimum for m in measured)])
        least.append(widest if column.whole else min(widest, max(longest_word, column.min_width)))
        most.append(widest)
    padding = 2  # rich's default cell padding: one space each side

    def needed(kept: list[int]) -> int:
        edges = 2 + (len(kept) - 1)  # the box's edges and the lines between columns
        return sum(least[i] + padding for i in kept) + edges

    kept = list(range(len(columns)))
    dropped: list[str] = []
    # Highest drop number first; among equals, the rightmost first.
    for i in sorted(
        (i for i, c in enumerate(columns) if c.drop), key=lambda i: (columns[i].drop, i)
    )[::-1]:
        if needed(kept) <= room:
            break
        kept.remove(i)
        dropped.append(columns[i].header)
    fitted = max(room, needed(kept))
    wrapping = [i for i in kept if not columns[i].whole]
    extra = _spread(fitted - needed(kept), [most[i] - least[i] for i in wrapping])
    widths = {i: least[i] for i in kept}
    for i, more in zip(wrapping, extra, strict=True):
        widths[i] += more
    table = Table(
        title=title,
        title_justify=title_justify,
        box=boxes.SIMPLE_HEAD if box is None else box,
        show_lines=show_lines,
        width=sum(widths[i] + padding for i in kept) + 2 + (len(kept) - 1),
    )
    for i in kept:
        column = columns[i]
        table.add_column(
            column.header,
            width=widths[i],
            no_wrap=column.whole,
            overflow="fold",
            justify=column.justify,
            style=column.style,
        )
    for row in cells:
        table.add_row(*(row[i] for i in kept))
    return Fitted(table, tuple(dropped), room)


def print_people_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[RenderableType | None]],
    *,
    console: Console,
    title: str | None = None,
    box: Box | None = None,
    show_lines: bool = False,
    title_justify: Justify = "center",
) -> Fitted:
    """Print :func:`people_table`, and under it which columns were left out to fit the
    console's width (and how to see them); ``box`` as there."""
    fitted = people_table(
        columns,
        rows,
        console=console,
        title=title,
        box=box,
        show_lines=show_lines,
        title_justify=title_justify,
    )
    console.print(fitted.table, soft_wrap=True)
    if fitted.dropped:
        console.print(
            f"[dim]Not shown at {fitted.width} columns: {', '.join(fitted.dropped)} "
            "(a wider terminal, --csv or --json shows them).[/]",
            soft_wrap=False,
        )
    return fitted
