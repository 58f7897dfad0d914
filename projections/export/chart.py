"""The timeline chart's layout: one mark per entry in lanes, one bar per statutory clock.

Shared by the bundle's report (``report_case.html``) and the web view's case page
(``projections.api.timeline_chart``); the SVG markup is in ``timeline_chart.html``.

The chart tells what the clock table tells (issue 19): a clock still running, or overdue,
is drawn up to the moment the page describes (the export's ``--to``/now, the web page's
date), not to the last entry; each clock's due line and its days over (or left) are
written on it; time past due is drawn solid when nothing justifies it and hatched inside
a dashed outline when an approved delay does, so the two differ in black and white too.
Every colour is a presentation attribute taken from :data:`COLOURS` (so the report and
the web page, whose style sheets differ, draw the same marks), each at least 3:1 against
what it is drawn on (``tests/test_chart.py`` computes it), and every clock is also said in
words (:attr:`ClockBar.words`, the SVG's ``desc``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Protocol

from ledger.catalogue.registry import KINDS, TIMELINE_LANES
from projections.assess.calendar import add_months
from projections.assess.rules import REGIMES, rule_pack
from projections.export.report import _EPOCH, _day, _parse_day, occurred_point

__all__ = [
    "COLOURS",
    "Chart",
    "Charted",
    "ClockBar",
    "Lane",
    "Mark",
    "Tick",
    "build_chart",
    "day_words",
]


#: The chart's lanes, top to bottom, each with the entry types drawn in it (each kind's
#: ``lane`` in :mod:`ledger.catalogue.registry`).
LANES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = tuple(
    (label, tuple(kind.name for kind in KINDS if kind.lane == label)) for label in TIMELINE_LANES
)
_LANE_OF: Final = {t: i for i, (_, types) in enumerate(LANES) for t in types}

CHART_WIDTH: Final = 960
PLOT_LEFT: Final = 170
PLOT_RIGHT: Final = 930
MARK_STEP: Final = 11
CLOCK_STEP: Final = 26
"""Vertical distance between two clock bars (a line of words above each bar)."""
CHAR_WIDTH: Final = 5.6
"""The width of one character of the chart's 11 px text, near enough to place words."""

#: Every colour the chart draws with, by what it draws.  The backgrounds are ``paper``
#: (the chart), ``band`` (a lane) and ``allowed`` (the period a clock allows); each mark
#: is at least 3:1 against the backgrounds it is drawn on (WCAG 2.2, 1.4.11).
COLOURS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "paper": "#ffffff",
        "band": "#f8f8f8",
        "ink": "#1b1b1b",
        "grid": "#dddddd",
        "lane0": "#4c2c92",
        "lane1": "#1d70b8",
        "lane2": "#00703c",
        "lane3": "#7a5a1e",
        "lane4": "#16766e",
        "lane5": "#a4286a",
        "decision": "#b42416",
        "allowed": "#e8f1f8",
        "allowed_edge": "#1d70b8",
        "ran": "#505a5f",
        "late": "#b42416",
        "due": "#b42416",
        "moment": "#1b1b1b",
    }
)
#: Which backgrounds each mark is drawn on (what ``tests/test_chart.py`` checks it against).
DRAWN_ON: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        **{f"lane{i}": ("band",) for i in range(6)},
        "decision": ("band",),
        "allowed_edge": ("paper",),
        "ran": ("allowed", "paper"),
        "late": ("paper", "allowed"),
        "due": ("band", "paper", "allowed"),
        "moment": ("band", "paper", "allowed"),
        "ink": ("paper", "band"),
    }
)


def day_words(day: date) -> str:
    """A day as the chart writes it: ``6 Mar 2026``."""
    return f"{day.day} {day:%b %Y}"


@dataclass
class Mark:
    """One event's mark on the chart."""

    ref: str
    type: str
    x: float
    y: float
    r: float
    css: str
    title: str
    fill: str = ""


@dataclass
class Lane:
    label: str
    y: float
    height: float


@dataclass
class ClockBar:
    """One statutory clock: the allowed period, the elapsed period and the due date.

    The elapsed period is drawn in two parts: up to ``x_on_time`` (the due day, or the end
    if earlier) in one grey whatever the status (the words say it), and for a late or
    overdue clock from the due day to ``x_end``, solid red when not ``justified`` and
    hatched in a dashed outline when it is.  A clock with no end is drawn to the chart's
    moment (``running``), with an arrowhead there.
    """

    label: str
    status: str
    y: float
    x_start: float
    x_due: float
    x_end: float
    started: str
    due: str
    ended: str | None
    justified: bool
    label_end: bool = False
    x_on_time: float = 0.0
    over: bool = False
    running: bool = False
    colour: str = ""
    note: str = ""
    """What is written above the bar: the due day, and the days over or left."""
    note_x: float = 0.0
    note_anchor: str = "start"
    words: str = ""
    """The whole clock in one sentence (the chart's text equivalent)."""


@dataclass
class Tick:
    x: float
    label: str


@dataclass
class Chart:
    """Coordinates for the SVG timeline (the markup is in the template)."""

    width: int
    height: int
    plot_left: int
    plot_right: int
    lanes: list[Lane]
    marks: list[Mark]
    clocks: list[ClockBar]
    ticks: list[Tick]
    axis_y: float
    first_day: str
    last_day: str
    on_day: str = ""
    """The moment the chart describes (its clocks' ``--on`` day)."""
    on_x: float | None = None
    """Where the moment's line is drawn: only when a clock runs to it."""
    on_label: str = ""
    summary: str = ""
    """The chart in words: its entries' span, then every clock (:attr:`ClockBar.words`)."""
    colours: dict[str, str] = field(default_factory=lambda: dict(COLOURS))


class Charted(Protocol):
    """What the chart reads of an entry: a report :class:`Entry` or a view's entry (the web
    view's case page draws the entries of ``projections.api.timeline``)."""

    @property
    def ref(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> str: ...


def build_chart(
    entries: Sequence[Charted], clocks: Sequence[dict[str, Any]], on: date | datetime
) -> Chart:
    """Lay out one mark per entry (by ``occurred_at``, in lanes) and one bar per clock.

    ``clocks`` are the clocks' JSON (``clocks --json``) computed on ``on``, the moment the
    page describes (a datetime is taken on its Europe/London day): a clock with no end
    (running, overdue) is drawn up to it, and the days over or left are counted to it.
    """
    on_day = _parse_day(on)
    if on_day is None:
        raise TypeError(f"on must be a date or datetime, not {type(on).__name__}")
    points = [occurred_point(e.occurred_at) for e in entries]
    clock_days: list[float] = []
    runs_to_moment = False
    for c in clocks:
        for name in ("started", "due", "ended"):
            day = _parse_day(c.get(name))
            if day is not None:
                clock_days.append(float(day.toordinal() - _EPOCH))
        if _runs_on(c):
            runs_to_moment = True
    if runs_to_moment:
        clock_days.append(float(on_day.toordinal() - _EPOCH))
    span = points + clock_days
    lo = min(span) if span else 0.0
    hi = max(span) if span else 1.0
    lo, hi = float(int(lo)) - 1, float(int(hi)) + 2
    scale = (PLOT_RIGHT - PLOT_LEFT) / max(hi - lo, 1.0)

    def x_of(value: float) -> float:
        return round(PLOT_LEFT + (value - lo) * scale, 2)

    def x_day(day: date) -> float:
        return x_of(float(day.toordinal() - _EPOCH))

    # Stack marks that fall on the same day in the same lane.
    stacks: dict[tuple[int, int], int] = {}
    placed: list[tuple[int, int, Charted, float]] = []
    for entry, point in zip(entries, points, strict=True):
        lane = _LANE_OF.get(entry.type, len(LANES) - 1)
        key = (lane, int(point))
        level = stacks.get(key, 0)
        stacks[key] = level + 1
        placed.append((lane, level, entry, point))
    depth = [1] * len(LANES)
    for (lane, _), count in stacks.items():
        depth[lane] = max(depth[lane], count)
    lanes: list[Lane] = []
    top = 30.0
    for i, (label, _) in enumerate(LANES):
        height = 14.0 + MARK_STEP * depth[i]
        lanes.append(Lane(label=label, y=top, height=height))
        top += height
    marks = []
    for lane, level, entry, point in placed:
        big = entry.type == "DecisionMade"
        css = "decision" if big else f"lane{lane}"
        marks.append(
            Mark(
                ref=entry.ref,
                type=entry.type,
                x=x_of(point),
                y=round(lanes[lane].y + 12 + level * MARK_STEP, 2),
                r=6.5 if big else 4.5,
                css=css,
                title=f"{entry.ref} {entry.type} {entry.occurred_at}",
                fill=COLOURS[css],
            )
        )
    bars: list[ClockBar] = []
    clock_top = top + 22
    for c in clocks:
        bar = _bar(c, on_day, clock_top + len(bars) * CLOCK_STEP, x_day)
        if bar is not None:
            bars.append(bar)
    axis_y = clock_top + max(len(bars) - 1, 0) * CLOCK_STEP + 14
    ticks = _ticks(lo, hi, x_of)
    summary = f"{len(marks)} entr{'y' if len(marks) == 1 else 'ies'}"
    if points:
        first, last = _day(min(points)), _day(max(points))
        summary += (
            f" from {day_words(first)} to {day_words(last)}, one mark each by the day it happened."
        )
    else:
        summary += "."
    if bars:
        summary += f" Statutory clocks as they stood on {day_words(on_day)}: " + " ".join(
            b.words for b in bars
        )
    else:
        summary += " No statutory clock has started."
    return Chart(
        width=CHART_WIDTH,
        height=int(axis_y + 50),
        plot_left=PLOT_LEFT,
        plot_right=PLOT_RIGHT,
        lanes=lanes,
        marks=marks,
        clocks=bars,
        ticks=ticks,
        axis_y=axis_y,
        first_day=_day(lo).isoformat(),
        last_day=_day(hi).isoformat(),
        on_day=on_day.isoformat(),
        on_x=x_day(on_day) if runs_to_moment else None,
        on_label=f"on {day_words(on_day)}",
        summary=summary,
    )


def _runs_on(clock: Mapping[str, Any]) -> bool:
    """Whether a clock is drawn to the moment: started, not ended, running or overdue."""
    return (
        clock.get("ended") is None
        and clock.get("started") is not None
        and clock.get("status") in ("running", "overdue")
    )


def _bar(
    c: Mapping[str, Any], on_day: date, y: float, x_day: Callable[[date], float]
) -> ClockBar | None:
    """One clock's bar, its words above it and its sentence for the text equivalent."""
    start = _parse_day(c.get("started"))
    due = _parse_day(c.get("due"))
    if start is None or due is None:
        return None
    ended = _parse_day(c.get("ended"))
    status = str(c.get("status", ""))
    running = ended is None and _runs_on(c)
    end = ended if ended is not None else (on_day if running else start)
    justified = bool(c.get("justified"))
    over = status in ("late", "overdue") and end > due
    label = _clock_words(c)
    count = _days_between(c, due, end) if over else None
    left = _days_between(c, on_day, due) if status == "running" and due >= on_day else None
    note = f"due {day_words(due)}"
    said: list[str] = [
        f"{label}: started {day_words(start)}, due {day_words(due)}",
        f"ended {day_words(ended)}"
        if ended is not None
        else f"still running on {day_words(on_day)}",
        status,
    ]
    if count is not None:
        over_words = (
            f"{count} over, {'justified by an approved delay' if justified else 'not justified'}"
        )
        note += f"; {over_words}"
        said.append(over_words)
    elif left is not None:
        left_words = "due that day" if left == "0 days" else f"{left} left"
        note += f"; {left_words}"
        said.append(left_words)
    x_start, x_due, x_end = x_day(start), x_day(due), x_day(end)
    width = len(note) * CHAR_WIDTH
    if x_due + 3 + width <= CHART_WIDTH - 4:
        note_x, anchor = x_due + 3, "start"
    elif x_due - 3 - width >= PLOT_LEFT:
        note_x, anchor = x_due - 3, "end"
    else:
        note_x, anchor = CHART_WIDTH - 4, "end"
    return ClockBar(
        label=label,
        status=status,
        y=y,
        x_start=x_start,
        x_due=x_due,
        x_end=x_end,
        x_on_time=min(x_end, x_due) if over else x_end,
        label_end=anchor == "end",
        started=start.isoformat(),
        due=due.isoformat(),
        ended=ended.isoformat() if ended else None,
        justified=justified,
        over=over,
        running=running,
        colour=COLOURS["ran"],
        note=note,
        note_x=round(note_x, 2),
        note_anchor=anchor,
        words=", ".join(said) + ".",
    )


def _clock_words(clock: Mapping[str, Any]) -> str:
    """A clock's name for people (``Rapid review``), from its regime's rule pack."""
    name, regime = str(clock.get("clock") or ""), str(clock.get("regime") or "")
    words = name.replace("_", " ")
    if regime in REGIMES:
        pack = rule_pack(regime)
        if name in pack.names:
            words = pack.clock(name).words
    return words[:1].upper() + words[1:]


def _days_between(clock: Mapping[str, Any], first: date, last: date) -> str:
    """The days after ``first`` up to ``last`` in the clock's own unit: working days (the
    regime's calendar) for a working-day clock, else calendar days."""
    if clock.get("unit") == "working_days":
        regime = str(clock.get("regime") or "")
        calendar = rule_pack(regime if regime in REGIMES else REGIMES[-1]).working_calendar()
        n = calendar.working_days_between(first, last)
        return f"{n} working day{'' if n == 1 else 's'}"
    n = max(0, (last - first).days)
    return f"{n} day{'' if n == 1 else 's'}"


def _ticks(lo: float, hi: float, x_of: Callable[[float], float]) -> list[Tick]:
    first, last = _day(lo), _day(hi)
    days = (last - first).days
    ticks: list[Tick] = []
    if days <= 21:
        day = first
        while day <= last:
            ticks.append(Tick(x_of(float(day.toordinal() - _EPOCH)), f"{day.day} {day:%b}"))
            day += timedelta(days=1 if days <= 10 else 2)
        return ticks
    if days <= 120:
        day = first + timedelta(days=(7 - first.weekday()) % 7)  # Mondays
        while day <= last:
            ticks.append(Tick(x_of(float(day.toordinal() - _EPOCH)), f"{day.day} {day:%b}"))
            day += timedelta(days=7)
        return ticks
    step = max(1, days // 365 + (1 if days > 730 else 0))
    month = date(first.year, first.month, 1)
    if month < first:
        month = add_months(month, 1)
    while month <= last:
        label = month.strftime("%b %Y") if month.month == 1 or not ticks else month.strftime("%b")
        ticks.append(Tick(x_of(float(month.toordinal() - _EPOCH)), label))
        month = add_months(month, step)
    return ticks
