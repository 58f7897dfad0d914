"""The rule packs' schema as pydantic v2 models, and the loader that turns a pack (or a local
override file) into the frozen dataclasses of :mod:`projections.assess.rules`.

Validation happens in two steps, both naming the file and the place (``clocks[2].end.where.field``)
in the error: the pydantic models check the shape (strict types, no unknown keys, every required
one, the closed vocabularies of names, units, calendars and kinds), then
:mod:`projections.assess.rules` checks what only the catalogue knows (that a field exists,
is a date, a list or takes a given literal value: ``MODELS_BY_TYPE``) as it builds its
dataclasses.  Pydantic's own messages are
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
    TypeAlias,
    cast,
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
from projections.assess.rule_terms import (
    CLOCK_FLAGS,
    CLOCK_KINDS,
    CLOCK_NAMES,
    OPERATORS,
    REGIMES,
    RuleError,
)

__all__ = [
    "ClockModel",
    "ConditionModel",
    "MatchModel",
    "Matches",
    "OverrideFile",
    "PackFile",
    "parse_override",
    "parse_pack",
]


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


def parse_pack(data: Mapping[str, Any], origin: str) -> PackFile:
    """A decoded pack validated against the models (RuleError naming ``origin``, the place
    and the reason otherwise); :mod:`projections.assess.rules` checks it against the
    catalogue and builds the dataclasses."""
    raw = dict(data)
    try:
        return PackFile.model_validate(raw)
    except ValidationError as exc:
        raise _rule_error(exc, raw, origin) from None


def parse_override(data: Mapping[str, Any], origin: str) -> OverrideFile:
    """A decoded override file validated against the models, as :func:`parse_pack`."""
    raw = dict(data)
    try:
        return OverrideFile.model_validate(raw)
    except ValidationError as exc:
        raise _rule_error(exc, raw, origin) from None
