"""What a statutory clock's answer is on a day: its status (``running``, ``met``, ``late``,
``overdue``, ``withdrawn``, ``not-started``), its state (start, due, end, and the delays that
justify it or were recorded too late to), and the summary of a case's clocks (what is
overdue, the next deadline), as the CLI and the index show them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

from ledger.catalogue.terms import LONDON
from projections.assess.rules import ClockRule

ClockStatus = Literal["not-started", "running", "met", "overdue", "late", "withdrawn"]

#: Every status a clock can have; the CLI shows all but ``not-started``.
STATUSES: Final[tuple[str, ...]] = (
    "not-started",
    "running",
    "met",
    "overdue",
    "late",
    "withdrawn",
)

#: Statuses of a clock that has started.
ACTIVE_STATUSES: Final[tuple[str, ...]] = ("running", "met", "overdue", "late", "withdrawn")


@dataclass(frozen=True, slots=True)
class Justification:
    """A recorded, approved delay (a ``DecisionDelayed``) that explains a clock's lateness."""

    ref: str
    type: str
    occurred_on: date
    reason: str | None
    approved_by: str | None
    expected_by: date | None
    recorded_at: str | None = None
    """When the ledger recorded it (None for a record built by hand)."""

    def as_dict(self) -> dict[str, Any]:
        """``{reason, approved_by, expected_by, ref, type, occurred_on, recorded_at}``."""
        return {
            "reason": self.reason,
            "approved_by": self.approved_by,
            "expected_by": _iso(self.expected_by),
            "ref": self.ref,
            "type": self.type,
            "occurred_on": self.occurred_on.isoformat(),
            "recorded_at": self.recorded_at,
        }

    def recorded_by(self, day: date) -> bool:
        """Whether the ledger recorded it on or before ``day`` (its London day)."""
        return self.recorded_at is None or recorded_day(self.recorded_at) <= day


class ClockMark(NamedTuple):
    """A date shown beside a clock without ending it (the pack's ``marks``): the rapid
    review's ``decided`` day beside the day it was sent."""

    label: str
    day: date
    ref: str


@dataclass(frozen=True, slots=True)
class ClockState:
    """One clock of one case on one day."""

    case: str
    regime: str
    rule: ClockRule
    on: date
    """The day the clock is measured on (``--on``)."""
    status: ClockStatus
    started: date | None = None
    start_ref: str | None = None
    due: date | None = None
    ended: date | None = None
    end_ref: str | None = None
    delay: Justification | None = None
    """The latest justifying entry within the clock's period, whatever the status."""
    delay_refs: tuple[str, ...] = ()
    """Every justifying entry within the clock's period, in timeline order."""
    flags: tuple[str, ...] = ()
    """The clock's flags (:data:`projections.assess.rules.CLOCK_FLAGS`)."""
    late_delays: tuple[Justification, ...] = ()
    """Justifying entries dated within the period but recorded after it ended (or after
    the ``--on`` day while it runs): listed, never counted."""
    marks: tuple[ClockMark, ...] = ()
    """The pack's ``marks`` found by the ``--on`` day (``decided`` beside ``sent``)."""
    due_before: date | None = None
    """For a ``lead`` clock: the day it is due ahead of (the publication, else the
    publication planned); ``due`` is ``limit`` before it, and may precede ``started``."""

    @property
    def clock(self) -> str:
        """The clock's name (``notification``, ``rapid_review`` ...)."""
        return self.rule.name

    @property
    def justified(self) -> bool:
        """True when the clock is late or overdue and an approved delay explains it."""
        return self.status in ("late", "overdue") and self.delay is not None

    @property
    def not_justified_reason(self) -> str | None:
        """Why a late or overdue clock is not justified though a delay is on record: the
        delay was recorded only after the clock ended (the decision) or the ``--on`` day."""
        if self.justified or self.status not in ("late", "overdue") or not self.late_delays:
            return None
        if self.ended is None:
            after, day = f"the day asked about ({self.on})", self.on
        elif self.rule.end.event == "DecisionMade":
            after, day = "the decision", self.ended
        else:  # e.g. a rapid review, which ends when it is sent to the panel
            after, day = f"the {self.rule.words} ended", self.ended
        told = "; ".join(
            f"{d.ref} was recorded on {recorded_day(d.recorded_at)}"
            for d in self.late_delays
            if d.recorded_at is not None
        )
        return f"delay recorded after {after}: {told}, after {day}"

    @property
    def days_over(self) -> int | None:
        """Calendar days past due: to the end (late) or to the ``--on`` day (overdue)."""
        if self.due is None:
            return None
        if self.status == "late" and self.ended is not None:
            return (self.ended - self.due).days
        if self.status == "overdue":
            return (self.on - self.due).days
        return None

    @property
    def days_left(self) -> int | None:
        """Calendar days from the ``--on`` day to due, for a running clock."""
        if self.status == "running" and self.due is not None:
            return (self.due - self.on).days
        return None

    @property
    def beyond_expected(self) -> bool:
        """Whether a justified clock also ran past the delay's expected date."""
        if not self.justified or self.delay is None or self.delay.expected_by is None:
            return False
        last = self.ended if self.ended is not None else self.on
        return last > self.delay.expected_by

    def as_dict(self) -> dict[str, Any]:
        """The JSON ``clocks`` prints: ``cli.md``'s keys first, then extras."""
        rule = self.rule
        if not (self.delay or self.late_delays or self.flags or self.due_before):
            return self._plain_dict(rule)
        return self._full_dict(rule)

    def _full_dict(self, rule: ClockRule) -> dict[str, Any]:
        """:meth:`as_dict` of any clock, every value from its field or property."""
        return {
            "case": self.case,
            "clock": rule.name,
            "started": _iso(self.started),
            "due": _iso(self.due),
            "ended": _iso(self.ended),
            "status": self.status,
            "justified": self.justified,
            "title": rule.title,
            "regime": self.regime,
            "limit": rule.limit,
            "unit": rule.unit,
            "note": rule.note,
            "source": rule.source,
            "start_ref": self.start_ref,
            "end_ref": self.end_ref,
            "on": self.on.isoformat(),
            "days_over": self.days_over,
            "days_left": self.days_left,
            "justifiable": bool(rule.justifiable_by),
            "delay": self.delay.as_dict() if self.delay is not None else None,
            "delay_refs": list(self.delay_refs),
            "beyond_expected": self.beyond_expected,
            "flags": list(self.flags),
            "delays_recorded_late": [d.as_dict() for d in self.late_delays],
            "not_justified_reason": self.not_justified_reason,
            "kind": rule.kind,
            "due_before": _iso(self.due_before),
            "marks": {m.label: m.day.isoformat() for m in self.marks},
            "mark_refs": {m.label: m.ref for m in self.marks},
        }

    def _plain_dict(self, rule: ClockRule) -> dict[str, Any]:
        """:meth:`as_dict` of a clock with no delay, flag or lead day (most clocks: every
        clock of every case is 28,000 at the benchmark store), the same keys and values
        without the properties' calls: it is neither justified nor past an expected date,
        and nothing explains it.  The keys in order and the values of its rule, regime and
        day come from a copy of :func:`_plain_template`; the rest are set."""
        marks = [(m.label, m.day.isoformat(), m.ref) for m in self.marks]
        return plain_row(
            rule,
            self.regime,
            self.on,
            self.case,
            self.status,
            self.started,
            self.due,
            self.ended,
            self.start_ref,
            self.end_ref,
            self.delay_refs,
            marks,
        )


def plain_row(
    rule: ClockRule,
    regime: str,
    on: date,
    case: str,
    status: str,
    started: date | None,
    due: date | None,
    ended: date | None,
    start_ref: str | None,
    end_ref: str | None,
    delay_refs: Sequence[str],
    marks: Sequence[Sequence[str]],
) -> dict[str, Any]:
    """:meth:`ClockState.as_dict` of a clock with no delay, flag or lead day, from its
    values (``marks``: each mark's label, ISO day and entry), for the states and for the
    rows made without them (:mod:`projections.index.clock_answers`) alike."""
    row = _plain_template(rule, regime, on).copy()
    row["case"] = case
    if started is not None:
        row["started"] = started.isoformat()
    if due is not None:
        row["due"] = due.isoformat()
        if status == "overdue":
            row["days_over"] = (on - due).days
        elif status == "late" and ended is not None:
            row["days_over"] = (ended - due).days
        elif status == "running":
            row["days_left"] = (due - on).days
    if ended is not None:
        row["ended"] = ended.isoformat()
    row["status"] = status
    row["start_ref"] = start_ref
    row["end_ref"] = end_ref
    row["delay_refs"] = list(delay_refs)
    row["flags"] = []
    row["delays_recorded_late"] = []
    row["marks"] = {label: day for label, day, _ in marks} if marks else {}
    row["mark_refs"] = {label: ref for label, _, ref in marks} if marks else {}
    return row


def _plain_template(rule: ClockRule, regime: str, on: date) -> dict[str, Any]:
    """The keys of :meth:`ClockState.as_dict` in order, with the values a clock of
    ``rule`` and ``regime`` on ``on`` with no delay, flag or lead day has whatever its
    days (the others None), kept by the rule's identity (a local rules file's rule is
    another object: never given this one's words)."""
    key = (id(rule), regime, on)
    kept = _TEMPLATES.get(key)
    if kept is not None and kept[0] is rule:
        return kept[1]
    template: dict[str, Any] = {
        "case": None,
        "clock": rule.name,
        "started": None,
        "due": None,
        "ended": None,
        "status": None,
        "justified": False,
        "title": rule.title,
        "regime": regime,
        "limit": rule.limit,
        "unit": rule.unit,
        "note": rule.note,
        "source": rule.source,
        "start_ref": None,
        "end_ref": None,
        "on": on.isoformat(),
        "days_over": None,
        "days_left": None,
        "justifiable": bool(rule.justifiable_by),
        "delay": None,
        "delay_refs": None,
        "beyond_expected": False,
        "flags": None,
        "delays_recorded_late": None,
        "not_justified_reason": None,
        "kind": rule.kind,
        "due_before": None,
        "marks": None,
        "mark_refs": None,
    }
    if len(_TEMPLATES) >= 4_096:
        _TEMPLATES.clear()
    _TEMPLATES[key] = (rule, template)
    return template


#: :func:`_plain_template`'s answers, by the rule's id, regime and day, each with its rule.
_TEMPLATES: dict[tuple[int, str, date], tuple[ClockRule, dict[str, Any]]] = {}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


@lru_cache(maxsize=200_000)
def recorded_day(recorded_at: str) -> date:
    """The Europe/London day of a stored ``recorded_at`` (UTC, ``Z`` or an offset)."""
    return datetime.fromisoformat(recorded_at.replace("Z", "+00:00")).astimezone(LONDON).date()


def deadline_of(states: Iterable[ClockState]) -> dict[str, Any] | None:
    """The running clock due soonest among ``states``, as :func:`next_deadline` shows it."""
    running = [s for s in states if s.status == "running" and s.due is not None]
    if not running:
        return None
    soonest = min(running, key=lambda s: s.due or date.max)
    return {
        "clock": soonest.clock,
        "title": soonest.rule.title,
        "due": _iso(soonest.due),
        "days_left": soonest.days_left,
        "started": _iso(soonest.started),
    }


DELAY_FIELDS: Final = ("reason", "approved_by", "expected_by")

#: Which of :data:`DELAY_FIELDS` each entry type has (a type not named has none): written
#: out so that judging clocks imports no pydantic model (a cold ``status``);
#: ``tests/test_clock_index.py`` checks it against the catalogue's models.
DELAY_FIELDS_OF: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "InformationDeclined": ("reason",),
        "NeighbourCheckRequested": ("reason",),
        "DecisionDelayed": ("reason", "approved_by", "expected_by"),
        "ScopeRevised": ("reason",),
        "EntryCorrected": ("reason",),
        "CaseClosed": ("reason",),
        "PublicationDeferred": ("reason", "approved_by", "expected_by"),
        "NotificationDeferred": ("reason", "approved_by"),
        "ResponsibilityTransferred": ("reason",),
    }
)


@dataclass(frozen=True, slots=True)
class ClockSummary:
    """What ``status`` shows about one case's clocks."""

    overdue: tuple[str, ...]
    next_deadline: dict[str, Any] | None


def summary_of(states: Iterable[ClockState]) -> ClockSummary:
    """The overdue clocks and the next deadline among one case's clock states."""
    listed = list(states)
    return ClockSummary(
        overdue=tuple(s.clock for s in listed if s.status == "overdue"),
        next_deadline=deadline_of(listed),
    )
