"""Converting one tracker row into the wire-form event lines it evidences (:func:`convert_row`,
pure: the row and the mapping in, the lines out, or a :class:`RowProblem`), and the source
every imported entry carries: ``{"title": "tracker row", "ref": "<file> row <n>", "sha256":
<row hash>}``, the row hash being the SHA-256 of the canonical JSON of the row's entries
without their sources (:func:`row_hash`), so it depends on the row's content only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ledger.catalogue.models import CRITERIA, normalise_occurred_at, occurred_day
from ledger.importing.cells import RowProblem, RowReader
from ledger.importing.mapping import (
    CASE_REF,
    DATED_ITEM,
    NONE_WORDS,
    PHASES,
    REGIMES,
    FieldSpec,
    TrackerMapping,
    match_key,
)
from ledger.importing.sheet import TrackerRow, blank_cell
from ledger.integrity.canonical import canonical_json

SOURCE_TITLE: Final = "tracker row"
"""The ``title`` of the source every imported entry carries."""


def _choose_regime(r: RowReader) -> str:
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


def _infer(criterion: str, referral: Mapping[str, Any], r: RowReader) -> tuple[str, str] | None:
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


def _criteria(r: RowReader, regime: str, referral: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    mapping = r.mapping
    out: dict[str, dict[str, str]] = {}
    for criterion in CRITERIA[regime]:
        column = mapping.criteria_columns.get(criterion)
        cell = r.cell(column) if column else None
        if column and not blank_cell(cell):
            text = r._text(cell)
            finding = mapping.finding_values.get(match_key(text))
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
                if reason_column and not blank_cell(reason_cell)
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

    def __init__(self, r: RowReader) -> None:
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
    r = RowReader(row, mapping)
    case = r.text("case")
    if case is None:
        raise r.problem("case", "the row has no case reference")
    if not CASE_REF.match(case):
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


def _answers(r: RowReader, spec: FieldSpec) -> list[tuple[str, tuple[str, str] | None]]:
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
        if not item or match_key(item) in NONE_WORDS:
            continue
        answered_at: tuple[str, str] | None = None
        match = DATED_ITEM.match(item)
        if match and match.group("name").strip():
            stamp = r.parse_date("agencies_answered", match.group("date"), formats, day_only=False)
            answered_at = (stamp, "agencies_answered")
            item = match.group("name").strip().rstrip("-–:(").strip()
        name = spec.values.get(match_key(item), item) if spec.values else item
        if isinstance(name, str) and name == "":
            continue
        if not isinstance(name, str):
            raise r.problem("agencies_answered", f"{item!r} maps to {name!r}, not a name")
        name = r.mapping.agency_names.get(match_key(name), name)
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
