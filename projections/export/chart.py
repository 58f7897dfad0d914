"""The timeline chart's layout: one mark per entry in lanes, one bar per statutory clock.

Shared by the bundle's report (``report_case.html``) and the web view's case page
(``projections.api.timeline_chart``); the SVG markup is in ``timeline_chart.html``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final, Protocol

from ledger.catalogue.registry import KINDS, TIMELINE_LANES
from projections.assess.calendar import add_months
from projections.export.report import _EPOCH, _day, _parse_day, occurred_point

__all__ = ["Chart", "Charted", "ClockBar", "Lane", "Mark", "Tick", "build_chart"]


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


@dataclass
class Lane:
    label: str
    y: float
    height: float


@dataclass
class ClockBar:
    """One statutory clock: the allowed period, the elapsed period and the due date."""

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


class Charted(Protocol):
    """What the chart reads of an entry: a report :class:`Entry` or a view's entry (the web
    view's case page draws the entries of ``projections.api.timeline``)."""

    @property
    def ref(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> str: ...


def build_chart(entries: Sequence[Charted], clocks: Sequence[dict[str, Any]]) -> Chart:
    """Lay out one mark per entry (by ``occurred_at``, in lanes) and one bar per clock."""
    points = [occurred_point(e.occurred_at) for e in entries]
    clock_days: list[float] = []
    for c in clocks:
        for name in ("started", "due", "ended"):
            day = _parse_day(c.get(name))
            if day is not None:
                clock_days.append(float(day.toordinal() - _EPOCH))
    span = points + clock_days
    lo = min(span) if span else 0.0
    hi = max(span) if span else 1.0
    lo, hi = float(int(lo)) - 1, float(int(hi)) + 2
    scale = (PLOT_RIGHT - PLOT_LEFT) / max(hi - lo, 1.0)

    def x_of(value: float) -> float:
        return round(PLOT_LEFT + (value - lo) * scale, 2)

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
        marks.append(
            Mark(
                ref=entry.ref,
                type=entry.type,
                x=x_of(point),
                y=round(lanes[lane].y + 12 + level * MARK_STEP, 2),
                r=6.5 if big else 4.5,
                css="decision" if big else f"lane{lane}",
                title=f"{entry.ref} {entry.type} {entry.occurred_at}",
            )
        )
    bars: list[ClockBar] = []
    clock_top = top + 14
    for c in clocks:
        start = _parse_day(c.get("started"))
        due = _parse_day(c.get("due"))
        if start is None or due is None:
            continue
        ended = _parse_day(c.get("ended"))
        end_x = x_of(float((ended or _day(hi - 1)).toordinal() - _EPOCH))
        x_due = x_of(float(due.toordinal() - _EPOCH))
        bars.append(
            ClockBar(
                label=str(c.get("clock", "")).replace("_", " "),
                status=str(c.get("status", "")),
                y=clock_top + len(bars) * 24,
                x_start=x_of(float(start.toordinal() - _EPOCH)),
                x_due=x_due,
                x_end=end_x,
                label_end=x_due > PLOT_RIGHT - 110,
                started=start.isoformat(),
                due=due.isoformat(),
                ended=ended.isoformat() if ended else None,
                justified=bool(c.get("justified")),
            )
        )
    axis_y = clock_top + len(bars) * 24 + 6
    ticks = _ticks(lo, hi, x_of)
    return Chart(
        width=CHART_WIDTH,
        height=int(axis_y + 34),
        plot_left=PLOT_LEFT,
        plot_right=PLOT_RIGHT,
        lanes=lanes,
        marks=marks,
        clocks=bars,
        ticks=ticks,
        axis_y=axis_y,
        first_day=_day(lo).isoformat(),
        last_day=_day(hi).isoformat(),
    )


def _ticks(lo: float, hi: float, x_of: Callable[[float], float]) -> list[Tick]:
    first, last = _day(lo), _day(hi)
    days = (last - first).days
    ticks: list[Tick] = []
    if days <= 21:
        day = first
        while day <= last:
            ticks.append(Tick(x_of(float(day.toordinal() - _EPOCH)), day.strftime("%d %b")))
            day += timedelta(days=1 if days <= 10 else 2)
        return ticks
    if days <= 120:
        day = first + timedelta(days=(7 - first.weekday()) % 7)  # Mondays
        while day <= last:
            ticks.append(Tick(x_of(float(day.toordinal() - _EPOCH)), day.strftime("%d %b")))
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
