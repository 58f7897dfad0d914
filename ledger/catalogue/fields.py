"""The catalogue's shared field types: vocabularies, limits, the rules for text, names and
subjects, and the one date grammar (:func:`read_moment`) of ``occurred_at`` and of every
time option.

Every model in :mod:`ledger.catalogue.models` is built from these, and so are the checks
outside the models that must agree with them (the CLI's time options, the tracker import's
dates, the reference pages).  Re-exported by :mod:`ledger.catalogue.models`, the catalogue's
one import for callers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from difflib import get_close_matches
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BeforeValidator,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from ledger.catalogue.terms import (
    ALL_CRITERIA,
    CRITERIA,
    EARLIEST_DATE,
    FACTORS,
    LATEST_DATE,
    LONDON,
    MAX_UTC_OFFSET,
    MOMENT_FORMS,
    ROLES,
    check_moment,
    normalise_occurred_at,
    occurred_day,
    occurred_instant,
    read_moment,
)
from ledger.catalogue.terms import check_date as _check_date

__all__ = [
    "ALL_CRITERIA",
    "CASE_REF_PATTERN",
    "CRITERIA",
    "EARLIEST_DATE",
    "EVENT_REF_PATTERN",
    "FACTORS",
    "LATEST_DATE",
    "LONDON",
    "MAX_CHANGES",
    "MAX_LINE_BYTES",
    "MAX_LIST_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_NESTING",
    "MAX_PERSONAL_FIELDS",
    "MAX_PERSONAL_VALUE_CHARS",
    "MAX_RELIED_ON",
    "MAX_TEXT_CHARS",
    "MAX_UTC_OFFSET",
    "MOMENT_FORMS",
    "NAME_PATTERN",
    "REGIME_IN_FORCE",
    "ROLES",
    "SUBJECT_PATTERN",
    "SUBJECT_RULE",
    "TEXT_PATTERN",
    "CaseRef",
    "CommunicatedTo",
    "CriterionName",
    "DeferralTrigger",
    "EventRef",
    "FinalReportRecipient",
    "FindingValue",
    "LedgerDate",
    "Name",
    "NotifyRecipient",
    "OccurredAt",
    "Outcome",
    "RapidReviewRecipient",
    "Regime",
    "StatutoryPartner",
    "Subject",
    "Text",
    "Theme",
    "check_moment",
    "check_personal_value",
    "normalise_occurred_at",
    "occurred_day",
    "occurred_instant",
    "read_moment",
    "reject_floats",
    "text_problem",
    "themes_vocabulary",
]

# --- vocabularies -----------------------------------------------------------------

Regime = Literal["wt2015", "wt2018", "wt2023"]
Outcome = Literal["review", "no-review", "other-review", "national-review-referral"]
FindingValue = Literal["met", "not-met", "unclear"]

CriterionName = Literal[
    "abuse_or_neglect",
    "child_died",
    "seriously_harmed",
    "agency_concern",
    "improvements_needed",
    "recurring_themes",
    "multi_agency_concern",
    "panel_view",
]
NotifyRecipient = Literal[
    "ofsted", "national-panel", "dfe", "secretary-of-state", "local-board", "other-area"
]
CommunicatedTo = Literal["national-panel", "ofsted", "dfe", "board-members", "family", "agencies"]
#: Who a rapid review is sent to (``RapidReviewSent.to``; it must include the national panel).
RapidReviewRecipient = Literal["national-panel", "ofsted", "dfe", "secretary-of-state"]
#: Who a final report is sent to before publication (SI 2018/789 reg 14).
FinalReportRecipient = Literal["national-panel", "secretary-of-state"]
#: What holds a publication back (``PublicationDeferred.trigger``).
DeferralTrigger = Literal["criminal-proceedings", "family-wishes", "other"]
#: The three statutory safeguarding partners (SI 2018/789 reg 3), as ``PartnersDelegated``
#: names them.
StatutoryPartner = Literal["local-authority", "health", "police"]

CASE_REF_PATTERN = r"^[A-Za-z0-9_/-]{1,40}$"
EVENT_REF_PATTERN = r"^[A-Za-z0-9_/-]{1,40}#[1-9][0-9]*$"
# --- limits -----------------------------------------------------------------------
# Every bound on what one input line may hold lives here, so that the validators, the
# JSON Schema (``caseledger schema``, ``docs/reference/events.md``) and the messages
# agree.  They are generous for real records and small enough that no line can make a
# command slow or exhaust memory.

MAX_LINE_BYTES = 1_048_576
"""One input line of ``caseledger record``: 1 MiB of UTF-8."""
MAX_NESTING = 254
"""How deeply objects and lists may nest in one line (the JSON encoder's own limit)."""
MAX_TEXT_CHARS = 20_000
"""Each free-text field (rationale, summary, reason, note, ...)."""
MAX_NAME_CHARS = 200
"""Each name or short label (agency, area, subject, decided_by, ...)."""
MAX_LIST_ITEMS = 100
"""Each list of names, recipients or sources (attendees, decided_by, to, sources, ...)."""
MAX_RELIED_ON = 1_000
"""The entries one decision may cite in ``relied_on`` (a case holds a few hundred)."""
MAX_CHANGES = 50
"""The fields one ``EntryCorrected`` may change."""
MAX_PERSONAL_FIELDS = 20
"""The fields of one case's ``personal`` object."""
MAX_PERSONAL_VALUE_CHARS = 1_000
"""Each personal value, as its canonical JSON (a name, a date of birth, an address)."""


#: When each regime was in force (``shared/domain.md``, "Regimes"); a referral's regime
#: must have been in force on its incident date or on its aware date (a child harmed
#: before a regime began may be referred, and so handled, under it):
#: ``wt2015`` stands for the Serious Case Review regime of the LSCB Regulations 2006
#: reg 5 (in force 1 April 2006) until the end of the 2018-19 transition (29 September
#: 2019); ``wt2018`` from 29 June 2018 until Working Together 2023 was in force
#: everywhere (by December 2024); ``wt2023`` from its publication, 15 December 2023.
#: A case referred under a regime outside its window must say ``transitional: true``.
REGIME_IN_FORCE: dict[str, tuple[date, date | None]] = {
    "wt2015": (date(2006, 4, 1), date(2019, 9, 29)),
    "wt2018": (date(2018, 6, 29), date(2024, 12, 31)),
    "wt2023": (date(2023, 12, 15), None),
}

#: Characters refused in every text field: C0 controls but tab and newline (C0 is
#: refused entirely in names), DEL, C1 controls, and the bidirectional embeddings,
#: overrides and isolates (U+202A-U+202E, U+2066-U+2069) that make text display
#: other than it reads.  Written as a regular expression class that both pydantic's
#: engine and JSON Schema's (ECMA-262) understand.
_FORBIDDEN_IN_TEXT = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_FORBIDDEN_IN_NAME = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
TEXT_PATTERN = f"^[^{_FORBIDDEN_IN_TEXT}]*[^\\s{_FORBIDDEN_IN_NAME}][^{_FORBIDDEN_IN_TEXT}]*$"
"""Free text: not blank (some character other than white space), no control characters."""
NAME_PATTERN = f"^[^{_FORBIDDEN_IN_NAME}]*[^\\s{_FORBIDDEN_IN_NAME}][^{_FORBIDDEN_IN_NAME}]*$"
"""A name: one line, not blank, no control characters."""
_CODE = r"(?:[A-Za-z0-9]+[-/_.])*[A-Za-z]*[0-9][A-Za-z0-9]*(?:[-/_.][A-Za-z0-9]+)*"
_SUBJECT_ROLE = (
    r"(?:[Cc]hild|[Bb]aby|[Ii]nfant|[Uu]nborn [Bb]aby|[Ss]ibling|[Tt]win|[Yy]oung [Pp]erson"
    r"|[Aa]dolescent|[Pp]erson|[Ss]ubject)"
)
SUBJECT_PATTERN = (
    f"^(?:{_CODE}|{_SUBJECT_ROLE}(?: (?:[A-Z]{{1,3}}|[0-9]{{1,4}}|{_CODE})(?: \\({_CODE}\\))?"
    f"| \\({_CODE}\\)))$"
)
"""A subject: a case code holding a digit (``C-2026-004``), or a word for the child
(Child, Baby, Infant, Unborn baby, Sibling, Twin, Young person, Adolescent, Person,
Subject) and an initial of one to three capitals, a number or a code, optionally followed
by a code in brackets (``Child K (RR-2026-004)``); or that word and a bracketed code."""
SUBJECT_RULE = (
    "is not a pseudonymous reference: a subject names the child without naming them, as "
    'a word for the child and an initial, number or code ("Child K", "Child K '
    '(RR-2026-004)", "Child RR-2026-004", "Baby M", "Sibling 2") or a case code holding '
    'a digit ("C-2026-004"); the name goes in personal (--personal name=...), never here'
)
_FORBIDDEN_TEXT_CHAR = re.compile(f"[{_FORBIDDEN_IN_TEXT}]")
_FORBIDDEN_NAME_CHAR = re.compile(f"[{_FORBIDDEN_IN_NAME}]")


def text_problem(value: str, *, name: bool = False) -> str:
    """Why a string breaks :data:`TEXT_PATTERN` (or :data:`NAME_PATTERN`), in words.

    Used to turn a pattern mismatch into a message that says what is wrong without
    echoing the offending character.
    """
    found = (_FORBIDDEN_NAME_CHAR if name else _FORBIDDEN_TEXT_CHAR).search(value)
    if found is not None:
        allowed = "" if name else " (tab and newline are allowed)"
        return (
            f"holds the control or bidirectional character U+{ord(found.group()):04X} "
            f"at position {found.start() + 1}; text may not hold control characters"
            f"{allowed}"
        )
    if not value.strip():
        return "must not be blank (empty or only white space)"
    return "is not valid text"


# --- field types ------------------------------------------------------------------

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN)]
"""Free text that must say something: not blank, no control characters, capped."""
Name = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS, pattern=NAME_PATTERN)]
"""A name or short label on one line: not blank, no control characters, capped."""
CaseRef = Annotated[str, StringConstraints(pattern=CASE_REF_PATTERN)]
EventRef = Annotated[str, StringConstraints(pattern=EVENT_REF_PATTERN)]
Subject = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS, pattern=SUBJECT_PATTERN)]
"""A pseudonymous reference to the child (:data:`SUBJECT_PATTERN`), never a name."""
LedgerDate = Annotated[date, AfterValidator(_check_date)]
"""A calendar date between :data:`EARLIEST_DATE` and :data:`LATEST_DATE`."""


@cache
def themes_vocabulary() -> Mapping[str, str]:
    """The practice themes a case may carry, each with its title (``ledger/data/themes.toml``).

    Kept as data so that a partnership's vocabulary grows without a code change; read on
    first use, so that commands that never see a theme do not pay for it.
    """
    import tomllib  # lazy: only entries with themes need the vocabulary
    from importlib import resources  # lazy: as above

    text = (resources.files("ledger") / "data" / "themes.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)["themes"]
    return MappingProxyType({str(k): str(v) for k, v in table.items()})


def _check_theme(value: str) -> str:
    """A theme of :func:`themes_vocabulary`; the error lists the nearest few."""
    vocabulary = themes_vocabulary()
    if value not in vocabulary:
        close = get_close_matches(value, list(vocabulary), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"{value!r} is not a theme of the vocabulary (ledger/data/themes.toml){hint} "
            f"Themes: {', '.join(vocabulary)}"
        )
    return value


class _ThemeSchema:
    """The JSON Schema of a theme: its vocabulary as an enum, read when the schema is built."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": list(themes_vocabulary())}


Theme = Annotated[str, AfterValidator(_check_theme), _ThemeSchema()]
"""A practice theme from :func:`themes_vocabulary`."""


OccurredAt = Annotated[
    str,
    BeforeValidator(normalise_occurred_at),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
                {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"},
            ],
            "description": "YYYY-MM-DD keeps day precision; a datetime without an "
            "offset is Europe/London local time",
        }
    ),
]


def reject_floats(value: Any, where: str = "value") -> Any:
    """The catalogue allows integers only: no floats anywhere in an event."""
    if isinstance(value, float):
        raise ValueError(f"{where} holds a fractional number; events carry whole numbers only")
    if isinstance(value, dict):
        for v in value.values():
            reject_floats(v, where)
    elif isinstance(value, list):
        for v in value:
            reject_floats(v, where)
    return value


def check_personal_value(key: str, value: Any) -> None:
    """A personal value is capped in size and holds no control characters.

    Personal values never enter the hashed body, but they are shown in exports with
    personal data and to the people who may read them, so text rules apply to them too.
    """
    size = len(orjson.dumps(value))
    if size > MAX_PERSONAL_VALUE_CHARS:
        raise ValueError(
            f"personal.{key}: the value is {size} characters as JSON; each personal value "
            f"is at most {MAX_PERSONAL_VALUE_CHARS}"
        )
    for text in _strings(value):
        if _FORBIDDEN_TEXT_CHAR.search(text):
            raise ValueError(f"personal.{key}: {text_problem(text)}")


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
