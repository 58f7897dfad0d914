"""The statutory-clock rule packs: one TOML file of clocks per regime, loaded as data, and
a local override file laid over them.

Each regime's clocks (``shared/domain.md``, "Timescales") live in
``projections/rules/<regime>.toml`` so that a limit or a source can be changed, and cited,
without touching code.  This module loads a pack into frozen dataclasses, rejects anything
it does not understand (unknown keys, units, event types, fields or vocabulary) with a
message naming the file and the place (``clocks[2].end.where.field``), and matches stored
event records against a pack's start and end descriptions.  The shape is checked by the
pydantic v2 models of :mod:`projections.assess.rule_schema` (strict, no unknown key); what
only the catalogue knows (a field exists, is a date or a list, takes a literal value) is
checked here as the dataclasses are built.

Schema of a pack (every key shown; ``note``, ``label``, ``owner``, ``field``, ``where``,
``justifiable_by``, ``early_end``, ``withdrawn_by``, ``marks``, ``kind``, ``before``,
``effective_from``, ``effective_to`` and ``calendar`` are optional)::

    regime = "wt2018"
    title = "Working Together to Safeguard Children 2018"
    calendar = "england-and-wales"          # a projections.assess.calendar.NATIONS key

    [[clocks]]
    name = "rapid_review"                   # one of CLOCK_NAMES
    title = "Rapid review decision"
    label = "rapid review"                  # the clock's name in words, in tables
    owner = "the safeguarding partners"     # who must act before it is due
    end = { event = "DecisionMade" }        # a table, or a list of tables (any ends it)
    limit = 15
    unit = "working_days"                   # one of projections.assess.calendar.UNITS
    note = "normally"                       # qualifies the limit, shown to people
    source = "Working Together 2018, chapter 4, paragraph 19"   # "(check)": to confirm
    effective_from = 2018-06-29             # the first start day this rule judges
    effective_to = 2023-12-14               # the last one (absent: still in force)
    justifiable_by = ["DecisionDelayed"]    # events that can make lateness justified
    early_end = "decided-before-notification"   # an end before the start: met at day 0
    withdrawn_by = { event = "DecisionMade", where = { field = "outcome", equals = "no-review" } }
    marks = [{ label = "decided", event = "DecisionMade" }]   # dates shown, never ending it
    kind = "after"                          # or "lead", with before = {...}: due before it

    [clocks.start]
    event = "IncidentNotified"              # a catalogue event type
    where = { field = "recipients", contains = "national-panel" }

``start``/``end`` name an event type; the day measured is the event's ``occurred_at``
(its Europe/London day) or, with ``field``, that date field of the event.  ``where`` is one
condition or a list of conditions, all of which must hold: ``{field, equals = value}``
(the field's value is exactly ``value``), ``{field, contains = value}`` (the field is a
list holding ``value``) or ``{field, in = [values]}``.  A clock starts at the first
matching start event and ends at the first matching end event on or after the start day.

``label`` is the clock's name in words for tables and sentences ("rapid review"); a pack
without one shows the name with spaces for underscores.  ``--json`` keeps ``name``.
``owner`` says who must act before the clock is due (``caseledger due`` shows it as "from").

``early_end`` names the flag (one of :data:`CLOCK_FLAGS`) of a clock whose end came
*before* its start (a rapid review decided before the notification): such a clock is met
on the day it started, with the flag, instead of running for ever.  ``withdrawn_by``
describes an entry that stands the clock down when it comes after the start and before
the end (a review stood down by a later no-review decision): the clock then ends as
``withdrawn`` on that entry's day.

**Rules that change.**  A pack may hold several rules of one clock, each in force for its
own ``effective_from``..``effective_to`` (two may not overlap); a case's clock is judged by
the rule in force on the clock's start day (:meth:`RulePack.in_force`), so a later rule
never re-judges a case that started before it.

**Local rules.**  An override file (``--rules FILE``, ``CASELEDGER_RULES``) holds
``[[clocks]]`` tables, each a clock as above with its ``regime``; a rule with the regime,
name and ``effective_from`` of a shipped one replaces it, any other adds a version (the
shipped versions it overlaps keep only the days outside it).  :func:`load_local_rules`
validates it with the same models; :func:`judged_with` makes it the rules in use (a
context variable read by :func:`rule_pack` and :func:`all_rule_packs`), and every answer
judged with it discloses the file and its SHA-256 (:meth:`LocalRules.disclosure`).

Why one module: the dataclasses, their matching, the loader and the override are one
contract (what a rule says, how it is read and which rule is in use), read together by
whoever changes a pack; the pydantic models and the vocabulary sit in
:mod:`~projections.assess.rule_schema` and :mod:`~projections.assess.rule_terms` only so
that the schema need not be built before a pack is parsed.
"""

from __future__ import annotations

import datetime as _datetime_module
import hashlib
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, cast, get_args, get_origin

from ledger.catalogue.terms import normalise_occurred_at, occurred_day, occurred_instant
from projections.assess.calendar import Calendar, due_date
from projections.assess.rule_terms import (
    CLOCK_FLAGS,
    CLOCK_KINDS,
    CLOCK_NAMES,
    OPERATORS,
    REGIMES,
    Operator,
    RuleError,
    Scalar,
)

if TYPE_CHECKING:
    from projections.assess.rule_schema import ClockModel, ConditionModel, Matches, MatchModel

__all__ = [
    "CLOCK_FLAGS",
    "CLOCK_KINDS",
    "CLOCK_NAMES",
    "OPERATORS",
    "REGIMES",
    "ClockRule",
    "Condition",
    "EventMatch",
    "LocalRules",
    "Mark",
    "RuleError",
    "RulePack",
    "all_rule_packs",
    "describe",
    "event_day",
    "first_match",
    "judged_with",
    "load_local_rules",
    "load_rule_pack",
    "loads_rule_pack",
    "local_rules",
    "match",
    "overlay",
    "parse_rule_pack",
    "rule_in_force",
    "rule_pack",
    "shipped_rule_pack",
    "shipped_rules_sha256",
    "using_rules",
]

_UNIT_WORDS: Final = {
    "working_days": ("working day", "working days"),
    "calendar_days": ("calendar day", "calendar days"),
    "calendar_months": ("calendar month", "calendar months"),
}
_RECIPIENT_FIELDS: Final = ("recipients", "to")


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on a field of an event: ``equals`` a value, ``contains`` it (a list field),
    or is ``in`` a list of values (``value`` is then a tuple)."""

    field: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]

    def holds(self, record: Mapping[str, Any]) -> bool:
        """Whether the record's field passes this test; a missing field never does."""
        actual = record.get(self.field)
        options = self.value if isinstance(self.value, tuple) else (self.value,)
        if self.op == "contains":
            return isinstance(actual, list | tuple) and any(
                _same(item, options[0]) for item in actual
            )
        return any(_same(actual, option) for option in options)


@dataclass(frozen=True, slots=True)
class EventMatch:
    """Which event starts or ends a clock, and which of its dates is measured.

    ``field`` names a date field of the event (e.g. ``CaseReferred.aware_date``); without
    it the event's ``occurred_at`` day is measured.
    """

    event: str
    field: str | None = None
    where: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Mark:
    """A date shown beside a clock without ending it: the first entry matching ``match`` on
    or after the clock's start (the rapid review's ``decided`` day beside its ``sent`` end)."""

    label: str
    match: EventMatch


@dataclass(frozen=True, slots=True)
class ClockRule:
    """One statutory clock of a regime, as in force from ``effective_from`` (to
    ``effective_to``): where it starts and ends, its limit and source.

    A pack may hold several rules of one name, each in force for its own dates; a case's
    clock uses the one in force on the clock's start day (:meth:`RulePack.in_force`).
    """

    name: str
    title: str
    start: EventMatch
    end: EventMatch
    limit: int
    unit: str
    source: str
    justifiable_by: tuple[str, ...] = ()
    note: str | None = None
    early_end: str | None = None
    """The flag of a clock whose end came before its start (met at day 0), or None: such
    a clock is then not ended by that entry, and runs."""
    withdrawn_by: EventMatch | None = None
    """What stands the clock down (``withdrawn``) after its start and before its end."""
    label: str = ""
    """The clock's name in words for people ("rapid review"); see :attr:`words`."""
    owner: str | None = None
    """Who must act before the clock is due ("the local authority"), when the pack says."""
    also_ends: tuple[EventMatch, ...] = ()
    """Other entries that end the clock as ``end`` does (the first of any of them ends it):
    a TOML ``end`` given as a list of tables is ``end`` (the first) and these."""
    marks: tuple[Mark, ...] = ()
    """Dates shown beside the clock (``decided``), never ending it."""
    kind: str = "after"
    """``after`` (due ``limit`` after the start) or ``lead`` (due ``limit`` before the
    first day of :attr:`before`); see :data:`CLOCK_KINDS`."""
    before: tuple[EventMatch, ...] = ()
    """For a ``lead`` clock: the entries whose day the clock is due ahead of, in order of
    preference (the publication itself, else the publication planned)."""
    effective_from: date | None = None
    """The first start day this rule judges (None: since the regime began)."""
    effective_to: date | None = None
    """The last start day this rule judges (None: still in force)."""

    @property
    def ends(self) -> tuple[EventMatch, ...]:
        """Every description of an entry that ends the clock: ``end`` then ``also_ends``."""
        return (self.end, *self.also_ends)

    def in_force_on(self, day: date) -> bool:
        """Whether this rule judges a clock that started on ``day``."""
        if self.effective_from is not None and day < self.effective_from:
            return False
        return self.effective_to is None or day <= self.effective_to

    @property
    def words(self) -> str:
        """The clock's name for people: the pack's ``label``, or the name with spaces."""
        return self.label or self.name.replace("_", " ")

    @property
    def needs_check(self) -> bool:
        """Whether the source was a local procedure quoting guidance (domain.md's "check")."""
        return "(check)" in self.source

    def due(self, start: date, calendar: Calendar) -> date:
        """The last on-time day of this clock when it started on ``start`` (day 0)."""
        return due_date(start, self.limit, self.unit, calendar)


@dataclass(frozen=True, slots=True)
class RulePack:
    """The clocks of one regime, as loaded from its TOML file."""

    regime: str
    title: str
    calendar: str
    clocks: tuple[ClockRule, ...]
    origin: str = "<string>"

    @property
    def names(self) -> tuple[str, ...]:
        """The clock names, in the file's order (a name once however many rules it has)."""
        return tuple(dict.fromkeys(c.name for c in self.clocks))

    def versions(self, name: str) -> tuple[ClockRule, ...]:
        """Every rule of the clock called ``name``, earliest ``effective_from`` first."""
        found = [rule for rule in self.clocks if rule.name == name]
        return tuple(sorted(found, key=lambda r: r.effective_from or date.min))

    def in_force(self, name: str, day: date) -> ClockRule | None:
        """The rule of clock ``name`` in force on ``day`` (a clock's start day), or None
        when none of its rules judges that day; a day before the earliest rule's
        ``effective_from`` is judged by the earliest rule (a case handled under a regime
        before its first rule was written: transitional)."""
        return rule_in_force(self.versions(name), day)

    def current(self, name: str) -> ClockRule:
        """The latest rule of clock ``name`` (for describing a clock without a start day)."""
        versions = self.versions(name)
        if not versions:
            raise KeyError(f"{self.regime} has no clock {name!r}; it has {', '.join(self.names)}")
        return versions[-1]

    def clock(self, name: str) -> ClockRule:
        """The latest rule of the clock called ``name``; KeyError naming the regime's clocks
        if absent (use :meth:`in_force` to judge a clock that started on a known day)."""
        return self.current(name)

    def rules_on(self, day: date) -> tuple[ClockRule, ...]:
        """The rules in force on ``day``, one per clock name that has one, in pack order."""
        chosen = []
        for name in self.names:
            rule = next((r for r in self.versions(name) if r.in_force_on(day)), None)
            if rule is not None:
                chosen.append(rule)
        return tuple(chosen)

    def working_calendar(self) -> Calendar:
        """The working-day calendar this pack's clocks count in."""
        return Calendar(self.calendar)


def rule_in_force(versions: Sequence[ClockRule], day: date) -> ClockRule | None:
    """:meth:`RulePack.in_force` among one clock's ``versions`` (earliest first), for a
    caller that keeps them rather than sorting the pack's rules at each call."""
    for rule in versions:
        if rule.in_force_on(day):
            return rule
    if versions and versions[0].effective_from is not None and day < versions[0].effective_from:
        return versions[0]
    return None


# --- matching ---------------------------------------------------------------------


def _same(actual: object, expected: Scalar) -> bool:
    """Equality that does not confuse ``True`` with ``1``."""
    return type(actual) is type(expected) and actual == expected


def match(event_match: EventMatch, record: Mapping[str, Any]) -> bool:
    """Whether a stored event record is the kind of event ``event_match`` describes.

    The type must agree, every ``where`` condition must hold and, if a date ``field`` is
    named, the record must carry it (a clock cannot start from a date it does not have).
    """
    if record.get("type") != event_match.event:
        return False
    if event_match.field is not None and record.get(event_match.field) is None:
        return False
    return all(c.holds(record) for c in event_match.where)


def event_day(event_match: EventMatch, record: Mapping[str, Any]) -> date:
    """The day a matching record counts from: its ``field`` date, else its occurred_at day."""
    if event_match.field is not None:
        value = record[event_match.field]
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        return date.fromisoformat(str(value))
    return occurred_day(_stored_occurred_at(record))


def _stored_occurred_at(record: Mapping[str, Any]) -> str:
    """A record's occurred_at in stored form (a naive wire-form time is Europe/London)."""
    return str(normalise_occurred_at(str(record["occurred_at"])))


def first_match(
    event_match: EventMatch,
    records: Iterable[Mapping[str, Any]],
    *,
    on_or_after: date | None = None,
) -> Mapping[str, Any] | None:
    """The first record (by day, then occurred_at instant, then given order) that matches.

    With ``on_or_after``, records whose day is earlier are ignored: a clock's end is the
    first matching event on or after its start, so a revisited decision does not restart
    a clock an earlier decision ended.
    """
    best: Mapping[str, Any] | None = None
    best_key: tuple[date, datetime | None] | None = None
    for record in records:
        if not match(event_match, record):
            continue
        day = event_day(event_match, record)
        if on_or_after is not None and day < on_or_after:
            continue
        has_time = isinstance(record.get("occurred_at"), str)
        instant = occurred_instant(_stored_occurred_at(record)) if has_time else None
        if best_key is None or _earlier((day, instant), best_key):
            best, best_key = record, (day, instant)
    return best


def _earlier(a: tuple[date, datetime | None], b: tuple[date, datetime | None]) -> bool:
    """Whether key ``a`` sorts strictly before ``b`` (a missing instant never breaks a tie)."""
    if a[0] != b[0]:
        return a[0] < b[0]
    if a[1] is None or b[1] is None:
        return False
    return a[1] < b[1]


# --- describing -------------------------------------------------------------------


def _describe_condition(condition: Condition) -> str:
    if condition.op == "contains" and condition.field in _RECIPIENT_FIELDS:
        return f"to {condition.value}"
    if condition.op == "contains":
        return f"with {condition.value} in {condition.field}"
    if isinstance(condition.value, tuple):
        return f"with {condition.field} {' or '.join(map(str, condition.value))}"
    return f"with {condition.field} {condition.value}"


def _describe_match(event_match: EventMatch, *, first: bool) -> str:
    if event_match.field is not None:
        text = f"{event_match.event}.{event_match.field}"
    else:
        text = f"the first {event_match.event}" if first else event_match.event
    if event_match.where:
        text += " " + " and ".join(_describe_condition(c) for c in event_match.where)
    return text


def describe(rule: ClockRule) -> str:
    """One line for people: what starts and ends the clock, its limit and its source."""
    singular, plural = _UNIT_WORDS[rule.unit]
    limit = f"{rule.limit} {singular if rule.limit == 1 else plural}"
    if rule.note:
        limit += f" ({rule.note})"
    if rule.justifiable_by:
        limit += f", lateness justifiable by {', '.join(rule.justifiable_by)}"
    if rule.withdrawn_by is not None:
        limit += f", withdrawn by a later {_describe_match(rule.withdrawn_by, first=False)}"
    if rule.early_end is not None:
        limit += f", met at its start if a {rule.end.event} came before it ({rule.early_end})"
    if rule.marks:
        limit += ", showing " + ", ".join(
            f"{m.label} ({_describe_match(m.match, first=True)})" for m in rule.marks
        )
    ends = " or ".join(_describe_match(m, first=False) for m in rule.ends)
    if rule.kind == "lead":
        ahead = ", else ".join(_describe_match(m, first=True) for m in rule.before)
        return f"{rule.name}: the first {ends}, due {limit} before {ahead} — {rule.source}"
    return (
        f"{rule.name}: from {_describe_match(rule.start, first=True)} "
        f"to the first {ends}, {limit} — {rule.source}"
    )


# --- what only the catalogue knows (after the schema checked the shape) -----------


class _Place:
    """Where in which file a value sits, for error messages."""

    def __init__(self, origin: str, path: str = "") -> None:
        self.origin = origin
        self.path = path

    def __truediv__(self, part: str | int) -> _Place:
        if isinstance(part, int):
            return _Place(self.origin, f"{self.path}[{part}]")
        return _Place(self.origin, f"{self.path}.{part}" if self.path else part)

    def error(self, message: str) -> RuleError:
        where = f"{self.origin}: {self.path}" if self.path else self.origin
        return RuleError(f"{where}: {message}")


def _field_annotation(event: str, field: str, place: _Place) -> object:
    # lazy: the catalogue's models (pydantic, ~60 ms) only when a pack is parsed
    from ledger.catalogue.models import MODELS_BY_TYPE

    fields = MODELS_BY_TYPE[event].model_fields
    if field not in fields:
        raise place.error(f"{event} has no field {field!r}; it has {', '.join(sorted(fields))}")
    return fields[field].annotation


def _flatten(annotation: object) -> list[object]:
    """Every type inside an annotation (through Optional, list, Annotated, ...)."""
    found = [annotation]
    for arg in get_args(annotation):
        found.extend(_flatten(arg))
    return found


def _literal_values(annotation: object) -> set[object] | None:
    """The values a field may take if its annotation is built on Literal, else None."""
    values: set[object] = set()
    literal = False
    for part in _flatten(annotation):
        if get_origin(part) is Literal:
            literal = True
            values.update(get_args(part))
    return values if literal else None


def _is_list(annotation: object) -> bool:
    return any(get_origin(part) in (list, tuple) for part in _flatten(annotation))


def _condition(model: ConditionModel, place: _Place, event: str) -> Condition:
    op = cast(Operator, next(op for op in OPERATORS if model.operand(op) is not None))
    annotation = _field_annotation(event, model.field, place / "field")
    raw = model.operand(op)
    values: list[Scalar] = list(raw) if op == "in" else [raw]
    if op == "contains" and not _is_list(annotation):
        raise place.error(f"contains: {event}.{model.field} is not a list; use equals")
    if op in ("equals", "in") and _is_list(annotation):
        raise place.error(f"{op}: {event}.{model.field} is a list; use contains")
    allowed = _literal_values(annotation)
    for expected in values:
        if allowed is not None and expected not in allowed:
            raise place.error(
                f"{op}: {expected!r} is not a value of {event}.{model.field}; "
                f"expected one of {', '.join(sorted(map(str, allowed)))}"
            )
    tested: Scalar | tuple[Scalar, ...] = tuple(values) if op == "in" else values[0]
    return Condition(field=model.field, op=op, value=tested)


def _match(model: MatchModel, place: _Place) -> EventMatch:
    event = model.event
    if model.field is not None:
        annotation = _field_annotation(event, model.field, place / "field")
        if date not in _flatten(annotation):
            raise place.error(f"field: {event}.{model.field} is not a date")
    if isinstance(model.where, list):
        where = tuple(
            _condition(item, place / "where" / i, event) for i, item in enumerate(model.where)
        )
    else:  # a single condition may be written without the list brackets
        where = (_condition(model.where, place / "where", event),)
    return EventMatch(event=event, field=model.field, where=where)


def _matches(model: Matches, place: _Place) -> tuple[EventMatch, ...]:
    if isinstance(model, list):
        if not model:
            raise place.error("expected a table or a non-empty list of tables")
        return tuple(_match(item, place / i) for i, item in enumerate(model))
    return (_match(model, place),)


def _convert(model: ClockModel, place: _Place) -> ClockRule:
    """The :class:`ClockRule` of a validated clock table, checked against the catalogue."""
    ends = _matches(model.end, place / "end")
    return ClockRule(
        name=model.name,
        title=model.title,
        start=_match(model.start, place / "start"),
        end=ends[0],
        also_ends=ends[1:],
        marks=tuple(
            Mark(label=m.label, match=_match(m, place / "marks" / i))
            for i, m in enumerate(model.marks)
        ),
        kind=model.kind,
        before=_matches(model.before, place / "before") if model.before is not None else (),
        effective_from=model.effective_from,
        effective_to=model.effective_to,
        limit=model.limit,
        unit=model.unit,
        source=model.source,
        justifiable_by=tuple(model.justifiable_by),
        note=model.note,
        early_end=model.early_end,
        withdrawn_by=(
            _match(model.withdrawn_by, place / "withdrawn_by")
            if model.withdrawn_by is not None
            else None
        ),
        label=model.label or "",
        owner=model.owner,
    )


# --- loading and validation -------------------------------------------------------
# The schema itself is pydantic models in projections.assess.rule_schema, imported when a
# pack is first parsed (not at start-up).


def _overlap(a: ClockRule, b: ClockRule) -> bool:
    """Whether two rules are in force on a common day."""
    a_from, b_from = a.effective_from or date.min, b.effective_from or date.min
    a_to, b_to = a.effective_to or date.max, b.effective_to or date.max
    return a_from <= b_to and b_from <= a_to


def _refuse_overlaps(clocks: Sequence[ClockRule], origin: str, places: Sequence[str]) -> None:
    """Refuse two rules of one clock in force on a common day (``places[i]`` names rule i)."""
    for i, rule in enumerate(clocks):
        for other in clocks[:i]:
            if other.name == rule.name and _overlap(other, rule):
                raise RuleError(
                    f"{origin}: {places[i]}.name: clock {rule.name!r} given twice for the same "
                    "dates: give each rule of one clock its own effective_from and effective_to"
                )


def parse_rule_pack(data: Mapping[str, Any], origin: str = "<string>") -> RulePack:
    """Validate a decoded TOML document and build its :class:`RulePack`.

    Raises :class:`RuleError` naming ``origin``, the offending place and the reason.
    """
    # lazy: the pydantic schema (~30 ms to build its models) only when a pack is parsed
    from projections.assess.rule_schema import parse_pack

    model = parse_pack(data, origin)
    top = _Place(origin)
    clocks = tuple(_convert(c, top / "clocks" / i) for i, c in enumerate(model.clocks))
    _refuse_overlaps(clocks, origin, [f"clocks[{i}]" for i in range(len(clocks))])
    return RulePack(
        regime=model.regime,
        title=model.title,
        calendar=model.calendar,
        clocks=clocks,
        origin=origin,
    )


def _decoded(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{origin}: not valid TOML: {exc}") from None


def loads_rule_pack(text: str, origin: str = "<string>") -> RulePack:
    """Parse and validate a rule pack given as TOML text."""
    return parse_rule_pack(_decoded(text, origin), origin)


def load_rule_pack(path: Path | str) -> RulePack:
    """Load and validate a rule pack from a TOML file."""
    file = Path(path)
    return loads_rule_pack(file.read_text(encoding="utf-8"), origin=file.name)


def _shipped_text(regime: str) -> str:
    return (resources.files("projections") / "rules" / f"{regime}.toml").read_text(encoding="utf-8")


@cache
def shipped_rule_pack(regime: str) -> RulePack:
    """The shipped rule pack of ``regime`` (``projections/rules/<regime>.toml``), cached,
    whatever local rules are in use.

    Raises :class:`RuleError` for an unknown regime or a pack whose ``regime`` key
    disagrees with its file name.
    """
    if regime not in REGIMES:
        raise RuleError(f"unknown regime {regime!r}; expected one of {', '.join(REGIMES)}")
    name = f"{regime}.toml"
    text = _shipped_text(regime)
    compiled = _compiled_pack(regime, text)
    if compiled is not None:
        return compiled
    pack = loads_rule_pack(text, origin=name)
    if pack.regime != regime:
        raise RuleError(f"{name}: regime is {pack.regime!r}, expected {regime!r}")
    return pack


def _compiled_pack(regime: str, text: str) -> RulePack | None:
    """The pack of ``regime`` as parsed from ``text``, from the table generated by
    ``python -m cli.reference`` (no pydantic: ~40 ms of a cold command),
    or None when the table was not made from this very text."""
    # lazy: the table only when a shipped pack is first read (~6 ms to build the three
    # packs from it, against ~40 ms to parse and validate their files)
    from projections.assess import shipped_pack_table as table

    made_from = table.SOURCE_SHA256.get(regime)
    if made_from is None or made_from != hashlib.sha256(text.encode("utf-8")).hexdigest():
        return None
    names: dict[str, Any] = {"__builtins__": {}, "datetime": _datetime_module}
    names.update((name, globals()[name]) for name in table.NAMES)
    pack = eval(table.PACKS[regime], names)  # the repr of a RulePack this module parsed
    assert isinstance(pack, RulePack)
    return pack


@cache
def shipped_rules_sha256() -> str:
    """The SHA-256 of the shipped packs: each regime's name and file bytes, in date order
    (what an export's manifest records as ``rules.shipped``)."""
    digest = hashlib.sha256()
    for regime in REGIMES:
        data = _shipped_text(regime).encode("utf-8")
        digest.update(f"{regime}.toml\n{len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()


def rule_pack(regime: str) -> RulePack:
    """The rule pack of ``regime`` in use: the shipped one, or with the local rules of
    :func:`using_rules` laid over it."""
    local = _LOCAL.get()
    if local is not None and regime in local.packs:
        return local.packs[regime]
    return shipped_rule_pack(regime)


def all_rule_packs() -> Mapping[str, RulePack]:
    """Every rule pack in use (see :func:`rule_pack`), by regime, in date order."""
    local = _LOCAL.get()
    if local is not None:
        return local.packs
    return MappingProxyType({regime: shipped_rule_pack(regime) for regime in REGIMES})


# --- local rules: an override file laid over the shipped packs -----------------------------


@dataclass(frozen=True)
class LocalRules:
    """A local override file (``--rules FILE``) and the packs it makes: never silent, so
    every output that judges clocks with it names :attr:`path` and :attr:`sha256`."""

    path: str
    """The file as it was given."""
    sha256: str
    """The SHA-256 of the file's bytes."""
    packs: Mapping[str, RulePack]
    """Every regime's pack with the file's rules laid over the shipped ones."""

    def disclosure(self) -> str:
        """The line every table judged with these rules prints."""
        return f"Clocks judged with local rules {self.path} (sha256 {self.sha256})"

    def as_dict(self) -> dict[str, str]:
        """What JSON outputs and an export's manifest record: the file and its hash."""
        return {"path": self.path, "sha256": self.sha256}


_LOCAL: ContextVar[LocalRules | None] = ContextVar("caseledger_local_rules", default=None)


def local_rules() -> LocalRules | None:
    """The local rules in use in this context (None: the shipped packs)."""
    return _LOCAL.get()


def _clipped(rule: ClockRule, by: ClockRule) -> list[ClockRule]:
    """``rule`` without the days ``by`` is in force on: none, one or two rules."""
    if not _overlap(rule, by):
        return [rule]
    kept = []
    if by.effective_from is not None and (rule.effective_from or date.min) < by.effective_from:
        kept.append(replace(rule, effective_to=by.effective_from - timedelta(days=1)))
    if by.effective_to is not None and by.effective_to < (rule.effective_to or date.max):
        kept.append(replace(rule, effective_from=by.effective_to + timedelta(days=1)))
    return kept


def overlay(
    shipped: Mapping[str, RulePack], extra: Iterable[tuple[str, ClockRule]], origin: str
) -> Mapping[str, RulePack]:
    """The packs with an override's rules laid over them: a rule with the regime, name and
    ``effective_from`` of a shipped one replaces it; any other adds a version, and the
    versions it overlaps keep only the days outside it."""
    added: dict[str, list[ClockRule]] = {regime: [] for regime in shipped}
    for regime, rule in extra:
        added[regime].append(rule)
    packs: dict[str, RulePack] = {}
    for regime, pack in shipped.items():
        mine = added[regime]
        if not mine:
            packs[regime] = pack  # a regime the file does not touch is the shipped pack
            continue
        _refuse_overlaps(mine, origin, [f"clocks ({regime} {r.name})" for r in mine])
        clocks: list[ClockRule] = []
        for rule in pack.clocks:
            others = [r for r in mine if r.name == rule.name]
            if any(r.effective_from == rule.effective_from for r in others):
                continue  # replaced by the override's rule of the same dates
            clocks.extend(_clip_all(rule, others))
        final = [*clocks, *mine]
        packs[regime] = replace(pack, clocks=tuple(final), origin=f"{pack.origin} + {origin}")
    return MappingProxyType(packs)


def _clip_all(rule: ClockRule, by: Sequence[ClockRule]) -> list[ClockRule]:
    parts = [rule]
    for other in by:
        parts = [piece for part in parts for piece in _clipped(part, other)]
    return parts


def load_local_rules(path: Path | str) -> LocalRules:
    """Read and validate an override file and lay it over the shipped packs (RuleError
    naming the file, the place and the reason when it cannot be used)."""
    # lazy: the pydantic schema (~30 ms to build its models) only when a file is parsed
    from projections.assess.rule_schema import parse_override

    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise RuleError(f"{file}: cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RuleError(f"{file}: not UTF-8 text") from None
    origin = str(path)
    model = parse_override(_decoded(text, origin), origin)
    top = _Place(origin)
    extra = tuple((c.regime, _convert(c, top / "clocks" / i)) for i, c in enumerate(model.clocks))
    shipped = {regime: shipped_rule_pack(regime) for regime in REGIMES}
    packs = overlay(shipped, extra, origin)
    return LocalRules(path=origin, sha256=hashlib.sha256(data).hexdigest(), packs=packs)


@contextmanager
def using_rules(path: Path | str | None) -> Iterator[LocalRules | None]:
    """Judge clocks with the override file at ``path`` within the block (None: the shipped
    packs, or the local rules already in use)."""
    if path is None or str(path) == "":
        yield _LOCAL.get()
        return
    local = load_local_rules(path)
    token = _LOCAL.set(local)
    try:
        yield local
    finally:
        _LOCAL.reset(token)


@contextmanager
def judged_with(local: LocalRules | None) -> Iterator[LocalRules | None]:
    """Judge clocks with already loaded local rules within the block (None: the shipped
    packs, whatever was in use around the block)."""
    token = _LOCAL.set(local)
    try:
        yield local
    finally:
        _LOCAL.reset(token)
