"""``caseledger delays``: how long cases took from one kind of entry to another.

Per case: from the first ``--from`` entry to the first ``--to`` entry on or after it (a
different entry, so ``--from DecisionMade --to DecisionMade`` measures to a revisit), by
``occurred_at`` days in Europe/London, corrections applied, in calendar days and in
working days of the case's calendar (its regime's rule pack: England and Wales bank
holidays by default).  When the ``--to`` entry has not happened by the ``--on`` day the
interval is still open: ``to``/``to_ref`` are null and both counts run to the ``--on``
day.  Cases without a ``--from`` entry by then are not listed.

The counts are those of :mod:`projections.assess.calendar`: the ``--from`` day is day 0, so an
entry on the next working day is 1 working day later.  The same functions serve one
folded case and the cross-case index's milestone rows.  See ``docs/clocks.md``.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from ledger.domain.policy import EVENT_TYPES
from ledger.errors import UsageError
from projections.assess.calendar import Calendar, calendar_days_between
from projections.assess.clocks import _when, first_on, record_ref, timeline_of, view_records
from projections.assess.rules import EventMatch, rule_pack
from projections.fold.case_view import CaseView
from projections.fold.when import end_of_day, on_day
from projections.index.case_index import CaseIndex
from projections.index.records import indexed_case_records

if TYPE_CHECKING:
    from ledger.application import CaseLedger


__all__ = [
    "CSV_COLUMNS",
    "Interval",
    "Summary",
    "case_interval",
    "check_event_type",
    "filter_over",
    "indexed_intervals",
    "interval_between",
    "intervals_from_times",
    "summarise",
    "view_interval",
]

#: The columns of ``delays --csv``: ``cli.md``'s keys, in order.
CSV_COLUMNS: Final[tuple[str, ...]] = (
    "case",
    "from_ref",
    "to_ref",
    "from",
    "to",
    "calendar_days",
    "working_days",
)


def check_event_type(name: str, field: str) -> str:
    """An event type given for ``field`` (``from_type``, ``to_type``); :class:`UsageError`
    listing the valid types when it is not one."""
    if name in EVENT_TYPES:
        return name
    folded = {t.casefold(): t for t in EVENT_TYPES}
    hint = folded.get(name.casefold())
    did_you_mean = f" (did you mean {hint}?)" if hint else ""
    raise UsageError(
        f"{name!r} is not an event type{did_you_mean}; the types are {', '.join(EVENT_TYPES)}",
        field=field,
    )


@dataclass(frozen=True, slots=True)
class Interval:
    """One case's time from a ``--from`` entry to a ``--to`` entry (or to the ``--on`` day)."""

    case: str
    from_type: str
    to_type: str
    from_ref: str
    start: date
    to_ref: str | None
    end: date | None
    measured_to: date
    """The end, or the ``--on`` day while the ``--to`` entry has not happened."""
    calendar_days: int
    working_days: int

    @property
    def waiting(self) -> bool:
        """Whether the ``--to`` entry has not happened yet."""
        return self.end is None

    def as_dict(self) -> dict[str, Any]:
        """The JSON ``delays`` prints: ``cli.md``'s keys first, then extras."""
        return {
            "case": self.case,
            "from_ref": self.from_ref,
            "to_ref": self.to_ref,
            "from": self.start.isoformat(),
            "to": self.end.isoformat() if self.end is not None else None,
            "calendar_days": self.calendar_days,
            "working_days": self.working_days,
            "from_type": self.from_type,
            "to_type": self.to_type,
            "waiting": self.waiting,
            "measured_to": self.measured_to.isoformat(),
        }

    def csv_row(self) -> list[str]:
        """The row ``delays --csv`` writes (empty cells for nulls)."""
        data = self.as_dict()
        return ["" if data[c] is None else str(data[c]) for c in CSV_COLUMNS]


def _on(on: date | datetime) -> tuple[datetime, date]:
    if isinstance(on, datetime):
        return on, on_day(on)
    return end_of_day(on), on


def interval_between(
    case: str,
    records: Iterable[Mapping[str, Any]],
    from_type: str,
    to_type: str,
    on: date | datetime,
    calendar: Calendar,
) -> Interval | None:
    """The interval of one case from records with corrections applied; None without a
    ``--from`` entry by ``on``.  Entries after ``on`` are ignored.

    Entries are ordered as the clocks order them (:func:`projections.assess.clocks.timeline_of`:
    day, time of day, record order), so "first" means the same thing in both.
    """
    moment, day = _on(on)
    timeline = timeline_of(records, moment)
    first = first_on(EventMatch(from_type), timeline)
    if first is None:
        return None
    first_record, start = first
    last = first_on(EventMatch(to_type), timeline.without(first_record), on_or_after=start)
    end = last[1] if last is not None else None
    measured_to = end if end is not None else max(day, start)
    return Interval(
        case=case,
        from_type=from_type,
        to_type=to_type,
        from_ref=record_ref(first_record),
        start=start,
        to_ref=record_ref(last[0]) if last is not None else None,
        end=end,
        measured_to=measured_to,
        calendar_days=calendar_days_between(start, measured_to),
        working_days=calendar.working_days_between(start, measured_to),
    )


def calendar_of(regime: str | None) -> Calendar:
    """The working-day calendar of a regime's rule pack (England and Wales otherwise)."""
    if regime is None:
        return Calendar()
    try:
        return rule_pack(regime).working_calendar()
    except ValueError:
        return Calendar()


def view_interval(
    view: CaseView, from_type: str, to_type: str, on: date | datetime
) -> Interval | None:
    """The interval of one folded case (as of T, on D)."""
    return interval_between(
        view.case, view_records(view), from_type, to_type, on, calendar_of(view.regime)
    )


def case_interval(
    case: str,
    regime: str | None,
    records: Iterable[Mapping[str, Any]],
    from_type: str,
    to_type: str,
    on: date | datetime,
) -> Interval | None:
    """The interval of one case from corrected records (e.g. the index's milestone rows)."""
    return interval_between(case, records, from_type, to_type, on, calendar_of(regime))


def filter_over(intervals: Iterable[Interval], over: int | None) -> list[Interval]:
    """``--over N``: only the intervals longer than N working days."""
    items = list(intervals)
    if over is None:
        return items
    return [i for i in items if i.working_days > over]


@dataclass(frozen=True, slots=True)
class Summary:
    """Count, median, 90th percentile and maximum of the completed intervals."""

    count: int
    waiting: int
    median_working_days: float | None
    p90_working_days: int | None
    max_working_days: int | None
    median_calendar_days: float | None
    p90_calendar_days: int | None
    max_calendar_days: int | None

    def as_dict(self) -> dict[str, Any]:
        """For people and for the benchmark."""
        return {
            "count": self.count,
            "waiting": self.waiting,
            "median_working_days": self.median_working_days,
            "p90_working_days": self.p90_working_days,
            "max_working_days": self.max_working_days,
            "median_calendar_days": self.median_calendar_days,
            "p90_calendar_days": self.p90_calendar_days,
            "max_calendar_days": self.max_calendar_days,
        }


def nearest_rank(values: Sequence[int], percent: float) -> int | None:
    """The nearest-rank percentile: the smallest value with at least ``percent`` % of the
    values at or below it (always one of the values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _median(values: Sequence[int]) -> float | None:
    if not values:
        return None
    middle = statistics.median(values)
    return float(middle)


def summarise(intervals: Iterable[Interval]) -> Summary:
    """The summary of the completed intervals; the still-waiting ones are only counted
    (their counts are lower bounds, so they would pull the figures down)."""
    items = list(intervals)
    done = [i for i in items if not i.waiting]
    working = [i.working_days for i in done]
    calendar = [i.calendar_days for i in done]
    return Summary(
        count=len(done),
        waiting=len(items) - len(done),
        median_working_days=_median(working),
        p90_working_days=nearest_rank(working, 90),
        max_working_days=max(working) if working else None,
        median_calendar_days=_median(calendar),
        p90_calendar_days=nearest_rank(calendar, 90),
        max_calendar_days=max(calendar) if calendar else None,
    )


def indexed_intervals(
    ledger: CaseLedger,
    from_type: str,
    to_type: str,
    on: date | datetime,
    *,
    as_of: datetime | None = None,
    index: CaseIndex | None = None,
) -> list[Interval]:
    """``delays`` over every case, from the cross-case index, by case reference.

    Now (no ``as_of``), only the two types' times are read (``case_milestones``'
    ``seq``, ``type`` and corrected ``occurred_at``, no facts) with each case's regime
    (:func:`intervals_from_times`); as of a past T, the milestone rows as they stood
    then (:func:`projections.index.records.indexed_case_records`).
    """
    if as_of is None:
        chosen = index if index is not None else CaseIndex(ledger)
        times = chosen.entry_times((from_type, to_type))
        return intervals_from_times(chosen.regimes(catch_up=False), times, from_type, to_type, on)
    out: list[Interval] = []
    for item in indexed_case_records(ledger, (from_type, to_type), as_of=as_of, index=index):
        found = case_interval(item.case, item.regime, item.records, from_type, to_type, on)
        if found is not None:
            out.append(found)
    return out


_Placed = tuple[date, datetime, int]
"""An entry on the timeline: (London day, instant, seq), the order clocks and delays use."""


def intervals_from_times(
    regimes: Mapping[str, str],
    times: Iterable[tuple[str, int, str, str]],
    from_type: str,
    to_type: str,
    on: date | datetime,
) -> list[Interval]:
    """The intervals of every case from its entries' ``(case, seq, type, occurred_at)``
    (corrections applied) and its regime, by case reference: the same answers as
    :func:`interval_between` of each case's records, without building them."""
    moment, day = _on(on)
    froms: dict[str, list[_Placed]] = {}
    tos: dict[str, list[_Placed]] = {}
    for case, seq, kind, occurred_at in times:
        instant, occurred_day = _when(occurred_at)
        if instant > moment:
            continue
        placed = (occurred_day, instant, seq)
        if kind == from_type:
            froms.setdefault(case, []).append(placed)
        if kind == to_type:
            tos.setdefault(case, []).append(placed)
    counters: dict[str | None, _WorkingDays] = {}
    out: list[Interval] = []
    no_ends: list[_Placed] = []
    for case in sorted(froms):
        if case not in regimes:
            continue
        first = min(froms[case])
        start, _, first_seq = first
        ends = [p for p in tos.get(case, no_ends) if p[0] >= start and p[2] != first_seq]
        last = min(ends) if ends else None
        end = last[0] if last is not None else None
        measured_to = end if end is not None else max(day, start)
        regime = regimes[case]
        counter = counters.get(regime)
        if counter is None:
            counter = counters[regime] = _WorkingDays(calendar_of(regime))
        out.append(
            Interval(
                case,
                from_type,
                to_type,
                f"{case}#{first_seq}",
                start,
                f"{case}#{last[2]}" if last is not None else None,
                end,
                measured_to,
                max(0, (measured_to - start).days),  # calendar_days_between
                counter.between(start, measured_to),
            )
        )
    return out


class _WorkingDays:
    """:meth:`Calendar.working_days_between` for many intervals of one calendar: the
    weekdays by arithmetic, less the bank holidays on weekdays counted by bisecting each
    year's sorted list (found once per year), instead of testing every holiday of every
    year the interval spans (every case's interval is 10,000 at the benchmark store)."""

    __slots__ = ("calendar", "years")

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.years: dict[int, list[date]] = {}

    def _days_off(self, year: int) -> list[date]:
        found = self.years.get(year)
        if found is None:
            before = date(year - 1, 12, 31)
            found = self.years[year] = [
                d for d, _ in self.calendar.holidays_between(before, date(year, 12, 31))
            ]
        return found

    def between(self, start: date, end: date) -> int:
        """How many working days fall after ``start`` up to and including ``end`` (0 if
        ``end`` <= ``start``)."""
        if end <= start:
            return 0
        # Monday to Friday in (start, end]: weekdays from a fixed Monday (ordinal 1, Monday
        # 1 January 0001) through each day, by arithmetic (as the calendar counts them).
        weeks, rest = divmod(end.toordinal(), 7)
        count = weeks * 5 + min(rest, 5)
        weeks, rest = divmod(start.toordinal(), 7)
        count -= weeks * 5 + min(rest, 5)
        for year in range(start.year, end.year + 1):
            days_off = self._days_off(year)
            count -= bisect_right(days_off, end) - bisect_right(days_off, start)
        return count
