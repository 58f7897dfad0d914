"""The rule packs' schema as pydantic v2 models, and the loader that turns a pack (or a local
override file) into the frozen dataclasses of :mod:`projections.assess.rules`.

Validation happens in two steps, both naming the file and the place (``clocks[2].end.where.field``)
in the error: the pydantic models check the shape (strict types, no unknown keys, every required
one, the closed vocabularies of names, units, calendars and kinds), then :func:`_convert` checks
what only the catalogue knows (that an event type exists, that a field is a date, a list or takes
a given literal value: ``ledger.catalogue.models.MODELS_BY_TYPE``).  Pydantic's own messages are
translated into the words the packs' authors read ("unknown key 'limt'; allowed: ...").

Imported only by the loader (:func:`projections.assess.rules.loads_rule_pack`), never at
start-up: building the models costs a few milliseconds the read commands do not need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Literal,
    TypeAlias,
    cast,
    get_args,
    get_origin,
)

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ledger.catalogue.models import MODELS_BY_TYPE
from projections.assess.calendar import NATIONS, UNITS
from projections.assess.rules import (
    CLOCK_FLAGS,
    CLOCK_KINDS,
    CLOCK_NAMES,
    OPERATORS,
    REGIMES,
    ClockRule,
    Condition,
    EventMatch,
    Mark,
    Operator,
    RuleError,
    Scalar,
)

__all__ = ["OverrideFile", "PackFile", "parse_override", "parse_pack"]


# --- field types ------------------------------------------------------------------------------


def _choice(what: str, options: Iterable[str]) -> Any:
    """A text field that must be one of ``options``; the error names ``what`` it is."""
    allowed = tuple(options)

    def check(value: object) -> object:
        if not isinstance(value, str) or value not in allowed:
            raise PydanticCustomError(
                "unknown_choice",
                "unknown {what} {value}; expected one of {allowed}",
                {"what": what, "value": repr(value), "allowed": ", ".join(allowed)},
            )
        return value

    return Annotated[str, BeforeValidator(check)]


def _text(value: object) -> object:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("text", "expected non-empty text")
    return value


def _whole(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PydanticCustomError("whole", "expected a whole number of at least 0")
    return value


def _day(value: object) -> object:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise PydanticCustomError("day", "expected a date, written 2018-06-29 without quotes")
    return value


def _scalar(value: object) -> object:
    if not isinstance(value, str | int | bool):
        raise PydanticCustomError("scalar", "expected text, a whole number or true/false")
    return value


def _list_of(what: str) -> BeforeValidator:
    def check(value: object) -> object:
        if not isinstance(value, list):
            raise PydanticCustomError("list", "expected a list of {what}", {"what": what})
        return value

    return BeforeValidator(check)


Text = Annotated[str, BeforeValidator(_text)]
Whole = Annotated[int, BeforeValidator(_whole)]
Day = Annotated[date, BeforeValidator(_day)]
Value = Annotated[str | int | bool, BeforeValidator(_scalar)]
if TYPE_CHECKING:  # each is text to the type checker; pydantic checks the vocabulary
    EventType: TypeAlias = str
    ClockName: TypeAlias = str
    Unit: TypeAlias = str
    ClockFlag: TypeAlias = str
    ClockKind: TypeAlias = str
    Regime: TypeAlias = str
    Nation: TypeAlias = str
else:
    EventType = _choice("event type", MODELS_BY_TYPE)
    ClockName = _choice("clock name", CLOCK_NAMES)
    Unit = _choice("unit", UNITS)
    ClockFlag = _choice("clock flag", CLOCK_FLAGS)
    ClockKind = _choice("clock kind", CLOCK_KINDS)
    Regime = _choice("regime", REGIMES)
    Nation = _choice("calendar", NATIONS)


def _values(value: object) -> object:
    if not isinstance(value, list) or not value:
        raise PydanticCustomError("values", "expected a non-empty list of values")
    return value


class _Table(BaseModel):
    """A TOML table: strict, closed (unknown keys are refused, naming the allowed ones)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)
    required: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: object) -> object:
        if not isinstance(data, dict):
            raise PydanticCustomError(
                "table", "expected a table, got {kind}", {"kind": type(data).__name__}
            )
        allowed = sorted(f.alias or name for name, f in cls.model_fields.items())
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise PydanticCustomError(
                "unknown_key",
                "unknown key {keys}; allowed: {allowed}",
                {"keys": ", ".join(map(repr, unknown)), "allowed": ", ".join(allowed)},
            )
        missing = [key for key in cls.required if key not in data]
        if missing:
            raise PydanticCustomError(
                "missing_key", "missing key {keys}", {"keys": ", ".join(map(repr, missing))}
            )
        return data


class ConditionModel(_Table):
    """``{field, equals = v}``, ``{field, contains = v}`` or ``{field, in = [v, ...]}``."""

    required: ClassVar[tuple[str, ...]] = ("field",)
    field: Text
    equals: Value | None = None
    contains: Value | None = None
    in_: Annotated[list[Value], BeforeValidator(_values)] | None = Field(None, alias="in")

    @model_validator(mode="after")
    def _one_operator(self) -> ConditionModel:
        given = [op for op in OPERATORS if self.operand(op) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "operator", "give exactly one of {ops}", {"ops": ", ".join(OPERATORS)}
            )
        return self

    def operand(self, op: str) -> Any:
        """The value given for operator ``op`` (None when not given)."""
        return self.in_ if op == "in" else getattr(self, op)


Where = ConditionModel | list[ConditionModel]


class MatchModel(_Table):
    """Which entry starts, ends or stands down a clock: ``{event, field?, where?}``."""

    required: ClassVar[tuple[str, ...]] = ("event",)
    event: EventType
    field: Text | None = None
    where: Where = []


class MarkModel(MatchModel):
    """A date shown beside a clock: a match with a ``label``."""

    required: ClassVar[tuple[str, ...]] = ("label", "event")
    label: Text


Matches = MatchModel | list[MatchModel]


class ClockModel(_Table):
    """One ``[[clocks]]`` table of a pack."""

    required: ClassVar[tuple[str, ...]] = (
        "name",
        "title",
        "start",
        "end",
        "limit",
        "unit",
        "source",
    )
    name: ClockName
    title: Text
    start: MatchModel
    end: Matches
    limit: Whole
    unit: Unit
    source: Text
    note: Text | None = None
    label: Text | None = None
    owner: Text | None = None
    justifiable_by: Annotated[list[EventType], _list_of("event types")] = []
    early_end: ClockFlag | None = None
    withdrawn_by: MatchModel | None = None
    marks: Annotated[list[MarkModel], _list_of("{label, event, ...} tables")] = []
    kind: ClockKind = "after"
    before: Matches | None = None
    effective_from: Day | None = None
    effective_to: Day | None = None

    @model_validator(mode="after")
    def _dates_and_kind(self) -> ClockModel:
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise PydanticCustomError("dates", "effective_to: the rule ends before it begins")
        if self.kind == "lead" and self.before is None:
            raise PydanticCustomError("lead", "before: a lead clock must say what it is due before")
        if self.kind != "lead" and self.before is not None:
            raise PydanticCustomError(
                "lead", 'before: only a clock of kind = "lead" is due before an entry'
            )
        return self


class PackFile(_Table):
    """A shipped pack: ``regime``, ``title``, ``calendar`` and its ``[[clocks]]``."""

    required: ClassVar[tuple[str, ...]] = ("regime", "title", "clocks")
    regime: Regime
    title: Text
    calendar: Nation = "england-and-wales"
    clocks: Annotated[list[ClockModel], _list_of("[[clocks]] tables"), Field(min_length=1)]


class OverrideClock(ClockModel):
    """One ``[[clocks]]`` table of a local override: the regime it belongs to, then a clock."""

    required: ClassVar[tuple[str, ...]] = ("regime", *ClockModel.required)
    regime: Regime


class OverrideFile(_Table):
    """A local override file (``--rules FILE``): only ``[[clocks]]`` tables."""

    required: ClassVar[tuple[str, ...]] = ("clocks",)
    clocks: Annotated[list[OverrideClock], _list_of("[[clocks]] tables"), Field(min_length=1)]


# --- translating pydantic's errors ------------------------------------------------------------


def _place(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _located(error: Mapping[str, Any], data: object) -> tuple[str, ...] | None:
    """The error's place in the document, walking the data along pydantic's ``loc`` and
    dropping the union members' tags; None for an error of the member that does not fit
    the data's shape (a table's error when a list was given, and the reverse)."""
    value = data
    kept: list[int | str] = []
    loc = list(error["loc"])
    for part in loc:
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            kept.append(part)
            value = value[part]
        elif isinstance(value, dict) and part in value:
            kept.append(part)
            value = value[part]
        elif isinstance(part, str) and ("[" in part or part[:1].isupper()):
            if part.startswith("list[") != isinstance(value, list):
                return None
        else:
            kept.append(part)
    return cast(tuple[str, ...], tuple(kept))


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "too_short":
        return "expected at least one [[clocks]] table"
    if kind == "missing":
        return "missing key"
    if kind in ("extra_forbidden",):
        return "unknown key"
    return str(error["msg"]).removeprefix("Value error, ")


def _rule_error(exc: ValidationError, data: object, origin: str) -> RuleError:
    """The first error that fits the data, as ``origin: place: reason``."""
    for error in exc.errors():
        loc = _located(error, data)
        if loc is None:
            continue
        message = _message(error)
        if error["type"] in ("missing", "extra_forbidden") and loc:
            message = f"{message} {loc[-1]!r}"
            loc = loc[:-1]
        place = _place(loc)
        return RuleError(f"{origin}: {place}: {message}" if place else f"{origin}: {message}")
    return RuleError(f"{origin}: {exc.errors()[0]['msg']}")


# --- what only the catalogue knows ------------------------------------------------------------


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


def parse_pack(data: Mapping[str, Any], origin: str) -> tuple[PackFile, tuple[ClockRule, ...]]:
    """A decoded pack validated: its model and its clocks as dataclasses (RuleError naming
    ``origin``, the place and the reason otherwise)."""
    raw = dict(data)
    try:
        pack = PackFile.model_validate(raw)
    except ValidationError as exc:
        raise _rule_error(exc, raw, origin) from None
    top = _Place(origin)
    clocks = tuple(_convert(c, top / "clocks" / i) for i, c in enumerate(pack.clocks))
    return pack, clocks


def parse_override(data: Mapping[str, Any], origin: str) -> tuple[tuple[str, ClockRule], ...]:
    """A decoded override file validated: each clock with its regime, in the file's order."""
    raw = dict(data)
    try:
        override = OverrideFile.model_validate(raw)
    except ValidationError as exc:
        raise _rule_error(exc, raw, origin) from None
    top = _Place(origin)
    return tuple((c.regime, _convert(c, top / "clocks" / i)) for i, c in enumerate(override.clocks))
