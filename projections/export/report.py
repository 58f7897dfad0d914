"""What the bundle's ``report.html`` and ``timeline.csv`` say about each case.

The report is for people: per case the decision in force and its reasons, the criteria
findings, the factors weighed, what was known when it was decided and what was learned
since, the timeline drawn as an SVG chart with the statutory clocks, the QM2 answers and
the flags.  The analyses come from the project's read-side modules when they are
installed (``projections.fold.case_view`` / ``projections.queries.cases`` for the decision,
``projections.assess.clocks``, ``projections.assess.quality``), through the small adapter
below.  Where one is missing the adapter derives the minimum itself (the latest ``DecisionMade`` by
``occurred_at`` is in force; what was known then is what was recorded before it), and
the report says which source each section came from.

The words for people are here too: every date in one form (``6 Mar 2026``, a time
``6 Mar 2026, 14:05``) in a span that never breaks across lines, a clock's name as people
say it (``Rapid review (15 working days)``), units singular or plural as the number needs,
and sources as citations (the rule packs' ``(check)`` markers left to the packs).

Everything here works on one case's records at a time, so the export stays streaming.
No personal value is ever read here unless the caller passes it in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Final

from markupsafe import Markup, escape

from ledger.catalogue.registry import OUTCOME_LABELS, kind_named
from ledger.catalogue.terms import LONDON
from projections.assess.clocks import case_clocks, requests_on, summary_of
from projections.assess.quality import QUESTIONS, answer_questions
from projections.assess.rules import rule_pack
from projections.fold import case_view
from projections.fold.why import why_of

__all__ = [
    "CRITERION_LABELS",
    "FACTOR_LABELS",
    "OUTCOME_LABELS",
    "QM2_QUESTIONS",
    "CaseAnalysis",
    "analyse_case",
    "apply_corrections",
    "citation",
    "clock_name",
    "day_text",
    "describe",
    "limit_words",
    "moment_text",
    "occurred_point",
    "show_day",
    "show_occurred",
    "show_recorded",
    "show_text",
    "words",
]

CRITERION_LABELS: Final[dict[str, str]] = {
    "abuse_or_neglect": "Abuse or neglect known or suspected",
    "child_died": "The child died",
    "seriously_harmed": "The child was seriously harmed",
    "agency_concern": "Cause for concern about how agencies worked together",
    "improvements_needed": "(a) Improvements needed, including ones identified before",
    "recurring_themes": "(b) Recurring themes",
    "multi_agency_concern": "(c) Concerns about two or more agencies working together",
    "panel_view": "(d) The national panel thinks it suits a local review",
}

FACTOR_LABELS: Final[dict[str, str]] = {
    "learning": "Useful learning",
    "previous_learning": "Relation to previous learning",
    "resources": "Resource constraints",
    "practitioners": "Impact on practitioners",
    "family": "Impact on the family",
    "other_reviews": "Other reviews or investigations running at the same time",
    "media": "Political and media interest",
    "public_trust": "Public trust in safeguarding organisations",
}

QM2_QUESTIONS: Final = QUESTIONS
"""The nine QM2 questions (kept in :mod:`projections.assess.quality`)."""

REGIME_LABELS: Final[dict[str, str]] = {
    "wt2015": "Working Together 2015 (Serious Case Review; decision by the LSCB chair)",
    "wt2018": "Working Together 2018 (rapid review and LCSPR; the three safeguarding partners)",
    "wt2023": "Working Together 2023 (rapid review and LCSPR; lead safeguarding partners)",
}

REGIME_SHORT: Final[dict[str, str]] = {
    "wt2015": "Working Together 2015",
    "wt2018": "Working Together 2018",
    "wt2023": "Working Together 2023",
}
"""A regime's name in a table cell (the overview across cases)."""

# --- words for people ---------------------------------------------------------------

_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_UNITS: Final[dict[str, tuple[str, str]]] = {
    "working_days": ("working day", "working days"),
    "calendar_days": ("calendar day", "calendar days"),
    "calendar_months": ("calendar month", "calendar months"),
}


def day_text(day: date) -> str:
    """A day as the report writes every date: ``6 Mar 2026`` (no leading zero, the month's
    English abbreviation, whatever the machine's locale)."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def moment_text(moment: datetime, *, seconds: bool = False) -> str:
    """A moment as the report writes it: ``6 Mar 2026, 14:05`` (in the moment's own time
    zone: the caller converts it to London or UTC first)."""
    clock = moment.strftime("%H:%M:%S" if seconds else "%H:%M")
    return f"{day_text(moment.date())}, {clock}"


def limit_words(limit: Any, unit: Any) -> str:
    """A clock's limit in words, singular or plural as the number needs: ``1 calendar
    month``, ``15 working days``; a unit the report does not know is written with spaces."""
    if limit in (None, "") or not unit:
        return ""
    singular, plural = _UNITS.get(str(unit), (str(unit).replace("_", " "),) * 2)
    return f"{limit} {singular if limit == 1 else plural}"


def clock_name(words: str, limit: Any, unit: Any) -> str:
    """A clock as people name it: its pack's label, capitalised, with its limit:
    ``Rapid review (15 working days)``."""
    name = words[:1].upper() + words[1:]
    limit_text = limit_words(limit, unit)
    return f"{name} ({limit_text})" if limit_text else name


_CHECK_AFTER_PARAGRAPH: Final = re.compile(r"[;,]?\s*paragraph numbers? \(check\)")
_CHECK: Final = re.compile(r"\s*\(check\)")
_EMPTY_BRACKETS: Final = re.compile(r"\s*\(\s*\)")


def citation(source: str) -> str:
    """A clock's source as a citation for the report: the rule packs' ``(check)`` markers
    (a paragraph number or a reading still to confirm, see ``domain.md``) are left out
    here, with a "paragraph number (check)" placeholder; the packs keep them, and
    ``rules.json`` in the bundle carries them as the packs have them."""
    text = _CHECK_AFTER_PARAGRAPH.sub("", source)
    text = _CHECK.sub("", text)
    return _EMPTY_BRACKETS.sub("", text).strip()


def _date_span(text: str) -> Markup:
    """A date or time the report shows, in a span of class ``date`` (never broken across
    lines: the report's style keeps it on one).  ``text`` is made here from digits and
    month names, so it needs no escaping."""
    return Markup('<span class="date" style="white-space: nowrap">' + text + "</span>")


def show_day(value: Any) -> Markup | str:
    """A day for people, ``6 Mar 2026`` in a ``date`` span: a ``YYYY-MM-DD`` (or a date, or a
    date and time, whose London day is shown); empty for nothing, and text that is no date
    as it is (escaped)."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return _date_span(day_text(value.astimezone(LONDON).date()))
    if isinstance(value, date):
        return _date_span(day_text(value))
    return _day_of_text(str(value))


@lru_cache(maxsize=8192)
def _day_of_text(text: str) -> Markup | str:
    """:func:`show_day` of a string (a case's dates repeat from table to table)."""
    try:
        if len(text) == 10:
            return _date_span(day_text(date.fromisoformat(text)))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return escape(text)
    if moment.tzinfo is None:
        return _date_span(day_text(moment.date()))
    return _date_span(day_text(moment.astimezone(LONDON).date()))


def show_occurred(value: Any) -> Markup | str:
    """An ``occurred_at`` for people: the day (``6 Mar 2026``), or the day and London time
    to the minute (``6 Mar 2026, 14:05``), in a ``date`` span."""
    return _occurred_of_text(str(value or ""))


@lru_cache(maxsize=8192)
def _occurred_of_text(text: str) -> Markup | str:
    """:func:`show_occurred` of a string."""
    if len(text) <= 10:
        return show_day(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return escape(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(LONDON)
    return _date_span(moment_text(moment))


def show_recorded(value: Any) -> Markup | str:
    """A ``recorded_at`` for people: the day and UTC time to the minute
    (``6 Mar 2026, 14:05 UTC``), in a ``date`` span; the exact instant is in events.jsonl."""
    text = str(value or "")
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return escape(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _date_span(moment_text(moment.astimezone(UTC)) + " UTC")


_ISO_MOMENT: Final = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?(?![\d-])"
)
_SNAKE_NAME: Final = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def show_text(value: Any, names: bool = False) -> Markup:
    """Text the analyses wrote (a flag's explanation, a QM2 answer's, an entry's summary)
    for people: every ISO date in it written as the report writes dates (``6 Mar 2026``,
    a moment with its time, in UTC when it says so), and with ``names`` a clock's name
    (``rapid_review``) in words.  Escaped; the analyses' own answers are unchanged."""
    text = str(escape("" if value is None else value))

    def moment(found: re.Match[str]) -> str:
        shown = show_recorded(found.group(0)) if found.group(2) else show_day(found.group(1))
        return str(shown) if isinstance(shown, Markup) else found.group(0)

    text = _ISO_MOMENT.sub(moment, text)
    if names:
        text = _SNAKE_NAME.sub(lambda found: found.group(0).replace("_", " "), text)
    return Markup(text)


def words(value: Any) -> str:
    """A name from the record (``gathering-information``, ``rapid_review``) in words."""
    return "" if value is None else str(value).replace("_", " ").replace("-", " ")


# --- reading records ----------------------------------------------------------------


def ref_of(record: dict[str, Any]) -> str:
    """``CASE#seq``."""
    return f"{record['case']}#{record['seq']}"


def occurred_point(occurred_at: str) -> float:
    """A stored ``occurred_at`` as fractional days since 1970-01-01 (Europe/London days)."""
    if len(occurred_at) == 10:
        return float(date.fromisoformat(occurred_at).toordinal() - _EPOCH)
    moment = datetime.fromisoformat(occurred_at).astimezone(LONDON)
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
    return moment.date().toordinal() - _EPOCH + seconds / 86400


_EPOCH: Final = date(1970, 1, 1).toordinal()


def _day(value: float) -> date:
    return date.fromordinal(int(value) + _EPOCH)


def _parse_day(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.astimezone(LONDON).date()
    if isinstance(value, str) and value:
        try:
            return _day(occurred_point(value))
        except ValueError:
            return None
    return None


@dataclass
class Entry:
    """One record as a person reads it: corrections applied, with a one-line summary."""

    ref: str
    seq: int
    position: int
    type: str
    occurred_at: str
    original_occurred_at: str
    recorded_at: str
    actor: str
    role: str
    summary: str
    hash: str
    corrected_by: list[str] = field(default_factory=list)
    in_bundle: bool = True
    body: dict[str, Any] = field(default_factory=dict)


def apply_corrections(records: Sequence[dict[str, Any]]) -> list[Entry]:
    """The case's entries (``seq`` order) with every ``EntryCorrected`` applied, exactly
    as ``caseledger timeline`` applies them (:func:`projections.fold.case_view.apply_corrections`);
    the stored originals are untouched and ``corrected_by`` lists the corrections."""
    return [
        Entry(
            ref=e.ref,
            seq=e.seq,
            position=e.position,
            type=e.type,
            occurred_at=str(e.occurred_at),
            original_occurred_at=str((e.original or e.body).get("occurred_at", "")),
            recorded_at=e.recorded_at,
            actor=e.actor,
            role=e.role,
            summary=describe(dict(e.body)),
            hash=str(e.body.get("hash", "")),
            corrected_by=list(e.corrected_by),
            body=dict(e.body),
        )
        for e in case_view.apply_corrections(records)
    ]


def describe(body: dict[str, Any]) -> str:
    """One line saying what an entry records, for the timeline (its kind's
    ``report_wording``, then its note).  Never personal values."""
    kind = body.get("type", "")
    found = kind_named(kind) if isinstance(kind, str) else None
    text = found.report_wording(body) if found is not None else str(kind)
    if body.get("note"):
        text += f" (note: {body.get('note')})"
    return text


# --- the analyses: the same read-side functions the CLI uses -------------------------


@dataclass
class CaseAnalysis:
    """The analyses shown for one case, in the shapes of ``cli.md`` (why, clocks, quality),
    plus the sentence for each flag and which module computed each section."""

    why: dict[str, Any]
    clocks: list[dict[str, Any]]
    quality: list[dict[str, Any]] | None
    sources: dict[str, str]
    flag_texts: dict[str, str] = field(default_factory=dict)
    open_requests: list[dict[str, Any]] = field(default_factory=list)
    """The open information requests on ``on``, with ``overdue`` and ``days_overdue``
    (the same answer as ``caseledger status``)."""
    status: dict[str, Any] = field(default_factory=dict)
    """The case's ``status`` row on ``on`` (stage, decision, overdue clocks, next
    deadline, open requests): what the overview across cases shows and sorts by
    (:func:`projections.fold.case_view.urgency`, the order of ``caseledger status``)."""


SOURCES: Final = {
    "why": "the same answer as caseledger why gives",
    "clocks": "the same answer as caseledger clocks gives",
    "quality": "the same answer as caseledger quality gives",
}
"""Where each section's answer comes from, in words for the report (no module names)."""


def analyse_case(
    records: Sequence[dict[str, Any]],
    *,
    as_of: datetime | None,
    on: datetime | None,
    now: datetime,
) -> CaseAnalysis:
    """Decision in force, clocks and QM2 answers for one case's records, by the functions
    behind ``caseledger why``, ``clocks`` and ``quality``.

    ``records`` are the case's stored records in ``seq`` order; ``as_of`` keeps those
    recorded up to it (the record as it stood), ``on`` the entries that had happened by
    it (the world then); ``None`` means ``now``.
    """
    as_of_time = as_of or now
    on_time = on or now
    view = case_view.fold(list(records), as_of_time=as_of_time, on_time=on_time)
    if view is None:  # nothing of the case was recorded, or had happened, by then
        return CaseAnalysis(
            why={
                "decision": None,
                "known_then": [],
                "learned_since": [],
                "relied_on": [],
                "superseded": [],
                "flags": [],
            },
            clocks=[],
            quality=None,
            sources={**SOURCES, "quality": "nothing of the case is on record by then"},
        )
    answer = why_of(view, as_of_time, on_time)
    states = case_clocks(view, on_time)
    calendar = rule_pack(view.regime).working_calendar()
    clocks = []
    for state in states:
        row = dict(state.as_dict())
        row["words"] = state.rule.words
        row["working_days_over"] = _working_days_over(state, calendar)
        clocks.append(row)
    open_requests = requests_on([r.as_dict() for r in view.open_requests], view.regime, on_time)
    summary = summary_of(states)
    status = case_view.status_payload(
        case=view.case,
        regime=view.regime,
        subject=view.subject,
        stage=view.stage,
        decision=view.decision.summary() if view.decision is not None else None,
        open_requests=open_requests,
        overdue=summary.overdue,
        next_deadline=summary.next_deadline,
        entries=len(view.entries),
        last_recorded_at=view.last_recorded_at,
    )
    return CaseAnalysis(
        why=dict(answer.as_dict()),
        clocks=clocks,
        quality=[dict(a.as_dict()) for a in answer_questions(view, on_time)],
        sources=dict(SOURCES),
        flag_texts={str(f.code): str(f.explanation) for f in answer.flags},
        open_requests=open_requests,
        status=status,
    )


def _working_days_over(state: Any, calendar: Any) -> int | None:
    """Working days a late or overdue clock is past its due day (to its end, or to the
    day it is measured on), in its pack's calendar; None for a clock not past due."""
    if state.due is None or state.status not in ("late", "overdue"):
        return None
    end = state.ended if state.status == "late" and state.ended is not None else state.on
    return int(calendar.working_days_between(state.due, end))
