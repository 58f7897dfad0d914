"""Each case's index rows built from its stored records, with the fold's own rules: the
milestone row of a record (:func:`milestone_row`, its facts :func:`facts_of`, a correction
applied by :func:`patch_milestone`), and the case's ``case_index`` row folded
incrementally (:class:`CaseSummary`).

Pure: no store.  Each case row is derived with the same rules as the fold
(:func:`projections.fold.case_view.stage_of`, :func:`~projections.fold.case_view.decision_key`,
:func:`ledger.domain.case.answered_request`); the tests check, for random histories with
backdating and corrections, that every indexed status equals the fold's.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

import orjson

from ledger.catalogue.terms import occurred_day, occurred_instant, parse_ref
from ledger.domain.case import answered_request
from projections.fold.case_view import corrected_occurred_at, stage_of
from projections.index.rows import FACT_FIELDS, MILESTONE_TIMES, IndexRow, Milestone

__all__ = [
    "FOLDED",
    "NATIONAL_RECIPIENT",
    "CaseSummary",
    "day_of",
    "facts_of",
    "milestone_row",
    "patch_milestone",
    "timeline_key",
]

#: The national recipient whose notification ends the notification clock, per regime.
NATIONAL_RECIPIENT: Final[Mapping[str, str]] = MappingProxyType(
    {"wt2015": "ofsted", "wt2018": "national-panel", "wt2023": "national-panel"}
)

_FACTS: Final[dict[str, tuple[str, ...]]] = dict(FACT_FIELDS)

_instant: Final = lru_cache(maxsize=1 << 15)(occurred_instant)
"""The instant of an ``occurred_at`` (:func:`~ledger.catalogue.models.occurred_instant`),
remembered: a rebuild meets the same few thousand days and times again and again, and
parsing one (a bare date combined with Europe/London) costs more than the rest of folding
its entry."""


def _kept(value: Any) -> Any:
    """A text a summary keeps, interned: the same agency, request id and day recur in
    many entries, and the summaries cached across a rebuild hold every one of them."""
    return sys.intern(value) if type(value) is str else value


def timeline_key(occurred_at: str, seq: int) -> tuple[datetime, int]:
    """:func:`projections.fold.case_view.timeline_key`, with the instant remembered."""
    return (_instant(occurred_at), seq)


@lru_cache(maxsize=1 << 15)
def day_of(occurred_at: str) -> str:
    """The Europe/London day of a stored ``occurred_at`` as ISO text (the
    ``occurred_day`` column), remembered like :data:`_instant`."""
    if len(occurred_at) == 10:
        return occurred_at
    return occurred_day(occurred_at).isoformat()


def facts_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The compact facts of a stored record (:data:`FACT_FIELDS`)."""
    kind = record["type"]
    facts = {name: record[name] for name in _FACTS.get(kind, ()) if name in record}
    if kind == "EntryCorrected":
        facts["changed"] = sorted(record["changes"])
    return facts


def milestone_row(record: Mapping[str, Any]) -> list[Any]:
    """A stored record's ``case_milestones`` row as first written, before any correction
    of it (a list in :data:`MILESTONE_COLUMNS` order, ``facts`` a dict)."""
    occurred = record["occurred_at"]
    return [
        record["case"],
        record["seq"],
        record["type"],
        occurred,
        day_of(occurred),
        record["recorded_at"],
        record["position"],
        record.get("actor", ""),
        False,
        facts_of(record),
    ]


def patch_milestone(row: list[Any], changes: Mapping[str, Any]) -> None:
    """Apply a correction's ``changes`` to a milestone row being written (a list in
    :data:`MILESTONE_COLUMNS` order, ``facts`` still a dict)."""
    facts = dict(row[9])
    for name in _FACTS.get(row[2], ()):
        if name in changes:
            facts[name] = changes[name]
    if "occurred_at" in changes:
        occurred = corrected_occurred_at(changes["occurred_at"])
        row[3] = occurred
        row[4] = day_of(occurred)
    row[8] = True
    row[9] = facts


class CaseSummary:
    """One case's index row, folded incrementally, corrections included, in ``seq`` order.

    It keeps, besides counts per entry type, the few entries whose fields the row is
    derived from (each timed milestone, notifications, decisions, requests and their
    replies), with corrections applied in place; the first times, the decision in force
    and the open requests are derived from them with the fold's own rules, incrementally
    for a new entry and again from the kept entries after a correction.  A catch-up keeps
    the summaries of the cases it has seen in memory; a new process rebuilds a case's
    summary from its (corrected) ``case_milestones`` rows (:meth:`from_milestones`).
    """

    __slots__ = (
        "_agencies",
        "_decision",
        "_first",
        "_national",
        "_open",
        "aware_date",
        "case",
        "counts",
        "decisions",
        "entries",
        "exchanges",
        "incident_date",
        "last_position",
        "last_recorded_at",
        "notices",
        "regime",
        "subject",
        "times",
    )

    def __init__(self, case: str) -> None:
        self.case = case
        self.regime = ""
        self.subject = ""
        self.incident_date: str | None = None
        self.aware_date: str | None = None
        self.counts: dict[str, int] = {}
        self.times: dict[str, list[list[Any]]] = {}
        """Timed entry type -> [[occurred_at, seq], ...]."""
        self.notices: list[list[Any]] = []
        """[[seq, occurred_at, recipients], ...] of ``IncidentNotified``."""
        self.decisions: list[list[Any]] = []
        """[[seq, occurred_at, outcome, recorded_at], ...] of ``DecisionMade``."""
        self.exchanges: list[list[Any]] = []
        """[[seq, type, agency, request_id, due], ...] of requests, replies, refusals."""
        self.entries = 0
        self.last_recorded_at = ""
        self.last_position = 0
        self._first: dict[str, tuple[Any, str]] = {}
        self._national: tuple[Any, str] | None = None
        self._decision: tuple[Any, list[Any]] | None = None
        self._open: dict[str, list[Any]] = {}
        """Open request_id -> [agency, due, ref]."""
        self._agencies: dict[str, str] = {}
        """Open request_id -> agency (what :func:`answered_request` reads)."""

    # --- folding ----------------------------------------------------------------------

    def add(
        self,
        seq: int,
        kind: str,
        occurred_at: str,
        recorded_at: str,
        position: int,
        facts: Mapping[str, Any],
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        """Fold the next entry (in ``seq`` order); ``changes`` for a correction."""
        self.entries += 1
        if recorded_at > self.last_recorded_at:
            self.last_recorded_at = recorded_at
        if position > self.last_position:
            self.last_position = position
        if kind == "EntryCorrected":
            if changes is not None:
                self.correct(parse_ref(facts["corrects"])[1], changes)
            return
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind not in MILESTONE_TIMES:
            if kind in _EXCHANGES:
                self._exchange(
                    [
                        seq,
                        kind,
                        _kept(facts.get("agency")),
                        _kept(facts.get("request_id")),
                        _kept(facts.get("due")),
                    ]
                )
            return
        key = timeline_key(occurred_at, seq)
        self.times.setdefault(kind, []).append([_kept(occurred_at), seq])
        first = self._first.get(kind)
        if first is None or key < first[0]:
            self._first[kind] = (key, occurred_at)
        if kind == "CaseReferred":
            self.regime = facts.get("regime", "")
            self.subject = facts.get("subject", "")
            self.incident_date = facts.get("incident_date")
            self.aware_date = facts.get("aware_date")
        elif kind == "IncidentNotified":
            recipients = facts.get("recipients", ())
            self.notices.append([seq, occurred_at, recipients])
            national = self._national
            if NATIONAL_RECIPIENT.get(self.regime) in recipients and (
                national is None or key < national[0]
            ):
                self._national = (key, occurred_at)
        elif kind == "DecisionMade":
            made = [seq, occurred_at, facts.get("outcome", ""), recorded_at]
            self.decisions.append(made)
            current = self._decision
            if current is None or key > current[0]:
                self._decision = (key, made)
        elif kind == "InformationRequested":
            self._exchange(
                [
                    seq,
                    kind,
                    _kept(facts.get("agency")),
                    _kept(facts.get("request_id")),
                    _kept(facts.get("due")),
                ]
            )

    def add_plain(self, recorded_at: str, position: int, kind: str) -> None:
        """Fold the next entry of a kind that feeds nothing but the counts (not in
        :data:`FOLDED`): what :meth:`add` does for it, without the rest."""
        self.entries += 1
        if recorded_at > self.last_recorded_at:
            self.last_recorded_at = recorded_at
        if position > self.last_position:
            self.last_position = position
        counts = self.counts
        counts[kind] = counts.get(kind, 0) + 1

    def add_counted(self, kind: str, count: int, recorded_at: str, position: int) -> None:
        """Fold ``count`` entries of one kind not in :data:`FOLDED` at once, given the
        latest ``recorded_at`` and ``position`` among them: what as many calls of
        :meth:`add_plain` do (their order does not matter)."""
        self.entries += count
        if recorded_at > self.last_recorded_at:
            self.last_recorded_at = recorded_at
        if position > self.last_position:
            self.last_position = position
        counts = self.counts
        counts[kind] = counts.get(kind, 0) + count

    def _exchange(self, item: list[Any]) -> None:
        self.exchanges.append(item)
        self._step(item)

    def _step(self, item: list[Any]) -> None:
        seq, kind, agency, request_id, due = item
        if kind == "InformationRequested":
            self._open[request_id] = [agency, due, f"{self.case}#{seq}"]
            self._agencies[request_id] = agency
            return
        closed = answered_request(self._agencies, {"agency": agency, "request_id": request_id})
        if closed is not None:
            del self._open[closed]
            del self._agencies[closed]

    def correct(self, target: int, changes: Mapping[str, Any]) -> None:
        """Apply a correction of entry ``target`` to the kept entries and derive again
        what they feed."""
        occurred = (
            corrected_occurred_at(changes["occurred_at"]) if "occurred_at" in changes else None
        )
        if occurred is not None:
            for kind, timed in self.times.items():
                for item in timed:
                    if item[1] == target:
                        item[0] = occurred
                        self._derive_first(kind)
        national = False
        if target == 1:
            for name in ("regime", "subject", "incident_date", "aware_date"):
                if name in changes:
                    setattr(self, name, changes[name])
            national = "regime" in changes
        for notice in self.notices:
            if notice[0] == target:
                notice[1] = occurred or notice[1]
                notice[2] = changes.get("recipients", notice[2])
                national = True
        if national:
            self._derive_national()
        for made in self.decisions:
            if made[0] == target:
                made[1] = occurred or made[1]
                made[2] = changes.get("outcome", made[2])
                self._derive_decision()
        for item in self.exchanges:
            if item[0] == target:
                for i, name in ((2, "agency"), (3, "request_id"), (4, "due")):
                    if name in changes:
                        item[i] = changes[name]
                self._derive_open()

    def _derive_first(self, kind: str) -> None:
        self._first[kind] = min(
            ((timeline_key(occurred, seq), occurred) for occurred, seq in self.times[kind]),
            key=lambda pair: pair[0],
        )

    def _derive_national(self) -> None:
        national = NATIONAL_RECIPIENT.get(self.regime)
        notices = [
            (timeline_key(occurred, seq), occurred)
            for seq, occurred, recipients in self.notices
            if national in recipients
        ]
        self._national = min(notices, key=lambda pair: pair[0]) if notices else None

    def _derive_decision(self) -> None:
        decisions = [(timeline_key(made[1], made[0]), made) for made in self.decisions]
        self._decision = max(decisions, key=lambda pair: pair[0]) if decisions else None

    def _derive_open(self) -> None:
        self._open = {}
        self._agencies = {}
        for item in self.exchanges:
            self._step(item)

    @classmethod
    def from_milestones(cls, case: str, milestones: Iterable[Milestone]) -> CaseSummary:
        """The summary of a case's milestones (corrections already applied to them)."""
        summary = cls(case)
        for m in sorted(milestones, key=lambda m: m.seq):
            summary.add(m.seq, m.type, m.occurred_at, m.recorded_at, m.position, m.facts)
        return summary

    # --- reading ----------------------------------------------------------------------

    def stage(self) -> str:
        """The stage (:func:`projections.fold.case_view.stage_of`)."""
        decision = self._decision
        return stage_of(self.counts.keys(), decision[1][2] if decision is not None else None)

    def decision_summary(self) -> dict[str, Any] | None:
        """``{ref, outcome, occurred_at, recorded_at}`` of the decision in force."""
        if self._decision is None:
            return None
        seq, occurred_at, outcome, recorded_at = self._decision[1]
        return {
            "ref": f"{self.case}#{seq}",
            "outcome": outcome,
            "occurred_at": occurred_at,
            "recorded_at": recorded_at,
        }

    def open_requests(self) -> list[dict[str, Any]]:
        """The open requests, as ``status`` prints them."""
        return [
            {"agency": agency, "request_id": request_id, "due": due, "ref": ref}
            for request_id, (agency, due, ref) in self._open.items()
        ]

    def values(self) -> tuple[Any, ...]:
        """The ``case_index`` row (:data:`INDEX_COLUMNS`)."""
        decision = self.decision_summary()
        requests = self.open_requests()
        first = self._first
        national = self._national
        return (
            self.case,
            self.regime,
            self.subject,
            self.stage(),
            self.entries,
            self.incident_date,
            self.aware_date,
            *(first[kind][1] if kind in first else None for kind in MILESTONE_TIMES),
            national[1] if national is not None else None,
            decision["ref"] if decision is not None else None,
            decision["outcome"] if decision is not None else None,
            decision["occurred_at"] if decision is not None else None,
            decision["recorded_at"] if decision is not None else None,
            len(self.decisions),
            orjson.dumps(requests).decode(),
            len(requests),
            self.last_recorded_at,
            self.last_position,
        )

    def row(self) -> IndexRow:
        """The summary as an :class:`IndexRow`."""
        return IndexRow.from_values(self.values())


_EXCHANGES: Final = frozenset(
    {"InformationRequested", "InformationReceived", "InformationDeclined"}
)

FOLDED: Final = frozenset({*MILESTONE_TIMES, *_EXCHANGES, "EntryCorrected"})
"""The entry types whose fields :meth:`CaseSummary.add` reads; every other type only adds
to the counts (:meth:`CaseSummary.add_plain`)."""
