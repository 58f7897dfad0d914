"""Import a spreadsheet tracker (CSV or ``.xlsx``) into the ledger, driven by a mapping.

A business unit's tracker has one row per case: a reference, a handful of dates
(aware, notified, discussed, decided, ...), the decision and its reasons, the agencies
asked and those that answered.  A mapping file (TOML, documented in
``docs/importing.md``) says which column holds what.  This module turns each row into the
wire-form event lines it evidences and plans an import against a ledger:

* :func:`load_mapping` / :func:`parse_mapping` read and check the mapping;
* :func:`read_tracker` reads the file's header and rows (CSV, or ``.xlsx`` through
  ``openpyxl``);
* :func:`convert_row` is pure: one row and the mapping in, the row's event lines out, or a
  :class:`RowProblem` naming the spreadsheet row, the column and the reason;
* :func:`plan_import` decides per row: new, already imported, changed since it was
  imported, already in the ledger by other means, or bad.  New rows are checked by the
  ledger's own ``record`` on a scratch store, so the validation and the invariants are
  exactly those of ``caseledger record``;
* :func:`record_plan` records every new row in ONE batch through ``CaseLedger.record``.

Idempotency: every imported entry carries the source ``{"title": "tracker row", "ref":
"<file> row <n>", "sha256": <row hash>}``, where the row hash is the SHA-256 of the
canonical JSON of the entries the row evidences (without their sources).  It depends on
the row's content, not on the file's name, the row's position or the file format, so a
re-run, a re-sorted tracker or the same tracker saved as ``.xlsx`` records nothing new.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import re
import tempfile
import time as time_module
import tomllib
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final, Literal, get_args

import orjson

from ledger.application import CaseLedger, ParsedLine, Receipt, Recorder, parse_line
from ledger.catalogue.models import (
    CASE_REF_PATTERN,
    CRITERIA,
    EARLIEST_DATE,
    LATEST_DATE,
    CommunicatedTo,
    NotifyRecipient,
    Outcome,
    Regime,
    normalise_occurred_at,
    occurred_day,
)
from ledger.errors import InputError, InputErrors
from ledger.integrity.canonical import canonical_json
from ledger.store.sqlite import parse_store

__all__ = [
    "FIELDS",
    "SOURCE_TITLE",
    "FieldInfo",
    "FieldSpec",
    "ImportPlan",
    "ImportReport",
    "MappingError",
    "RowPlan",
    "RowProblem",
    "Tracker",
    "TrackerMapping",
    "TrackerRow",
    "convert_row",
    "load_mapping",
    "parse_mapping",
    "plan_import",
    "read_tracker",
    "record_plan",
    "row_hash",
    "run_import",
]

#: Bounds on a workbook, checked before and while openpyxl reads it, so that a crafted
#: file (a zip bomb, a sheet declaring a million rows) is refused in moments instead of
#: filling memory.  A real tracker holds a few thousand rows of a few dozen columns.
MAX_XLSX_UNCOMPRESSED: Final = 256 * 1_048_576
"""The workbook's members together, uncompressed (as the zip declares them)."""
MAX_XLSX_MEMBERS: Final = 1_000
"""The files inside the workbook."""
MAX_XLSX_RATIO: Final = 200
"""How many times a large member (over 1 MiB) may expand (spreadsheet XML: 5 to 50)."""
MAX_TRACKER_ROWS: Final = 100_000
"""Rows of a tracker (CSV or sheet)."""
MAX_TRACKER_COLUMNS: Final = 1_000
"""Columns of a tracker sheet."""
MAX_TRACKER_CELLS: Final = 5_000_000
"""Cells read from a sheet, empty ones included (openpyxl fills gaps with them)."""
MAX_XLSX_SECONDS: Final = 120.0
"""Time spent reading one sheet."""

SOURCE_TITLE: Final = "tracker row"
"""The ``title`` of the source every imported entry carries."""

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

#: The order of a row's entries on the same day (CaseReferred always comes first).
PHASES: Final[tuple[str, ...]] = (
    "CaseReferred",
    "IncidentNotified",
    "InformationRequested",
    "InformationReceived",
    "DiscussionHeld",
    "RecommendationMade",
    "DecisionDelayed",
    "DecisionMade",
    "DecisionCommunicated",
    "ReviewerCommissioned",
    "ReviewCompleted",
    "ReportPublished",
)

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
_DATED_ITEM = re.compile(
    r"^(?P<name>.*?)[\s:(\-–]*(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4}(?:[ T]\d{1,2}:\d{2})?)\)?$"
)
_CASE_REF = re.compile(CASE_REF_PATTERN)


def _key(text: str) -> str:
    """How cells and value-map keys are compared: blanks collapsed, case ignored."""
    return " ".join(text.split()).casefold()


# --- errors ---------------------------------------------------------------------------


class MappingError(InputError):
    """The mapping file (or the tracker's header against it) is wrong.  Exit code 2."""


class RowProblem(InputError):
    """One tracker row cannot be imported: its spreadsheet row, case, column and reason."""

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        line: int | None = None,
        case: str | None = None,
    ) -> None:
        self.case = case
        super().__init__(reason, field=field, line=line)

    def describe(self) -> str:
        where = f"row {self.line}" if self.line is not None else "a row"
        if getattr(self, "case", None):
            where += f" ({self.case})"
        if self.field:
            where += f", {self.field}"
        return f"{where}: {self.reason}"


# --- the mapping ------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """How the mapping fills one tracker field."""

    name: str
    column: str | None = None
    default: object = None
    by_regime: Mapping[str, object] = field(default_factory=dict)
    values: Mapping[str, object] = field(default_factory=dict)  # keys already _key()-ed
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
        values[_key(k)] = _check_value(target, v, place / "values" / k, blank_ok=True)
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
        finding_values[_key(k)] = target
    options["finding_values"] = finding_values

    agencies = _table(raw.get("agencies", {}), top / "agencies")
    options["agency_names"] = {
        _key(k): _string(v, top / "agencies" / k) for k, v in agencies.items()
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
        raise MappingError(f"mapping {where} does not exist", field="--mapping") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"cannot read mapping {where}: {exc}", field="--mapping") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"mapping {where} is not valid TOML: {exc}", field="--mapping") from None
    return parse_mapping(data, where.name)


# --- reading the tracker -----------------------------------------------------------------


@dataclass(frozen=True)
class TrackerRow:
    """One row of the tracker: its spreadsheet row number and its cells by column."""

    number: int
    cells: Mapping[str, Cell]


@dataclass(frozen=True)
class Tracker:
    """A tracker as read: its file name, header and non-blank rows."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[TrackerRow, ...]


def _blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _header(cells: Sequence[Cell]) -> list[str]:
    return ["" if c is None else " ".join(str(c).split()) for c in cells]


def _rows(name: str, grid: Iterable[Sequence[Cell]], header_row: int) -> Tracker:
    header: list[str] | None = None
    rows: list[TrackerRow] = []
    for number, cells in enumerate(grid, start=1):
        if number > MAX_TRACKER_ROWS + header_row:
            raise InputError(
                f"{name} holds more than {MAX_TRACKER_ROWS} rows; split it", field="FILE"
            )
        if number < header_row:
            continue
        if header is None:
            header = _header(cells)
            if not any(header):
                raise MappingError(
                    f"{name}: row {header_row} (tracker.header_row) is empty; it should hold "
                    "the column names",
                    field="tracker.header_row",
                )
            continue
        if all(_blank(c) for c in cells):
            continue
        values: dict[str, Cell] = {}
        for column, cell in zip(header, cells, strict=False):
            if column and column not in values:
                values[column] = cell
        rows.append(TrackerRow(number, values))
    if header is None:
        raise MappingError(
            f"{name} has no row {header_row} to read the column names from",
            field="tracker.header_row",
        )
    return Tracker(name, tuple(header), tuple(rows))


def read_tracker(path: Path | str, mapping: TrackerMapping) -> Tracker:
    """Read a CSV or ``.xlsx`` tracker and check its header against the mapping."""
    where = Path(path)
    if not where.is_file():
        raise InputError(f"{where} is not a file", field="FILE")
    suffix = where.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        tracker = _read_xlsx(where, mapping)
    elif suffix in (".csv", ".txt", ".tsv"):
        tracker = _read_csv(where, mapping)
    elif suffix == ".xls":
        raise InputError(
            f"{where.name} is an old-style Excel file: open it and save it as .xlsx or CSV",
            field="FILE",
        )
    else:
        raise InputError(f"{where.name}: a tracker is a .csv or an .xlsx file", field="FILE")
    check_columns(tracker, mapping)
    return tracker


def _read_csv(where: Path, mapping: TrackerMapping) -> Tracker:
    data = where.read_bytes()
    encodings = [mapping.encoding] if mapping.encoding else ["utf-8-sig", "cp1252"]
    text = None
    for encoding in encodings:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise InputError(
            f"{where.name} is not UTF-8 or Windows-1252 text: set tracker.encoding in the mapping",
            field="FILE",
        )
    if "\x00" in text:
        raise InputError(f"{where.name} is not a text (CSV) file", field="FILE")
    delimiter = "\t" if where.suffix.lower() == ".tsv" else mapping.delimiter
    try:
        grid = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"{where.name} is not a readable CSV file: {exc}", field="FILE") from None
    return _rows(where.name, grid, mapping.header_row)


def _read_xlsx(where: Path, mapping: TrackerMapping) -> Tracker:
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    with warnings.catch_warnings():  # openpyxl warns about styles and odd cells: noise here
        warnings.simplefilter("ignore")
        return _read_book(where, mapping, load_workbook)


def check_workbook_archive(where: Path) -> None:
    """Refuse a workbook whose zip declares too much data or too high a compression
    ratio, before anything is decompressed (Python's zip reader never inflates a member
    beyond its declared size, so the declared sizes bound what openpyxl can read)."""
    try:
        with zipfile.ZipFile(where) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            f"{where.name} cannot be read as an Excel workbook: {exc}", field="FILE"
        ) from None
    if len(members) > MAX_XLSX_MEMBERS:
        raise InputError(
            f"{where.name} holds {len(members)} files; a workbook may hold at most "
            f"{MAX_XLSX_MEMBERS}",
            field="FILE",
        )
    total = sum(m.file_size for m in members)
    if total > MAX_XLSX_UNCOMPRESSED:
        raise InputError(
            f"{where.name} would expand to {total} bytes; a workbook may expand to at most "
            f"{MAX_XLSX_UNCOMPRESSED} bytes ({MAX_XLSX_UNCOMPRESSED // 1_048_576} MiB): "
            "save it as CSV or split it",
            field="FILE",
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1_048_576 and ratio > MAX_XLSX_RATIO:
            raise InputError(
                f"{where.name}: {member.filename} expands {ratio:.0f} times (at most "
                f"{MAX_XLSX_RATIO}); this is not an ordinary workbook",
                field="FILE",
            )


def _bounded_grid(where: Path, sheet: Any) -> list[list[Cell]]:
    """The sheet's rows, refused beyond the row, column, cell and time bounds."""
    name = f"{where.name}: sheet {sheet.title!r}"
    rows, columns = getattr(sheet, "max_row", None), getattr(sheet, "max_column", None)
    if isinstance(rows, int) and rows > MAX_TRACKER_ROWS:
        raise InputError(
            f"{name} declares {rows} rows; a tracker holds at most {MAX_TRACKER_ROWS}",
            field="FILE",
        )
    if isinstance(columns, int) and columns > MAX_TRACKER_COLUMNS:
        raise InputError(
            f"{name} declares {columns} columns; a tracker holds at most {MAX_TRACKER_COLUMNS}",
            field="FILE",
        )
    grid: list[list[Cell]] = []
    cells = 0
    deadline = time_module.monotonic() + MAX_XLSX_SECONDS
    for row in sheet.iter_rows(values_only=True):
        cells += len(row)
        if len(grid) >= MAX_TRACKER_ROWS or cells > MAX_TRACKER_CELLS:
            raise InputError(
                f"{name} holds more than {MAX_TRACKER_ROWS} rows or {MAX_TRACKER_CELLS} "
                "cells (empty ones included); delete the unused rows and columns or save "
                "it as CSV",
                field="FILE",
            )
        if len(row) > MAX_TRACKER_COLUMNS:
            if any(v is not None for v in row[MAX_TRACKER_COLUMNS:]):
                raise InputError(
                    f"{name} row {len(grid) + 1} has more than {MAX_TRACKER_COLUMNS} columns",
                    field="FILE",
                )
            row = row[:MAX_TRACKER_COLUMNS]
        if len(grid) % 1_000 == 0 and time_module.monotonic() > deadline:
            raise InputError(
                f"{name} took more than {MAX_XLSX_SECONDS:.0f} seconds to read; save it as CSV",
                field="FILE",
            )
        grid.append(list(row))
    return grid


def _read_book(where: Path, mapping: TrackerMapping, load_workbook: Any) -> Tracker:
    check_workbook_archive(where)
    try:
        book = load_workbook(where, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            f"{where.name} cannot be read as an Excel workbook: {exc}", field="FILE"
        ) from None
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise InputError(
            f"{where.name} cannot be read as an Excel workbook ({type(exc).__name__}: {exc}); "
            "open it in Excel and save it again, or save it as CSV",
            field="FILE",
        ) from None
    try:
        if mapping.sheet is not None:
            if mapping.sheet not in book.sheetnames:
                raise MappingError(
                    f"{where.name} has no sheet {mapping.sheet!r} (tracker.sheet); sheets: "
                    f"{', '.join(book.sheetnames)}",
                    field="tracker.sheet",
                )
            sheet = book[mapping.sheet]
        else:
            sheet = book.worksheets[0]
        try:
            grid = _bounded_grid(where, sheet)
        except InputError:
            raise
        except Exception as exc:  # a damaged sheet inside a readable workbook
            raise InputError(
                f"{where.name}: sheet {sheet.title!r} cannot be read ({type(exc).__name__}: "
                f"{exc}); open it in Excel and save it again, or save it as CSV",
                field="FILE",
            ) from None
    finally:
        book.close()
    return _rows(where.name, grid, mapping.header_row)


def _closest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate most like ``name``: most words in common, then most letters."""
    words = set(_key(name).split())

    def score(candidate: str) -> tuple[float, float]:
        theirs = set(_key(candidate).split())
        shared = len(words & theirs) / len(words | theirs) if words | theirs else 0.0
        return shared, difflib.SequenceMatcher(None, _key(name), _key(candidate)).ratio()

    best = max(candidates, key=score, default=None)
    if best is None:
        return None
    shared, letters = score(best)
    return best if shared > 0 or letters >= 0.6 else None


def check_columns(tracker: Tracker, mapping: TrackerMapping) -> None:
    """Every column the mapping names is in the tracker's header (blanks and case aside)."""
    present = {_key(c): c for c in tracker.columns if c}
    missing = []
    for column, where in mapping.columns().items():
        if _key(column) not in present:
            hint = _closest(column, list(present.values()))
            missing.append(f"{column!r} ({where})" + (f", did you mean {hint!r}?" if hint else ""))
    if missing:
        raise MappingError(
            f"{tracker.name}: the mapping names column(s) not in the header row "
            f"{mapping.header_row}: {'; '.join(missing)}. The header holds: "
            f"{', '.join(c for c in tracker.columns if c)}",
            field="--mapping",
        )


# --- converting one row ------------------------------------------------------------------


def _format_example(fmt: str) -> str:
    return datetime(2016, 10, 3).strftime(fmt)


def _moment_text(moment: datetime, day_only: bool) -> str:
    if moment.tzinfo is not None:
        moment = moment.replace(tzinfo=None)  # a tracker's times are local (Europe/London)
    if day_only or moment.time() == time(0):
        return moment.date().isoformat()
    return moment.replace(microsecond=0).isoformat(
        timespec="minutes" if moment.second == 0 else "seconds"
    )


class _Row:
    """Reads the tracker fields of one row through the mapping, remembering provenance."""

    def __init__(self, row: TrackerRow, mapping: TrackerMapping) -> None:
        self.row = row
        self.mapping = mapping
        self.cells = {_key(k): v for k, v in row.cells.items()}
        self.case: str | None = None
        self.regime: str | None = None
        self.origin: dict[str, str] = {}  # tracker field -> "column `X`" / "the mapping"
        self.notes: dict[str, str] = {}  # tracker field -> why a fallback was used

    # -- errors and provenance --

    def problem(self, name: str | None, reason: str) -> RowProblem:
        where = None
        if name is not None:
            spec = self.mapping.fields.get(name)
            where = (
                f"column `{spec.column}`" if spec is not None and spec.column else f"fields.{name}"
            )
        return RowProblem(reason, field=where, line=self.row.number, case=self.case)

    def cell(self, column: str) -> Cell:
        return self.cells.get(_key(column))

    # -- reading a field --

    def raw(self, name: str) -> tuple[Cell, str] | None:
        """The field's own non-blank cell, else its fallbacks' (recursively)."""
        return self._raw(name, set())

    def _raw(self, name: str, seen: set[str]) -> tuple[Cell, str] | None:
        seen.add(name)
        spec = self.mapping.fields.get(name)
        if spec is not None and spec.column is not None:
            value = self.cell(spec.column)
            if not _blank(value):
                mapped = self._mapped(spec, value)
                if not (isinstance(mapped, str) and mapped == ""):
                    return value, name
        fallback = spec.fallback if spec is not None and spec.fallback else None
        for other in fallback or BUILTIN_FALLBACKS.get(name, ()):
            if other in seen:
                continue
            found = self._raw(other, seen)
            if found is not None:
                return found
        return None

    @staticmethod
    def _mapped(spec: FieldSpec, value: Cell) -> object:
        if isinstance(value, str) and spec.values:
            return spec.values.get(_key(value), value)
        return value

    def default(self, name: str) -> object:
        spec = self.mapping.fields.get(name)
        if spec is None:
            return None
        if self.regime is not None and self.regime in spec.by_regime:
            value = spec.by_regime[self.regime]
        else:
            value = spec.default
        if isinstance(value, str) and self.case is not None:
            return value.replace("{case}", self.case)
        if isinstance(value, list):
            return [v.replace("{case}", self.case or "") for v in value]
        return value

    def _remember(self, name: str, source: str | None, used_default: bool) -> None:
        if used_default:
            self.origin[name] = f"fields.{name} default"
            return
        assert source is not None
        column = self.mapping.fields[source].column
        self.origin[name] = f"column `{column}`"
        own = self.mapping.fields.get(name)
        if source == name or own is None:  # a built-in fallback of an unmapped field
            return
        human = name.replace("_", " ")
        if own.column:
            self.notes[name] = (
                f"the tracker has no `{own.column}` for this row, so the {human} was taken "
                f"from column `{column}`"
            )
        else:
            self.notes[name] = (
                f"the tracker does not record the {human}, so it was taken from column `{column}`"
            )

    def value(self, name: str) -> object:
        """The field's value (typed by its kind), a default, or None when absent."""
        info = FIELDS[name]
        found = self.raw(name)
        if found is None:
            value = self.default(name)
            if value is None:
                return None
            self._remember(name, None, True)
            return value
        cell, source = found
        self._remember(name, source, False)
        spec = self.mapping.fields[source]
        kind = info.kind
        if kind in ("date", "moment"):
            return self._date(source, cell, spec, day_only=kind == "date")
        if kind == "bool":
            return self._bool(source, cell, spec)
        if kind == "list":
            return self._list(name, source, cell, spec)
        text = self._text(cell)
        mapped = spec.values.get(_key(text), text) if spec.values else text
        if kind == "choice":
            return self._choice(name, source, text, mapped, spec)
        return mapped

    @staticmethod
    def _text(cell: Cell) -> str:
        if isinstance(cell, bool):
            return "yes" if cell else "no"
        if isinstance(cell, float) and cell.is_integer():
            return str(int(cell))
        if isinstance(cell, datetime):
            return _moment_text(cell, False)
        if isinstance(cell, date):
            return cell.isoformat()
        # a cell's line breaks may be Windows ones (CSV, or Excel's _x000D_): the record
        # takes newlines only, carriage returns being control characters
        return str(cell).replace("\r\n", "\n").replace("\r", "\n").strip()

    def _choice(self, name: str, source: str, text: str, mapped: object, spec: FieldSpec) -> str:
        vocab = FIELDS[name].vocab
        if isinstance(mapped, str):
            for word in vocab:
                if _key(word) == _key(mapped):
                    return word
        known = ", ".join(repr(k) for k in spec.values) if spec.values else "none"
        raise self.problem(
            source,
            f"{text!r} is not a known {name.replace('_', ' ')}: add it to "
            f"[fields.{source}.values] (known: {known}) or write one of {', '.join(vocab)}",
        )

    def _bool(self, name: str, cell: Cell, spec: FieldSpec) -> bool:
        if isinstance(cell, bool):
            return cell
        text = self._text(cell)
        mapped = spec.values.get(_key(text), text) if spec.values else text
        if isinstance(mapped, bool):
            return mapped
        if isinstance(mapped, str) and _key(mapped) in TRUE_WORDS:
            return True
        if isinstance(mapped, str) and _key(mapped) in FALSE_WORDS:
            return False
        raise self.problem(
            name, f"{text!r} is not yes or no: add it to [fields.{name}.values] as true or false"
        )

    def _date(self, name: str, cell: Cell, spec: FieldSpec, *, day_only: bool) -> str:
        formats = spec.formats or self.mapping.date_formats
        return self.parse_date(name, cell, formats, day_only=day_only)

    def parse_date(self, name: str, cell: Cell, formats: Sequence[str], *, day_only: bool) -> str:
        if isinstance(cell, datetime):
            return self._plausible(name, cell, repr(cell), day_only)
        if isinstance(cell, date):
            return self._plausible(name, datetime.combine(cell, time(0)), repr(cell), day_only)
        if isinstance(cell, bool):
            raise self.problem(name, f"{cell!r} is not a date")
        if isinstance(cell, int | float):
            if not self.mapping.excel_serial_dates:
                raise self.problem(
                    name,
                    f"{cell!r} is a number, not a date (if the tracker holds Excel serial "
                    "day numbers, set tracker.excel_serial_dates = true in the mapping)",
                )
            from openpyxl.utils.datetime import from_excel  # type: ignore[import-untyped]

            try:
                moment = from_excel(cell)
            except (ValueError, OverflowError, TypeError):
                moment = None
            if not isinstance(moment, datetime) or not 1 <= cell < 2_958_466:
                raise self.problem(name, f"{cell!r} is not an Excel serial date")
            return self._plausible(name, moment, repr(cell), day_only)
        text = self._text(cell)
        tried = list(dict.fromkeys([*formats, *ISO_FORMATS]))
        for fmt in tried:
            try:
                moment = datetime.strptime(text, fmt)
            except ValueError:
                continue
            if moment.year >= 1900:  # "03/10/16" read by %Y is the year 16: try on
                return self._plausible(name, moment, repr(text), day_only)
        examples = ", ".join(f"{f} (e.g. {_format_example(f)})" for f in formats)
        raise self.problem(name, f"{text!r} is not a date in the tracker's formats: {examples}")

    def _plausible(self, name: str, moment: datetime, shown: str, day_only: bool) -> str:
        if not EARLIEST_DATE <= moment.date() <= LATEST_DATE:
            raise self.problem(
                name,
                f"{shown} is not a plausible date (the ledger works with "
                f"{EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()})",
            )
        return _moment_text(moment, day_only)

    def _list(self, name: str, source: str, cell: Cell, spec: FieldSpec) -> list[str]:
        info = FIELDS[name]
        separator = spec.separator or self.mapping.list_separator
        text = self._text(cell)
        items: list[str] = []
        for part in text.replace("\r", "\n").replace(separator, "\n").split("\n"):
            item = part.strip()
            if FIELDS[source].dated_items and (dated := _DATED_ITEM.match(item)):
                item = dated.group("name").strip().rstrip("-–:(").strip() or item
            if not item or _key(item) in NONE_WORDS:
                continue
            mapped = spec.values.get(_key(item), item) if spec.values else item
            if isinstance(mapped, str) and mapped == "":
                continue
            if not isinstance(mapped, str):
                raise self.problem(source, f"{item!r} maps to {mapped!r}, not a name")
            if info.agencies:
                mapped = self.mapping.agency_names.get(_key(mapped), mapped)
            if info.vocab:
                mapped = self._choice(name, source, item, mapped, spec)
            if mapped not in items:
                items.append(mapped)
        return items

    # -- typed accessors --

    def text(self, name: str) -> str | None:
        value = self.value(name)
        assert value is None or isinstance(value, str)
        return value

    def strings(self, name: str) -> list[str]:
        value = self.value(name)
        assert value is None or isinstance(value, list)
        return list(value or [])

    def flag(self, name: str) -> bool | None:
        value = self.value(name)
        assert value is None or isinstance(value, bool)
        return value

    def need(self, name: str, what: str) -> str:
        value = self.text(name)
        if value is None:
            raise self.problem(name, self._missing(name, what))
        return value

    def _missing(self, name: str, what: str) -> str:
        spec = self.mapping.fields.get(name)
        if spec is None:
            return (
                f"{what} is needed but the mapping does not map fields.{name}: give it a "
                "column or a default"
            )
        return f"{what} is needed and this row has none (and the mapping gives no default)"


def _choose_regime(r: _Row) -> str:
    """The regime: the row's own cell, else the mapping's date rules, else the default."""
    spec = r.mapping.fields.get("regime")
    if spec is not None and r.raw("regime") is not None:
        value = r.text("regime")
        assert value is not None
        return value
    for name in r.mapping.regime_dates:
        if r.mapping.regime_rules and r.raw(name) is not None:
            moment = r.value(name)
            assert isinstance(moment, str)
            day = occurred_day(normalise_occurred_at(moment))
            for rule in r.mapping.regime_rules:
                if rule.holds(day):
                    r.notes["regime"] = (
                        f"regime {rule.regime} derived at import from the {name.replace('_', ' ')} "
                        f"({day.isoformat()}) by the mapping's rule: {rule.describe()}"
                    )
                    r.origin["regime"] = "[regime] rules"
                    return rule.regime
            raise r.problem(
                name, f"no [regime] rule covers {day.isoformat()}: add one to the mapping"
            )
    default = r.default("regime")
    if isinstance(default, str):
        r.origin["regime"] = "fields.regime default"
        return default
    raise r.problem(
        "regime",
        "the regime cannot be told: the row has no regime and none of the dates the "
        f"[regime] rules use ({', '.join(r.mapping.regime_dates)})",
    )


def _infer(criterion: str, referral: Mapping[str, Any], r: _Row) -> tuple[str, str] | None:
    harm = referral["harm"]
    abuse = referral["abuse_or_neglect"]
    column = r.origin.get("harm" if criterion != "abuse_or_neglect" else "abuse_or_neglect")
    finding: str | None = None
    if criterion == "abuse_or_neglect":
        finding = {"known": "met", "suspected": "met", "not-suspected": "not-met"}[abuse]
        fact = f"abuse or neglect {abuse}"
    elif criterion == "child_died":
        finding = "met" if harm == "death" else "not-met"
        fact = f"harm {harm}"
    else:
        finding = {"serious-harm": "met", "other": "not-met"}.get(harm)
        fact = f"harm {harm}"
    if finding is None:
        return None
    return finding, (
        f"Inferred at import from the tracker's {column} ({fact}); the tracker records no "
        "finding of the decision-maker on this criterion."
    )


def _criteria(r: _Row, regime: str, referral: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    mapping = r.mapping
    out: dict[str, dict[str, str]] = {}
    for criterion in CRITERIA[regime]:
        column = mapping.criteria_columns.get(criterion)
        cell = r.cell(column) if column else None
        if column and not _blank(cell):
            text = r._text(cell)
            finding = mapping.finding_values.get(_key(text))
            if finding is None:
                raise RowProblem(
                    f"{text!r} is not a finding: add it to [criteria.values] as met, not-met "
                    "or unclear",
                    field=f"column `{column}`",
                    line=r.row.number,
                    case=r.case,
                )
            reason_column = mapping.criteria_reasons.get(criterion)
            reason_cell = r.cell(reason_column) if reason_column else None
            reason = (
                r._text(reason_cell)
                if reason_column and not _blank(reason_cell)
                else f"Recorded in the tracker (column `{column}`: {text!r})."
            )
            out[criterion] = {"finding": finding, "reason": reason}
            continue
        inferred = _infer(criterion, referral, r) if criterion in mapping.criteria_infer else None
        if inferred is not None:
            out[criterion] = {"finding": inferred[0], "reason": inferred[1]}
        elif mapping.criteria_default is not None:
            finding, reason = mapping.criteria_default
            out[criterion] = {"finding": finding, "reason": reason}
        else:
            raise RowProblem(
                f"a decision needs a finding on every criterion of {regime}, and the row has "
                f"none on {criterion}: map a column in [criteria.columns] or give "
                "[criteria] default",
                field="criteria",
                line=r.row.number,
                case=r.case,
            )
    return out


@dataclass
class Conversion:
    """The entries one row evidences, in recording order, and where each field came from."""

    row: int
    case: str
    lines: list[dict[str, Any]]
    origins: list[dict[str, str]]  # per line: event field -> column / mapping place


class _Builder:
    """Collects a row's entries with the provenance of their fields."""

    def __init__(self, r: _Row) -> None:
        self.r = r
        self.lines: list[dict[str, Any]] = []
        self.origins: list[dict[str, str]] = []

    def add(
        self, kind: str, occurred_at: tuple[str, str], **fields: tuple[object, str | None]
    ) -> None:
        """``fields``: event field -> (value, tracker field it came from or None)."""
        r = self.r
        when, when_field = occurred_at
        assert r.case is not None
        line: dict[str, Any] = {"type": kind, "case": r.case, "occurred_at": when}
        origin = {"occurred_at": r.origin.get(when_field, when_field)}
        notes = []
        if when_field in r.notes:
            notes.append(r.notes[when_field])
        for name, (value, source) in fields.items():
            if value is None or value == []:
                continue
            line[name] = value
            if source is not None:
                origin[name] = r.origin.get(source, f"fields.{source}")
                if source in r.notes and r.notes[source] not in notes:
                    notes.append(r.notes[source])
        if notes:
            line["note"] = "Imported from the tracker: " + "; ".join(notes) + "."
        self.lines.append(line)
        self.origins.append(origin)


def convert_row(row: TrackerRow, mapping: TrackerMapping) -> Conversion:
    """The wire-form entries a tracker row evidences (without sources), or :class:`RowProblem`.

    Pure: reads nothing but the row and the mapping.  Each entry is there only if the row
    evidences it (a date for it, or for requests and answers, the agencies' names).
    """
    r = _Row(row, mapping)
    case = r.text("case")
    if case is None:
        raise r.problem("case", "the row has no case reference")
    if not _CASE_REF.match(case):
        raise r.problem(
            "case",
            f"{case!r} is not a case reference: 1-40 letters, digits, -, _ or / (no spaces)",
        )
    r.case = case
    regime = _choose_regime(r)
    if regime not in REGIMES:
        raise r.problem("regime", f"{regime!r} is not one of {', '.join(REGIMES)}")
    r.regime = regime
    b = _Builder(r)

    def when(name: str) -> tuple[str, str] | None:
        value = r.value(name)
        if value is None:
            return None
        assert isinstance(value, str)
        return value, name

    # CaseReferred
    referred_at = when("referral_date")
    if referred_at is None:
        raise r.problem(
            "referral_date", "the row has neither a referral date nor an awareness date"
        )
    awareness = r.value("awareness_date")
    if awareness is None:
        raise r.problem("awareness_date", r._missing("awareness_date", "the awareness date"))
    incident = r.value("incident_date")
    if incident is None:
        raise r.problem("incident_date", r._missing("incident_date", "the incident date"))
    referral = {
        "regime": regime,
        "harm": r.need("harm", "the harm (death, serious-harm, other)"),
        "abuse_or_neglect": r.need("abuse_or_neglect", "whether abuse or neglect was known"),
    }
    b.add(
        "CaseReferred",
        referred_at,
        regime=(regime, "regime"),
        subject=(r.text("subject") or case, "subject"),
        incident_date=(incident, "incident_date"),
        aware_date=(awareness, "awareness_date"),
        harm=(referral["harm"], "harm"),
        abuse_or_neglect=(referral["abuse_or_neglect"], "abuse_or_neglect"),
        looked_after=(r.flag("looked_after"), "looked_after"),
        home_area=(r.need("home_area", "the home area"), "home_area"),
        incident_area=(r.text("incident_area"), "incident_area"),
        other_areas=(r.strings("other_areas"), "other_areas"),
        referrer=(r.need("referrer", "the referrer"), "referrer"),
        route=(r.need("route", "the route (statutory or discretionary)"), "route"),
        summary=(r.need("summary", "a summary"), "summary"),
    )

    # IncidentNotified
    notified = when("notification_date")
    if notified is not None:
        recipients = r.strings("notified_to")
        if not recipients:
            raise r.problem("notified_to", r._missing("notified_to", "who was notified"))
        b.add(
            "IncidentNotified",
            notified,
            recipients=(recipients, "notified_to"),
            reference=(r.text("notification_reference"), "notification_reference"),
        )

    # InformationRequested / InformationReceived
    asked = r.strings("agencies_asked")
    if asked:
        requested = when("information_requested_date")
        if requested is None:
            raise r.problem(
                "information_requested_date",
                "agencies were asked but the row has no date for the requests: map "
                "fields.information_requested_date (a column, or `or` another date)",
            )
        for agency in asked:
            b.add(
                "InformationRequested",
                requested,
                agency=(agency, "agencies_asked"),
                asked_for=(r.text("asked_for") or "minimum-data", "asked_for"),
                due=(r.value("information_due"), "information_due"),
            )
    answered_spec = mapping.fields.get("agencies_answered")
    answers = _answers(r, answered_spec) if answered_spec is not None else []
    involved: list[str] | None = None
    if r.raw("agencies_involved") is not None:
        involved = r.strings("agencies_involved")
    for agency, answered_at in answers:
        if answered_at is None:
            answered_at = when("information_received_date")
            if answered_at is None:
                raise r.problem(
                    "agencies_answered",
                    f"{agency} answered but the row has no date for the answer: write the "
                    "date after the agency (e.g. 'Police 18/02/2026') or map "
                    "fields.information_received_date",
                )
        if involved is not None:
            knew = agency in involved
            knew_from = "agencies_involved"
        elif mapping.involved_when_not_recorded is None:
            raise r.problem(
                "agencies_involved",
                f"{agency} answered but the row does not say which agencies knew the child "
                "or family: fill the column (write 'none' if no agency did) or set "
                "[information] involved_when_not_recorded in the mapping",
            )
        else:
            knew = mapping.involved_when_not_recorded
            knew_from = "information.involved_when_not_recorded"
            r.origin[knew_from] = "[information] involved_when_not_recorded"
        summary = (mapping.received_summary or _RECEIVED).replace("{agency}", agency)
        b.add(
            "InformationReceived",
            answered_at,
            agency=(agency, "agencies_answered"),
            involved=(knew, knew_from),
            summary=(summary, None),
        )

    # DiscussionHeld
    discussed = when("discussion_date")
    if discussed is not None:
        attendees = r.strings("attendees")
        if not attendees:
            raise r.problem("attendees", r._missing("attendees", "who attended the discussion"))
        b.add(
            "DiscussionHeld",
            discussed,
            forum=(
                r.text("discussion_forum")
                or ("scr-subgroup" if regime == "wt2015" else "rapid-review-meeting"),
                "discussion_forum",
            ),
            attendees=(attendees, "attendees"),
            summary=(r.text("discussion_summary") or _DISCUSSED, "discussion_summary"),
        )

    # RecommendationMade
    recommended = when("recommendation_date")
    if recommended is not None:
        b.add(
            "RecommendationMade",
            recommended,
            to=(
                r.text("recommendation_to") or ("chair" if regime == "wt2015" else "partners"),
                "recommendation_to",
            ),
            outcome=(
                r.need("recommended_outcome", "the outcome recommended"),
                "recommended_outcome",
            ),
            rationale=(
                r.text("recommendation_rationale") or _RECOMMENDED,
                "recommendation_rationale",
            ),
        )

    # DecisionDelayed
    delay = r.text("delay_reason")
    if delay is not None and r.raw("delay_reason") is not None:
        delayed_at = when("delay_date")
        if delayed_at is None:
            raise r.problem("delay_date", r._missing("delay_date", "the date of the delay"))
        expected = r.value("delay_expected_by")
        if expected is None:
            raise r.problem(
                "delay_expected_by",
                r._missing("delay_expected_by", "when the decision was expected"),
            )
        b.add(
            "DecisionDelayed",
            delayed_at,
            reason=(delay, "delay_reason"),
            expected_by=(expected, "delay_expected_by"),
            approved_by=(
                r.need("delay_approved_by", "who approved the delay"),
                "delay_approved_by",
            ),
        )

    # DecisionMade
    decided = when("decision_date")
    has_outcome = r.raw("outcome") is not None
    if decided is None and has_outcome:
        raise r.problem("decision_date", "the row has a decision but no decision date")
    if decided is not None:
        if not has_outcome:
            raise r.problem("outcome", "the row has a decision date but no decision")
        outcome = r.need("outcome", "the decision")
        decided_by = r.strings("decided_by")
        if not decided_by:
            raise r.problem("decided_by", r._missing("decided_by", "who decided"))
        nature = r.text("nature")
        if outcome in ("review", "other-review") and nature is None:
            raise r.problem(
                "nature",
                f"a decision to hold a review ({outcome}) must say its nature: map "
                "fields.nature to a column or give it a default",
            )
        b.add(
            "DecisionMade",
            decided,
            outcome=(outcome, "outcome"),
            decided_by=(decided_by, "decided_by"),
            criteria=(_criteria(r, regime, referral), None),
            rationale=(r.need("rationale", "the reasons for the decision"), "rationale"),
            nature=(nature if outcome in ("review", "other-review") else None, "nature"),
        )

    # DecisionCommunicated
    communicated = when("communicated_date")
    if communicated is not None:
        to = r.strings("communicated_to")
        if not to:
            raise r.problem("communicated_to", r._missing("communicated_to", "to whom it was sent"))
        b.add("DecisionCommunicated", communicated, to=(to, "communicated_to"))

    # ReviewerCommissioned, ReviewCompleted, ReportPublished
    commissioned = when("reviewer_commissioned_date")
    if commissioned is not None:
        b.add(
            "ReviewerCommissioned",
            commissioned,
            reviewer=(r.need("reviewer", "the reviewer"), "reviewer"),
            independence=(
                r.text("reviewer_independence") or _INDEPENDENCE,
                "reviewer_independence",
            ),
        )
    completed = when("completed_date")
    if completed is not None:
        b.add(
            "ReviewCompleted",
            completed,
            summary=(r.text("completion_summary"), "completion_summary"),
        )
    published = when("published_date")
    if published is not None:
        b.add(
            "ReportPublished",
            published,
            location=(
                r.need("publication_location", "where it was published"),
                "publication_location",
            ),
        )

    order = sorted(
        range(len(b.lines)),
        key=lambda i: (
            i != 0,
            occurred_day(normalise_occurred_at(b.lines[i]["occurred_at"])),
            PHASES.index(b.lines[i]["type"]),
            i,
        ),
    )
    return Conversion(row.number, case, [b.lines[i] for i in order], [b.origins[i] for i in order])


_RECEIVED = "The tracker records that {agency} answered; the reply itself is not in the tracker."
_DISCUSSED = "Recorded in the tracker; the minutes are not in the tracker."
_RECOMMENDED = "Recorded in the tracker; the recommendation's reasons are not in the tracker."
_INDEPENDENCE = "Not recorded in the tracker."


def _answers(r: _Row, spec: FieldSpec) -> list[tuple[str, tuple[str, str] | None]]:
    """The answering agencies, each with its own date when the item carries one."""
    found = r.raw("agencies_answered")
    if found is None:
        return []
    r._remember("agencies_answered", found[1], False)
    cell = found[0]
    separator = spec.separator or r.mapping.list_separator
    text = r._text(cell)
    formats = spec.formats or r.mapping.date_formats
    out: list[tuple[str, tuple[str, str] | None]] = []
    for part in text.replace("\r", "\n").replace(separator, "\n").split("\n"):
        item = part.strip()
        if not item or _key(item) in NONE_WORDS:
            continue
        answered_at: tuple[str, str] | None = None
        match = _DATED_ITEM.match(item)
        if match and match.group("name").strip():
            stamp = r.parse_date("agencies_answered", match.group("date"), formats, day_only=False)
            answered_at = (stamp, "agencies_answered")
            item = match.group("name").strip().rstrip("-–:(").strip()
        name = spec.values.get(_key(item), item) if spec.values else item
        if isinstance(name, str) and name == "":
            continue
        if not isinstance(name, str):
            raise r.problem("agencies_answered", f"{item!r} maps to {name!r}, not a name")
        name = r.mapping.agency_names.get(_key(name), name)
        if all(name != a for a, _ in out):
            out.append((name, answered_at))
    return out


def row_hash(lines: Sequence[Mapping[str, Any]]) -> str:
    """The SHA-256 of the canonical JSON of a row's entries (without their sources)."""
    return hashlib.sha256(
        canonical_json([{k: v for k, v in line.items() if k != "sources"} for line in lines])
    ).hexdigest()


def with_sources(
    lines: Sequence[Mapping[str, Any]], file_name: str, row: int
) -> list[dict[str, Any]]:
    """The lines, each carrying the tracker row it came from in ``sources``."""
    digest = row_hash(lines)
    source = {"title": SOURCE_TITLE, "ref": f"{file_name} row {row}", "sha256": digest}
    return [{**line, "sources": [source]} for line in lines]


# --- planning and recording an import ------------------------------------------------------

RowStatus = Literal["new", "imported", "changed", "exists", "bad"]


@dataclass
class RowPlan:
    """What an import does with one row."""

    number: int
    case: str | None
    status: RowStatus
    lines: list[dict[str, Any]] = field(default_factory=list)
    row_hash: str | None = None
    problem: RowProblem | None = None
    differences: list[str] = field(default_factory=list)
    imported_from: str | None = None  # for imported/changed rows: the earlier source ref
    origins: list[dict[str, str]] = field(default_factory=list, repr=False)

    def message(self) -> str:
        """One sentence saying what happens to the row and, if needed, what to do."""
        case = self.case or "?"
        if self.status == "new":
            return f"{len(self.lines)} entries for {case}"
        if self.status == "imported":
            return f"{case}: already imported (from {self.imported_from}); nothing new"
        if self.status == "changed":
            what = "; ".join(self.differences) or "its content differs"
            return (
                f"{case} was imported from an earlier version of this row "
                f"({self.imported_from}) and the row has changed since: {what}. Nothing "
                "was imported from it: the ledger never rewrites or duplicates entries. "
                "Record what changed with `caseledger record`: an EntryCorrected for each "
                "changed entry and a new entry for each new step, each citing the source "
                f'{{"title": "{SOURCE_TITLE}", "ref": "<file> row {self.number}", "sha256": '
                f'"{self.row_hash}"}} so that later imports treat this row as done.'
            )
        if self.status == "exists":
            return (
                f"{case} is already in the ledger, recorded without this tracker; nothing "
                "was imported from this row. Record any step the ledger lacks with "
                f'`caseledger record`, citing the source {{"title": "{SOURCE_TITLE}", '
                f'"ref": "<file> row {self.number}", "sha256": "{self.row_hash}"}} so that '
                "later imports treat this row as done."
            )
        assert self.problem is not None
        return self.problem.describe()


@dataclass
class ImportPlan:
    """Every row's fate; the new rows' lines carry their sources."""

    file: str
    rows: list[RowPlan]

    def having(self, *status: RowStatus) -> list[RowPlan]:
        return [row for row in self.rows if row.status in status]

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Every entry the import would record, in order."""
        return [line for row in self.having("new") for line in row.lines]

    def problems(self) -> list[RowProblem]:
        return [row.problem for row in self.having("bad") if row.problem is not None]


Progress = Callable[[int, int], None]
"""Called with (steps done, steps in all) as planning goes: each row is two steps."""


def plan_import(
    led: CaseLedger,
    tracker: Tracker,
    mapping: TrackerMapping,
    recorder: Recorder,
    progress: Progress | None = None,
) -> ImportPlan:
    """Decide each row's fate without writing to ``led``.

    New rows are recorded, in batches, on a scratch store through the ledger's own
    ``record`` (with the ledger's clock), so that a row that breaks a rule of the
    catalogue or an invariant is found and named before anything is written.  The scratch
    store knows nothing of ``led``'s enrolments, so there the recorder acts as the business
    unit; who may record what is enforced when :func:`record_plan` writes to ``led``.
    """
    scratch_recorder = Recorder(recorder.actor, "business-unit")
    plans: list[RowPlan] = []
    seen: dict[str, int] = {}
    total = 2 * len(tracker.rows)  # each row is converted, then checked
    for done, row in enumerate(tracker.rows):
        if progress is not None and done % 50 == 0:
            progress(done, total)
        try:
            converted = convert_row(row, mapping)
        except RowProblem as problem:
            plans.append(RowPlan(row.number, problem.case, "bad", problem=problem))
            continue
        lines = with_sources(converted.lines, tracker.name, row.number)
        plan = RowPlan(
            row.number,
            converted.case,
            "new",
            lines,
            lines[0]["sources"][0]["sha256"],
            origins=converted.origins,
        )
        if converted.case in seen:
            plan.status = "bad"
            plan.problem = RowProblem(
                f"case {converted.case} is also on row {seen[converted.case]}; a tracker has "
                "one row per case",
                field=f"column `{mapping.fields['case'].column}`",
                line=row.number,
                case=converted.case,
            )
        else:
            seen[converted.case] = row.number
        plans.append(plan)

    _classify_existing(led, [p for p in plans if p.status == "new"], mapping)
    pending = [p for p in plans if p.status == "new"]
    done = total - len(pending)  # converted rows, and rows that need no check
    if progress is not None:
        progress(done, total)
    with tempfile.TemporaryDirectory(prefix="caseledger-import-") as scratch_dir:
        scratch = CaseLedger(parse_store(str(Path(scratch_dir) / "check.db")), clock=led.clock)
        try:
            if pending:
                _enrol_users(led, scratch, recorder.actor)
            for start in range(0, len(pending), PROBE_BATCH):
                batch = pending[start : start + PROBE_BATCH]
                _probe(scratch, batch, scratch_recorder)
                done += len(batch)
                if progress is not None:
                    progress(done, total)
        finally:
            scratch.close()
    return ImportPlan(tracker.name, plans)


def _enrol_users(led: CaseLedger, scratch: CaseLedger, actor: str) -> None:
    """Enrol on the scratch store the users of ``led`` with their roles, so that a row's
    delay is checked against the decision-makers enrolled in the real store (the chair,
    the safeguarding partners): one approved by anyone else is a bad row, and the reason
    says who they are.  The importer stays the scratch store's admin and business unit."""
    state = led.register_state()
    admin = Recorder(actor, "admin")
    for user, e in sorted(state.users.items()):
        roles = set(e.roles) | ({"admin", "business-unit"} if user == actor else set())
        scratch.enrol(user, sorted(roles), admin, agency=e.agency)


PROBE_BATCH: Final = 50
"""Rows checked together on the scratch store (one transaction each time)."""


def _probe(scratch: CaseLedger, batch: list[RowPlan], recorder: Recorder) -> None:
    """Record rows on the scratch store in one batch, as ``record`` would on the real one.

    A row the ledger refuses is marked bad with the ledger's reason, and the batch is tried
    again without it, until it records (the rows are independent: one case each).
    """
    live = list(batch)
    while live:
        where = [(plan, i) for plan in live for i in range(len(plan.lines))]
        try:
            parsed = scratch.parse_lines(
                [orjson.dumps(line) for plan in live for line in plan.lines]
            )
            scratch.record(parsed, recorder)
            return
        except InputError as exc:
            problems = exc.problems if isinstance(exc, InputErrors) else [exc]
            placed = [p for p in problems if p.line is not None and 1 <= p.line <= len(where)]
            if not placed:
                raise
            for problem in placed:
                assert problem.line is not None
                plan, index = where[problem.line - 1]
                if plan.status == "new":
                    _mark_bad(plan, index, problem)
        live = [plan for plan in live if plan.status == "new"]


def _mark_bad(plan: RowPlan, index: int, problem: InputError) -> None:
    """The ledger refused line ``index`` of the row: say which entry, field and column."""
    line = plan.lines[index]
    top = (problem.field or "").split(".")[0]
    column = plan.origins[index].get(top) if index < len(plan.origins) else None
    where = f"{line['type']}" + (f".{problem.field}" if problem.field else "")
    if column:
        where += f" ({column})"
    plan.status = "bad"
    plan.problem = RowProblem(problem.reason, field=where, line=plan.number, case=plan.case)


def _classify_existing(led: CaseLedger, plans: list[RowPlan], mapping: TrackerMapping) -> None:
    """Rows whose case is already in the ledger: imported before, changed, or recorded."""
    for plan in plans:
        assert plan.case is not None
        if not led.has_case(plan.case):
            continue
        records = led.case_records(plan.case)
        imported = [r for r in records if _tracker_source(r) is not None]
        match = next(
            (
                r
                for r in records
                if any(s.get("sha256") == plan.row_hash for s in r.get("sources") or [])
            ),
            None,
        )
        if match is not None:
            plan.status = "imported"
            source = _tracker_source(match)
            plan.imported_from = source["ref"] if source else f"{plan.case}#{match['seq']}"
        elif imported:
            plan.status = "changed"
            latest = _tracker_source(imported[-1])
            assert latest is not None
            plan.imported_from = latest["ref"]
            previous = [r for r in imported if _tracker_source(r) == latest]
            plan.differences = _differences(previous, plan.lines)
        else:
            plan.status = "exists"


def _tracker_source(record: Mapping[str, Any]) -> dict[str, Any] | None:
    for source in record.get("sources") or []:
        if isinstance(source, dict) and source.get("title") == SOURCE_TITLE:
            return source
    return None


_IGNORED_IN_DIFF = frozenset({"type", "case", "sources", "note"})


def _differences(stored: Sequence[Mapping[str, Any]], lines: list[dict[str, Any]]) -> list[str]:
    """What a changed row would record differently from the entries imported before."""
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for record in stored:
        by_type.setdefault(record["type"], []).append(record)
    out: list[str] = []
    counts: dict[str, int] = {}
    for line in lines:
        kind = line["type"]
        index = counts.get(kind, 0)
        counts[kind] = index + 1
        earlier = by_type.get(kind, [])
        if index >= len(earlier):
            out.append(f"new {kind} ({line['occurred_at']})")
            continue
        old = earlier[index]
        ref = f"{old['case']}#{old['seq']}"
        for name, value in line.items():
            if name in _IGNORED_IN_DIFF:
                continue
            before = old.get(name)
            if name == "occurred_at":
                value = normalise_occurred_at(value)
            if before != value:
                out.append(f"{ref} {kind}.{name} {_short(before)} → {_short(value)}")
    for kind, earlier in by_type.items():
        for old in earlier[counts.get(kind, 0) :]:
            out.append(f"{old['case']}#{old['seq']} {kind} is no longer in the row")
    return out


def _short(value: object) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def record_plan(led: CaseLedger, plan: ImportPlan, recorder: Recorder) -> list[Receipt]:
    """Record every new row of the plan in ONE batch through ``CaseLedger.record``."""
    parsed = [
        ParsedLine(row.number, parse_line(orjson.dumps(line)))
        for row in plan.having("new")
        for line in row.lines
    ]
    if not parsed:
        return []
    try:
        return led.record(parsed, recorder)
    except InputError as exc:
        if exc.line is None:  # not about a row: e.g. who may record
            raise
        row = next((r for r in plan.rows if r.number == exc.line), None)
        raise RowProblem(
            f"{exc.reason} (the store changed while the tracker was being checked; nothing "
            "was written: run the import again)",
            field=exc.field,
            line=exc.line,
            case=row.case if row else None,
        ) from None


def _plural(n: int) -> str:
    return "s" if n != 1 else ""


def _row_json(row: RowPlan) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "line": row.number,
        "case": row.case,
        "status": row.status,
        "row_hash": row.row_hash,
        "entries": len(row.lines) if row.status == "new" else 0,
    }
    if row.problem is not None:
        entry["field"] = row.problem.field
        entry["reason"] = row.problem.reason
    if row.status in ("changed", "exists", "imported"):
        entry["imported_from"] = row.imported_from
        entry["reason"] = row.message()
    if row.status == "changed":
        entry["differences"] = row.differences
    return entry


@dataclass(frozen=True)
class ImportReport:
    """What an import did, or in a dry run would do: every row's fate and the entries
    recorded.  ``blocked``: some rows are bad and bad rows were not to be skipped, so
    nothing was written; :meth:`refusal` is then the error to report after the rows."""

    plan: ImportPlan
    tracker: str
    receipts: list[Receipt]
    dry_run: bool
    blocked: bool

    def to_json(self) -> dict[str, Any]:
        """What ``import-tracker --json`` prints: every row's fate, and the entries
        recorded or (in a dry run) to record."""
        plan = self.plan
        return {
            "file": plan.file,
            "dry_run": self.dry_run,
            "written": bool(self.receipts),
            "recorded": [
                {"ref": r.ref, "hash": r.hash, "recorded_at": r.recorded_at} for r in self.receipts
            ],
            "events": plan.lines if self.dry_run and not self.blocked else [],
            "rows": [_row_json(row) for row in plan.rows],
            "bad": [
                {"line": r.number, "case": r.case, "field": p.field, "reason": p.reason}
                for r in plan.having("bad")
                if (p := r.problem) is not None
            ],
            "changed": [_row_json(row) for row in plan.having("changed", "exists")],
        }

    def refusal(self) -> InputError | None:
        """The import's refusal (exit 2), if it wrote nothing because of bad rows: bad
        rows not skipped, or bad rows and nothing else new."""
        bad = len(self.plan.having("bad"))
        if self.blocked:
            return InputError(
                f"{bad} row{_plural(bad)} of {self.tracker} cannot be imported (listed "
                "above); nothing was written. Fix them in the tracker or the mapping, or "
                "pass --skip-bad-rows to record the other rows."
            )
        if bad and not self.plan.having("new"):
            return InputError(
                f"{bad} row{_plural(bad)} of {self.tracker} cannot be imported (listed "
                "above) and no other row holds anything new; nothing was written."
            )
        return None


def run_import(
    opened: Callable[[], CaseLedger],
    file: Path | str,
    mapping: Path | str,
    *,
    dry_run: bool,
    skip_bad_rows: bool,
    role: str | None,
    progress: Progress | None = None,
    recording: Callable[[int], AbstractContextManager[object]] | None = None,
) -> ImportReport:
    """The import policy: read the mapping and the tracker (before the store is opened,
    by ``opened``), plan every row, and record the new rows in one batch unless this is a
    dry run or a bad row blocks it (``skip_bad_rows`` records the others).
    ``recording(n)`` wraps the write of ``n`` entries (a spinner)."""
    spec = load_mapping(mapping)
    tracker = read_tracker(file, spec)
    led = opened()
    who = led.recorder_for(role)
    plan = plan_import(led, tracker, spec, who, progress=progress)
    blocked = bool(plan.having("bad")) and not skip_bad_rows
    receipts: list[Receipt] = []
    if not dry_run and not blocked and plan.having("new"):
        with recording(len(plan.lines)) if recording is not None else nullcontext():
            receipts = record_plan(led, plan, who)
    return ImportReport(plan, tracker.name, receipts, dry_run, blocked)
