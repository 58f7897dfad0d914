"""``caseledger why``: the decision in force as the record stood at T, its reasons, what
was known when it was recorded, what has been learned since, and what an inspector
should look at twice (the flags).

* ``known_then``: the entries recorded before the decision, i.e. earlier in the case's
  record (lower ``seq``; ``recorded_at`` never decreases along a case, and entries stored
  by the same command as the decision count as known when they precede it).
* ``learned_since``: the entries recorded after the decision, up to T, whatever their
  ``occurred_at``: an ``InformationReceived`` recorded after the decision but dated
  before it is *learned since*, not *known then* (it is also listed in
  ``learned_since_backdated``).
* ``relied_on``: what the decision itself says it relied on (corrections applied).

Flags are stable machine-readable strings (:data:`FLAGS`), each with a sentence for
people.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from ledger.catalogue.terms import LONDON, occurred_day, occurred_instant
from ledger.domain.case import answered_request
from projections.fold.case_view import (
    CaseView,
    Decision,
    Delegation,
    Entry,
    decision_key,
    timeline_key,
)
from projections.fold.when import format_instant

__all__ = [
    "FLAGS",
    "LATE_RECORDING_DAYS",
    "NATIONAL_BODY",
    "STATUTORY_PARTNERS",
    "Flag",
    "PartnerCheck",
    "WhyAnswer",
    "mandatory_review",
    "partners_check",
    "partners_missing",
    "why_of",
]

LATE_RECORDING_DAYS: Final = 14

#: The national body a regime's notification goes to (``shared/domain.md``, Timescales).
NATIONAL_BODY: Final[Mapping[str, str]] = {
    "wt2015": "ofsted",
    "wt2018": "national-panel",
    "wt2023": "national-panel",
}

#: The three statutory safeguarding partners (SI 2018/789 reg 3; ``shared/domain.md``,
#: Regimes), each with the words that name it in ``decided_by`` (matched as whole words,
#: case-insensitively): "Northshire County Council", "Northshire ICB", "Northshire Police".
#: Under wt2023 a delegate is named with the partner they act for ("J. Smith (delegate,
#: Northshire ICB)").
STATUTORY_PARTNERS: Final[Mapping[str, tuple[str, ...]]] = {
    "the local authority": (
        "council",
        "local authority",
        "borough",
        "children's services",
        "childrens services",
    ),
    "health": (
        "icb",
        "ccg",
        "nhs",
        "health",
        "integrated care board",
        "clinical commissioning group",
    ),
    "the police": ("police", "constabulary", "chief constable"),
}

#: The partners as ``PartnersDelegated`` names them, to their names in
#: :data:`STATUTORY_PARTNERS`.
DELEGATING_PARTNERS: Final[Mapping[str, str]] = {
    "local-authority": "the local authority",
    "health": "health",
    "police": "the police",
}

#: Regimes whose decision-makers are the three safeguarding partners.
PARTNER_REGIMES: Final = frozenset({"wt2018", "wt2023"})
"""A decision recorded more than this many days after it occurred (or, for a case opened
in the ledger after the decision, after the case was opened) is flagged ``recorded-late``."""

#: Every flag ``why`` can raise, with what it means.
FLAGS: Final[Mapping[str, str]] = {
    "mandatory-criteria-no-review": (
        "the statutory criteria recorded make a review mandatory (wt2015: abuse or neglect "
        "met or unclear, since reg 5 asks only that it be known or suspected, and either the "
        "child died, or was seriously harmed with cause for concern about agencies working "
        "together), yet the outcome is no-review"
    ),
    "relies-on-nothing": "the decision does not name any entry it relied on",
    "relies-on-later-evidence": (
        "an entry the decision says it relied on occurred after the decision was made"
    ),
    "contrary-to-recommendation": (
        "the outcome differs from the recommendation made to the decision-maker before it "
        "(the last one since any earlier decision)"
    ),
    "not-all-partners-decided": (
        "wt2018/wt2023: the decision does not name all three statutory safeguarding partners "
        "(the local authority, health and the police), or a delegate of theirs in force on "
        "the decision's date, among those who decided"
    ),
    "decided-before-notification": (
        "the decision was made before the serious incident was notified to the national body "
        "(ofsted under wt2015, the national panel after)"
    ),
    "delay-approved-after-the-fact": (
        "an approved delay dated on or before the decision was recorded only after it, so it "
        "cannot justify a late decision"
    ),
    "recorded-late": (
        f"the decision was recorded more than {LATE_RECORDING_DAYS} days after it was made"
    ),
    "decided-with-open-requests": (
        "information requests were still open (not answered or declined) when the decision was made"
    ),
    "decision-corrected": "the decision entry was corrected after it was recorded",
    "panel-disagreed": "the national panel responded that it disagrees with the decision",
}


@dataclass(frozen=True)
class Flag:
    """One flag on a decision: its code and the sentence that explains it here."""

    code: str
    explanation: str


@dataclass(frozen=True)
class WhyAnswer:
    """The answer to ``why CASE`` (``cli.md``), with what the people view needs."""

    case: str
    regime: str
    subject: str
    as_of: str
    on: str
    decision: Decision | None
    superseded: tuple[Decision, ...]
    known_then: tuple[Entry, ...]
    relied_on: tuple[str, ...]
    learned_since: tuple[Entry, ...]
    flags: tuple[Flag, ...]
    entries: int = 0
    """How many entries the view holds."""

    @property
    def learned_since_backdated(self) -> tuple[Entry, ...]:
        """Entries learned since the decision that are dated before it happened."""
        if self.decision is None:
            return ()
        key = decision_key(self.decision.occurred_at, self.decision.seq)
        return tuple(e for e in self.learned_since if timeline_key(e.occurred_at, e.seq) < key)

    def as_dict(self) -> dict[str, Any]:
        """The JSON ``why --json`` prints: ``cli.md``'s keys, then extras."""
        return {
            "case": self.case,
            "as_of": self.as_of,
            "decision": self.decision.as_dict() if self.decision is not None else None,
            "superseded": [d.ref for d in self.superseded],
            "known_then": [e.ref for e in self.known_then],
            "relied_on": list(self.relied_on),
            "learned_since": [e.ref for e in self.learned_since],
            "flags": [f.code for f in self.flags],
            "on": self.on,
            "regime": self.regime,
            "learned_since_backdated": [e.ref for e in self.learned_since_backdated],
            "flag_explanations": [
                {"flag": f.code, "explanation": f.explanation} for f in self.flags
            ],
        }


def why_of(view: CaseView, as_of: datetime, on: datetime) -> WhyAnswer:
    """Explain the decision in force in a view (already filtered as of ``as_of``, on
    ``on``)."""
    decision = view.decision
    known: tuple[Entry, ...] = ()
    since: tuple[Entry, ...] = ()
    flags: tuple[Flag, ...] = ()
    if decision is not None:
        known = tuple(e for e in view.entries if e.seq < decision.seq)
        since = tuple(e for e in view.entries if e.seq > decision.seq)
        flags = decision_flags(view, decision)
    return WhyAnswer(
        case=view.case,
        regime=view.regime,
        subject=view.subject,
        as_of=format_instant(as_of),
        on=format_instant(on),
        decision=decision,
        superseded=view.superseded,
        known_then=known,
        relied_on=decision.relied_on if decision is not None else (),
        learned_since=since,
        flags=flags,
        entries=len(view.entries),
    )


def mandatory_review(regime: str, decision: Decision) -> bool:
    """Whether the recorded findings make a review mandatory (``wt2015``, LSCB Regulations
    2006 reg 5): abuse or neglect known or suspected (its finding ``met`` or ``unclear``:
    the regulation asks only for suspicion), and either the child died or was seriously
    harmed with cause for concern about agencies working together."""
    if regime != "wt2015":
        return False

    def met(criterion: str) -> bool:
        return decision.finding(criterion) == "met"

    return decision.finding("abuse_or_neglect") in ("met", "unclear") and (
        met("child_died") or (met("seriously_harmed") and met("agency_concern"))
    )


def _after(occurred_at: str, limit: str) -> bool:
    """Whether ``occurred_at`` is after ``limit`` in the world: a later London day, or the
    same day at a later time of day when both carry one (a bare date is not after
    anything on its own day, nor is anything on its day after it)."""
    day, limit_day = occurred_day(occurred_at), occurred_day(limit)
    if day != limit_day:
        return day > limit_day
    if len(occurred_at) == _DATE_LEN or len(limit) == _DATE_LEN:
        return False
    return occurred_instant(occurred_at) > occurred_instant(limit)


_DATE_LEN: Final = 10


def _plain(name: str) -> str:
    """A name as compared: curly apostrophes straightened, spaces collapsed, case folded."""
    return " ".join(name.replace("\u2019", "'").split()).casefold()


@dataclass(frozen=True)
class PartnerCheck:
    """Which statutory partners a decision's ``decided_by`` names, directly or through a
    delegate (``PartnersDelegated``) in force on the decision's date."""

    missing: tuple[str, ...]
    """The partners (:data:`STATUTORY_PARTNERS` names) neither named nor delegated."""
    delegated: tuple[Delegation, ...]
    """The delegations that counted: a name in ``decided_by`` equal to the delegate, in
    force on the decision's date, for a partner not named directly."""
    out_of_force: tuple[Delegation, ...]
    """Delegations whose delegate is named in ``decided_by`` but which were not in force
    on the decision's date, so they did not count."""


def partners_check(decision: Decision, delegations: Sequence[Delegation] = ()) -> PartnerCheck:
    """The statutory partners ``decided_by`` names, by their words
    (:data:`STATUTORY_PARTNERS`) or by a delegate in force on the decision's London day
    (``from <= day <= to``); a delegate out of force does not count (wt2023: the lead
    partners act through the delegates in force)."""
    names = [_plain(n) for n in decision.decided_by]
    day = occurred_day(decision.occurred_at)
    missing: list[str] = []
    used: list[Delegation] = []
    out_of_force: list[Delegation] = []
    for partner, words in STATUTORY_PARTNERS.items():
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)")
        if any(pattern.search(name) for name in names):
            continue
        named = [
            d
            for d in delegations
            if DELEGATING_PARTNERS.get(d.partner) == partner and _plain(d.delegate) in names
        ]
        in_force = [d for d in named if d.in_force(day)]
        if in_force:
            used.append(in_force[-1])
            continue
        out_of_force.extend(named)
        missing.append(partner)
    return PartnerCheck(tuple(missing), tuple(used), tuple(out_of_force))


def partners_missing(decision: Decision, delegations: Sequence[Delegation] = ()) -> list[str]:
    """The statutory partners (:data:`STATUTORY_PARTNERS`) ``decided_by`` does not name,
    directly or through a delegate in force on the decision's date."""
    return list(partners_check(decision, delegations).missing)


def _delegation_words(d: Delegation) -> str:
    until = f" to {d.to_day.isoformat()}" if d.to_day is not None else ""
    return f"{d.delegate} for {d.partner} ({d.ref}, from {d.from_day.isoformat()}{until})"


def decision_flags(view: CaseView, decision: Decision) -> tuple[Flag, ...]:
    """The flags on the decision in force, in the order of :data:`FLAGS`."""
    flags: list[Flag] = []
    if decision.outcome == "no-review" and mandatory_review(view.regime, decision):
        abuse = decision.finding("abuse_or_neglect")
        flags.append(
            Flag(
                "mandatory-criteria-no-review",
                f"The findings recorded (abuse or neglect {abuse}"
                + (", which reg 5 treats as suspected" if abuse == "unclear" else "")
                + ", and the child died or was seriously harmed with concern about how "
                "agencies worked together) make a Serious Case Review mandatory under "
                "wt2015, yet the outcome is no-review.",
            )
        )
    if not decision.relied_on:
        flags.append(
            Flag(
                "relies-on-nothing",
                "The decision does not name any entry of the record it relied on.",
            )
        )
    later = relied_on_later(view, decision)
    if later:
        flags.append(
            Flag(
                "relies-on-later-evidence",
                f"The decision made {decision.occurred_at} relies on "
                + ", ".join(f"{e.ref} ({e.type}, occurred {e.occurred_at})" for e in later)
                + ", which happened after it.",
            )
        )
    recommendation = recommendation_before(view, decision)
    if recommendation is not None and recommendation.get("outcome") != decision.outcome:
        flags.append(
            Flag(
                "contrary-to-recommendation",
                f"The outcome {decision.outcome} differs from the recommendation "
                f"{recommendation.get('outcome')} made to the {recommendation.get('to')} "
                f"({recommendation.ref}, {recommendation.occurred_at}).",
            )
        )
    if view.regime in PARTNER_REGIMES:
        check = partners_check(decision, view.delegations)
        if check.missing:
            used = (
                " Delegation counted: "
                + "; ".join(_delegation_words(d) for d in check.delegated)
                + "."
                if check.delegated
                else ""
            )
            stale = (
                " Not in force on "
                + occurred_day(decision.occurred_at).isoformat()
                + ": "
                + "; ".join(_delegation_words(d) for d in check.out_of_force)
                + "."
                if check.out_of_force
                else ""
            )
            flags.append(
                Flag(
                    "not-all-partners-decided",
                    "The decision names "
                    + (", ".join(decision.decided_by) or "no one")
                    + f" but not {' or '.join(check.missing)}"
                    + (" nor a delegate of theirs in force" if view.delegations else "")
                    + f": under {view.regime} the three safeguarding partners decide."
                    + used
                    + stale,
                )
            )
    notice = national_notification(view)
    if notice is not None and _after(notice.occurred_at, decision.occurred_at):
        flags.append(
            Flag(
                "decided-before-notification",
                f"The decision ({decision.occurred_at}) came before the notification to "
                f"{NATIONAL_BODY.get(view.regime)} ({notice.ref}, {notice.occurred_at}); "
                "the decision clock is met on the day it started.",
            )
        )
    afterwards = delays_recorded_after(view, decision)
    if afterwards:
        flags.append(
            Flag(
                "delay-approved-after-the-fact",
                "The delay "
                + ", ".join(
                    f"{e.ref} (dated {e.occurred_at}, recorded {e.recorded_at})" for e in afterwards
                )
                + f" was recorded after the decision of {decision.occurred_at}, so it cannot "
                "justify a late decision.",
            )
        )
    late_by = recording_lag_days(view, decision)
    if late_by > LATE_RECORDING_DAYS:
        flags.append(
            Flag(
                "recorded-late",
                f"The decision made on {occurred_day(decision.occurred_at)} was recorded "
                f"{late_by} days later (limit {LATE_RECORDING_DAYS}).",
            )
        )
    still_open = open_when_decided(view.entries, decision)
    if still_open:
        names = ", ".join(f"{e.get('agency')} ({e.ref})" for e in still_open)
        flags.append(
            Flag(
                "decided-with-open-requests",
                f"When the decision was made, {len(still_open)} information request"
                f"{'s were' if len(still_open) != 1 else ' was'} still open: {names}.",
            )
        )
    if decision.corrected_by:
        flags.append(
            Flag(
                "decision-corrected",
                "The decision entry was corrected after it was recorded by "
                f"{', '.join(decision.corrected_by)}; the view shows the corrected values.",
            )
        )
    key = decision_key(decision.occurred_at, decision.seq)
    disagreements = [
        e
        for e in view.entries
        if e.type == "PanelResponded"
        and e.get("response") == "disagree"
        and timeline_key(e.occurred_at, e.seq) > key
    ]
    if disagreements:
        flags.append(
            Flag(
                "panel-disagreed",
                "The national panel responded that it disagrees ("
                + ", ".join(e.ref for e in disagreements)
                + ").",
            )
        )
    return tuple(flags)


def relied_on_later(view: CaseView, decision: Decision) -> list[Entry]:
    """The entries the decision names in ``relied_on`` that occurred after it."""
    found = []
    for ref in decision.relied_on:
        case, _, seq = ref.rpartition("#")
        entry = view.entry(int(seq)) if case == view.case and seq.isdigit() else None
        if entry is not None and _after(entry.occurred_at, decision.occurred_at):
            found.append(entry)
    return found


def recommendation_before(view: CaseView, decision: Decision) -> Entry | None:
    """The recommendation this decision answered: the last ``RecommendationMade`` on the
    timeline before it and after any earlier decision (a revisit that had no new
    recommendation is not measured against the one the first decision answered)."""
    key = decision_key(decision.occurred_at, decision.seq)
    earlier = [
        decision_key(d.occurred_at, d.seq)
        for d in view.superseded
        if decision_key(d.occurred_at, d.seq) < key
    ]
    since = max(earlier) if earlier else None
    made = [
        e
        for e in view.entries
        if e.type == "RecommendationMade"
        and timeline_key(e.occurred_at, e.seq) < key
        and (since is None or timeline_key(e.occurred_at, e.seq) > since)
    ]
    return max(made, key=lambda e: timeline_key(e.occurred_at, e.seq)) if made else None


def national_notification(view: CaseView) -> Entry | None:
    """The first notification to the regime's national body on the timeline, if any."""
    body = NATIONAL_BODY.get(view.regime)
    notices = [
        e
        for e in view.entries
        if e.type == "IncidentNotified" and body in (e.get("recipients") or ())
    ]
    return min(notices, key=lambda e: timeline_key(e.occurred_at, e.seq)) if notices else None


def delays_recorded_after(view: CaseView, decision: Decision) -> list[Entry]:
    """``DecisionDelayed`` entries dated on or before the decision's day but recorded
    (their London day) after it: the clocks do not count them (``docs/clocks.md``)."""
    day = occurred_day(decision.occurred_at)
    return [
        e
        for e in view.entries
        if e.type == "DecisionDelayed"
        and e.occurred_day <= day
        and _london_day(e.recorded_at) > day
    ]


def recording_lag_days(view: CaseView, decision: Decision) -> int:
    """Days between the decision (or the case's opening in the ledger, if later) and
    its recording, counted on Europe/London days."""
    recorded = _london_day(decision.recorded_at)
    opened = _london_day(view.referral.recorded_at)
    return (recorded - max(occurred_day(decision.occurred_at), opened)).days


def open_when_decided(entries: Sequence[Entry], decision: Decision) -> list[Entry]:
    """The requests still open when the decision was made: requests and replies on the
    timeline before it (world time, ``occurred_at``), folded in record order with the
    ledger's one rule for which request a reply closes."""
    key = decision_key(decision.occurred_at, decision.seq)
    agencies: dict[str, str] = {}
    requests: dict[str, Entry] = {}
    for e in entries:
        if e.type not in ("InformationRequested", "InformationReceived", "InformationDeclined"):
            continue
        if timeline_key(e.occurred_at, e.seq) >= key:
            continue
        if e.type == "InformationRequested":
            agencies[e.get("request_id")] = e.get("agency")
            requests[e.get("request_id")] = e
        else:
            closed = answered_request(agencies, dict(e.body))
            if closed is not None:
                del agencies[closed]
                del requests[closed]
    return list(requests.values())


def _london_day(recorded_at: str) -> date:
    return datetime.fromisoformat(recorded_at.replace("Z", "+00:00")).astimezone(LONDON).date()
