"""Each case's clocks, kept in the cross-case index, so ``status`` and ``clocks`` over every
case read one row per case instead of computing every clock from the milestones.

What a clock is on day D depends on D only through comparisons: once every entry that
feeds a case's clocks has happened (its latest ``occurred_at`` instant, ``until``, is at
or before the query's moment), the clock's start, end and justifying entries are fixed,
and its state on D follows from them (:func:`state_from_facts`):

* not started when it has no start, or the start day is after D;
* met / late when it ended on or before D (by its due date, computed now from the rule
  and the calendar, so a new bank holiday is never stale); withdrawn when what ended it
  was its ``withdrawn_by`` entry; met on its start day, flagged, when its end came before
  its start (``early_end``);
* otherwise running, or overdue once D is past due;
* justified by the justifying entries dated and *recorded* on or before the end, or D
  while it runs (those dated in time but recorded later are listed, not counted).

:func:`case_clock_facts` derives those facts from a case's records with the same
functions :mod:`projections.assess.clocks` uses (:func:`~projections.assess.clocks.first_on` on a
:class:`~projections.assess.clocks.Timeline`), and the tests check, for random histories and
days, that the state from the facts equals the state computed from the records.

The facts are kept in the ``case_clocks`` table, one row per case, labelled with the
``case_index.last_position`` they were derived at and a fingerprint of the rule packs
(:func:`rules_fingerprint`).  Entries are immutable, so the facts at a position never
change: a row is current exactly when its label equals the case's position and the
fingerprint is today's.  Rows are brought up to date by :meth:`CaseIndex.clock_facts
<projections.index.case_index.CaseIndex.clock_facts>` (and at the end of ``reindex``), never in the
catch-up's own transaction: a batch's rows and tracking position are written exactly as
before, and a crash between the two leaves only rows to derive again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, Final, NamedTuple

from projections.assess.calendar import Calendar
from projections.assess.clocks import (
    ClockMark,
    ClockState,
    ClockSummary,
    Justification,
    _due_cached,
    _iso,
    clock_end,
    clock_marks,
    due_before,
    judge_delays,
    justifying,
    record_ref,
    rule_due,
    rule_for,
    status_on,
    timeline_of,
)
from projections.assess.rules import (
    REGIMES,
    ClockRule,
    RulePack,
    all_rule_packs,
    local_rules,
    rule_in_force,
    rule_pack,
)
from projections.fold.when import format_instant

__all__ = [
    "FACTS_VERSION",
    "CaseClockFacts",
    "ClockFacts",
    "DelayFact",
    "case_clock_facts",
    "rules_fingerprint",
    "state_from_facts",
    "summary_from_facts",
    "summary_from_spans",
]

FACTS_VERSION: Final = 3
"""Bumped when the facts' layout or derivation changes: every stored row is then stale."""

_END_OF_TIME: Final = datetime.max.replace(tzinfo=UTC)


def rules_fingerprint() -> str:
    """A digest of what the facts depend on in the rule packs in use: each clock's name,
    start, end, justifying entry types and effective dates (limits, titles and calendars
    are applied when a state is read, so changing them needs no recomputation), and the
    SHA-256 of a local override file when one is in use, so that facts derived under a
    user's override are never labelled, kept or read as the shipped packs' facts."""
    local = local_rules()
    return _fingerprint(local.sha256 if local is not None else None)


@cache
def _fingerprint(override_sha256: str | None) -> str:
    """:func:`rules_fingerprint` for the shipped packs (None) or an override's hash."""
    digest = hashlib.sha256(f"case_clocks v{FACTS_VERSION}".encode())
    for regime, pack in all_rule_packs().items():
        for rule in pack.clocks:
            digest.update(
                repr(
                    (
                        regime,
                        rule.name,
                        rule.start,
                        rule.end,
                        rule.justifiable_by,
                        rule.early_end,
                        rule.withdrawn_by,
                        rule.also_ends,
                        rule.marks,
                        rule.kind,
                        rule.before,
                        rule.effective_from,
                        rule.effective_to,
                    )
                ).encode()
            )
    if override_sha256 is not None:
        digest.update(f"local rules {override_sha256}".encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class DelayFact:
    """A justifying entry (``DecisionDelayed``) of a clock, as the facts keep it."""

    day: date
    ref: str
    type: str
    reason: str | None
    approved_by: str | None
    expected_by: date | None
    recorded_at: str | None = None

    @staticmethod
    def of(found: Justification) -> DelayFact:
        """The fact a :class:`~projections.assess.clocks.Justification` is kept as."""
        return DelayFact(
            day=found.occurred_on,
            ref=found.ref,
            type=found.type,
            reason=found.reason,
            approved_by=found.approved_by,
            expected_by=found.expected_by,
            recorded_at=found.recorded_at,
        )

    def justification(self) -> Justification:
        """The :class:`~projections.assess.clocks.Justification` it gives."""
        return Justification(
            ref=self.ref,
            type=self.type,
            occurred_on=self.day,
            reason=self.reason,
            approved_by=self.approved_by,
            expected_by=self.expected_by,
            recorded_at=self.recorded_at,
        )


#: The ``mark`` of a clock's span: how it ended, besides by its end entry.
_MARKS: Final = {"withdrawn": "w", "early": "e"}


class ClockFacts(NamedTuple):
    """One started clock: its start, its end (None while it has none) and every entry
    that could justify it, in timeline order."""

    clock: str
    started: date
    start_ref: str
    ended: date | None
    end_ref: str | None
    delays: tuple[DelayFact, ...] = ()
    how: str = "end"
    """What ended it: ``end`` (its end entry, or nothing yet), ``withdrawn`` or ``early``
    (see :func:`projections.assess.clocks.clock_end`)."""
    due_before: date | None = None
    """A ``lead`` clock's day it is due ahead of (:func:`~projections.assess.clocks.due_before`)."""
    marks: tuple[ClockMark, ...] = ()
    """The rule's ``marks`` found (:func:`~projections.assess.clocks.clock_marks`)."""

    def span(self) -> str:
        """``clock,started,start_ref,ended,end_ref,how,due_before,marks`` (ended and
        end_ref empty while it runs; how ``w`` withdrawn, ``e`` ended before its start,
        else empty; due_before empty but for a lead clock; marks ``label=day=ref`` joined
        by ``|``, empty when none)."""
        if "," in self.clock or ";" in self.clock:
            raise ValueError(f"a clock name cannot hold ',' or ';': {self.clock!r}")
        for mark in self.marks:
            if any(c in mark.label for c in ",;=|"):
                raise ValueError(f"a mark label cannot hold ',', ';', '=' or '|': {mark.label!r}")
        marks = "|".join(f"{m.label}={m.day.isoformat()}={m.ref}" for m in self.marks)
        return (
            f"{self.clock},{self.started.isoformat()},{self.start_ref},"
            f"{_iso(self.ended) or ''},{self.end_ref or ''},{_MARKS.get(self.how, '')},"
            f"{_iso(self.due_before) or ''},{marks}"
        )

    def delays_json(self) -> list[list[Any]]:
        """``[[day, ref, type, reason, approved_by, expected_by, recorded_at], ...]``."""
        return [
            [
                d.day.isoformat(),
                d.ref,
                d.type,
                d.reason,
                d.approved_by,
                _iso(d.expected_by),
                d.recorded_at,
            ]
            for d in self.delays
        ]


def _delay_facts(items: Sequence[Sequence[Any]]) -> tuple[DelayFact, ...]:
    return tuple(
        DelayFact(
            day=date.fromisoformat(day),
            ref=ref,
            type=kind,
            reason=reason,
            approved_by=approved_by,
            expected_by=date.fromisoformat(expected) if expected is not None else None,
            recorded_at=recorded,
        )
        for day, ref, kind, reason, approved_by, expected, recorded in items
    )


def _how(mark: str) -> str:
    return {v: k for k, v in _MARKS.items()}.get(mark, "end")


def _marks_of(text: str) -> tuple[ClockMark, ...]:
    """The marks of a span's last part (``label=day=ref|...``)."""
    if not text:
        return ()
    out = []
    for item in text.split("|"):
        label, day, ref = item.split("=", 2)
        out.append(ClockMark(label, date.fromisoformat(day), ref))
    return tuple(out)


def _spans(text: str) -> dict[str, list[str]]:
    """The ``spans`` column split: clock name -> [clock, started, start_ref, ended,
    end_ref, how, due_before, marks] (empty strings for none)."""
    if not text:
        return {}
    out = {}
    for span in text.split(";"):
        parts = span.split(",")
        out[parts[0]] = parts
    return out


def _clock_facts(span: Sequence[str], delays: Sequence[Sequence[Any]]) -> ClockFacts:
    """One started clock's facts from its part of ``spans`` (split) and its ``delays``."""
    name, started, start_ref, ended, end_ref, how, before, marks = span
    return ClockFacts(
        name,
        date.fromisoformat(started),
        start_ref,
        date.fromisoformat(ended) if ended else None,
        end_ref or None,
        _delay_facts(delays),
        _how(how),
        date.fromisoformat(before) if before else None,
        _marks_of(marks),
    )


class CaseClockFacts:
    """A case's clock facts, labelled with the index state they were derived at.

    Kept in the two columns they are stored in: ``spans`` (each started clock's start
    and end days and references, as text that is cheap to read) and ``delays`` (the
    justifying entries, JSON, None when there are none); :attr:`clocks` gives them whole.
    """

    __slots__ = (
        "_clocks",
        "case",
        "delays",
        "last_recorded_at",
        "position",
        "regime",
        "spans",
        "until",
    )

    def __init__(
        self,
        case: str,
        regime: str,
        position: int,
        last_recorded_at: str,
        until: str | None,
        spans: str,
        delays: Mapping[str, Sequence[Sequence[Any]]] | None = None,
    ) -> None:
        self.case = case
        self.regime = regime
        self.position = position
        """``case_index.last_position`` of the case when derived."""
        self.last_recorded_at = last_recorded_at
        """``case_index.last_recorded_at`` then: the facts hold as of any T at or after it."""
        self.until = until
        """The latest ``occurred_at`` instant (``recorded_at`` form) of the entries the
        facts were derived from: they hold on any moment at or after it."""
        self.spans = spans
        """The ``spans`` column: :meth:`ClockFacts.span` of each started clock, by ``;``."""
        self.delays = delays or None
        """The ``delays`` column: clock name -> :meth:`ClockFacts.delays_json`."""
        self._clocks: dict[str, ClockFacts] | None = None

    @staticmethod
    def of(
        case: str,
        regime: str,
        position: int,
        last_recorded_at: str,
        until: str | None,
        clocks: Iterable[ClockFacts],
    ) -> CaseClockFacts:
        """The facts of the given clocks, in their stored form."""
        listed = list(clocks)
        delays = {c.clock: c.delays_json() for c in listed if c.delays}
        return CaseClockFacts(
            case,
            regime,
            position,
            last_recorded_at,
            until,
            ";".join(c.span() for c in listed),
            delays,
        )

    @property
    def clocks(self) -> Mapping[str, ClockFacts]:
        """The started clocks, by name."""
        if self._clocks is None:
            delays = self.delays or {}
            self._clocks = {
                name: _clock_facts(span, delays.get(name, ()))
                for name, span in _spans(self.spans).items()
            }
        return self._clocks

    def holds(self, moment: str, as_of: str | None = None) -> bool:
        """Whether the facts answer for ``moment`` (``--on``) as of ``as_of``, both in the
        ``recorded_at`` form (:func:`projections.fold.when.format_instant`)."""
        if self.until is not None and moment < self.until:
            return False
        return as_of is None or self.last_recorded_at <= as_of


def case_clock_facts(
    case: str,
    regime: str,
    records: Iterable[Mapping[str, Any]],
    *,
    position: int = 0,
    last_recorded_at: str = "",
) -> CaseClockFacts:
    """The facts of a case's clocks from its records (corrections applied, as
    :func:`projections.assess.clocks.clock_states` takes them), every entry counted."""
    timeline = timeline_of(records, _END_OF_TIME)
    until = format_instant(max(item[1] for item in timeline.items)) if timeline.items else None
    clocks: list[ClockFacts] = []
    if regime in REGIMES:
        pack = rule_pack(regime)
        for name in pack.names:
            rule, start = rule_for(pack, name, timeline)
            if start is None:
                continue
            start_record, started = start
            end = clock_end(rule, timeline, start)
            delays = tuple(DelayFact.of(d) for d in justifying(rule, timeline))
            clocks.append(
                ClockFacts(
                    clock=rule.name,
                    started=started,
                    start_ref=record_ref(start_record),
                    ended=end[1] if end is not None else None,
                    end_ref=record_ref(end[0]) if end is not None else None,
                    delays=delays,
                    how=end[2] if end is not None else "end",
                    due_before=due_before(rule, timeline),
                    marks=clock_marks(rule, timeline, started),
                )
            )
    return CaseClockFacts.of(case, regime, position, last_recorded_at, until, clocks)


def state_from_facts(
    case: str,
    regime: str,
    rule: ClockRule,
    facts: ClockFacts | None,
    on: date,
    calendar: Calendar,
) -> ClockState:
    """The clock on day ``on`` from its facts (None: it never started).

    Equal to :func:`projections.assess.clocks.clock_state` on the records the facts came from,
    for any ``on`` at or after the facts' ``until``.
    """
    if facts is None or facts.started > on:
        return ClockState(case, regime, rule, on, "not-started")
    due = rule_due(rule, facts.started, facts.due_before, calendar)
    ended = facts.ended if facts.ended is not None and facts.ended <= on else None
    how = facts.how if ended is not None else "end"
    status = status_on(ended, due, on, withdrawn=how == "withdrawn")
    delay = None
    refs: tuple[str, ...] = ()
    late: tuple[Justification, ...] = ()
    if facts.delays:
        delay, refs, late = judge_delays(
            [d.justification() for d in facts.delays], ended if ended is not None else on
        )
    return ClockState(
        case=case,
        regime=regime,
        rule=rule,
        on=on,
        status=status,
        started=facts.started,
        start_ref=facts.start_ref,
        due=due,
        ended=ended,
        end_ref=facts.end_ref if ended is not None else None,
        delay=delay,
        delay_refs=refs,
        flags=(rule.early_end,) if how == "early" and rule.early_end is not None else (),
        late_delays=late,
        marks=facts.marks,
        due_before=facts.due_before,
    )


class _PackPlan:
    """What :func:`states_from_facts` looks up in one rule pack, found once: its clock
    names, each clock's current rule, and per clock and start day the rule in force and
    the due date (every clock of every case is 28,000 at the benchmark store, started
    on a few thousand days; the pack's own look-ups sort its rules at each call)."""

    __slots__ = ("by_start", "current", "names", "pack", "versions")

    def __init__(self, pack: RulePack) -> None:
        self.pack = pack
        self.names = pack.names
        self.current = {name: pack.current(name) for name in self.names}
        self.versions = {name: pack.versions(name) for name in self.names}
        self.by_start: dict[tuple[str, str], tuple[ClockRule | None, date, date | None]] = {}

    def started(self, name: str, begun: str) -> tuple[ClockRule | None, date, date | None]:
        """The rule of clock ``name`` in force on the ISO day ``begun``, that day, and the
        due date of a clock started then (None for a ``lead`` clock, due ahead of a day)."""
        key = (name, begun)
        found = self.by_start.get(key)
        if found is None:
            started = date.fromisoformat(begun)
            rule = rule_in_force(self.versions[name], started) if name in self.versions else None
            due = None
            if rule is not None and rule.kind != "lead":
                due = _due_cached(rule.limit, rule.unit, started, self.pack.calendar)
            if len(self.by_start) >= _MOST_STARTS:
                self.by_start.clear()
            found = self.by_start[key] = (rule, started, due)
        return found


#: The most (clock, start day) pairs a :class:`_PackPlan` keeps (then it starts again).
_MOST_STARTS: Final = 100_000

#: The plans of the packs met, by the pack's id, each holding its pack (so an id reused
#: by another pack, a local rules file's, is never answered with this one's plan).
_PLANS: dict[int, _PackPlan] = {}


def _plan(pack: RulePack) -> _PackPlan:
    plan = _PLANS.get(id(pack))
    if plan is None or plan.pack is not pack:
        if len(_PLANS) >= 64:
            _PLANS.clear()
        plan = _PLANS[id(pack)] = _PackPlan(pack)
    return plan


def summary_from_facts(facts: CaseClockFacts, on: date) -> ClockSummary | None:
    """What ``status`` shows of the case's clocks on ``on`` (None when none has started)."""
    return summary_from_spans(facts.regime, facts.spans, on)


def summary_from_spans(regime: str, spans: str, on: date) -> ClockSummary | None:
    """What ``status`` shows of a case's clocks on ``on`` from its ``spans`` column
    (:meth:`CaseClockFacts.spans`), None when none has started: the same as
    :func:`projections.assess.clocks.summary_of` of its states, without building them (ISO days
    compare as strings, so the stored days are read as they are)."""
    if not spans or regime not in REGIMES:
        return None
    today = on.isoformat()
    started_on = {name: (span[1], span[3], span[6]) for name, span in _spans(spans).items()}
    plan = _plan(rule_pack(regime))
    overdue: list[str] = []
    soonest: tuple[date, ClockRule, date] | None = None
    started_any = False
    for name in plan.names:
        found = started_on.get(name)
        if found is None or found[0] > today:
            continue
        started_any = True
        if found[1] and found[1] <= today:
            continue
        rule, started, due = plan.started(name, found[0])
        if rule is None:
            continue
        if due is None:  # a lead clock: due ahead of its day
            before = found[2]
            calendar = plan.pack.working_calendar()
            due = rule_due(rule, started, date.fromisoformat(before) if before else None, calendar)
        if on > due:
            overdue.append(rule.name)
        elif soonest is None or due < soonest[0]:
            soonest = (due, rule, started)
    if not started_any:
        return None
    deadline = None
    if soonest is not None:
        due, rule, started = soonest
        deadline = {
            "clock": rule.name,
            "title": rule.title,
            "due": due.isoformat(),
            "days_left": (due - on).days,
            "started": started.isoformat(),
        }
    return ClockSummary(overdue=tuple(overdue), next_deadline=deadline)
