"""The statutory clocks of a case: started, due, ended, and met, late, running, overdue or
withdrawn.

The rules are the regime's rule pack (:mod:`projections.assess.rules`, ``projections/rules/*.toml``)
and the counting is :mod:`projections.assess.calendar`; this module only applies them to a case's
entries, as ``shared/domain.md`` ("Timescales") says:

* Clocks measure ``occurred_at`` days (Europe/London), corrections applied.  The start is
  the first entry that matches the clock's start (or the date field it names, e.g.
  ``CaseReferred.aware_date``); the end is the first matching entry *on or after* the
  start day, so a revisited decision never restarts a clock an earlier decision ended.
* The end may be a list (:attr:`ClockRule.ends`): the first entry matching any of them
  ends the clock.  ``marks`` are dates shown beside a clock (a rapid review's
  ``decided`` beside the day it was sent), never ending it (:func:`clock_marks`).
* ``due`` is the last on-time day (:meth:`ClockRule.due`, the start being day 0); a
  ``lead`` clock is due ``limit`` *before* the day of the first of its ``before`` matches
  found (:func:`due_before`: the publication, else the one planned), and starts at the
  first of its start and ``before`` entries (:func:`clock_start`), so its due day may
  come before its start (a report published without a final report sent: overdue).
* Each clock of a case is judged by the pack's rule in force on its start day
  (:func:`rule_for`), so a rule changed later never re-judges a case started before.
* On the ``--on`` day D, with only the entries that had happened by D:
  ``met`` (ended on or before due), ``late`` (ended after due), ``running`` (not ended,
  D on or before due), ``overdue`` (not ended, D after due), ``withdrawn`` (stood down
  by the pack's ``withdrawn_by`` entry after the start and before any end, e.g. a review
  stood down by a later no-review decision).  A clock whose start has not happened by D
  has not started (``not-started``; the CLI leaves it out).
* A clock with ``early_end`` (the decision clocks) whose end came *before* its start (a
  rapid review decided before the notification) is ``met`` on the day it started, with
  that flag, rather than running for ever.
* A clock listed in the pack as justifiable (``justifiable_by = ["DecisionDelayed"]``)
  is *justified* when it is late or overdue and such an entry (recorded, and so approved:
  ``approved_by`` is required) happened on or before the clock's end (or D while it
  runs) *and was recorded* (``recorded_at``, its London day) on or before that day: a
  delay written into the record after the decision cannot justify it.  Such a late entry
  is listed (``delays_recorded_late``) with the reason it does not count.  The delay
  does not stop the clock; it explains it.  The latest counting entry is shown with its
  reason, who approved it and the expected date.  (A record without ``recorded_at``, one
  built by hand rather than read from a store, counts as recorded when it occurred.)

The same functions serve one folded case (:class:`~projections.fold.case_view.CaseView`) and
the cross-case index (milestone rows turned into records:
:func:`projections.index.records.all_clocks` and its neighbours, which read the index), so
``clocks`` and ``status`` give the same answer
either way.  This module reads no index (the index imports it, never the reverse).
See ``docs/clocks.md``.

What a clock's answer is (its status, its state, a delay that justifies it, the summary of
a case's clocks) is :mod:`projections.assess.clock_states`; the names are importable from
here too.

Why one module: the timeline, a clock's start, ends, marks, lead due day, the choice of
the rule in force and the status are one computation that the cross-case index's facts
(:mod:`projections.index.clock_facts`) must repeat exactly (its property test compares the
two); split, each piece would import the others' private helpers.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final

from ledger.catalogue.terms import LONDON, occurred_instant
from projections.assess.calendar import Calendar, due_date
from projections.assess.clock_states import (
    ACTIVE_STATUSES,
    DELAY_FIELDS_OF,
    STATUSES,
    ClockMark,
    ClockState,
    ClockStatus,
    ClockSummary,
    Justification,
    deadline_of,
    recorded_day,
    summary_of,
)

# The index keeps clock facts with the same formatting (projections.index.clock_facts).
from projections.assess.clock_states import _iso as _iso
from projections.assess.rules import (
    REGIMES,
    ClockRule,
    EventMatch,
    RulePack,
    all_rule_packs,
    event_day,
    first_match,
    match,
    rule_pack,
)
from projections.fold.case_view import CaseView, fold
from projections.fold.when import end_of_day, on_day

__all__ = [
    "ACTIVE_STATUSES",
    "STATUSES",
    "ClockMark",
    "ClockState",
    "ClockStatus",
    "ClockSummary",
    "Justification",
    "Placed",
    "Timeline",
    "case_clocks",
    "clock_end",
    "clock_event_types",
    "clock_marks",
    "clock_start",
    "clock_state",
    "clock_states",
    "clocks_from_records",
    "deadline_of",
    "due_before",
    "first_of",
    "first_on",
    "judge_delays",
    "justification_of",
    "justifying",
    "next_deadline",
    "overdue_clocks",
    "record_ref",
    "recorded_day",
    "requests_on",
    "rule_for",
    "status_on",
    "summary_of",
    "timeline_of",
    "view_records",
]


_DATE_LEN: Final = 10


# --- the computation --------------------------------------------------------------


def record_ref(record: Mapping[str, Any]) -> str:
    """``CASE#seq`` of a record (or its ``ref`` if it carries one)."""
    ref = record.get("ref")
    if isinstance(ref, str):
        return ref
    return f"{record.get('case')}#{record.get('seq')}"


def _instant(occurred_at: str) -> datetime:
    """The instant of a stored occurred_at; a naive wire-form time is Europe/London."""
    moment = occurred_instant(occurred_at)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LONDON)


def _on_moment(on: date | datetime) -> tuple[datetime, date]:
    """The ``--on`` instant and day: a bare date means the end of that day."""
    if isinstance(on, datetime):
        return on, on_day(on)
    return end_of_day(on), on


def _as_date(value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:_DATE_LEN])
    except ValueError:
        return None


def _due(rule: ClockRule, start: date, calendar: Calendar) -> date:
    """The clock's due date; computed once per limit, unit, start day and calendar."""
    return _due_cached(rule.limit, rule.unit, start, calendar.nation)


@lru_cache(maxsize=65536)
def _due_cached(limit: int, unit: str, start: date, nation: str) -> date:
    # Keyed on plain values: hashing a ClockRule (nested frozen dataclasses) on every
    # call costs more than the lookup saves.
    if unit == "working_days" and limit > 0:
        return _working_days_after(start, limit, nation)
    return due_date(start, limit, unit, _calendar(nation))


def _working_days_after(start: date, n: int, nation: str) -> date:
    """``Calendar(nation).add_working_days(start, n)`` for ``n`` > 0, looked up instead of
    counted (every clock of every case asks for its due date, most in working days, and
    ``clocks`` over a 10,000-case store asks for some 13,000 different ones): the ``n``-th
    entry after ``start`` in the nation's working days, listed for the years asked about
    (:func:`_working_days_of`); by jumps (:func:`_working_days_jumping`) beyond them."""
    day = start.toordinal()
    listed = _working_days_of(nation, start.year, start.year + 1 + n // 200)
    if listed is not None and day >= listed[0]:
        at = bisect_right(listed[1], day) + n - 1
        if at < len(listed[1]):
            return date.fromordinal(listed[1][at])
    return _working_days_jumping(start, n, nation)


#: Per nation: the first ordinal listed, the first and last years, and every working day
#: of those years by ordinal (a few thousand a decade), as :func:`_working_days_of` keeps.
_WORKING_DAYS: dict[str, tuple[int, int, int, list[int]]] = {}


#: The most years :func:`_working_days_of` lists (about 260 ordinals a year); a due date
#: asked about beyond them is found by jumps.
_MOST_LISTED_YEARS: Final = 60


def _working_days_of(nation: str, first_year: int, last_year: int) -> tuple[int, list[int]] | None:
    """The first ordinal of a list of every working day (Monday to Friday, no bank
    holiday of ``nation``) of at least ``first_year`` to ``last_year``, and the list:
    the one kept, widened when a year outside it is asked about (None when that would
    list more than :data:`_MOST_LISTED_YEARS` years)."""
    kept = _WORKING_DAYS.get(nation)
    if kept is not None and kept[1] <= first_year and last_year <= kept[2]:
        return kept[0], kept[3]
    if kept is not None:
        first_year, last_year = min(first_year, kept[1]), max(last_year, kept[2])
    first_year, last_year = max(first_year, date.min.year), min(last_year, date.max.year)
    if last_year - first_year >= _MOST_LISTED_YEARS:
        return None
    low, high = date(first_year, 1, 1).toordinal(), date(last_year, 12, 31).toordinal()
    days_off: set[int] = set()
    for year in range(first_year, last_year + 1):
        days_off.update(_weekday_holidays(nation, year))
    # ordinal 1 is a Monday: 6 and 0 (mod 7) are Saturday and Sunday
    listed = [d for d in range(low, high + 1) if d % 7 not in (6, 0) and d not in days_off]
    _WORKING_DAYS[nation] = (low, first_year, last_year, listed)
    return low, listed


def _working_days_jumping(start: date, n: int, nation: str) -> date:
    """``Calendar(nation).add_working_days(start, n)`` for ``n`` > 0 by jumps instead of
    day by day: the ``n``-th weekday after by arithmetic on ordinals (ordinal 1 is a
    Monday), then as many weekdays more as bank holidays fell on weekdays in the jump,
    until none did."""
    day, remaining = start.toordinal(), n
    while remaining:
        weeks, rest = divmod(day, 7)
        weeks, rest = divmod(weeks * 5 + min(rest, 5) + remaining - 1, 5)  # weekdays to then
        target = weeks * 7 + rest + 1
        remaining = 0
        for year in range(date.fromordinal(day).year, date.fromordinal(target).year + 1):
            days_off = _weekday_holidays(nation, year)
            remaining += bisect_right(days_off, target) - bisect_right(days_off, day)
        day = target
    return date.fromordinal(day)


@lru_cache(maxsize=256)
def _weekday_holidays(nation: str, year: int) -> list[int]:
    """The ordinals of ``nation``'s bank holidays of ``year`` that fall Monday to Friday."""
    calendar = _calendar(nation)
    found = calendar.holidays_between(date(year - 1, 12, 31), date(year, 12, 31))
    return [day.toordinal() for day, _ in found]


def _lead_due(rule: ClockRule, before: date, calendar: Calendar) -> date:
    """A ``lead`` clock's due date: ``limit`` before the day it is due ahead of."""
    return _lead_due_cached(rule.limit, rule.unit, before, calendar.nation)


@lru_cache(maxsize=65536)
def _lead_due_cached(limit: int, unit: str, before: date, nation: str) -> date:
    return due_date(before, -limit, unit, _calendar(nation))


def rule_due(rule: ClockRule, started: date, before: date | None, calendar: Calendar) -> date:
    """The last on-time day of a clock that started on ``started``: ``limit`` after it, or
    for a ``lead`` clock ``limit`` before ``before`` (the start day when nothing says)."""
    if rule.kind == "lead":
        return _lead_due(rule, before if before is not None else started, calendar)
    return _due(rule, started, calendar)


@lru_cache(maxsize=8)
def _calendar(nation: str) -> Calendar:
    return Calendar(nation)


#: A record placed on the timeline: (London day, instant, given order, type, record).
Placed = tuple[date, datetime, int, str, Mapping[str, Any]]


@lru_cache(maxsize=200_000)
def _when(occurred_at: str) -> tuple[datetime, date]:
    """The instant and London day of a stored occurred_at (cached: days repeat a lot)."""
    instant = _instant(occurred_at)
    return instant, instant.astimezone(LONDON).date()


class Timeline:
    """A case's records (not corrections) that happened by a moment, in the order
    :func:`projections.assess.rules.first_match` prefers: day, then instant, then given order;
    also grouped by entry type, so that each clock looks only at the entries it names.

    Sorting once per case is what makes ``clocks`` over tens of thousands of cases fast.
    """

    __slots__ = ("by_type", "items")

    def __init__(self, items: list[Placed]) -> None:
        self.items = items
        self.by_type: dict[str, list[Placed]] = {}
        for item in items:
            self.by_type.setdefault(item[3], []).append(item)

    def of_type(self, kind: str) -> list[Placed]:
        """The entries of one type, in timeline order."""
        return self.by_type.get(kind, [])

    def without(self, record: Mapping[str, Any]) -> Timeline:
        """The same timeline without one record."""
        return Timeline([item for item in self.items if item[4] is not record])


def timeline_of(records: Iterable[Mapping[str, Any]], moment: datetime) -> Timeline:
    """The records (not corrections) that happened by ``moment``, on a :class:`Timeline`."""
    placed: list[Placed] = []
    for index, record in enumerate(records):
        occurred = record.get("occurred_at")
        kind = record.get("type")
        if not isinstance(occurred, str) or not isinstance(kind, str):
            continue
        if kind == "EntryCorrected":
            continue
        instant, day = _when(occurred)
        if instant > moment:
            continue
        placed.append((day, instant, index, kind, record))
    placed.sort()  # (day, instant, index, ...): the index is unique, so no ties
    return Timeline(placed)


def first_on(
    event_match: EventMatch, timeline: Timeline, on_or_after: date | None = None
) -> tuple[Mapping[str, Any], date] | None:
    """The first record on the timeline matching ``event_match``, with the day it counts.

    The same answer as :func:`projections.assess.rules.first_match` (which is used as it is when
    the match measures a date field rather than ``occurred_at``).
    """
    candidates = timeline.of_type(event_match.event)
    if event_match.field is not None:
        records = [item[4] for item in candidates]
        if len(records) == 1 and match(event_match, records[0]):
            day = event_day(event_match, records[0])  # e.g. the one referral's aware_date
            if on_or_after is None or day >= on_or_after:
                return records[0], day
            return None
        found = first_match(event_match, records, on_or_after=on_or_after)
        return (found, event_day(event_match, found)) if found is not None else None
    plain = not event_match.where
    for day, _, _, _, record in candidates:
        if on_or_after is not None and day < on_or_after:
            continue
        if plain or match(event_match, record):
            return record, day
    return None


def _order(found: tuple[Mapping[str, Any], date], timeline: Timeline) -> tuple[Any, ...]:
    placed = _placed(found[0], timeline)
    return (found[1],) if placed is None else (found[1], placed[1], placed[2])


def first_of(
    matches: Sequence[EventMatch], timeline: Timeline, on_or_after: date | None = None
) -> tuple[Mapping[str, Any], date] | None:
    """The first record matching any of ``matches`` (a clock's ``ends``), with its day:
    by day, then instant, then given order, as :func:`first_on` orders one match."""
    if len(matches) == 1:
        return first_on(matches[0], timeline, on_or_after)
    best: tuple[Mapping[str, Any], date] | None = None
    best_key: tuple[Any, ...] | None = None
    for event_match in matches:
        found = first_on(event_match, timeline, on_or_after)
        if found is None:
            continue
        key = _order(found, timeline)
        if best_key is None or key < best_key:
            best, best_key = found, key
    return best


def clock_start(rule: ClockRule, timeline: Timeline) -> tuple[Mapping[str, Any], date] | None:
    """Where a clock starts on ``timeline``: its first ``start`` entry (for the lead
    clock of a final report, the report sent: a case published with no report recorded as
    sent, as every case recorded before the entry existed was, shows no such clock rather
    than one overdue for ever)."""
    return first_on(rule.start, timeline)


def due_before(rule: ClockRule, timeline: Timeline) -> date | None:
    """For a ``lead`` clock, the day it is due ahead of: the day of the first of its
    ``before`` matches found on ``timeline`` (the publication once it happened, else the
    publication planned); None for other clocks or when none is found."""
    if rule.kind != "lead":
        return None
    for event_match in rule.before:
        found = first_on(event_match, timeline)
        if found is not None:
            return found[1]
    return None


def clock_marks(rule: ClockRule, timeline: Timeline, started: date) -> tuple[ClockMark, ...]:
    """The clock's ``marks`` on ``timeline``: for each, the first matching entry on or after
    the start day, else the first before it (a rapid review decided before its
    notification still shows the day it was decided)."""
    if not rule.marks:
        return ()
    out = []
    for mark in rule.marks:
        found = first_on(mark.match, timeline, on_or_after=started) or first_on(
            mark.match, timeline
        )
        if found is not None:
            out.append(ClockMark(mark.label, found[1], record_ref(found[0])))
    return tuple(out)


_VERSIONS: dict[int, tuple[RulePack, Mapping[str, tuple[ClockRule, ...]]]] = {}


def _versions(pack: RulePack) -> Mapping[str, tuple[ClockRule, ...]]:
    """:meth:`RulePack.versions` of every name of ``pack``, computed once per pack."""
    held = _VERSIONS.get(id(pack))
    if held is None or held[0] is not pack:
        held = (pack, {name: pack.versions(name) for name in pack.names})
        _VERSIONS[id(pack)] = held
    return held[1]


def rule_for(
    pack: RulePack, name: str, timeline: Timeline
) -> tuple[ClockRule, tuple[Mapping[str, Any], date] | None]:
    """The rule of clock ``name`` that judges this case, with where the clock starts.

    The rule in force on the clock's start day (:meth:`RulePack.in_force`), so that a rule
    changed later never re-judges a case that started before; each version's own start
    description finds its start day.  A pack with one rule per name uses it as it is.
    When no rule is in force on the start day the clock does not apply: the latest rule
    is returned with no start (not started)."""
    versions = _versions(pack)[name]
    if len(versions) == 1:
        return versions[0], clock_start(versions[0], timeline)
    for rule in versions:
        start = clock_start(rule, timeline)
        if start is not None and pack.in_force(name, start[1]) is rule:
            return rule, start
    return versions[-1], None


def justification_of(day: date, record: Mapping[str, Any]) -> Justification:
    """The :class:`Justification` a justifying record gives (it happened on ``day``)."""
    reason = record.get("reason")
    approved = record.get("approved_by")
    recorded = record.get("recorded_at")
    return Justification(
        ref=record_ref(record),
        type=str(record.get("type")),
        occurred_on=day,
        reason=str(reason) if reason is not None else None,
        approved_by=str(approved) if approved is not None else None,
        expected_by=_as_date(record.get("expected_by")),
        recorded_at=str(recorded) if recorded is not None else None,
    )


def justifying(rule: ClockRule, timeline: Timeline) -> list[Justification]:
    """Every entry that could justify the clock, in timeline order."""
    found = [item for kind in rule.justifiable_by for item in timeline.of_type(kind)]
    if len(rule.justifiable_by) > 1:
        found.sort(key=lambda item: (item[0], item[1], item[2]))
    return [justification_of(item[0], item[4]) for item in found]


def judge_delays(
    delays: Sequence[Justification], last_day: date
) -> tuple[Justification | None, tuple[str, ...], tuple[Justification, ...]]:
    """Of a clock's justifying entries (timeline order), those that count up to
    ``last_day`` (its end, or the ``--on`` day while it runs): the latest counting one,
    the refs of all counting ones, and those dated in time but recorded after
    ``last_day`` (listed, not counted)."""
    dated = [d for d in delays if d.occurred_on <= last_day]
    counted = [d for d in dated if d.recorded_by(last_day)]
    late = tuple(d for d in dated if not d.recorded_by(last_day))
    latest = counted[-1] if counted else None
    return latest, tuple(d.ref for d in counted), late


def status_on(ended: date | None, due: date, on: date, *, withdrawn: bool = False) -> ClockStatus:
    """A started clock's status on ``on``: withdrawn when stood down (``ended`` is then
    the day it was), met or late when it ended (``ended``, an end on or before ``on``),
    otherwise running until due and overdue after."""
    if ended is not None:
        if withdrawn:
            return "withdrawn"
        return "met" if ended <= due else "late"
    return "running" if on <= due else "overdue"


def _placed(record: Mapping[str, Any], timeline: Timeline) -> Placed | None:
    for item in timeline.of_type(str(record.get("type"))):
        if item[4] is record:
            return item
    return None


def clock_end(
    rule: ClockRule, timeline: Timeline, start: tuple[Mapping[str, Any], date]
) -> tuple[Mapping[str, Any], date, str] | None:
    """How a started clock ends on the whole ``timeline``: (record, day, kind), kind
    ``end`` (the first of its ``ends`` entries on or after the start day), ``early`` (an
    end entry before its start, when the rule has
    ``early_end``: the clock is met on its start day, which is the day returned) or
    ``withdrawn`` (its ``withdrawn_by`` entry came after the start and before any end,
    and no entry matching its start came after that to put it back: a review stood down
    and then decided on again runs on from its first start, never restarted).
    None while it runs."""
    start_record, started = start
    ends = rule.ends
    if rule.early_end is not None:
        first = first_of(ends, timeline)
        if first is not None and first[1] < started:
            return first[0], started, "early"
    end = first_of(ends, timeline, on_or_after=started)
    withdrawn_by = rule.withdrawn_by
    if withdrawn_by is not None:
        begun = _placed(start_record, timeline)
        placed_end = _placed(end[0], timeline) if end is not None else None
        kinds = dict.fromkeys((withdrawn_by.event, rule.start.event))
        steps = sorted(
            (item for kind in kinds for item in timeline.of_type(kind)),
            key=lambda item: item[:3],
        )
        standing: Placed | None = None
        for item in steps:
            if begun is not None and item[:3] <= begun[:3]:
                continue
            if placed_end is not None and placed_end[:3] <= item[:3]:
                break
            if match(withdrawn_by, item[4]):
                standing = standing or item
            elif rule.start.field is None and match(rule.start, item[4]):
                standing = None  # decided on again: the clock runs on
        if standing is not None:
            return standing[4], standing[0], "withdrawn"
    return (end[0], end[1], "end") if end is not None else None


def _clock_state(
    case: str,
    regime: str,
    rule: ClockRule,
    timeline: Timeline,
    on: date,
    calendar: Calendar,
    start: tuple[Mapping[str, Any], date] | None,
) -> ClockState:
    if start is None or start[1] > on:
        return ClockState(case, regime, rule, on, "not-started")
    start_record, started = start
    before = due_before(rule, timeline)
    due = rule_due(rule, started, before, calendar)
    end = clock_end(rule, timeline, start)
    if end is not None and end[1] > on:
        end = None
    ended = end[1] if end is not None else None
    kind = end[2] if end is not None else None
    status = status_on(ended, due, on, withdrawn=kind == "withdrawn")
    delay: Justification | None = None
    delay_refs: tuple[str, ...] = ()
    late: tuple[Justification, ...] = ()
    if rule.justifiable_by:
        delay, delay_refs, late = judge_delays(
            justifying(rule, timeline), ended if ended is not None else on
        )
    return ClockState(
        case=case,
        regime=regime,
        rule=rule,
        on=on,
        status=status,
        started=started,
        start_ref=record_ref(start_record),
        due=due,
        ended=ended,
        end_ref=record_ref(end[0]) if end is not None else None,
        delay=delay,
        delay_refs=delay_refs,
        flags=(rule.early_end,) if kind == "early" and rule.early_end is not None else (),
        late_delays=late,
        marks=clock_marks(rule, timeline, started),
        due_before=before,
    )


def clock_state(
    case: str,
    regime: str,
    rule: ClockRule,
    records: Iterable[Mapping[str, Any]],
    on: date | datetime,
    calendar: Calendar,
) -> ClockState:
    """One clock of a case on ``on``, from its records with corrections applied
    (entries that happened after ``on`` are ignored)."""
    moment, day = _on_moment(on)
    timeline = timeline_of(records, moment)
    return _clock_state(case, regime, rule, timeline, day, calendar, clock_start(rule, timeline))


def clock_states(
    case: str,
    regime: str,
    records: Iterable[Mapping[str, Any]],
    on: date | datetime,
    *,
    calendar: Calendar | None = None,
    pack: RulePack | None = None,
    include_not_started: bool = False,
) -> list[ClockState]:
    """Every clock of the case's regime on ``on``, in the rule pack's order, each judged
    by its rule in force on the clock's start day (:func:`rule_for`).

    ``records`` are the case's entries with corrections already applied (a view's
    bodies, or the index's milestone rows as records: ``type``, ``occurred_at``, ``seq``,
    ``case`` and the fields the rules read).  Entries that happened after ``on`` (a
    datetime, or a date meaning the end of that day in Europe/London) are ignored, so the
    answer is right whether or not the caller filtered them out already.
    """
    moment, day = _on_moment(on)
    chosen = pack if pack is not None else rule_pack(regime)
    cal = calendar if calendar is not None else chosen.working_calendar()
    timeline = timeline_of(records, moment)
    states = []
    for name in chosen.names:
        rule, start = rule_for(chosen, name, timeline)
        states.append(_clock_state(case, regime, rule, timeline, day, cal, start))
    if include_not_started:
        return states
    return [s for s in states if s.status != "not-started"]


def view_records(view: CaseView) -> list[Mapping[str, Any]]:
    """A folded case's entries as records (corrections applied, corrections left out)."""
    return [e.body for e in view.entries if e.type != "EntryCorrected"]


def case_clocks(
    records_or_view: CaseView | Iterable[Mapping[str, Any]],
    on: date | datetime,
    *,
    as_of: datetime | None = None,
    include_not_started: bool = False,
) -> list[ClockState]:
    """The clocks of one case on ``on``.

    Give a :class:`CaseView` (already folded as of T and on D), or the case's stored
    records, which are folded here (``as_of`` then ``on``, corrections applied) with
    :func:`projections.fold.case_view.fold`.  An empty list when the case is not in the view.
    """
    if isinstance(records_or_view, CaseView):
        view: CaseView | None = records_or_view
    else:
        moment, _ = _on_moment(on)
        view = fold(list(records_or_view), as_of_time=as_of, on_time=moment)
    if view is None:
        return []
    return clock_states(
        view.case,
        view.regime,
        view_records(view),
        on,
        include_not_started=include_not_started,
    )


def overdue_clocks(
    records_or_view: CaseView | Iterable[Mapping[str, Any]],
    on: date | datetime,
    *,
    as_of: datetime | None = None,
) -> list[str]:
    """The names of the case's clocks that are overdue on ``on`` (for ``status``).

    Only running clocks past due are listed: a clock that ended late is history
    (``clocks`` shows it as ``late``), not something overdue now.
    """
    return [s.clock for s in case_clocks(records_or_view, on, as_of=as_of) if s.status == "overdue"]


def next_deadline(
    records_or_view: CaseView | Iterable[Mapping[str, Any]],
    on: date | datetime,
    *,
    as_of: datetime | None = None,
) -> dict[str, Any] | None:
    """The running clock due soonest on ``on`` (for ``status``), or None.

    ``{"clock", "title", "due", "days_left", "started"}``; overdue clocks are not
    deadlines to come (``overdue_clocks`` lists them).  Ties go to the pack's order.
    """
    return deadline_of(case_clocks(records_or_view, on, as_of=as_of))


def clocks_from_records(
    records: Iterable[Mapping[str, Any]],
    on: datetime | None = None,
    as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    """One case's clocks as JSON-ready dicts from its stored records (``None``: now)."""
    moment = on if on is not None else datetime.now(LONDON)
    return [s.as_dict() for s in case_clocks(records, moment, as_of=as_of)]


# --- agency replies -----------------------------------------------------------------


def requests_on(
    open_requests: Iterable[Mapping[str, Any]], regime: str, on: date | datetime
) -> list[dict[str, Any]]:
    """Open information requests as ``status`` prints them on ``on``: each also carries
    ``overdue`` and ``days_overdue``.

    ``days_overdue`` counts the working days (the regime's calendar) after the ``due``
    day up to the ``on`` day; a request is ``overdue`` once at least one has passed (a
    reply due on a Friday is overdue on Monday, not on Saturday).  A request without a
    ``due`` date is never overdue.  The fold and the index give their open requests
    through this one function, so both say the same.
    """
    if isinstance(open_requests, Sequence) and not open_requests:
        return []  # most cases have none: no calendar to find (10,000 cases: 20 ms)
    _, day = _on_moment(on)
    nation = rule_pack(regime).calendar if regime in REGIMES else "england-and-wales"
    calendar = _calendar(nation)
    out = []
    for request in open_requests:
        due = _as_date(request.get("due"))
        late = calendar.working_days_between(due, day) if due is not None else 0
        out.append({**request, "overdue": late > 0, "days_overdue": late})
    return out


# --- every case, from the cross-case index --------------------------------------------


def clock_event_types(packs: Iterable[RulePack] | None = None) -> tuple[str, ...]:
    """Every entry type the packs' clocks read: starts, ends and justifying entries."""
    chosen = list(packs) if packs is not None else list(all_rule_packs().values())
    types: dict[str, None] = {"CaseReferred": None}
    for pack in chosen:
        for rule in pack.clocks:
            for event_match in _matches(rule):
                types[event_match.event] = None
            for kind in rule.justifiable_by:
                types[kind] = None
    return tuple(types)


def _matches(rule: ClockRule) -> list[EventMatch]:
    """Every entry description a rule reads: start, ends, before, marks, withdrawn_by."""
    found = [rule.start, *rule.ends, *rule.before, *(m.match for m in rule.marks)]
    if rule.withdrawn_by is not None:
        found.append(rule.withdrawn_by)
    return found


def _match_fields(rule: ClockRule) -> list[tuple[str, str]]:
    fields = []
    for event_match in _matches(rule):
        if event_match.field is not None:
            fields.append((event_match.event, event_match.field))
        fields.extend((event_match.event, c.field) for c in event_match.where)
    fields.extend(
        (kind, name)
        for kind in rule.justifiable_by
        for name in DELAY_FIELDS_OF.get(kind, ())  # NotificationDeferred has no expected_by
    )
    return fields
