"""The mapping of a tracker import: which column holds which tracker field, read from a TOML
file (``docs/importing.md``) and checked before any row is read.

:data:`FIELDS` names every tracker field, its kind and its vocabulary; :func:`parse_mapping`
checks a mapping's table and :func:`load_mapping` reads one from a file, both raising
:class:`MappingError` (exit code 2) with the place in the file that is wrong.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args

from ledger.catalogue.models import (
    CASE_REF_PATTERN,
    CRITERIA,
    CommunicatedTo,
    NotifyRecipient,
    Outcome,
    Regime,
    normalise_occurred_at,
)
from ledger.catalogue.registry import KINDS_BY_NAME
from ledger.errors import InputError

MAPPING_VERSION: Final = 1

REGIMES: Final[tuple[str, ...]] = get_args(Regime)
OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)
RECIPIENTS: Final[tuple[str, ...]] = get_args(NotifyRecipient)
COMMUNICATED_TO: Final[tuple[str, ...]] = get_args(CommunicatedTo)
FINDINGS: Final[tuple[str, ...]] = ("met", "not-met", "unclear")

Kind = Literal["text", "choice", "date", "moment", "list", "bool"]
"""How a tracker field is read: ``date`` is a day (an event's date field), ``moment`` an
``occurred_at`` (a day, or a day and time when the cell has one)."""

Cell = object
"""A cell as read: ``str``, ``int``, ``float``, ``bool``, ``datetime``, ``date`` or None."""


@dataclass(frozen=True)
class FieldInfo:
    """What one tracker field means and how its cells are read."""

    kind: Kind
    help: str
    vocab: tuple[str, ...] = ()
    agencies: bool = False  # a list of agencies: the mapping's [agencies] names apply
    dated_items: bool = False  # list items may end in a date ("Police 18/02/2026")


FIELDS: Final[Mapping[str, FieldInfo]] = {
    # CaseReferred (every row opens its case)
    "case": FieldInfo("text", "the case reference (required)"),
    "regime": FieldInfo("choice", "wt2015, wt2018 or wt2023 (see [regime])", REGIMES),
    "subject": FieldInfo("text", "the pseudonymous child reference, never a name"),
    "incident_date": FieldInfo("date", "the date of the incident"),
    "awareness_date": FieldInfo("date", "when the local authority became aware"),
    "referral_date": FieldInfo("moment", "when the case was referred (else awareness_date)"),
    "harm": FieldInfo("choice", "death, serious-harm or other", ("death", "serious-harm", "other")),
    "abuse_or_neglect": FieldInfo(
        "choice", "known, suspected or not-suspected", ("known", "suspected", "not-suspected")
    ),
    "looked_after": FieldInfo("bool", "whether the child was looked after"),
    "home_area": FieldInfo("text", "the child's home area"),
    "incident_area": FieldInfo("text", "where the incident happened (default home_area)"),
    "other_areas": FieldInfo("list", "other areas the family lived in"),
    "referrer": FieldInfo("text", "who referred the case"),
    "route": FieldInfo("choice", "statutory or discretionary", ("statutory", "discretionary")),
    "summary": FieldInfo("text", "what happened, in a sentence"),
    # IncidentNotified
    "notification_date": FieldInfo("moment", "when the serious incident was notified"),
    "notified_to": FieldInfo("list", "who was notified", RECIPIENTS),
    "notification_reference": FieldInfo("text", "the notification's reference"),
    # InformationRequested / InformationReceived
    "information_requested_date": FieldInfo("moment", "when the agencies were asked"),
    "information_due": FieldInfo("date", "when the answers were due"),
    "asked_for": FieldInfo(
        "choice",
        "what was asked for",
        ("minimum-data", "chronology", "summary", "records", "other"),
    ),
    "agencies_asked": FieldInfo("list", "the agencies asked for information", agencies=True),
    "agencies_answered": FieldInfo(
        "list",
        "the agencies that answered (each may end in a date)",
        agencies=True,
        dated_items=True,
    ),
    "information_received_date": FieldInfo("moment", "when answers without a date came"),
    "agencies_involved": FieldInfo(
        "list", "the agencies that knew the child or family", agencies=True
    ),
    # DiscussionHeld
    "discussion_date": FieldInfo("moment", "the SCR sub-group or rapid review meeting"),
    "discussion_forum": FieldInfo(
        "choice", "the forum", ("scr-subgroup", "rapid-review-meeting", "board", "other")
    ),
    "attendees": FieldInfo("list", "the agencies at the discussion", agencies=True),
    "discussion_summary": FieldInfo("text", "what the discussion concluded"),
    # RecommendationMade
    "recommendation_date": FieldInfo("moment", "when the recommendation was made"),
    "recommendation_to": FieldInfo("choice", "chair or partners", ("chair", "partners")),
    "recommended_outcome": FieldInfo("choice", "the outcome recommended", OUTCOMES),
    "recommendation_rationale": FieldInfo("text", "why it was recommended"),
    # DecisionDelayed
    "delay_reason": FieldInfo("text", "why the decision was delayed (a delay is recorded)"),
    "delay_date": FieldInfo("moment", "when the delay was approved"),
    "delay_expected_by": FieldInfo("date", "when the decision was then expected"),
    "delay_approved_by": FieldInfo("text", "who approved the delay"),
    # DecisionMade
    "decision_date": FieldInfo("moment", "when the decision was made"),
    "outcome": FieldInfo("choice", "the decision", OUTCOMES),
    "decided_by": FieldInfo("list", "who decided"),
    "rationale": FieldInfo("text", "the reasons for the decision"),
    "nature": FieldInfo("text", "kind and scope of the review (needed for reviews)"),
    # DecisionCommunicated
    "communicated_date": FieldInfo("moment", "when the decision was sent on"),
    "communicated_to": FieldInfo("list", "to whom the decision was sent", COMMUNICATED_TO),
    # ReviewerCommissioned
    "reviewer_commissioned_date": FieldInfo("moment", "when the lead reviewer was commissioned"),
    "reviewer": FieldInfo("text", "the lead reviewer"),
    "reviewer_independence": FieldInfo("text", "the reviewer's statement of independence"),
    # ReviewCompleted / ReportPublished
    "completed_date": FieldInfo("moment", "when the review was completed"),
    "completion_summary": FieldInfo("text", "a summary of the completed review"),
    "published_date": FieldInfo("moment", "when the report was published"),
    "publication_location": FieldInfo("text", "where the report was published"),
}

#: Fallbacks that apply unless the mapping gives its own ``or``.
BUILTIN_FALLBACKS: Final[Mapping[str, tuple[str, ...]]] = {"referral_date": ("awareness_date",)}

#: Criteria the import can infer from the referral's facts when the mapping asks it to.
INFERABLE: Final[tuple[str, ...]] = ("abuse_or_neglect", "child_died", "seriously_harmed")

#: The order of a row's entries on the same day: catalogue order (CaseReferred first).
PHASES: Final[tuple[str, ...]] = tuple(KINDS_BY_NAME)

DEFAULT_DATE_FORMATS: Final = ("%d/%m/%Y", "%d/%m/%y")
ISO_FORMATS: Final = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
TRUE_WORDS: Final = frozenset({"yes", "y", "true", "1"})
FALSE_WORDS: Final = frozenset({"no", "n", "false", "0"})
NONE_WORDS: Final = frozenset({"none", "nil", "no agencies", "-", "–"})
"""A list cell holding one of these says "none" (an empty list), unlike a blank cell."""
FINDING_WORDS: Final[Mapping[str, str]] = {
    "met": "met",
    "not-met": "not-met",
    "not met": "not-met",
    "unclear": "unclear",
    "yes": "met",
    "y": "met",
    "no": "not-met",
    "n": "not-met",
    "?": "unclear",
    "unknown": "unclear",
}
DATED_ITEM = re.compile(
    r"^(?P<name>.*?)[\s:(\-–]*(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4}(?:[ T]\d{1,2}:\d{2})?)\)?$"
)
CASE_REF = re.compile(CASE_REF_PATTERN)


def match_key(text: str) -> str:
    """How cells and value-map keys are compared: blanks collapsed, case ignored."""
    return " ".join(text.split()).casefold()


# --- errors ---------------------------------------------------------------------------


class MappingError(InputError):
    """The mapping file (or the tracker's header against it) is wrong.  Exit code 2."""


@dataclass(frozen=True)
class FieldSpec:
    """How the mapping fills one tracker field."""

    name: str
    column: str | None = None
    default: object = None
    by_regime: Mapping[str, object] = field(default_factory=dict)
    values: Mapping[str, object] = field(default_factory=dict)  # keys already match_key()-ed
    fallback: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    separator: str | None = None


@dataclass(frozen=True)
class RegimeRule:
    """``regime`` applies to a date ``from`` <= d < ``before`` (each bound optional)."""

    regime: str
    start: date | None
    before: date | None

    def holds(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (
            self.before is None or day < self.before
        )

    def describe(self) -> str:
        parts = []
        if self.start is not None:
            parts.append(f"from {self.start.isoformat()}")
        if self.before is not None:
            parts.append(f"before {self.before.isoformat()}")
        return f"{' and '.join(parts) or 'any date'} → {self.regime}"


@dataclass(frozen=True)
class TrackerMapping:
    """A checked mapping file."""

    origin: str
    fields: Mapping[str, FieldSpec]
    sheet: str | None = None
    header_row: int = 1
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    list_separator: str = ";"
    excel_serial_dates: bool = False
    delimiter: str = ","
    encoding: str | None = None
    regime_dates: tuple[str, ...] = ("decision_date", "notification_date", "awareness_date")
    regime_rules: tuple[RegimeRule, ...] = ()
    criteria_default: tuple[str, str] | None = None
    criteria_infer: tuple[str, ...] = ()
    criteria_columns: Mapping[str, str] = field(default_factory=dict)
    criteria_reasons: Mapping[str, str] = field(default_factory=dict)
    finding_values: Mapping[str, str] = field(default_factory=lambda: dict(FINDING_WORDS))
    agency_names: Mapping[str, str] = field(default_factory=dict)
    involved_when_not_recorded: bool | None = None
    received_summary: str | None = None

    def columns(self) -> dict[str, str]:
        """Every tracker column the mapping names -> where it names it."""
        named: dict[str, str] = {}
        for spec in self.fields.values():
            if spec.column is not None:
                named.setdefault(spec.column, f"fields.{spec.name}")
        for crit, col in self.criteria_columns.items():
            named.setdefault(col, f"criteria.columns.{crit}")
        for crit, col in self.criteria_reasons.items():
            named.setdefault(col, f"criteria.reasons.{crit}")
        return named


class _Place:
    """Where in the mapping file a value sits, for error messages."""

    def __init__(self, origin: str, path: str = "") -> None:
        self.origin = origin
        self.path = path

    def __truediv__(self, part: str) -> _Place:
        return _Place(self.origin, f"{self.path}.{part}" if self.path else part)

    def error(self, message: str) -> MappingError:
        return MappingError(f"mapping {self.origin}: {message}", field=self.path or None)


def _table(value: object, place: _Place, allowed: Iterable[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise place.error("must be a table")
    if allowed is not None:
        known = tuple(allowed)
        for key in value:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise (place / key).error(
                    f"{key!r} is not a mapping key here{extra}; keys are {', '.join(known)}"
                )
    return dict(value)


def _string(value: object, place: _Place, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise place.error("must be a non-empty string" if not empty else "must be a string")
    return value


def _strings(value: object, place: _Place) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_string(value, place),)
    if not isinstance(value, list) or not value:
        raise place.error("must be a string or a non-empty list of strings")
    return tuple(_string(v, place) for v in value)


def _day(value: object, place: _Place) -> date:
    if isinstance(value, datetime):
        raise place.error("must be a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise place.error("must be a date written YYYY-MM-DD")


def _check_value(info: FieldInfo, value: object, place: _Place, *, blank_ok: bool) -> object:
    """A default or a value-map target: the right type and in the vocabulary."""
    if isinstance(value, str) and value == "" and blank_ok:
        return value
    if info.kind == "bool":
        if not isinstance(value, bool):
            raise place.error("must be true or false")
        return value
    if info.kind == "list":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise place.error("must be a string or a list of strings")
        for item in items:
            if info.vocab and item not in info.vocab:
                raise place.error(f"{item!r} is not one of {', '.join(info.vocab)}")
        return list(items)
    if not isinstance(value, str) or not value.strip():
        raise place.error("must be a non-empty string")
    if info.kind == "choice" and value not in info.vocab:
        raise place.error(f"{value!r} is not one of {', '.join(info.vocab)}")
    if info.kind in ("date", "moment"):
        try:
            normalise_occurred_at(value)
            date.fromisoformat(value[:10])
        except ValueError:
            raise place.error("must be a date written YYYY-MM-DD") from None
    return value


def _field_spec(name: str, value: object, place: _Place) -> FieldSpec:
    info = FIELDS[name]
    if isinstance(value, str):
        return FieldSpec(name, column=_string(value, place).strip())
    raw = _table(
        value,
        place,
        ("column", "default", "by_regime", "values", "or", "formats", "separator"),
    )
    column = _string(raw["column"], place / "column").strip() if "column" in raw else None
    default = None
    if "default" in raw:
        default = _check_value(info, raw["default"], place / "default", blank_ok=False)
    by_regime: dict[str, object] = {}
    for regime, v in _table(raw.get("by_regime", {}), place / "by_regime", REGIMES).items():
        by_regime[regime] = _check_value(info, v, place / "by_regime" / regime, blank_ok=False)
    values: dict[str, object] = {}
    for k, v in _table(raw.get("values", {}), place / "values").items():
        target = info
        if info.kind == "list":  # a list's value map maps each item to one item
            target = FieldInfo("choice", "", info.vocab) if info.vocab else FieldInfo("text", "")
        values[match_key(k)] = _check_value(target, v, place / "values" / k, blank_ok=True)
    fallback: tuple[str, ...] = ()
    if "or" in raw:
        fallback = _strings(raw["or"], place / "or")
        for other in fallback:
            if other not in FIELDS:
                raise (place / "or").error(f"{other!r} is not a tracker field")
            if other == name:
                raise (place / "or").error("a field cannot fall back on itself")
            if FIELDS[other].kind != info.kind and {FIELDS[other].kind, info.kind} != {
                "date",
                "moment",
            }:
                raise (place / "or").error(
                    f"{other} is a {FIELDS[other].kind} field; {name} is a {info.kind} field"
                )
    formats = _strings(raw["formats"], place / "formats") if "formats" in raw else ()
    for fmt in formats:
        _check_format(fmt, place / "formats")
    separator = _string(raw["separator"], place / "separator") if "separator" in raw else None
    if (formats and info.kind not in ("date", "moment") and not info.dated_items) or (
        separator and info.kind != "list"
    ):
        raise place.error(f"{name} is a {info.kind} field: formats/separator do not apply")
    return FieldSpec(name, column, default, by_regime, values, fallback, formats, separator)


def _check_format(fmt: str, place: _Place) -> None:
    if "%" not in fmt:
        raise place.error(f"{fmt!r} is not a date format (e.g. '%d/%m/%Y')")
    try:
        sample = datetime(2016, 10, 3, 14, 30).strftime(fmt)
        datetime.strptime(sample, fmt)
    except ValueError as exc:
        raise place.error(f"{fmt!r} is not a usable date format: {exc}") from None


def parse_mapping(data: Mapping[str, Any], origin: str = "<mapping>") -> TrackerMapping:
    """Check a mapping (the parsed TOML) and return it; :class:`MappingError` if wrong."""
    top = _Place(origin)
    raw = _table(
        dict(data),
        top,
        ("version", "tracker", "fields", "regime", "criteria", "agencies", "information"),
    )
    version = raw.get("version", MAPPING_VERSION)
    if version != MAPPING_VERSION:
        raise (top / "version").error(f"this caseledger reads mapping version {MAPPING_VERSION}")
    options: dict[str, Any] = {}

    tracker = _table(
        raw.get("tracker", {}),
        top / "tracker",
        (
            "sheet",
            "header_row",
            "date_formats",
            "list_separator",
            "excel_serial_dates",
            "delimiter",
            "encoding",
        ),
    )
    place = top / "tracker"
    if "sheet" in tracker:
        options["sheet"] = _string(tracker["sheet"], place / "sheet")
    if "header_row" in tracker:
        header_row = tracker["header_row"]
        if not isinstance(header_row, int) or isinstance(header_row, bool) or header_row < 1:
            raise (place / "header_row").error("must be a row number, 1 or more")
        options["header_row"] = header_row
    if "date_formats" in tracker:
        formats = _strings(tracker["date_formats"], place / "date_formats")
        for fmt in formats:
            _check_format(fmt, place / "date_formats")
        options["date_formats"] = formats
    if "list_separator" in tracker:
        options["list_separator"] = _string(tracker["list_separator"], place / "list_separator")
    if "excel_serial_dates" in tracker:
        if not isinstance(tracker["excel_serial_dates"], bool):
            raise (place / "excel_serial_dates").error("must be true or false")
        options["excel_serial_dates"] = tracker["excel_serial_dates"]
    if "delimiter" in tracker:
        delimiter = _string(tracker["delimiter"], place / "delimiter", empty=True)
        if len(delimiter) != 1:
            raise (place / "delimiter").error("must be one character")
        options["delimiter"] = delimiter
    if "encoding" in tracker:
        encoding = _string(tracker["encoding"], place / "encoding")
        try:
            "".encode(encoding)
        except LookupError:
            raise (place / "encoding").error(f"{encoding!r} is not a text encoding") from None
        options["encoding"] = encoding

    specs: dict[str, FieldSpec] = {}
    for name, value in _table(raw.get("fields", {}), top / "fields", FIELDS).items():
        specs[name] = _field_spec(name, value, top / "fields" / name)
    if "case" not in specs or specs["case"].column is None:
        raise (top / "fields" / "case").error(
            "the mapping must say which column holds the case reference"
        )
    if "agencies_answered" in specs and "agencies_involved" not in specs:
        info = _table(raw.get("information", {}), top / "information")
        if "involved_when_not_recorded" not in info:
            raise (top / "information" / "involved_when_not_recorded").error(
                "the tracker's answers are mapped (fields.agencies_answered) but not which "
                "agencies knew the child (fields.agencies_involved): every InformationReceived "
                "says whether the agency was involved, so map that column or set "
                "[information] involved_when_not_recorded = true or false"
            )
    options["fields"] = specs

    regime = _table(raw.get("regime", {}), top / "regime", ("date", "rules"))
    if "date" in regime:
        dates = _strings(regime["date"], top / "regime" / "date")
        for name in dates:
            if name not in FIELDS or FIELDS[name].kind not in ("date", "moment"):
                raise (top / "regime" / "date").error(f"{name!r} is not a date field")
        options["regime_dates"] = dates
    rules = regime.get("rules", [])
    if not isinstance(rules, list):
        raise (top / "regime" / "rules").error("must be a list of tables")
    parsed_rules = []
    for i, rule in enumerate(rules):
        rp = top / "regime" / f"rules[{i}]"
        r = _table(rule, rp, ("regime", "from", "before"))
        if "regime" not in r:
            raise rp.error("each rule names its regime")
        chosen = _string(r["regime"], rp / "regime")
        if chosen not in REGIMES:
            raise (rp / "regime").error(f"{chosen!r} is not one of {', '.join(REGIMES)}")
        start = _day(r["from"], rp / "from") if "from" in r else None
        before = _day(r["before"], rp / "before") if "before" in r else None
        parsed_rules.append(RegimeRule(chosen, start, before))
    options["regime_rules"] = tuple(parsed_rules)
    if "regime" not in specs and not parsed_rules:
        raise (top / "regime").error(
            "the mapping must say the regime: a column or default in [fields.regime], "
            "or date rules in [regime]"
        )

    criteria = _table(
        raw.get("criteria", {}),
        top / "criteria",
        ("default", "infer", "columns", "reasons", "values"),
    )
    cp = top / "criteria"
    all_criteria = tuple(dict.fromkeys(CRITERIA["wt2015"] + CRITERIA["wt2018"]))
    if "default" in criteria:
        d = _table(criteria["default"], cp / "default", ("finding", "reason"))
        finding = _string(d.get("finding"), cp / "default" / "finding")
        if finding not in FINDINGS:
            raise (cp / "default" / "finding").error(f"must be one of {', '.join(FINDINGS)}")
        options["criteria_default"] = (finding, _string(d.get("reason"), cp / "default" / "reason"))
    if "infer" in criteria:
        infer = _strings(criteria["infer"], cp / "infer")
        for name in infer:
            if name not in INFERABLE:
                raise (cp / "infer").error(
                    f"{name!r} cannot be inferred from a tracker; inferable: {', '.join(INFERABLE)}"
                )
        options["criteria_infer"] = infer
    for key, option in (("columns", "criteria_columns"), ("reasons", "criteria_reasons")):
        table = _table(criteria.get(key, {}), cp / key, all_criteria)
        options[option] = {k: _string(v, cp / key / k).strip() for k, v in table.items()}
    finding_values = dict(FINDING_WORDS)
    for k, v in _table(criteria.get("values", {}), cp / "values").items():
        target = _string(v, cp / "values" / k)
        if target not in FINDINGS:
            raise (cp / "values" / k).error(f"must be one of {', '.join(FINDINGS)}")
        finding_values[match_key(k)] = target
    options["finding_values"] = finding_values

    agencies = _table(raw.get("agencies", {}), top / "agencies")
    options["agency_names"] = {
        match_key(k): _string(v, top / "agencies" / k) for k, v in agencies.items()
    }
    information = _table(
        raw.get("information", {}),
        top / "information",
        ("involved_when_not_recorded", "received_summary"),
    )
    if "involved_when_not_recorded" in information:
        value = information["involved_when_not_recorded"]
        if not isinstance(value, bool):
            raise (top / "information" / "involved_when_not_recorded").error(
                "must be true or false"
            )
        options["involved_when_not_recorded"] = value
    if "received_summary" in information:
        options["received_summary"] = _string(
            information["received_summary"], top / "information" / "received_summary"
        )
    return TrackerMapping(origin=origin, **options)


def load_mapping(path: Path | str) -> TrackerMapping:
    """Read and check a TOML mapping file."""
    where = Path(path)
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"mapping {where} does not exist", field="mapping") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"cannot read mapping {where}: {exc}", field="mapping") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"mapping {where} is not valid TOML: {exc}", field="mapping") from None
    return parse_mapping(data, where.name)
