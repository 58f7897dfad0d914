"""The statutory-clock rule packs: one TOML file of clocks per regime, loaded as data.

Each regime's clocks (``shared/domain.md``, "Timescales") live in
``projections/rules/<regime>.toml`` so that a limit or a source can be changed, and cited,
without touching code.  This module loads a pack into frozen dataclasses, rejects anything
it does not understand (unknown keys, units, event types, fields or vocabulary) with a
message naming the file and the place, and matches stored event records against a pack's
start and end descriptions.

Schema of a pack (every key shown; ``note``, ``field``, ``where``, ``justifiable_by`` and
``calendar`` are optional)::

    regime = "wt2018"
    title = "Working Together to Safeguard Children 2018"
    calendar = "england-and-wales"          # a projections.assess.calendar.NATIONS key

    [[clocks]]
    name = "rapid_review"                   # one of CLOCK_NAMES
    title = "Rapid review decision"
    label = "rapid review"                  # the clock's name in words, in tables
    owner = "the safeguarding partners"     # who must act before it is due (optional)
    end = { event = "DecisionMade" }        # an inline table, or a sub-table as below
    limit = 15
    unit = "working_days"                   # one of projections.assess.calendar.UNITS
    note = "normally"                       # qualifies the limit, shown to people
    source = "panel guidance; described as non-statutory (check)"
    justifiable_by = ["DecisionDelayed"]    # events that can make lateness justified
    early_end = "decided-before-notification"   # an end before the start: met at day 0
    withdrawn_by = { event = "DecisionMade", where = { field = "outcome", equals = "no-review" } }

    [clocks.start]
    event = "IncidentNotified"              # a catalogue event type
    where = { field = "recipients", contains = "national-panel" }

``start``/``end`` name an event type; the day measured is the event's ``occurred_at``
(its Europe/London day) or, with ``field``, that date field of the event.  ``where`` is one
condition or a list of conditions, all of which must hold: ``{field, equals = value}``
(the field's value is exactly ``value``) or ``{field, contains = value}`` (the field is a
list holding ``value``).  A clock starts at the first matching start event and ends at
the first matching end event on or after the start day.

``label`` is the clock's name in words for tables and sentences ("rapid review"); a pack
without one shows the name with spaces for underscores.  ``--json`` keeps ``name``.
``owner`` says who must act before the clock is due (``caseledger due`` shows it as "from").

``early_end`` names the flag (one of :data:`CLOCK_FLAGS`) of a clock whose end came
*before* its start (a rapid review decided before the notification): such a clock is met
on the day it started, with the flag, instead of running for ever.  ``withdrawn_by``
describes an entry that stands the clock down when it comes after the start and before
the end (a review stood down by a later no-review decision): the clock then ends as
``withdrawn`` on that entry's day.

Why one module: the rule dataclasses, their matching, their description and the loader
that validates them against the catalogue are one schema; each part changes with the
others whenever a key is added (issue 16 added list ends, marks, lead clocks and dates).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, cast, get_args, get_origin

from ledger.catalogue.models import (
    MODELS_BY_TYPE,
    normalise_occurred_at,
    occurred_day,
    occurred_instant,
)
from projections.assess.calendar import NATIONS, UNITS, Calendar, due_date

__all__ = [
    "CLOCK_FLAGS",
    "CLOCK_KINDS",
    "CLOCK_NAMES",
    "OPERATORS",
    "REGIMES",
    "ClockRule",
    "Condition",
    "EventMatch",
    "Mark",
    "RuleError",
    "RulePack",
    "all_rule_packs",
    "describe",
    "event_day",
    "first_match",
    "load_rule_pack",
    "loads_rule_pack",
    "match",
    "parse_rule_pack",
    "rule_pack",
]

#: The regimes that ship a rule pack, in date order.
REGIMES: Final[tuple[str, ...]] = ("wt2015", "wt2018", "wt2023")

#: The clock names ``shared/domain.md`` defines; the CLI reports them as they are.
CLOCK_NAMES: Final[tuple[str, ...]] = (
    "notification",
    "scr_decision",
    "no_scr_explanation",
    "rapid_review",
    "review_completion",
    "ofsted_notification",
    "panel_follow_up",
    "final_report",
)

#: The flags a clock can carry (``early_end``), each with what it means.
CLOCK_FLAGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "decided-before-notification": (
            "the decision came before the notification that starts the clock, so the clock "
            "is met on the day it started"
        ),
    }
)

#: The comparison operators a ``where`` condition may use.
OPERATORS: Final[tuple[str, ...]] = ("equals", "contains", "in")

Operator = Literal["equals", "contains", "in"]
Scalar = str | int | bool

#: How a clock counts: ``after`` its start (every clock but one), or ``lead``: due a limit
#: *before* the day its ``before`` entry names (a final report sent to the panel no later
#: than seven working days before publication).
CLOCK_KINDS: Final[tuple[str, ...]] = ("after", "lead")

_PACK_KEYS: Final = {"regime": True, "title": True, "calendar": False, "clocks": True}
_CLOCK_KEYS: Final = {
    "name": True,
    "title": True,
    "start": True,
    "end": True,
    "limit": True,
    "unit": True,
    "source": True,
    "note": False,
    "label": False,
    "owner": False,
    "justifiable_by": False,
    "early_end": False,
    "withdrawn_by": False,
    "marks": False,
    "kind": False,
    "before": False,
    "effective_from": False,
    "effective_to": False,
}
_MATCH_KEYS: Final = {"event": True, "field": False, "where": False}
_MARK_KEYS: Final = {"label": True, "event": True, "field": False, "where": False}
_UNIT_WORDS: Final = {
    "working_days": ("working day", "working days"),
    "calendar_days": ("calendar day", "calendar days"),
    "calendar_months": ("calendar month", "calendar months"),
}
_RECIPIENT_FIELDS: Final = ("recipients", "to")


class RuleError(ValueError):
    """A rule pack that cannot be used, with the file and the place in it."""


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
        versions = self.versions(name)
        for rule in versions:
            if rule.in_force_on(day):
                return rule
        if versions and versions[0].effective_from is not None and day < versions[0].effective_from:
            return versions[0]
        return None

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


# --- loading and validation -------------------------------------------------------


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


def _table(value: object, place: _Place, keys: Mapping[str, bool]) -> Mapping[str, Any]:
    """Check that ``value`` is a table with only known keys and every required one."""
    if not isinstance(value, dict):
        raise place.error(f"expected a table, got {type(value).__name__}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise place.error(
            f"unknown key {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(keys))}"
        )
    missing = [k for k, required in keys.items() if required and k not in value]
    if missing:
        raise place.error(f"missing key {', '.join(map(repr, missing))}")
    return cast(Mapping[str, Any], value)


def _text(value: object, place: _Place) -> str:
    if not isinstance(value, str) or not value.strip():
        raise place.error("expected non-empty text")
    return value


def _choice(value: object, place: _Place, allowed: Iterable[str], what: str) -> str:
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        raise place.error(f"unknown {what} {value!r}; expected one of {', '.join(options)}")
    return value


def _field_annotation(event: str, field: str, place: _Place) -> object:
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


def _condition(value: object, place: _Place, event: str) -> Condition:
    table = _table(value, place, {"field": True, "equals": False, "contains": False, "in": False})
    ops = [op for op in OPERATORS if op in table]
    if len(ops) != 1:
        raise place.error(f"give exactly one of {', '.join(OPERATORS)}")
    op = cast(Operator, ops[0])
    field = _text(table["field"], place / "field")
    annotation = _field_annotation(event, field, place / "field")
    raw = table[op]
    if op == "in":
        if not isinstance(raw, list) or not raw:
            raise place.error("in: expected a non-empty list of values")
        values = list(raw)
    else:
        values = [raw]
    for expected in values:
        if not isinstance(expected, str | int | bool):
            raise place.error(f"{op}: expected text, a whole number or true/false")
    if op == "contains" and not _is_list(annotation):
        raise place.error(f"contains: {event}.{field} is not a list; use equals")
    if op in ("equals", "in") and _is_list(annotation):
        raise place.error(f"{op}: {event}.{field} is a list; use contains")
    allowed = _literal_values(annotation)
    for expected in values:
        if allowed is not None and expected not in allowed:
            raise place.error(
                f"{op}: {expected!r} is not a value of {event}.{field}; "
                f"expected one of {', '.join(sorted(map(str, allowed)))}"
            )
    checked = cast(list[Scalar], values)
    tested: Scalar | tuple[Scalar, ...] = tuple(checked) if op == "in" else checked[0]
    return Condition(field=field, op=op, value=tested)


def _event_matches(value: object, place: _Place) -> tuple[EventMatch, ...]:
    """One match table, or a non-empty list of them (any of which matches)."""
    if isinstance(value, list):
        if not value:
            raise place.error("expected a table or a non-empty list of tables")
        return tuple(_event_match(item, place / i) for i, item in enumerate(value))
    return (_event_match(value, place),)


def _mark(value: object, place: _Place) -> Mark:
    table = _table(value, place, _MARK_KEYS)
    label = _text(table["label"], place / "label")
    rest = {k: v for k, v in table.items() if k != "label"}
    return Mark(label=label, match=_event_match(rest, place))


def _optional_date(table: Mapping[str, Any], key: str, place: _Place) -> date | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, datetime) or not isinstance(value, date):
        raise (place / key).error("expected a date, written 2018-06-29 without quotes")
    return value


def _event_match(
    value: object, place: _Place, keys: Mapping[str, bool] = _MATCH_KEYS
) -> EventMatch:
    table = _table(value, place, keys)
    event = _choice(table["event"], place / "event", MODELS_BY_TYPE, "event type")
    field: str | None = None
    if "field" in table:
        field = _text(table["field"], place / "field")
        annotation = _field_annotation(event, field, place / "field")
        if date not in _flatten(annotation):
            raise place.error(f"field: {event}.{field} is not a date")
    where_raw = table.get("where", [])
    if isinstance(where_raw, list):
        where = tuple(
            _condition(item, place / "where" / i, event) for i, item in enumerate(where_raw)
        )
    else:  # a single condition may be written without the list brackets
        where = (_condition(where_raw, place / "where", event),)
    return EventMatch(event=event, field=field, where=where)


def _clock(value: object, place: _Place) -> ClockRule:
    table = _table(value, place, _CLOCK_KEYS)
    name = _choice(table["name"], place / "name", CLOCK_NAMES, "clock name")
    limit = table["limit"]
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise (place / "limit").error("expected a whole number of at least 0")
    unit = _choice(table["unit"], place / "unit", UNITS, "unit")
    justifiable = table.get("justifiable_by", [])
    if not isinstance(justifiable, list):
        raise (place / "justifiable_by").error("expected a list of event types")
    justifiable_by = tuple(
        _choice(item, place / "justifiable_by" / i, MODELS_BY_TYPE, "event type")
        for i, item in enumerate(justifiable)
    )
    note = _text(table["note"], place / "note") if "note" in table else None
    label = _text(table["label"], place / "label") if "label" in table else ""
    owner = _text(table["owner"], place / "owner") if "owner" in table else None
    early_end = (
        _choice(table["early_end"], place / "early_end", CLOCK_FLAGS, "clock flag")
        if "early_end" in table
        else None
    )
    withdrawn_by = (
        _event_match(table["withdrawn_by"], place / "withdrawn_by")
        if "withdrawn_by" in table
        else None
    )
    ends = _event_matches(table["end"], place / "end")
    raw_marks = table.get("marks", [])
    if not isinstance(raw_marks, list):
        raise (place / "marks").error("expected a list of {label, event, ...} tables")
    marks = tuple(_mark(item, place / "marks" / i) for i, item in enumerate(raw_marks))
    kind = _choice(table.get("kind", "after"), place / "kind", CLOCK_KINDS, "clock kind")
    before = _event_matches(table["before"], place / "before") if "before" in table else ()
    if kind == "lead" and not before:
        raise (place / "before").error("a lead clock must say what it is due before")
    if kind != "lead" and before:
        raise (place / "before").error('only a clock of kind = "lead" is due before an entry')
    effective_from = _optional_date(table, "effective_from", place)
    effective_to = _optional_date(table, "effective_to", place)
    if effective_from and effective_to and effective_to < effective_from:
        raise (place / "effective_to").error("the rule ends before it begins")
    return ClockRule(
        name=name,
        title=_text(table["title"], place / "title"),
        start=_event_match(table["start"], place / "start"),
        end=ends[0],
        also_ends=ends[1:],
        marks=marks,
        kind=kind,
        before=before,
        effective_from=effective_from,
        effective_to=effective_to,
        limit=limit,
        unit=unit,
        source=_text(table["source"], place / "source"),
        justifiable_by=justifiable_by,
        note=note,
        early_end=early_end,
        withdrawn_by=withdrawn_by,
        label=label,
        owner=owner,
    )


def _overlap(a: ClockRule, b: ClockRule) -> bool:
    """Whether two rules are in force on a common day."""
    a_from, b_from = a.effective_from or date.min, b.effective_from or date.min
    a_to, b_to = a.effective_to or date.max, b.effective_to or date.max
    return a_from <= b_to and b_from <= a_to


def parse_rule_pack(data: Mapping[str, Any], origin: str = "<string>") -> RulePack:
    """Validate a decoded TOML document and build its :class:`RulePack`.

    Raises :class:`RuleError` naming ``origin`` and the offending key.
    """
    top = _Place(origin)
    table = _table(dict(data), top, _PACK_KEYS)
    regime = _choice(table["regime"], top / "regime", REGIMES, "regime")
    nation = _choice(
        table.get("calendar", "england-and-wales"), top / "calendar", NATIONS, "calendar"
    )
    raw_clocks = table["clocks"]
    if not isinstance(raw_clocks, list) or not raw_clocks:
        raise (top / "clocks").error("expected at least one [[clocks]] table")
    clocks = tuple(_clock(item, top / "clocks" / i) for i, item in enumerate(raw_clocks))
    for i, rule in enumerate(clocks):
        for other in clocks[:i]:
            if other.name == rule.name and _overlap(other, rule):
                raise (top / "clocks" / i / "name").error(
                    f"clock {rule.name!r} given twice for the same dates: give each rule "
                    "of one clock its own effective_from and effective_to"
                )
    return RulePack(
        regime=regime,
        title=_text(table["title"], top / "title"),
        calendar=nation,
        clocks=clocks,
        origin=origin,
    )


def loads_rule_pack(text: str, origin: str = "<string>") -> RulePack:
    """Parse and validate a rule pack given as TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{origin}: not valid TOML: {exc}") from None
    return parse_rule_pack(data, origin)


def load_rule_pack(path: Path | str) -> RulePack:
    """Load and validate a rule pack from a TOML file."""
    file = Path(path)
    return loads_rule_pack(file.read_text(encoding="utf-8"), origin=file.name)


@cache
def rule_pack(regime: str) -> RulePack:
    """The shipped rule pack of ``regime`` (``projections/rules/<regime>.toml``), cached.

    Raises :class:`RuleError` for an unknown regime or a pack whose ``regime`` key
    disagrees with its file name.
    """
    if regime not in REGIMES:
        raise RuleError(f"unknown regime {regime!r}; expected one of {', '.join(REGIMES)}")
    name = f"{regime}.toml"
    text = (resources.files("projections") / "rules" / name).read_text(encoding="utf-8")
    pack = loads_rule_pack(text, origin=name)
    if pack.regime != regime:
        raise RuleError(f"{name}: regime is {pack.regime!r}, expected {regime!r}")
    return pack


def all_rule_packs() -> Mapping[str, RulePack]:
    """Every shipped rule pack, by regime, in date order."""
    return MappingProxyType({regime: rule_pack(regime) for regime in REGIMES})
