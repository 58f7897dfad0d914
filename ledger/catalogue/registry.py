"""One registry of the catalogue's event types: what every part of the program needs to
know about each type, so that a new type is added here and in :mod:`ledger.catalogue.models`
and nowhere else.

Each type has one :class:`EventKind` in :data:`KINDS`, in catalogue order (the order of the
discriminated union :data:`ledger.catalogue.models.AnyEvent`, which ``tests/test_registry.py``
checks): its model, the CLI command that records one entry of it and that command's example,
its wording for people (the one line of ``why`` and ``timeline``, and the longer line of an
export's ``report.html`` and ``timeline.csv``), its lane on the report's timeline chart, the
fields the cross-case index copies into its milestone facts, and whether it shows that the
information gathering has started (the ``gathering-information`` stage).

Logic that differs per type (the fold, the clocks, the quality answers, the tracker's
columns) stays where it is, keyed by these names.

Why one module: it is one table, a row per event type in catalogue order; a new type is one
more row here, and splitting the table would put the rows of one catalogue in several files.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:  # the models are imported on first use of EventKind.model (pydantic)
    from ledger.catalogue.models import Envelope

__all__ = [
    "KINDS",
    "KINDS_BY_COMMAND",
    "KINDS_BY_NAME",
    "OUTCOME_LABELS",
    "TIMELINE_LANES",
    "EventKind",
    "Wording",
    "kind_named",
]

Wording = Callable[[Mapping[str, Any]], str]
"""One line in words for an entry, from its (corrected) fields; never personal data,
which the record holds only as commitments."""

#: The lanes of the report's timeline chart, top to bottom (each kind names one).
TIMELINE_LANES: Final[tuple[str, ...]] = (
    "Referral and notices",
    "Information",
    "Discussion and views",
    "Decision",
    "Review",
    "Corrections",
)
_NOTICES, _INFORMATION, _DISCUSSION, _DECISION, _REVIEW, _CORRECTIONS = TIMELINE_LANES

#: How the report names each decision outcome.
OUTCOME_LABELS: Final[dict[str, str]] = {
    "review": "Review",
    "no-review": "No review",
    "other-review": "Other (non-statutory) learning review",
    "national-review-referral": "Referred for a national review",
}


@dataclass(frozen=True, slots=True)
class EventKind:
    """Everything the program keeps per event type, apart from the model's own fields."""

    catalogued: str | type[Envelope]
    """The catalogue model, or its name in :mod:`ledger.catalogue.models` (as every row
    here gives it: the model is imported on first use of :attr:`model`)."""
    command: str
    """The CLI command that records one entry of this type (``caseledger refer``)."""
    lane: str
    """Its lane on the report's timeline chart (one of :data:`TIMELINE_LANES`)."""
    index_facts: tuple[str, ...]
    """The fields the cross-case index copies into ``case_milestones.facts``, so that
    queries (clocks, delays, status) need not fold the case."""
    wording: Wording
    """The short line of the people views (``why``, ``timeline``)."""
    report_wording: Wording
    """The line of an export's report and ``timeline.csv`` (the note is added after it)."""
    gathering: bool = False
    """Whether an entry of this type shows that the information gathering has started."""
    example: str | None = None
    """A worked example for the command's help; without one the help shows the bare form."""

    @property
    def name(self) -> str:
        """The event type, as written in ``type``: its model's name."""
        given = self.catalogued
        return given if isinstance(given, str) else given.__name__

    @property
    def model(self) -> type[Envelope]:
        """The catalogue model (its docstring the type's description), imported on first
        use: the fold and the people views need only the names and the wordings, and a
        cold read (``caseledger why``) does not import pydantic for them."""
        if not isinstance(self.catalogued, str):
            return self.catalogued
        models = importlib.import_module("ledger.catalogue.models")
        return cast("type[Envelope]", getattr(models, self.catalogued))

    @property
    def help(self) -> str:
        """The entry command's help: what it records, from the model's description."""
        article = "an" if self.name[0] in "AEIOU" else "a"
        return f"Record {article} {self.name} entry: {(self.model.__doc__ or '').strip()}"

    @property
    def usage(self) -> str:
        """The example of the command's help, or its bare form."""
        return self.example or f"caseledger {self.command} CASE ..."


def _yes(value: Any, yes: str, no: str) -> str:
    """A yes-or-no field in words."""
    return yes if value else no


def _list(value: Any) -> str:
    """The items of a list field, comma-separated (the people views)."""
    return ", ".join(str(v) for v in value or ())


def _join(values: Any) -> str:
    """A list field comma-separated, any other value as it is (the report)."""
    if isinstance(values, list):
        return ", ".join(str(v) for v in values)
    return str(values)


def _agrees(value: Any, no_view: str) -> str:
    """Whether a peer agrees (true, false or null), in words; nothing for any other value."""
    return {True: "agrees", False: "disagrees", None: no_view}.get(value, "")


def _when(value: Any, text: str) -> str:
    """``text`` when the field holds something, else nothing."""
    return text if value else ""


KINDS: Final[tuple[EventKind, ...]] = (
    EventKind(
        "CaseReferred",
        command="refer",
        lane=_NOTICES,
        index_facts=(
            "regime",
            "subject",
            "incident_date",
            "aware_date",
            "harm",
            "looked_after",
            "abuse_or_neglect",
            "route",
            "home_area",
            "other_areas",
        ),
        wording=lambda f: (
            f"{f.get('subject')} referred by {f.get('referrer')} ({f.get('regime')}): "
            f"{f.get('harm')}, abuse or neglect {f.get('abuse_or_neglect')}. "
            f"{f.get('summary', '')}"
        ),
        report_wording=lambda f: (
            f"Referred by {f.get('referrer')} ({f.get('route')}): {f.get('harm')}, abuse or "
            f"neglect {f.get('abuse_or_neglect')}; {f.get('summary')}"
        ),
        example=(
            "caseledger refer SCR-2026-001 --regime wt2023 --subject 'Child A' "
            "--incident-date 2026-05-01 --aware-date 2026-05-02 --harm serious-harm "
            "--abuse-or-neglect suspected --home-area Northshire --referrer 'Northshire Police' "
            "--route statutory --summary 'Infant admitted with head injury.' "
            "--personal name='A Example' --personal date_of_birth=2025-11-03"
        ),
    ),
    EventKind(
        "IncidentNotified",
        command="notify",
        example=(
            "caseledger notify SCR-2026-001 --recipients national-panel --recipients "
            "ofsted --reference NP-2026-0412"
        ),
        lane=_NOTICES,
        index_facts=("recipients",),
        wording=lambda f: f"Notified {_list(f.get('recipients'))}",
        report_wording=lambda f: (
            f"Serious incident notified to {_join(f.get('recipients', []))}"
            + _when(f.get("reference"), f" (ref {f.get('reference')})")
        ),
    ),
    EventKind(
        "InformationRequested",
        command="request-info",
        lane=_INFORMATION,
        index_facts=("agency", "request_id", "due", "asked_for"),
        gathering=True,
        wording=lambda f: (
            f"{f.get('asked_for')} requested from {f.get('agency')}"
            + _when(f.get("due"), f", due {f.get('due')}")
            + f" [{f.get('request_id')}]"
        ),
        report_wording=lambda f: (
            f"{f.get('asked_for')} requested from {f.get('agency')}"
            + _when(f.get("due"), f", due {f.get('due')}")
            + _when(f.get("request_id"), f" [{f.get('request_id')}]")
        ),
        example=(
            "caseledger request-info SCR-2026-001 --agency 'Northshire Police' "
            "--asked-for minimum-data --due 2026-05-12"
        ),
    ),
    EventKind(
        "InformationReceived",
        command="receive-info",
        lane=_INFORMATION,
        index_facts=("agency", "request_id", "involved"),
        gathering=True,
        wording=lambda f: (
            f"{f.get('agency')} replied "
            f"({_yes(f.get('involved'), 'involved', 'not involved')}): {f.get('summary')}"
        ),
        report_wording=lambda f: (
            f"Information received from {f.get('agency')} "
            f"({_yes(f.get('involved'), 'knew the child or family', 'no involvement')}): "
            f"{f.get('summary')}"
        ),
        example=(
            "caseledger receive-info SCR-2026-001 --agency 'Northshire Police' --involved yes "
            "--summary 'Two call-outs in 2025.'"
        ),
    ),
    EventKind(
        "InformationDeclined",
        command="decline-info",
        example=(
            "caseledger decline-info SCR-2026-001 --agency 'Northshire Academy Trust' "
            "--request-id R4 --reason 'Records held by the previous school'"
        ),
        lane=_INFORMATION,
        index_facts=("agency", "request_id"),
        gathering=True,
        wording=lambda f: f"{f.get('agency')} declined: {f.get('reason')}",
        report_wording=lambda f: (
            f"{f.get('agency')} declined to give information: {f.get('reason')}"
        ),
    ),
    EventKind(
        "NeighbourCheckRequested",
        command="check-neighbour",
        example=(
            "caseledger check-neighbour SCR-2026-001 --area Southshire --reason 'The "
            "family lived there until 2025'"
        ),
        lane=_INFORMATION,
        index_facts=("area",),
        gathering=True,
        wording=lambda f: f"Check requested with {f.get('area')}",
        report_wording=lambda f: (
            f"Check requested with {f.get('area')}" + _when(f.get("reason"), f": {f.get('reason')}")
        ),
    ),
    EventKind(
        "NeighbourCheckAnswered",
        command="neighbour-answered",
        example=(
            "caseledger neighbour-answered SCR-2026-001 --area Southshire --involved no "
            "--summary 'No record of the family.'"
        ),
        lane=_INFORMATION,
        index_facts=("area", "involved"),
        gathering=True,
        wording=lambda f: (
            f"{f.get('area')} answered "
            f"({_yes(f.get('involved'), 'involved', 'not involved')}): {f.get('summary')}"
        ),
        report_wording=lambda f: (
            f"{f.get('area')} answered "
            f"({_yes(f.get('involved'), 'involved', 'not involved')}): {f.get('summary')}"
        ),
    ),
    EventKind(
        "ContextRecorded",
        command="add-context",
        example=(
            "caseledger add-context SCR-2026-001 --topic parallel-process --summary "
            "'Police investigation open.'"
        ),
        lane=_INFORMATION,
        index_facts=("topic",),
        gathering=True,
        wording=lambda f: f"Context ({f.get('topic')}): {f.get('summary')}",
        report_wording=lambda f: f"Context ({f.get('topic')}): {f.get('summary')}",
    ),
    EventKind(
        "DiscussionHeld",
        command="discuss",
        lane=_DISCUSSION,
        index_facts=("forum", "attendees"),
        wording=lambda f: (
            f"{f.get('forum')} with {len(f.get('attendees') or ())} agencies: {f.get('summary')}"
        ),
        report_wording=lambda f: (
            f"Discussion ({f.get('forum')}) with {_join(f.get('attendees', []))}: "
            f"{f.get('summary')}"
        ),
        example=(
            "caseledger discuss SCR-2026-001 --forum rapid-review-meeting "
            "--attendees 'Northshire Police' --attendees 'Northshire ICB' "
            "--summary 'Facts agreed.'"
        ),
    ),
    EventKind(
        "AgencyViewGiven",
        command="agency-view",
        example=(
            "caseledger agency-view SCR-2026-001 --agency 'Northshire ICB' --view review "
            "--reasons 'Missed health appointments.'"
        ),
        lane=_DISCUSSION,
        index_facts=("agency", "view"),
        gathering=True,
        wording=lambda f: f"{f.get('agency')} view: {f.get('view')}. {f.get('reasons')}",
        report_wording=lambda f: f"{f.get('agency')} view: {f.get('view')}. {f.get('reasons')}",
    ),
    EventKind(
        "RecommendationMade",
        command="recommend",
        example=(
            "caseledger recommend SCR-2026-001 --to partners --outcome review --rationale "
            "'Reg 11 (a) met; learning on information sharing.'"
        ),
        lane=_DISCUSSION,
        index_facts=("to", "outcome"),
        wording=lambda f: (
            f"Recommended {f.get('outcome')} to the {f.get('to')}: {f.get('rationale')}"
        ),
        report_wording=lambda f: (
            f"Recommendation to the {f.get('to')}: {f.get('outcome')}. {f.get('rationale')}"
        ),
    ),
    EventKind(
        "PeerChallengeSought",
        command="seek-challenge",
        example=(
            "caseledger seek-challenge SCR-2026-001 --peer 'Southshire LSCP chair' "
            "--question 'Is the threshold met?'"
        ),
        lane=_DISCUSSION,
        index_facts=("peer",),
        gathering=True,
        wording=lambda f: f"Challenge sought from {f.get('peer')}: {f.get('question')}",
        report_wording=lambda f: (
            f"Independent challenge sought from {f.get('peer')}: {f.get('question')}"
        ),
    ),
    EventKind(
        "PeerChallengeReceived",
        command="challenge-received",
        example=(
            "caseledger challenge-received SCR-2026-001 --peer 'Southshire LSCP chair' "
            "--agrees yes --advice 'Agree: review.'"
        ),
        lane=_DISCUSSION,
        index_facts=("peer", "agrees"),
        gathering=True,
        wording=lambda f: (
            f"{f.get('peer')} {_agrees(f.get('agrees'), 'gives no view')}: {f.get('advice')}"
        ),
        report_wording=lambda f: (
            f"Challenge from {f.get('peer')} ({_agrees(f.get('agrees'), 'no view')}): "
            f"{f.get('advice')}"
        ),
    ),
    EventKind(
        "DecisionDelayed",
        command="delay-decision",
        lane=_DECISION,
        index_facts=("reason", "expected_by", "approved_by"),
        wording=lambda f: (
            f"Decision delayed to {f.get('expected_by')}, approved by {f.get('approved_by')}: "
            f"{f.get('reason')}"
        ),
        report_wording=lambda f: (
            f"Decision delayed, expected by {f.get('expected_by')}, approved by "
            f"{f.get('approved_by')}: {f.get('reason')}"
        ),
        example=(
            "caseledger delay-decision SCR-2026-001 --reason 'Police disclosure pending' "
            "--expected-by 2026-06-20 --approved-by 'Chair, Northshire LSCB'"
        ),
    ),
    EventKind(
        "DecisionMade",
        command="decide",
        lane=_DECISION,
        index_facts=("outcome", "decided_by"),
        wording=lambda f: (
            f"Decided {f.get('outcome')} ({_list(f.get('decided_by'))}): {f.get('rationale')}"
        ),
        report_wording=lambda f: (
            f"DECISION: {OUTCOME_LABELS.get(str(f.get('outcome')), str(f.get('outcome')))}, "
            f"by {_join(f.get('decided_by', []))}. {f.get('rationale')}"
        ),
        example=(
            "caseledger decide SCR-2026-001 --outcome review --decided-by 'Northshire County "
            "Council' --criteria @criteria.json --rationale 'Reg 11 (a) met.' "
            "--nature 'LCSPR, systems method' --factors learning='Protocol gap' "
            "--relied-on SCR-2026-001#4"
        ),
    ),
    EventKind(
        "DecisionCommunicated",
        command="communicate",
        example=(
            "caseledger communicate SCR-2026-001 --to national-panel --to ofsted "
            "--reference NP-2026-0412"
        ),
        lane=_NOTICES,
        index_facts=("to",),
        wording=lambda f: f"Decision sent to {_list(f.get('to'))}",
        report_wording=lambda f: f"Decision communicated to {_join(f.get('to', []))}",
    ),
    EventKind(
        "PanelResponded",
        command="panel-response",
        example=(
            "caseledger panel-response SCR-2026-001 --response agree --summary 'The panel "
            "agrees with the decision.'"
        ),
        lane=_NOTICES,
        index_facts=("response",),
        wording=lambda f: f"National panel: {f.get('response')}. {f.get('summary')}",
        report_wording=lambda f: (
            f"National panel responded ({f.get('response')}): {f.get('summary')}"
        ),
    ),
    EventKind(
        "ScopeRevised",
        command="revise-scope",
        example=(
            "caseledger revise-scope SCR-2026-001 --scope 'From birth to the incident' "
            "--reason 'Earlier contact found' --trigger new-information"
        ),
        lane=_DECISION,
        index_facts=("trigger",),
        wording=lambda f: f"Scope revised ({f.get('trigger')}): {f.get('scope')}",
        report_wording=lambda f: (
            f"Scope revised ({f.get('trigger')}): {f.get('scope')}. {f.get('reason')}"
        ),
    ),
    EventKind(
        "ReviewerCommissioned",
        command="commission-reviewer",
        example=(
            "caseledger commission-reviewer SCR-2026-001 --reviewer 'Independent reviewer "
            "(R. Associates)' --independence 'No work for the partnership since 2020'"
        ),
        lane=_REVIEW,
        index_facts=("reviewer",),
        wording=lambda f: f"Reviewer commissioned: {f.get('reviewer')}",
        report_wording=lambda f: (
            f"Reviewer commissioned: {f.get('reviewer')}. {f.get('independence')}"
        ),
    ),
    EventKind(
        "FamilyInformed",
        command="inform-family",
        example=(
            "caseledger inform-family SCR-2026-001 --who 'the parents' --how 'meeting "
            "with the business manager'"
        ),
        lane=_NOTICES,
        index_facts=(),
        wording=lambda f: f"{f.get('who')} informed ({f.get('how')})",
        report_wording=lambda f: f"Family informed: {f.get('who')}, {f.get('how')}",
    ),
    EventKind(
        "ReviewCompleted",
        command="complete-review",
        example=(
            "caseledger complete-review SCR-2026-001 --summary 'Final report agreed by "
            "the partners.'"
        ),
        lane=_REVIEW,
        index_facts=(),
        wording=lambda f: "Review completed" + _when(f.get("summary"), f": {f.get('summary')}"),
        report_wording=lambda f: (
            "Review completed" + _when(f.get("summary"), f": {f.get('summary')}")
        ),
    ),
    EventKind(
        "ReportPublished",
        command="publish",
        example=(
            "caseledger publish SCR-2026-001 --location "
            "https://northshire.example.org/reviews/scr-2026-001"
        ),
        lane=_REVIEW,
        index_facts=("location",),
        wording=lambda f: f"Report published: {f.get('location')}",
        report_wording=lambda f: f"Report published at {f.get('location')}",
    ),
    EventKind(
        "EntryCorrected",
        command="correct",
        lane=_CORRECTIONS,
        index_facts=("corrects",),
        wording=lambda f: (
            f"Corrects {f.get('corrects')} ({_list(sorted(f.get('changes') or {}))}): "
            f"{f.get('reason')}"
        ),
        report_wording=lambda f: (
            f"Correction of {f.get('corrects')} "
            f"({', '.join(sorted(dict(f.get('changes') or {})))}): {f.get('reason')}"
        ),
        example=(
            "caseledger correct SCR-2026-001 --corrects SCR-2026-001#5 "
            "--changes occurred_at=2026-05-04 --reason 'Typed the wrong date.'"
        ),
    ),
    EventKind(
        "CaseClosed",
        command="close",
        example=(
            "caseledger close SCR-2026-001 --reason 'Review published; actions monitored "
            "by the partnership.'"
        ),
        lane=_REVIEW,
        index_facts=("reason",),
        wording=lambda f: f"Case closed: {f.get('reason')}",
        report_wording=lambda f: f"Case closed: {f.get('reason')}",
    ),
    EventKind(
        "RapidReviewSent",
        command="send-rapid-review",
        example=(
            "caseledger send-rapid-review SCR-2026-001 --to national-panel --reference RR-0412"
        ),
        lane=_NOTICES,
        index_facts=("to",),
        wording=lambda f: f"Rapid review sent to {_list(f.get('to'))}",
        report_wording=lambda f: (
            f"Rapid review sent to {_join(f.get('to', []))}"
            + _when(f.get("reference"), f" (reference {f.get('reference')})")
        ),
    ),
    EventKind(
        "FinalReportSent",
        command="send-final-report",
        example=(
            "caseledger send-final-report SCR-2026-001 --to national-panel "
            "--to secretary-of-state --planned-publication 2026-10-15"
        ),
        lane=_REVIEW,
        index_facts=("to", "planned_publication"),
        wording=lambda f: (
            f"Final report sent to {_list(f.get('to'))}; publication planned for "
            f"{f.get('planned_publication')}"
        ),
        report_wording=lambda f: (
            f"Final report sent to {_join(f.get('to', []))} before publication "
            f"(planned for {f.get('planned_publication')})"
        ),
    ),
    EventKind(
        "PublicationDeferred",
        command="defer-publication",
        example=(
            "caseledger defer-publication SCR-2026-001 --reason 'The trial starts in "
            "October' --trigger criminal-proceedings --expected-by 2027-01-31 "
            "--approved-by 'Northshire Police'"
        ),
        lane=_REVIEW,
        index_facts=("reason", "trigger", "expected_by", "approved_by"),
        wording=lambda f: (
            f"Publication deferred ({f.get('trigger')}) to {f.get('expected_by')}: "
            f"{f.get('reason')}"
        ),
        report_wording=lambda f: (
            f"Publication deferred ({f.get('trigger')}), expected by {f.get('expected_by')}, "
            f"approved by {f.get('approved_by')}: {f.get('reason')}"
        ),
    ),
    EventKind(
        "NotificationDeferred",
        command="defer-notification",
        example=(
            "caseledger defer-notification SCR-2026-001 --reason 'The death was first "
            "treated as natural causes' --approved-by 'Northshire County Council'"
        ),
        lane=_NOTICES,
        index_facts=("reason", "approved_by"),
        wording=lambda f: f"Notification late, with reason: {f.get('reason')}",
        report_wording=lambda f: (
            f"Late notification explained, approved by {f.get('approved_by')}: {f.get('reason')}"
        ),
    ),
    EventKind(
        "PartnersDelegated",
        command="delegate-partner",
        example=(
            "caseledger delegate-partner SCR-2026-001 --partner health --delegate "
            "'Director of Nursing, Northshire ICB' --from 2026-01-01"
        ),
        lane=_DECISION,
        index_facts=("partner", "delegate", "from", "to"),
        wording=lambda f: (
            f"{f.get('partner')} delegated to {f.get('delegate')} from {f.get('from')}"
            + _when(f.get("to"), f" to {f.get('to')}")
        ),
        report_wording=lambda f: (
            f"The {f.get('partner')} partner delegated to {f.get('delegate')} from "
            f"{f.get('from')}" + _when(f.get("to"), f" to {f.get('to')}")
        ),
    ),
    EventKind(
        "ResponsibilityTransferred",
        command="transfer",
        example=(
            "caseledger transfer SCR-2026-001 --to-area Westmoor --reason 'The child lived "
            "in Westmoor' --accepted-by 'Westmoor Safeguarding Partnership'"
        ),
        lane=_NOTICES,
        index_facts=("to_area",),
        wording=lambda f: f"Responsibility transferred to {f.get('to_area')}: {f.get('reason')}",
        report_wording=lambda f: (
            f"Responsibility transferred to {f.get('to_area')}, accepted by "
            f"{f.get('accepted_by')}: {f.get('reason')}"
        ),
    ),
    EventKind(
        "ThemesRecorded",
        command="record-themes",
        example="caseledger record-themes SCR-2026-001 --themes neglect --themes unsafe-sleep",
        lane=_DISCUSSION,
        index_facts=("themes",),
        wording=lambda f: f"Themes: {_list(f.get('themes'))}",
        report_wording=lambda f: f"Practice themes recorded: {_join(f.get('themes', []))}",
    ),
    EventKind(
        "LearningRecorded",
        command="record-learning",
        example=(
            "caseledger record-learning SCR-2026-001 --summary 'Bruising in a non-mobile "
            "baby was not escalated' --recommendations 'Adopt the bruising protocol' "
            "--themes bruising-in-non-mobile-infants"
        ),
        lane=_REVIEW,
        index_facts=("themes",),
        wording=lambda f: f"Learning: {f.get('summary')}",
        report_wording=lambda f: (
            f"Learning recorded: {f.get('summary')}"
            + _when(
                f.get("recommendations"),
                f" Recommendations: {'; '.join(map(str, f.get('recommendations') or []))}",
            )
        ),
    ),
)

KINDS_BY_NAME: Final[Mapping[str, EventKind]] = {kind.name: kind for kind in KINDS}
"""Each kind by its event type (``"DecisionMade"``)."""
KINDS_BY_COMMAND: Final[Mapping[str, EventKind]] = {kind.command: kind for kind in KINDS}
"""Each kind by its CLI command (``"decide"``)."""


def kind_named(name: str) -> EventKind | None:
    """The kind of an event type, or None when the catalogue has no such type."""
    return KINDS_BY_NAME.get(name)
