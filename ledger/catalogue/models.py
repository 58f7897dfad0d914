"""The event catalogue of ``shared/contract/events.md`` as pydantic v2 models.

Every input line is validated against :data:`InputLine`, one discriminated union on
``type``.  The models are frozen and reject unknown fields, so what is recorded is
exactly what the catalogue allows.  Rules that need the case's history (regime criteria,
backward references, dates against ``incident_date``) live in :mod:`ledger.domain.invariants`.

The field types they are built from (vocabularies, limits, text rules, the date grammar)
live in :mod:`ledger.catalogue.fields` and are re-exported here, so that this module stays
the one import for the catalogue; what the rest of the program keeps per event type (its
command, wording, lane, index facts) is in :mod:`ledger.catalogue.registry`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    create_model,
    field_validator,
    model_validator,
)

# The field types are re-exported (fields.__all__), so that callers import the catalogue
# from this one module.
from ledger.catalogue.fields import *  # noqa: F403
from ledger.catalogue.fields import (
    MAX_CHANGES,
    MAX_LIST_ITEMS,
    MAX_PERSONAL_FIELDS,
    MAX_RELIED_ON,
    CaseRef,
    CommunicatedTo,
    CriterionName,
    DeferralTrigger,
    EventRef,
    FinalReportRecipient,
    FindingValue,
    LedgerDate,
    Name,
    NotifyRecipient,
    OccurredAt,
    Outcome,
    RapidReviewRecipient,
    Regime,
    StatutoryPartner,
    Subject,
    Text,
    Theme,
    check_personal_value,
    reject_floats,
)

#: Fields the ledger assigns; an input line that carries one is rejected.
ASSIGNED_FIELDS = (
    "seq",
    "position",
    "recorded_at",
    "actor",
    "role",
    "command_id",
    "prev_hash",
    "hash",
)


class Strict(BaseModel):
    """Base for every catalogue object: frozen, unknown fields rejected, no coercion."""

    # defer_build: the validators are built on first use, so read-only commands (why,
    # status, ...) do not pay for them at start-up.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)


class Source(Strict):
    """A document that evidences an entry."""

    title: Text
    ref: Text
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


class Finding(Strict):
    """A finding against one statutory criterion, with its reason."""

    finding: FindingValue
    reason: Text


class Factors(Strict):
    """The chair's weighing of the quality marker's factors (each optional free text)."""

    learning: Text | None = None
    previous_learning: Text | None = None
    resources: Text | None = None
    practitioners: Text | None = None
    family: Text | None = None
    other_reviews: Text | None = None
    media: Text | None = None
    public_trust: Text | None = None


PersonalKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class Envelope(Strict):
    """Fields every event carries, given by whoever records it."""

    case: CaseRef
    occurred_at: OccurredAt | None = None
    sources: Annotated[list[Source], Field(max_length=MAX_LIST_ITEMS)] | None = None
    note: Text | None = None


# --- event types ------------------------------------------------------------------


class CaseReferred(Envelope):
    """Opens a case: the first event of a case, exactly once."""

    type: Literal["CaseReferred"]
    regime: Regime
    subject: Subject
    incident_date: LedgerDate
    aware_date: LedgerDate
    harm: Literal["death", "serious-harm", "other"]
    abuse_or_neglect: Literal["known", "suspected", "not-suspected"]
    looked_after: bool = False
    home_area: Name
    incident_area: Name | None = None
    other_areas: Annotated[list[Name], Field(max_length=MAX_LIST_ITEMS)] | None = None
    referrer: Name
    route: Literal["statutory", "discretionary"]
    summary: Text
    personal: Annotated[dict[PersonalKey, Any], Field(max_length=MAX_PERSONAL_FIELDS)] | None = None
    transitional: bool | None = Field(
        default=None,
        description="true when the case is handled under a regime that was not in force "
        "on its incident date or aware date (a case begun before its area's transition)",
    )

    @field_validator("personal")
    @classmethod
    def _personal_values(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        reject_floats(value, "personal")
        for key, item in value.items():
            check_personal_value(key, item)
        return value

    @model_validator(mode="after")
    def _aware_not_before_incident(self) -> CaseReferred:
        if self.aware_date < self.incident_date:
            raise ValueError(
                "aware_date: the local authority cannot become aware "
                f"({self.aware_date}) before the incident ({self.incident_date})"
            )
        if self.incident_area is None:
            object.__setattr__(self, "incident_area", self.home_area)
        return self


class IncidentNotified(Envelope):
    """The serious incident notification to the national bodies."""

    type: Literal["IncidentNotified"]
    recipients: Annotated[list[NotifyRecipient], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    reference: Name | None = None


class InformationRequested(Envelope):
    """A request to an agency for information about its involvement."""

    type: Literal["InformationRequested"]
    agency: Name
    asked_for: Literal["minimum-data", "chronology", "summary", "records", "other"]
    due: LedgerDate | None = None
    request_id: Name | None = None


class InformationReceived(Envelope):
    """An agency's reply; closes its open request."""

    type: Literal["InformationReceived"]
    agency: Name
    request_id: Name | None = None
    involved: bool
    summary: Text


class InformationDeclined(Envelope):
    """An agency declines to give information; closes its open request."""

    type: Literal["InformationDeclined"]
    agency: Name
    request_id: Name | None = None
    reason: Text


class NeighbourCheckRequested(Envelope):
    """A check with a neighbouring board or partnership where the family lived."""

    type: Literal["NeighbourCheckRequested"]
    area: Name
    reason: Text | None = None


class NeighbourCheckAnswered(Envelope):
    """The neighbouring area's answer."""

    type: Literal["NeighbourCheckAnswered"]
    area: Name
    involved: bool
    summary: Text


class ContextRecorded(Envelope):
    """Contextual information weighed in the decision."""

    type: Literal["ContextRecorded"]
    topic: Literal[
        "parallel-process",
        "previous-learning",
        "local-priority",
        "media-interest",
        "family",
        "practitioners",
        "resources",
        "other",
    ]
    summary: Text


class DiscussionHeld(Envelope):
    """The inter-agency discussion (SCR sub-group, rapid review meeting, board)."""

    type: Literal["DiscussionHeld"]
    forum: Literal["scr-subgroup", "rapid-review-meeting", "board", "other"]
    attendees: Annotated[list[Name], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    summary: Text


class AgencyViewGiven(Envelope):
    """A member agency's view on whether to review."""

    type: Literal["AgencyViewGiven"]
    agency: Name
    view: Literal["review", "no-review", "other-review", "no-view"]
    reasons: Text


class RecommendationMade(Envelope):
    """The recommendation to the chair or the partners."""

    type: Literal["RecommendationMade"]
    to: Literal["chair", "partners"]
    outcome: Outcome
    rationale: Text
    criteria: dict[CriterionName, Finding] | None = None
    nature: Text | None = None


class PeerChallengeSought(Envelope):
    """Independent challenge sought, e.g. from another chair or the scrutineer."""

    type: Literal["PeerChallengeSought"]
    peer: Name
    question: Text


class PeerChallengeReceived(Envelope):
    """The peer's answer."""

    type: Literal["PeerChallengeReceived"]
    peer: Name
    agrees: bool | None
    advice: Text


class DecisionDelayed(Envelope):
    """An approved delay to the decision, with its reason and expected date."""

    type: Literal["DecisionDelayed"]
    reason: Text
    expected_by: LedgerDate
    approved_by: Name


class DecisionMade(Envelope):
    """The decision; a later one revisits and supersedes an earlier one."""

    type: Literal["DecisionMade"]
    outcome: Outcome
    decided_by: Annotated[list[Name], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    criteria: dict[CriterionName, Finding]
    rationale: Text
    factors: Factors | None = None
    nature: Text | None = None
    relied_on: Annotated[list[EventRef], Field(max_length=MAX_RELIED_ON)] | None = None

    @model_validator(mode="after")
    def _nature_for_reviews(self) -> DecisionMade:
        if self.outcome in ("review", "other-review") and not self.nature:
            raise ValueError(
                f"nature: a decision with outcome '{self.outcome}' must say the nature "
                "(kind and scope) of the review"
            )
        return self


class DecisionCommunicated(Envelope):
    """The decision sent to the national bodies, the family or the agencies."""

    type: Literal["DecisionCommunicated"]
    to: Annotated[list[CommunicatedTo], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    reference: Name | None = None


class PanelResponded(Envelope):
    """The national panel's response to the decision."""

    type: Literal["PanelResponded"]
    response: Literal["agree", "disagree", "advice", "request-info"]
    summary: Text


class ScopeRevised(Envelope):
    """The scope of the review is revisited."""

    type: Literal["ScopeRevised"]
    scope: Text
    reason: Text
    trigger: Literal["new-information", "reviewer-commissioning", "panel-advice", "other"]


class ReviewerCommissioned(Envelope):
    """The independent lead reviewer is commissioned."""

    type: Literal["ReviewerCommissioned"]
    reviewer: Name
    independence: Text


class FamilyInformed(Envelope):
    """The family is told about the review."""

    type: Literal["FamilyInformed"]
    who: Name
    how: Text


class ReviewCompleted(Envelope):
    """The review is completed (the end of the review-completion clock under wt2015)."""

    type: Literal["ReviewCompleted"]
    summary: Text | None = None


class ReportPublished(Envelope):
    """The report is published (the end of the review-completion clock from wt2018)."""

    type: Literal["ReportPublished"]
    location: Text


class EntryCorrected(Envelope):
    """Corrects an earlier entry; views apply it, the original stays stored."""

    type: Literal["EntryCorrected"]
    corrects: EventRef
    changes: Annotated[dict[str, Any], Field(min_length=1, max_length=MAX_CHANGES)]
    reason: Text

    @field_validator("changes")
    @classmethod
    def _changes_whole_numbers(cls, value: dict[str, Any]) -> dict[str, Any]:
        checked: dict[str, Any] = reject_floats(value, "changes")
        return checked


class CaseClosed(Envelope):
    """Closes the case; nothing but corrections may follow."""

    type: Literal["CaseClosed"]
    reason: Text


# --- the lifecycle after the decision, and learning (second wave) ---------------------


class RapidReviewSent(Envelope):
    """The rapid review sent to the national panel: under wt2018/wt2023 this, not the
    decision, ends the rapid review clock.  Only in cases under wt2018 or wt2023 (wt2015
    has no rapid review)."""

    type: Literal["RapidReviewSent"]
    to: Annotated[list[RapidReviewRecipient], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    reference: Name | None = None

    @field_validator("to")
    @classmethod
    def _to_the_panel(cls, value: list[str]) -> list[str]:
        if "national-panel" not in value:
            raise ValueError("a rapid review is sent to the national panel: include national-panel")
        return value


class FinalReportSent(Envelope):
    """The final report sent to the national panel and the Secretary of State before it is
    published (SI 2018/789 reg 14).  Only after a decision to review (outcome review or
    other-review) in force on its day; planned_publication is not before that day."""

    type: Literal["FinalReportSent"]
    to: Annotated[list[FinalReportRecipient], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    planned_publication: LedgerDate


class PublicationDeferred(Envelope):
    """Publication held back, with its reason and expected date: justifies a late
    publication as an approved delay justifies a late decision.  Only after a decision to
    review; expected_by is not before its own day; approved_by names a user whose
    role approves it, as for DecisionDelayed."""

    type: Literal["PublicationDeferred"]
    reason: Text
    trigger: DeferralTrigger
    expected_by: LedgerDate
    approved_by: Name


class NotificationDeferred(Envelope):
    """A late notification with its recorded reason and approval: justifies it as an
    approved delay justifies a late decision (approved_by as for DecisionDelayed)."""

    type: Literal["NotificationDeferred"]
    reason: Text
    approved_by: Name


def _delegation_in_order(model: Any) -> Any:
    """A delegation cannot end before it begins."""
    begins, ends = getattr(model, "from"), model.to
    if ends is not None and ends < begins:
        raise ValueError(
            f"to: the delegation ends ({ends.isoformat()}) before it begins ({begins.isoformat()})"
        )
    return model


_DELEGATION_FIELDS: dict[str, Any] = {
    "type": (Literal["PartnersDelegated"], ...),
    "partner": (StatutoryPartner, ...),
    "delegate": (Name, ...),
    "from": (LedgerDate, ...),
    "to": (LedgerDate | None, None),
}

# Built with create_model because the catalogue names a field from, a Python keyword:
# the field keeps its wire name, so every generic part (commands, corrections, the index,
# the rule packs) sees the name the catalogue gives.
PartnersDelegated: type[Envelope] = create_model(
    "PartnersDelegated",
    __base__=Envelope,
    __doc__=(
        "A lead safeguarding partner's delegate, in force from a date (to a date); only in "
        "cases under wt2023."
    ),
    __module__=__name__,
    __validators__={"_in_order": model_validator(mode="after")(_delegation_in_order)},  # type: ignore[dict-item]
    **_DELEGATION_FIELDS,
)


class ResponsibilityTransferred(Envelope):
    """The case moves to another partnership, which accepts it: to_area is another
    area than the one responsible then (the home_area, or the last transfer's)."""

    type: Literal["ResponsibilityTransferred"]
    to_area: Name
    reason: Text
    accepted_by: Name


class ThemesRecorded(Envelope):
    """The case's practice themes, from the themes vocabulary kept as data, each once."""

    type: Literal["ThemesRecorded"]
    themes: Annotated[list[Theme], Field(min_length=1, max_length=MAX_LIST_ITEMS)]


class LearningRecorded(Envelope):
    """What a review found, with its recommendations and themes (each theme once)."""

    type: Literal["LearningRecorded"]
    summary: Text
    recommendations: Annotated[list[Text], Field(max_length=MAX_LIST_ITEMS)] | None = None
    themes: Annotated[list[Theme], Field(max_length=MAX_LIST_ITEMS)] | None = None


AnyEvent = Annotated[
    Union[  # noqa: UP007 - a discriminated union needs the Union form for pydantic
        CaseReferred,
        IncidentNotified,
        InformationRequested,
        InformationReceived,
        InformationDeclined,
        NeighbourCheckRequested,
        NeighbourCheckAnswered,
        ContextRecorded,
        DiscussionHeld,
        AgencyViewGiven,
        RecommendationMade,
        PeerChallengeSought,
        PeerChallengeReceived,
        DecisionDelayed,
        DecisionMade,
        DecisionCommunicated,
        PanelResponded,
        ScopeRevised,
        ReviewerCommissioned,
        FamilyInformed,
        ReviewCompleted,
        ReportPublished,
        EntryCorrected,
        CaseClosed,
        RapidReviewSent,
        FinalReportSent,
        PublicationDeferred,
        NotificationDeferred,
        PartnersDelegated,
        ResponsibilityTransferred,
        ThemesRecorded,
        LearningRecorded,
    ],
    Field(discriminator="type"),
]

#: The event types in catalogue order: the members of the union, which is the one list.
EVENT_MODELS: tuple[type[Envelope], ...] = get_args(get_args(AnyEvent)[0])
MODELS_BY_TYPE: dict[str, type[Envelope]] = {m.__name__: m for m in EVENT_MODELS}
EVENT_TYPES: tuple[str, ...] = tuple(MODELS_BY_TYPE)

InputLine: TypeAdapter[Envelope] = TypeAdapter(AnyEvent, config=ConfigDict(defer_build=True))
"""Validates one input line (``InputLine.validate_json(line)``); built on first use."""

#: Fields of the envelope that a correction may change.
CORRECTABLE_ENVELOPE_FIELDS = ("occurred_at",)
ENVELOPE_FIELDS = ("type", "case", "occurred_at", "sources", "note")


def input_schema() -> dict[str, Any]:
    """The JSON Schema of one input line (what ``caseledger schema`` prints)."""
    schema = InputLine.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "caseledger input line"
    schema["description"] = (
        "One event in the catalogue's wire form, as given on one line of a "
        "`caseledger record` file. Fields the ledger assigns "
        f"({', '.join(ASSIGNED_FIELDS)}) are rejected."
    )
    return schema


def body_fields(event_type: str) -> tuple[str, ...]:
    """The names of the fields specific to an event type (not the envelope)."""
    model = MODELS_BY_TYPE[event_type]
    return tuple(n for n in model.model_fields if n not in ENVELOPE_FIELDS)


def field_adapter(event_type: str, field: str) -> TypeAdapter[Any]:
    """A strict validator for one field of one event type, for corrections."""
    key = (event_type, field)
    adapter = _FIELD_ADAPTERS.get(key)
    if adapter is None:
        info = MODELS_BY_TYPE[event_type].model_fields[field]
        adapter = TypeAdapter(info.rebuild_annotation(), config=ConfigDict(strict=True))
        _FIELD_ADAPTERS[key] = adapter
    return adapter


_FIELD_ADAPTERS: dict[tuple[str, str], TypeAdapter[Any]] = {}
