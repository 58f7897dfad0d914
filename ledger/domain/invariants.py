"""Rules that span events, checked against a case's state before an entry is triggered.

Each check raises :class:`~ledger.errors.InputError` naming the field and the reason;
the caller adds the input line.  Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from ledger.catalogue.models import (
    CRITERIA,
    ENVELOPE_FIELDS,
    LONDON,
    NAME_PATTERN,
    REGIME_IN_FORCE,
    TEXT_PATTERN,
    CaseReferred,
    DecisionMade,
    EntryCorrected,
    Envelope,
    FinalReportSent,
    InformationDeclined,
    InformationReceived,
    InformationRequested,
    InputLine,
    LearningRecorded,
    PartnersDelegated,
    PublicationDeferred,
    RapidReviewSent,
    RecommendationMade,
    ResponsibilityTransferred,
    ThemesRecorded,
    body_fields,
    occurred_day,
    occurred_instant,
    text_problem,
)
from ledger.catalogue.terms import parse_ref as parse_ref  # re-exported: its home before issue 18
from ledger.domain.case import Case, agency_key
from ledger.errors import InputError
from ledger.integrity.canonical import canonical_json

FUTURE_GRACE = timedelta(minutes=5)
"""How far in the future an ``occurred_at`` may be (clocks on laptops drift)."""

BodyLoader = Callable[[int], dict[str, Any]]
"""Returns the stored record of entry ``seq`` of the case being checked."""

#: Regimes with a rapid review sent to the national panel (wt2015 has none).
RAPID_REVIEW_REGIMES = ("wt2018", "wt2023")
#: Regimes under which the lead safeguarding partners may delegate (Working Together 2023).
DELEGATION_REGIMES = ("wt2023",)
#: Decision outcomes after which a review report is written, sent and published.
REVIEW_OUTCOMES = ("review", "other-review")
#: The entry types checked by :func:`check_lifecycle` (on their own and when corrected).
LIFECYCLE_TYPES = (
    RapidReviewSent,
    FinalReportSent,
    PublicationDeferred,
    PartnersDelegated,
    ResponsibilityTransferred,
    ThemesRecorded,
    LearningRecorded,
)


def check_entry(
    case: Case | None,
    event: Envelope,
    occurred_at: str,
    now: datetime,
    load_body: BodyLoader,
) -> None:
    """Check one validated input event against the case it is for."""
    kind = type(event).__name__
    if isinstance(event, CaseReferred):
        if case is not None:
            raise InputError(
                f"case {event.case} already exists; CaseReferred opens a case exactly once",
                field="case",
            )
        check_referral_dates(event, now)
        check_occurred_at(occurred_at, event.incident_date.isoformat(), now)
        return
    if case is None:
        raise InputError(
            f"case {event.case} is unknown: record its CaseReferred first", field="case"
        )
    if case.closed and kind != "EntryCorrected":
        raise InputError(
            f"case {event.case} is closed; only corrections (EntryCorrected) may follow",
            field="type",
        )
    check_occurred_at(occurred_at, case.incident_date, now)
    if isinstance(event, DecisionMade):
        check_criteria(case.regime, event.criteria, exact=True)
        for i, ref in enumerate(event.relied_on or []):
            check_backward_ref(case, ref, f"relied_on[{i}]")
    elif isinstance(event, RecommendationMade) and event.criteria is not None:
        check_criteria(case.regime, event.criteria, exact=False)
    elif isinstance(event, InformationRequested):
        if event.request_id is not None and event.request_id in case.request_ids:
            raise InputError(
                f"request {event.request_id} already exists in case {case.ref}; "
                "request ids are unique in a case",
                field="request_id",
            )
    elif isinstance(event, (InformationReceived, InformationDeclined)):
        if event.request_id is not None and event.request_id not in case.open_requests:
            known = ", ".join(case.open_requests) or "none"
            raise InputError(
                f"request {event.request_id} is not an open request of case {case.ref} "
                f"(open: {known})",
                field="request_id",
            )
    elif isinstance(event, LIFECYCLE_TYPES):
        check_lifecycle(case, event, occurred_at, case.version + 1, load_body)
    elif isinstance(event, EntryCorrected):
        check_correction(case, event, now, load_body)


def check_occurred_at(occurred_at: str, incident_date: str, now: datetime) -> None:
    """``occurred_at`` is not in the future (5 minutes' grace) nor before the incident
    (its London day, as :func:`occurred_day` gives it, from the one parse)."""
    if len(occurred_at) == 10:
        day = date.fromisoformat(occurred_at)
        if day > _london_day(now):
            raise InputError(f"{occurred_at} is in the future", field="occurred_at")
    else:
        moment = datetime.fromisoformat(occurred_at)
        if moment > now + FUTURE_GRACE:
            raise InputError(
                f"{occurred_at} is more than 5 minutes in the future", field="occurred_at"
            )
        day = moment.astimezone(LONDON).date()
    if day < date.fromisoformat(incident_date):
        raise InputError(
            f"{occurred_at} is before the case's incident_date {incident_date}",
            field="occurred_at",
        )


@lru_cache(maxsize=16)
def _london_day(now: datetime) -> date:
    """The London day of the ledger's clock: one command asks it of every line."""
    return now.astimezone(LONDON).date()


def check_referral_dates(referral: CaseReferred, now: datetime, prefix: str = "") -> None:
    """A referral's dates can have happened, under a regime that applied to them.

    ``incident_date`` and ``aware_date`` are not after today (the ledger's clock, in
    Europe/London); the regime was in force on the incident date or on the aware date
    (``REGIME_IN_FORCE``), unless the referral says it is a transitional case.
    """
    today = now.astimezone(LONDON).date()
    for name in ("incident_date", "aware_date"):
        day: date = getattr(referral, name)
        if day > today:
            raise InputError(
                f"{day.isoformat()} is in the future (today is {today.isoformat()})",
                field=prefix + name,
            )
    if referral.transitional:
        return
    start, end = REGIME_IN_FORCE[referral.regime]
    if not any(
        start <= day and (end is None or day <= end)
        for day in (referral.incident_date, referral.aware_date)
    ):
        window = f"from {start.isoformat()}" + (f" to {end.isoformat()}" if end else "")
        raise InputError(
            f"{referral.regime} was not in force on the incident date "
            f"{referral.incident_date.isoformat()} nor on the aware date "
            f"{referral.aware_date.isoformat()} (it applies {window}); choose the regime "
            "in force, or give transitional: true for a case begun under the earlier one",
            field=prefix + "regime",
        )


def check_criteria(regime: str, criteria: Collection[str], *, exact: bool) -> None:
    """Criteria keys are those of the case's regime: all of them for a decision."""
    expected = CRITERIA[regime]
    foreign = [k for k in criteria if k not in expected]
    if foreign:
        raise InputError(
            f"{', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not a criterion "
            f"under {regime}; its criteria are {', '.join(expected)}",
            field=f"criteria.{foreign[0]}",
        )
    missing = [k for k in expected if k not in criteria]
    if exact and missing:
        raise InputError(
            f"a decision must give a finding on every criterion of {regime}; "
            f"missing {', '.join(missing)}",
            field=f"criteria.{missing[0]}",
        )


def check_backward_ref(case: Case, ref: str, field: str, before: int | None = None) -> int:
    """A reference names an earlier entry of the same case; returns its ``seq``."""
    case_ref, seq = parse_ref(ref)
    if case_ref != case.ref:
        raise InputError(
            f"{ref} belongs to another case; references must stay inside case {case.ref}",
            field=field,
        )
    limit = case.version if before is None else before - 1
    if seq > limit:
        raise InputError(
            f"{ref} does not exist before this entry; references must point backwards "
            f"(the latest entry {'is ' + case.ref + '#' + str(limit) if limit else 'is none'})",
            field=field,
        )
    return seq


def check_correction(
    case: Case, event: EntryCorrected, now: datetime, load_body: BodyLoader
) -> None:
    """A correction names an earlier non-correction and changes only valid fields."""
    seq = check_backward_ref(case, event.corrects, "corrects")
    target_type = case.type_of(seq)
    assert target_type is not None
    if target_type == "EntryCorrected":
        raise InputError(
            f"{event.corrects} is itself a correction; correct the original entry instead",
            field="corrects",
        )
    allowed = set(body_fields(target_type)) | {"occurred_at"}
    for name in event.changes:
        if name not in allowed:
            if name in ENVELOPE_FIELDS:
                reason = f"only occurred_at of the envelope may be corrected, not {name}"
            else:
                reason = (
                    f"{name} is not a field of {target_type}; "
                    f"its fields are {', '.join(sorted(allowed))}"
                )
            raise InputError(reason, field=f"changes.{name}")
    original = corrected_so_far(case, seq, load_body)
    wire = {k: v for k, v in original.items() if k in ENVELOPE_FIELDS or k in allowed}
    corrected_body = {**wire, **event.changes}
    try:
        corrected = InputLine.validate_json(canonical_json(corrected_body))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"][1:]]
        message = first["msg"].removeprefix("Value error, ")
        pattern = (first.get("ctx") or {}).get("pattern")
        if pattern in (TEXT_PATTERN, NAME_PATTERN) and isinstance(first["input"], str):
            message = text_problem(first["input"], name=pattern == NAME_PATTERN)
        raise InputError(
            f"the corrected {target_type} would be invalid: {message}",
            field="changes." + ".".join(loc) if loc else "changes",
        ) from None
    if "occurred_at" in event.changes and corrected.occurred_at is not None:
        incident = case.incident_date
        if isinstance(corrected, CaseReferred):
            incident = corrected.incident_date.isoformat()
        try:
            check_occurred_at(corrected.occurred_at, incident, now)
        except InputError as exc:
            raise InputError(exc.reason, field="changes.occurred_at") from None
    if isinstance(corrected, CaseReferred):
        check_referral_dates(corrected, now, prefix="changes.")
    if isinstance(corrected, DecisionMade):
        try:
            check_criteria(case.regime, corrected.criteria, exact=True)
            for i, ref in enumerate(corrected.relied_on or []):
                check_backward_ref(case, ref, f"relied_on[{i}]", before=seq)
        except InputError as exc:
            raise InputError(exc.reason, field=f"changes.{exc.field}") from None
    if isinstance(corrected, LIFECYCLE_TYPES):
        when = corrected.occurred_at or str(original["occurred_at"])
        try:
            check_lifecycle(case, corrected, when, seq, load_body)
        except InputError as exc:
            raise InputError(exc.reason, field=_changed_field(exc.field, event.changes)) from None


def _changed_field(field: str | None, changes: dict[str, Any]) -> str:
    """The correction's field to name for a problem ``field`` of the corrected entry: the
    change itself, else the changed ``occurred_at`` that moved the entry, else the changes."""
    top = (field or "").split("[", 1)[0].split(".", 1)[0]
    if top in changes:
        return f"changes.{field}"
    if "occurred_at" in changes:
        return "changes.occurred_at"
    return "changes"


# --- the lifecycle after the decision, and learning (issue 16) -------------------------


def check_lifecycle(
    case: Case, event: Envelope, occurred_at: str, seq: int, load_body: BodyLoader
) -> None:
    """The rules that span entries for the lifecycle and learning types, for an entry
    that is (or, corrected, would be) entry ``seq`` of the case, occurring at
    ``occurred_at``: a rapid review only where there is one, a final report or a deferred
    publication only after a decision to review and never dated before itself, a
    delegation only under wt2023, a transfer to another area, no theme given twice."""
    kind = type(event).__name__
    if isinstance(event, RapidReviewSent) and case.regime not in RAPID_REVIEW_REGIMES:
        raise InputError(
            f"case {case.ref} is under {case.regime}, which has no rapid review: "
            f"RapidReviewSent is recorded only in cases under {' or '.join(RAPID_REVIEW_REGIMES)}",
            field="type",
        )
    if kind == "PartnersDelegated" and case.regime not in DELEGATION_REGIMES:
        raise InputError(
            f"case {case.ref} is under {case.regime}: only under wt2023 may the lead "
            "safeguarding partners delegate, so PartnersDelegated is recorded only in "
            "cases under wt2023",
            field="type",
        )
    if isinstance(event, (FinalReportSent, PublicationDeferred)):
        check_review_decided(case, kind, occurred_at, seq, load_body)
        name = "planned_publication" if isinstance(event, FinalReportSent) else "expected_by"
        check_not_before_itself(getattr(event, name), occurred_at, name)
    if isinstance(event, ResponsibilityTransferred):
        check_transfer(case, event.to_area, occurred_at, seq, load_body)
    if isinstance(event, (ThemesRecorded, LearningRecorded)):
        check_themes_once(event.themes or [])


def corrected_so_far(case: Case, seq: int, load_body: BodyLoader) -> dict[str, Any]:
    """Entry ``seq`` as the corrections recorded so far leave it, so that a new
    correction is checked against the entry as it stands, not as first recorded."""
    return current_bodies(case, (), load_body, seqs=(seq,))[seq]


def current_bodies(
    case: Case, kinds: Collection[str], load_body: BodyLoader, seqs: Collection[int] = ()
) -> dict[int, dict[str, Any]]:
    """The case's entries of the given types (or numbers) by ``seq``, each with every
    correction recorded so far applied field by field in order, as the read side folds
    them (``personal`` aside: its values are kept apart from the entry)."""
    bodies = {
        seq: dict(load_body(seq))
        for seq, kind in enumerate(case.types, 1)
        if kind in kinds or seq in seqs
    }
    for seq, kind in enumerate(case.types, 1):
        if kind == "EntryCorrected" and bodies:
            correction = load_body(seq)
            _, target = parse_ref(str(correction["corrects"]))
            if target in bodies:
                changes = correction.get("changes") or {}
                bodies[target].update({k: v for k, v in changes.items() if k != "personal"})
    return bodies


def _timeline(occurred_at: str, seq: int) -> tuple[Any, int]:
    """The order of entries on a case's timeline (``occurred_at``, then ``seq``)."""
    return occurred_instant(occurred_at), seq


def check_review_decided(
    case: Case, kind: str, occurred_at: str, seq: int, load_body: BodyLoader
) -> None:
    """A final report or a deferred publication follows a decision to review: the
    decision in force at the entry's time has outcome review or other-review."""
    day = occurred_day(occurred_at)
    decisions = sorted(
        (_timeline(str(body["occurred_at"]), number), str(body.get("outcome")))
        for number, body in current_bodies(case, ("DecisionMade",), load_body).items()
        if number != seq
    )
    # by day, so that a report dated 6 March follows a decision made at 14:00 that day
    in_force = [
        outcome for (moment, _), outcome in decisions if moment.astimezone(LONDON).date() <= day
    ]
    if in_force and in_force[-1] in REVIEW_OUTCOMES:
        return
    found = (
        f"its decision in force then is {in_force[-1]}"
        if in_force
        else "it has no decision before it"
    )
    raise InputError(
        f"a {kind} follows a decision to review (outcome {' or '.join(REVIEW_OUTCOMES)}): "
        f"case {case.ref} has none by {day.isoformat()} ({found})",
        field="type",
    )


def check_not_before_itself(day: date, occurred_at: str, field: str) -> None:
    """A planned or expected date is not before the day of the entry that gives it."""
    own = occurred_day(occurred_at)
    if day < own:
        raise InputError(
            f"{day.isoformat()} is before the entry's own occurred_at day {own.isoformat()}; "
            "it must be that day or later",
            field=field,
        )


def responsible_area(
    case: Case, occurred_at: str, seq: int, load_body: BodyLoader
) -> tuple[str, str]:
    """The area responsible for the case just before entry ``seq`` at ``occurred_at``
    and where that comes from: the referral's home_area, or the to_area of the last
    transfer before it on the timeline (corrections applied)."""
    referral = current_bodies(case, ("CaseReferred",), load_body).get(1, {})
    area, source = str(referral.get("home_area", "")), "its home_area"
    point = _timeline(occurred_at, seq)
    transfers = sorted(
        (_timeline(str(body["occurred_at"]), number), str(body["to_area"]), number)
        for number, body in current_bodies(case, ("ResponsibilityTransferred",), load_body).items()
        if number != seq
    )
    for key, to_area, number in transfers:
        if key < point:
            area, source = to_area, f"transferred by {case.ref}#{number}"
    return area, source


def check_transfer(
    case: Case, to_area: str, occurred_at: str, seq: int, load_body: BodyLoader
) -> None:
    """A transfer moves the case to another area than the one responsible at that point
    (names compared as agencies are: case and spacing aside)."""
    area, source = responsible_area(case, occurred_at, seq, load_body)
    if agency_key(to_area) == agency_key(area):
        raise InputError(
            f"case {case.ref} is already the responsibility of {area} ({source}); a "
            "transfer names the receiving area, another than the one responsible",
            field="to_area",
        )


def check_themes_once(themes: list[str]) -> None:
    """No theme is given twice in one list."""
    seen: dict[str, int] = {}
    for i, theme in enumerate(themes):
        if theme in seen:
            raise InputError(
                f"{theme} is already given as themes[{seen[theme]}]; give each theme once",
                field=f"themes[{i}]",
            )
        seen[theme] = i
