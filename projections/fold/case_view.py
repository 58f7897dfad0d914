"""A case as a pure fold over its stored records: what it is, where it stands, what was
decided, and what is still outstanding; as the record stood at any time, about the world
as at any time.

Two filters, one fold (``shared/contract/events.md``: "as of" filters on ``recorded_at``,
the world on ``occurred_at``)::

    view = fold(on(as_of(records, T), D))      # the same as fold(records, as_of=T, on=D)

* :func:`as_of` keeps the records stored up to ``T`` (knowledge time).  Corrections are
  records too, so a view as of a time before a correction was recorded shows the
  original value.
* :func:`on` keeps the entries that had happened by ``D`` (world time), judged on their
  *corrected* ``occurred_at``.  A correction is knowledge about an entry, not an event in
  the world: it is kept (and applied) whenever the entry it corrects is kept.
* :func:`fold` applies the corrections it is given (in ``seq`` order, later ones winning
  field by field), marks each corrected entry, and derives the case's stage, the decision
  in force, the superseded decisions and the open information requests.

Every function here is pure: the same records give the same view, whatever the store.

**The decision in force.**  ``DecisionMade`` entries are ordered on the timeline: by
``occurred_at`` (a bare date counts as the start of that day, Europe/London), then by
``seq``.  The last one is in force and every other one is superseded.  So a revisited
decision (one that happened later) supersedes the earlier one; a *backdated* decision,
recorded later but dated before the decision already in force, does not replace it: it
is listed among the superseded decisions, because in the world it came first.  "As of
T" applies before this rule: a decision recorded after T does not exist in that view.

**Stages** are documented in ``docs/stages.md`` and derived by :func:`stage_of` from the
entries present only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Final

from ledger.catalogue.registry import KINDS
from ledger.catalogue.terms import normalise_occurred_at, occurred_day, occurred_instant, parse_ref
from ledger.domain.case import answered_request
from projections.fold.facets import (
    THEME_TYPES,
    Delegation,
    Learning,
    areas_of,
    delegations_of,
    learning_of,
    themes_of,
)
from projections.fold.when import format_instant

__all__ = [
    "GATHERING_TYPES",
    "REVIEW_OUTCOMES",
    "STAGES",
    "THEME_TYPES",
    "CaseView",
    "Decision",
    "Delegation",
    "Entry",
    "Finding",
    "Learning",
    "OpenRequest",
    "apply_corrections",
    "areas_of",
    "as_of",
    "corrected_occurred_at",
    "decision_key",
    "fold",
    "is_overdue",
    "on",
    "stage_of",
    "status_payload",
    "themes_of",
    "timeline_key",
    "urgency",
]

#: The stages of a case, from first to last (see ``docs/stages.md``).
STAGES: Final[tuple[str, ...]] = (
    "referred",
    "notified",
    "gathering-information",
    "discussed",
    "recommended",
    "decided",
    "rapid-review-sent",
    "under-review",
    "completed",
    "final-report-sent",
    "publication-deferred",
    "published",
    "closed",
)

#: Entry types that show the information gathering has started (each kind's
#: ``gathering`` in :mod:`ledger.catalogue.registry`).
GATHERING_TYPES: Final[frozenset[str]] = frozenset(kind.name for kind in KINDS if kind.gathering)

#: Outcomes that commission a review (a reviewer commissioned then means "under review").
REVIEW_OUTCOMES: Final[frozenset[str]] = frozenset({"review", "other-review"})

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


def stage_of(types: Collection[str], decision_outcome: str | None) -> str:
    """The furthest stage a case has reached, from the entry types present (corrections
    excluded) and the outcome of the decision in force (None when there is none).

    The rule depends on *which* entries exist, not on the order they were recorded in, so
    a backdated entry moves a case exactly as a timely one would.
    """
    if "CaseClosed" in types:
        return "closed"
    if "ReportPublished" in types:
        return "published"
    if "PublicationDeferred" in types:
        return "publication-deferred"
    if "FinalReportSent" in types:
        return "final-report-sent"
    if "ReviewCompleted" in types:
        return "completed"
    if decision_outcome is not None:
        if decision_outcome in REVIEW_OUTCOMES and "ReviewerCommissioned" in types:
            return "under-review"
        if "RapidReviewSent" in types:
            return "rapid-review-sent"
        return "decided"
    if "RecommendationMade" in types:
        return "recommended"
    if "DiscussionHeld" in types:
        return "discussed"
    if not GATHERING_TYPES.isdisjoint(types):
        return "gathering-information"
    if "IncidentNotified" in types:
        return "notified"
    return "referred"


def timeline_key(occurred_at: str, seq: int) -> tuple[datetime, int]:
    """The order of entries on a case's timeline: ``occurred_at`` (a bare date is the
    start of that day, Europe/London), then ``seq``."""
    return (occurred_instant(occurred_at), seq)


decision_key = timeline_key
"""The order that decides which decision is in force: the last on the timeline."""


# --- the views' building blocks -------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One entry of a case as a view shows it: corrections (recorded as of the view's
    time) applied to ``body`` and ``occurred_at``; the stored original kept alongside."""

    case: str
    seq: int
    type: str
    occurred_at: str
    recorded_at: str
    actor: str
    role: str
    position: int
    body: Mapping[str, Any]
    """The record with corrections applied: wire fields and ledger fields."""
    corrected_by: tuple[str, ...] = ()
    """Refs of the ``EntryCorrected`` entries applied to this one, in order."""
    original: Mapping[str, Any] | None = None
    """The stored record, when a correction changed it."""

    @property
    def ref(self) -> str:
        """``CASE#seq``."""
        return f"{self.case}#{self.seq}"

    @property
    def corrected(self) -> bool:
        """Whether a correction applies to this entry in this view."""
        return bool(self.corrected_by)

    @property
    def occurred_day(self) -> date:
        """The Europe/London day it happened on."""
        return occurred_day(self.occurred_at)

    def get(self, name: str, default: Any = None) -> Any:
        """A field of the (corrected) entry."""
        return self.body.get(name, default)

    @staticmethod
    def of(record: Mapping[str, Any]) -> Entry:
        """An uncorrected entry from a stored record."""
        return Entry(
            case=record["case"],
            seq=record["seq"],
            type=record["type"],
            occurred_at=record["occurred_at"],
            recorded_at=record["recorded_at"],
            actor=record.get("actor", ""),
            role=record.get("role", ""),
            position=record.get("position", 0),
            body=MappingProxyType(dict(record)),
        )


@dataclass(frozen=True)
class Finding:
    """A finding on one statutory criterion."""

    finding: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """A ``DecisionMade`` entry, corrections applied."""

    ref: str
    seq: int
    outcome: str
    occurred_at: str
    recorded_at: str
    actor: str
    decided_by: tuple[str, ...]
    rationale: str
    criteria: Mapping[str, Finding]
    factors: Mapping[str, str]
    nature: str | None
    relied_on: tuple[str, ...]
    corrected_by: tuple[str, ...]

    @staticmethod
    def of(entry: Entry) -> Decision:
        """The decision an entry records."""
        criteria = entry.get("criteria") or {}
        return Decision(
            ref=entry.ref,
            seq=entry.seq,
            outcome=entry.get("outcome", ""),
            occurred_at=entry.occurred_at,
            recorded_at=entry.recorded_at,
            actor=entry.actor,
            decided_by=tuple(entry.get("decided_by") or ()),
            rationale=entry.get("rationale", ""),
            criteria=MappingProxyType(
                {
                    name: Finding(str(value.get("finding", "")), str(value.get("reason", "")))
                    for name, value in criteria.items()
                }
            ),
            factors=MappingProxyType(dict(entry.get("factors") or {})),
            nature=entry.get("nature"),
            relied_on=tuple(entry.get("relied_on") or ()),
            corrected_by=entry.corrected_by,
        )

    def finding(self, criterion: str) -> str | None:
        """The finding (met / not-met / unclear) on one criterion, if given."""
        found = self.criteria.get(criterion)
        return found.finding if found is not None else None

    def summary(self) -> dict[str, Any]:
        """The short form ``status`` prints: ``{ref, outcome, occurred_at, recorded_at}``."""
        return {
            "ref": self.ref,
            "outcome": self.outcome,
            "occurred_at": self.occurred_at,
            "recorded_at": self.recorded_at,
        }

    def as_dict(self) -> dict[str, Any]:
        """The full form ``why`` prints (``cli.md``)."""
        return {
            "ref": self.ref,
            "outcome": self.outcome,
            "occurred_at": self.occurred_at,
            "recorded_at": self.recorded_at,
            "decided_by": list(self.decided_by),
            "rationale": self.rationale,
            "criteria": {
                name: {"finding": f.finding, "reason": f.reason}
                for name, f in self.criteria.items()
            },
            "factors": dict(self.factors),
            "nature": self.nature,
            "relied_on": list(self.relied_on),
            "recorded_by": self.actor,
            "corrected_by": list(self.corrected_by),
        }


@dataclass(frozen=True)
class OpenRequest:
    """An information request no reply or refusal has closed yet."""

    agency: str
    request_id: str
    due: str | None
    ref: str
    occurred_at: str

    def as_dict(self) -> dict[str, Any]:
        """``{agency, request_id, due, ref}`` as ``status`` prints it."""
        return {
            "agency": self.agency,
            "request_id": self.request_id,
            "due": self.due,
            "ref": self.ref,
        }


@dataclass(frozen=True)
class CaseView:
    """Where a case stands in one view (as of a knowledge time, on a world time)."""

    case: str
    regime: str
    subject: str
    stage: str
    decision: Decision | None
    """The decision in force, or None."""
    superseded: tuple[Decision, ...]
    """Every other decision, in timeline order."""
    open_requests: tuple[OpenRequest, ...]
    """Requests not yet answered or declined, in the order they were recorded."""
    entries: tuple[Entry, ...]
    """Every entry in the view, in record (``seq``) order, corrections applied."""
    types: frozenset[str] = field(default_factory=frozenset)
    """The entry types present (corrections excluded)."""
    themes: tuple[str, ...] = ()
    """The case's practice themes: those of every ``ThemesRecorded`` and
    ``LearningRecorded``, corrections applied, each once, in the order first recorded."""
    learning: tuple[Learning, ...] = ()
    """Its ``LearningRecorded`` entries, in record order."""
    delegations: tuple[Delegation, ...] = ()
    """Its ``PartnersDelegated`` entries, in record order."""
    area: str = ""
    """The area responsible: ``home_area``, then each ``ResponsibilityTransferred``'s
    ``to_area`` in timeline order (the last one wins)."""
    areas: tuple[str, ...] = ()
    """Every area the case involves, each once: home, incident, ``other_areas``, then
    the areas it was transferred to."""

    def timeline(self) -> tuple[Entry, ...]:
        """The entries in ``occurred_at`` order (then ``seq``)."""
        return tuple(sorted(self.entries, key=lambda e: timeline_key(e.occurred_at, e.seq)))

    def entry(self, seq: int) -> Entry | None:
        """Entry ``seq`` if it is in this view."""
        for e in self.entries:
            if e.seq == seq:
                return e
        return None

    @property
    def referral(self) -> Entry:
        """The ``CaseReferred`` entry (always the first)."""
        return self.entries[0]

    @property
    def last_recorded_at(self) -> str:
        """When the latest entry in this view was stored."""
        return max(e.recorded_at for e in self.entries)


# --- filters and the fold -------------------------------------------------------------


def as_of(records: Iterable[Mapping[str, Any]], moment: datetime) -> list[Mapping[str, Any]]:
    """The records stored up to ``moment`` (knowledge time: ``recorded_at <= T``)."""
    limit = format_instant(moment)
    return [r for r in records if r["recorded_at"] <= limit]


def on(records: Iterable[Mapping[str, Any]], moment: datetime) -> list[Mapping[str, Any]]:
    """The records of entries that had happened by ``moment`` (world time), judged on their
    ``occurred_at`` as corrected by the corrections among ``records``; each correction is
    kept with the entry it corrects."""
    listed = sorted(records, key=lambda r: int(r["seq"]))
    corrected = _corrected_occurred_at(listed)
    kept: set[int] = set()
    out: list[Mapping[str, Any]] = []
    for r in listed:
        if r["type"] == "EntryCorrected":
            if parse_ref(r["corrects"])[1] in kept:
                out.append(r)
            continue
        when = corrected.get(r["seq"], r["occurred_at"])
        if occurred_instant(when) <= moment:
            kept.add(r["seq"])
            out.append(r)
    return out


def _corrected_occurred_at(records: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for r in records:
        if r["type"] == "EntryCorrected" and "occurred_at" in r["changes"]:
            out[parse_ref(r["corrects"])[1]] = corrected_occurred_at(r["changes"]["occurred_at"])
    return out


def corrected_occurred_at(value: Any) -> str:
    """A corrected ``occurred_at`` in the stored form: ``changes`` keep the value as it was
    given, so a date and time without an offset is read as Europe/London, as on input."""
    return str(normalise_occurred_at(value))


def apply_corrections(records: Iterable[Mapping[str, Any]]) -> list[Entry]:
    """Entries in ``seq`` order with every correction among ``records`` applied.

    Corrections apply in ``seq`` order, field by field (a later correction of the same
    field wins).  A correction whose target is not among ``records`` is ignored (the
    target was filtered out of the view).  The stored original stays in
    :attr:`Entry.original`.
    """
    ordered = sorted(records, key=lambda r: int(r["seq"]))
    bodies: dict[int, dict[str, Any]] = {}
    applied: dict[int, list[str]] = {}
    for r in ordered:
        seq = r["seq"]
        bodies[seq] = dict(r)
        if r["type"] == "EntryCorrected":
            target = parse_ref(r["corrects"])[1]
            body = bodies.get(target)
            if body is None or target >= seq:
                continue
            changes = dict(r["changes"])
            if "occurred_at" in changes:
                changes["occurred_at"] = corrected_occurred_at(changes["occurred_at"])
            bodies[target] = {**body, **changes}
            applied.setdefault(target, []).append(f"{r['case']}#{seq}")
    out = []
    for r in ordered:
        seq = r["seq"]
        body = bodies[seq]
        corrections = tuple(applied.get(seq, ()))
        out.append(
            Entry(
                case=r["case"],
                seq=seq,
                type=r["type"],
                occurred_at=body["occurred_at"],
                recorded_at=r["recorded_at"],
                actor=r.get("actor", ""),
                role=r.get("role", ""),
                position=r.get("position", 0),
                body=MappingProxyType(body),
                corrected_by=corrections,
                original=MappingProxyType(dict(r)) if corrections else None,
            )
        )
    return out


def fold(
    records: Iterable[Mapping[str, Any]],
    *,
    as_of_time: datetime | None = None,
    on_time: datetime | None = None,
) -> CaseView | None:
    """The view of one case's records; None when its referral is not in the view.

    ``as_of_time`` and ``on_time`` apply :func:`as_of` then :func:`on` first.
    """
    selected: Iterable[Mapping[str, Any]] = records
    if as_of_time is not None:
        selected = as_of(selected, as_of_time)
    if on_time is not None:
        selected = on(selected, on_time)
    entries = apply_corrections(selected)
    if not entries or entries[0].type != "CaseReferred":
        return None
    return derive(entries)


def derive(entries: Sequence[Entry]) -> CaseView:
    """Stage, decision in force, superseded decisions and open requests of entries given
    in ``seq`` order with corrections applied (the first must be the referral)."""
    referral = entries[0]
    types: set[str] = set()
    decisions: list[Decision] = []
    open_ids: dict[str, str] = {}
    open_entries: dict[str, Entry] = {}
    for e in entries:
        kind = e.type
        if kind == "EntryCorrected":
            continue
        types.add(kind)
        if kind == "DecisionMade":
            decisions.append(Decision.of(e))
        elif kind == "InformationRequested":
            request_id = e.get("request_id")
            open_ids[request_id] = e.get("agency")
            open_entries[request_id] = e
        elif kind in ("InformationReceived", "InformationDeclined"):
            closed = answered_request(open_ids, dict(e.body))
            if closed is not None:
                del open_ids[closed]
                del open_entries[closed]
    decisions.sort(key=lambda d: decision_key(d.occurred_at, d.seq))
    in_force = decisions[-1] if decisions else None
    area, areas = areas_of(entries)
    return CaseView(
        case=referral.case,
        regime=referral.get("regime", ""),
        subject=referral.get("subject", ""),
        stage=stage_of(types, in_force.outcome if in_force else None),
        decision=in_force,
        superseded=tuple(decisions[:-1]),
        open_requests=tuple(
            OpenRequest(
                agency=e.get("agency"),
                request_id=request_id,
                due=e.get("due"),
                ref=e.ref,
                occurred_at=e.occurred_at,
            )
            for request_id, e in open_entries.items()
        ),
        entries=tuple(entries),
        types=frozenset(types),
        themes=themes_of(entries),
        learning=learning_of(entries),
        delegations=delegations_of(entries),
        area=area,
        areas=areas,
    )


def is_overdue(row: Mapping[str, Any]) -> bool:
    """Whether a ``status`` row has something overdue: a clock, or an agency's reply."""
    return bool(row["overdue"]) or any(r.get("overdue") for r in row["open_requests"])


def urgency(row: Mapping[str, Any]) -> tuple[int, str, str]:
    """How urgent a ``status`` row is, as a sort key: overdue cases first, then those with
    a deadline to come (soonest first), then the rest; by case reference within each.
    ``caseledger status`` and the export's overview across cases both sort by it."""
    due = (row.get("next_deadline") or {}).get("due") or ""
    rank = 0 if is_overdue(row) else 1 if due else 2
    return rank, due or "9999-12-31", row["case"]


def status_payload(
    *,
    case: str,
    regime: str,
    subject: str,
    stage: str,
    decision: Mapping[str, Any] | None,
    open_requests: Sequence[Mapping[str, Any]],
    overdue: Sequence[str],
    entries: int,
    last_recorded_at: str,
    next_deadline: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one shape of a ``status`` answer, whether it comes from a fold or the index."""
    return {
        "case": case,
        "regime": regime,
        "subject": subject,
        "stage": stage,
        "decision": dict(decision) if decision is not None else None,
        "open_requests": [dict(r) for r in open_requests],
        "overdue": list(overdue),
        "next_deadline": dict(next_deadline) if next_deadline is not None else None,
        "entries": entries,
        "last_recorded_at": last_recorded_at,
    }
