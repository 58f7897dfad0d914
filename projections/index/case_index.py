"""The cross-case index: a read model kept in the store itself (SQLite or PostgreSQL).

Two tables, next to the events:

``case_index``
    one row per case: regime, subject, stage, the key milestone times, the decision in
    force, the open information requests (JSON), how many entries, the last position.
``case_milestones``
    one row per entry: case, seq, type, ``occurred_at`` (corrected), ``occurred_day``
    (Europe/London), ``recorded_at``, position, actor, whether it was corrected, and a
    compact JSON ``facts`` of the fields other queries need without folding
    (:data:`FACT_FIELDS`).

The index follows the store's notification log (``CaseLedger.iter_records``) from the
position it has tracked.  Each batch (:data:`BATCH_SIZE` entries, grouped per case) is
written, rows and tracking position together, in ONE transaction, through the library's
tracking recorders (``SQLiteTrackingRecorder`` / ``PostgresTrackingRecorder``), so each
entry is applied exactly once and a crash part-way leaves the index exactly as it was
after the last committed batch.  The write transaction first takes the index's lock
(``BEGIN IMMEDIATE`` / an advisory lock) and checks that the tracked position is still the
one the batch was computed from; if another process moved it, the batch is dropped and
recomputed from the new position.

Each case row is derived by :class:`CaseSummary` with the same rules as the fold
(:func:`projections.fold.case_view.stage_of`, :func:`~projections.fold.case_view.decision_key`,
:func:`ledger.domain.case.answered_request`); the tests check, for random histories with
backdating and corrections, that every indexed status equals the fold's.

The clocks of every case (:func:`all_clocks`, :func:`summaries_by_case`,
:func:`indexed_case_records`) live here too: they read the index's rows and clock facts
(:mod:`projections.index.clock_facts`) and apply the pure rules of :mod:`projections.assess.clocks`,
which imports nothing from the index.
"""

from __future__ import annotations

import base64
import gc
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol
from urllib.parse import parse_qs, unquote, urlparse

import orjson
from eventsourcing.persistence import PersistenceError, Tracking
from eventsourcing.sqlite import SQLiteTrackingRecorder

from ledger.catalogue.models import occurred_day
from ledger.catalogue.registry import KINDS
from ledger.domain.case import answered_request
from ledger.domain.invariants import parse_ref
from ledger.errors import StoreUnavailable
from projections.assess.clocks import (
    ClockState,
    ClockSummary,
    _match_fields,
    _on_moment,
    clock_event_types,
    clock_states,
    requests_on,
    summary_of,
    view_records,
)
from projections.assess.rules import REGIMES, RulePack, all_rule_packs
from projections.fold.case_view import (
    STAGES,
    corrected_occurred_at,
    fold,
    stage_of,
    status_payload,
    timeline_key,
)
from projections.fold.when import format_instant, on_day
from projections.index.clock_facts import (
    CaseClockFacts,
    case_clock_facts,
    rules_fingerprint,
    states_from_facts,
    summary_from_facts,
    summary_from_spans,
)

if TYPE_CHECKING:
    from ledger.application import CaseLedger


__all__ = [
    "BATCH_SIZE",
    "FACT_FIELDS",
    "INDEX_COLUMNS",
    "INDEX_NAME",
    "MILESTONE_COLUMNS",
    "CaseIndex",
    "CaseRecords",
    "CaseSummary",
    "IndexRow",
    "IndexSQLiteRecorder",
    "Milestone",
    "all_clocks",
    "folded_case_records",
    "index_covers",
    "indexed_case_records",
    "milestone_record",
    "summaries_by_case",
]

INDEX_NAME: Final = "case_index"
"""The key of the index's row in the tracking table."""

BATCH_SIZE: Final = 5000
"""Entries per transaction when catching up."""

REBUILD_BATCH_SIZE: Final = 50000
"""Entries per transaction when rebuilding from zero (fewer rewrites of busy cases)."""

CACHE_LIMIT: Final = 200_000
"""Most case summaries kept in memory between batches."""

#: The national recipient whose notification ends the notification clock, per regime.
NATIONAL_RECIPIENT: Final[Mapping[str, str]] = MappingProxyType(
    {"wt2015": "ofsted", "wt2018": "national-panel", "wt2023": "national-panel"}
)

#: Per entry type, the fields copied into ``case_milestones.facts`` (each kind's
#: ``index_facts`` in :mod:`ledger.catalogue.registry`).
FACT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {kind.name: kind.index_facts for kind in KINDS}
)

#: Milestone columns, in table order.
MILESTONE_COLUMNS: Final[tuple[str, ...]] = (
    "case_ref",
    "seq",
    "type",
    "occurred_at",
    "occurred_day",
    "recorded_at",
    "position",
    "actor",
    "corrected",
    "facts",
)

#: Entry types whose first ``occurred_at`` is a column of ``case_index``.
MILESTONE_TIMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "CaseReferred": "referred_at",
        "IncidentNotified": "notified_at",
        "InformationRequested": "information_requested_at",
        "DiscussionHeld": "discussed_at",
        "RecommendationMade": "recommended_at",
        "DecisionMade": "first_decision_at",
        "DecisionCommunicated": "communicated_at",
        "ReviewerCommissioned": "reviewer_commissioned_at",
        "ReviewCompleted": "completed_at",
        "ReportPublished": "published_at",
        "CaseClosed": "closed_at",
    }
)

#: ``case_index`` columns, in table order.
INDEX_COLUMNS: Final[tuple[str, ...]] = (
    "case_ref",
    "regime",
    "subject",
    "stage",
    "entries",
    "incident_date",
    "aware_date",
    *MILESTONE_TIMES.values(),
    "notified_national_at",
    "decision_ref",
    "decision_outcome",
    "decision_occurred_at",
    "decision_recorded_at",
    "decisions",
    "open_requests",
    "open_request_count",
    "last_recorded_at",
    "last_position",
)

_SUBJECT: Final = INDEX_COLUMNS.index("subject")
_REQUESTS: Final = INDEX_COLUMNS.index("open_requests")

MilestoneValues = tuple[str, int, str, str, str, str, int, str, bool, str]
"""One ``case_milestones`` row as written (``facts`` as JSON text)."""

Opener = Callable[[Any], Any]
"""Turns a sealed column value back into its JSON value (see :class:`Sealer`)."""

SEALED: Final = "enc:"


class Sealer:
    """Keeps the index as private as the store: in an encrypted store (``CASELEDGER_KEY_FILE``)
    the columns that carry free text or names (``subject``, ``open_requests``, ``facts``)
    are written encrypted with the store's own cipher, as ``"enc:" + base64``, and read
    back transparently.  Stage, regime, dates, outcomes and references stay in clear so
    the index can still be filtered and ordered; SQL cannot reach into ``facts`` there.
    """

    def __init__(self, cipher: Any | None) -> None:
        self.cipher = cipher

    def seal(self, value: Any) -> str:
        """A JSON value, sealed (or as JSON text when the store is not encrypted)."""
        text = orjson.dumps(value)
        if self.cipher is None:
            return text.decode()
        return SEALED + base64.b64encode(self.cipher.encrypt(text)).decode()

    def seal_json(self, value: Any) -> str:
        """For a JSON column: the sealed value as a JSON string literal."""
        sealed = self.seal(value)
        return sealed if self.cipher is None else orjson.dumps(sealed).decode()

    def seal_text(self, value: str) -> str:
        """For a text column."""
        return value if self.cipher is None else self.seal(value)

    def opener(self) -> Opener | None:
        """The function that opens sealed values, or None for a store in clear."""
        if self.cipher is None:
            return None
        cipher = self.cipher

        def open_value(value: Any) -> Any:
            if isinstance(value, str) and value.startswith(SEALED):
                return orjson.loads(cipher.decrypt(base64.b64decode(value[len(SEALED) :])))
            return value

        return open_value


def _json_column(value: Any, opener: Opener | None) -> Any:
    """A JSON column as read back: text (SQLite) or already decoded (PostgreSQL), and
    sealed or not."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and not value.startswith(SEALED):
        value = orjson.loads(value)
    return opener(value) if opener is not None else value


# --- public row types -----------------------------------------------------------------


class Milestone(NamedTuple):
    """One row of ``case_milestones``: an entry's place on the timeline and its facts."""

    case: str
    seq: int
    type: str
    occurred_at: str
    occurred_day: str
    recorded_at: str
    position: int
    actor: str
    corrected: bool
    facts: Mapping[str, Any]

    @property
    def ref(self) -> str:
        """``CASE#seq``."""
        return f"{self.case}#{self.seq}"

    def values(self) -> MilestoneValues:
        """The row as written (``facts`` as JSON text)."""
        return (*self[:9], orjson.dumps(dict(self.facts)).decode())

    @staticmethod
    def from_values(values: Sequence[Any], opener: Opener | None = None) -> Milestone:
        """A row as read back (facts as JSON text, or already decoded by the driver)."""
        return Milestone(
            values[0],
            int(values[1]),
            values[2],
            values[3],
            values[4],
            values[5],
            int(values[6]),
            values[7],
            bool(values[8]),
            _json_column(values[9], opener),
        )


_MILESTONE_SLICE: Final = slice(
    INDEX_COLUMNS.index("referred_at"), INDEX_COLUMNS.index("closed_at") + 1
)
_AT: Final = {name: i for i, name in enumerate(INDEX_COLUMNS)}


class IndexRow(NamedTuple):
    """One row of ``case_index``."""

    case: str
    regime: str
    subject: str
    stage: str
    entries: int
    incident_date: str | None
    aware_date: str | None
    milestones: Mapping[str, str | None]
    """First ``occurred_at`` per :data:`MILESTONE_TIMES` column (``referred_at`` ...)."""
    notified_national_at: str | None
    """First ``IncidentNotified`` to the regime's national body (ofsted / national-panel)."""
    decision: Mapping[str, Any] | None
    """The decision in force: ``{ref, outcome, occurred_at, recorded_at}``."""
    decisions: int
    open_requests: tuple[Mapping[str, Any], ...]
    last_recorded_at: str
    last_position: int

    def status(
        self,
        on: datetime,
        overdue: Sequence[str] = (),
        next_deadline: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``status`` answer for this case (the same shape the fold gives); the
        clocks' overdue names and next deadline come from :mod:`projections.assess.clocks`, as
        do the open requests' ``overdue`` and ``days_overdue`` on ``on``."""
        return status_payload(
            case=self.case,
            regime=self.regime,
            subject=self.subject,
            stage=self.stage,
            decision=self.decision,
            open_requests=requests_on(self.open_requests, self.regime, on),
            overdue=overdue,
            next_deadline=next_deadline,
            entries=self.entries,
            last_recorded_at=self.last_recorded_at,
        )

    @staticmethod
    def from_values(values: Sequence[Any], opener: Opener | None = None) -> IndexRow:
        """A row as read back (in :data:`INDEX_COLUMNS` order)."""
        at = _AT
        requests = _json_column(values[at["open_requests"]], opener)
        subject = values[2] if opener is None else opener(values[2])
        ref = values[at["decision_ref"]]
        decision = None
        if ref is not None:
            decision = {
                "ref": ref,
                "outcome": values[at["decision_outcome"]],
                "occurred_at": values[at["decision_occurred_at"]],
                "recorded_at": values[at["decision_recorded_at"]],
            }
        return IndexRow(
            values[0],
            values[1],
            subject,
            values[3],
            int(values[4]),
            values[5],
            values[6],
            dict(zip(MILESTONE_TIMES.values(), values[_MILESTONE_SLICE], strict=True)),
            values[at["notified_national_at"]],
            decision,
            int(values[at["decisions"]]),
            tuple(
                {
                    "agency": r["agency"],
                    "request_id": r["request_id"],
                    "due": r["due"],
                    "ref": r["ref"],
                }
                for r in requests
            ),
            values[at["last_recorded_at"]],
            int(values[at["last_position"]]),
        )


class StoredClocks(NamedTuple):
    """A case's ``case_index`` label joined with its ``case_clocks`` row (None columns
    when it has none): what :meth:`CaseIndex.clock_facts` reads."""

    case: str
    regime: str
    position: int
    """``case_index.last_position``."""
    last_recorded_at: str
    facts_position: int | None
    """``case_clocks.last_position``: the position the facts were derived at."""
    rules: str | None
    until: str | None
    spans: str | None
    delays: Mapping[str, Sequence[Sequence[Any]]] | None


#: The ``case_index`` columns a ``status`` answer is made of.
STATUS_COLUMNS: Final[tuple[str, ...]] = (
    "case_ref",
    "regime",
    "subject",
    "stage",
    "entries",
    "decision_ref",
    "decision_outcome",
    "decision_occurred_at",
    "decision_recorded_at",
    "open_requests",
    "last_recorded_at",
    "last_position",
)


class StatusRow(NamedTuple):
    """A ``case_index`` row's :data:`STATUS_COLUMNS` joined with the ``case_clocks``
    columns ``status`` reads (None when the case has no clock facts yet), as stored:
    ``subject`` and ``open_requests`` may be sealed, ``open_requests`` is JSON."""

    case: str
    regime: str
    subject: str
    stage: str
    entries: int
    decision_ref: str | None
    decision_outcome: str | None
    decision_occurred_at: str | None
    decision_recorded_at: str | None
    open_requests: Any
    last_recorded_at: str
    last_position: int
    facts_position: int | None
    rules: str | None
    until: str | None
    spans: str | None

    def status(
        self,
        opener: Opener | None,
        overdue: Sequence[str] = (),
        next_deadline: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``status`` answer (:func:`projections.fold.case_view.status_payload`), built
        straight from the columns."""
        decision = None
        if self.decision_ref is not None:
            decision = {
                "ref": self.decision_ref,
                "outcome": self.decision_outcome,
                "occurred_at": self.decision_occurred_at,
                "recorded_at": self.decision_recorded_at,
            }
        return status_payload(
            case=self.case,
            regime=self.regime,
            subject=self.subject if opener is None else opener(self.subject),
            stage=self.stage,
            decision=decision,
            open_requests=_json_column(self.open_requests, opener),
            overdue=overdue,
            next_deadline=next_deadline,
            entries=int(self.entries),
            last_recorded_at=self.last_recorded_at,
        )


class ClockHead(NamedTuple):
    """What the clock facts of a case are derived from besides its milestones: its
    ``case_index`` regime and label, read in the same snapshot as the milestones."""

    case: str
    regime: str
    position: int
    last_recorded_at: str


def _stored_clocks(values: Sequence[Any], opener: Opener | None) -> StoredClocks:
    delays = values[8]
    return StoredClocks(
        values[0],
        values[1],
        int(values[2]),
        values[3],
        int(values[4]) if values[4] is not None else None,
        values[5],
        values[6],
        values[7],
        _json_column(delays, opener) if delays is not None else None,
    )


# --- the per-case summary (incremental fold over milestones) ---------------------------


_FACTS: Final[dict[str, tuple[str, ...]]] = dict(FACT_FIELDS)


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
        occurred if len(occurred) == 10 else occurred_day(occurred).isoformat(),
        record["recorded_at"],
        record["position"],
        record.get("actor", ""),
        False,
        facts_of(record),
    ]


def _patch(row: list[Any], changes: Mapping[str, Any]) -> None:
    """Apply a correction's ``changes`` to a milestone row being written (a list in
    :data:`MILESTONE_COLUMNS` order, ``facts`` still a dict)."""
    facts = dict(row[9])
    for name in _FACTS.get(row[2], ()):
        if name in changes:
            facts[name] = changes[name]
    if "occurred_at" in changes:
        occurred = corrected_occurred_at(changes["occurred_at"])
        row[3] = occurred
        row[4] = occurred_day(occurred).isoformat()
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
                    [seq, kind, facts.get("agency"), facts.get("request_id"), facts.get("due")]
                )
            return
        key = timeline_key(occurred_at, seq)
        self.times.setdefault(kind, []).append([occurred_at, seq])
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
                [seq, kind, facts.get("agency"), facts.get("request_id"), facts.get("due")]
            )

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


# --- storage --------------------------------------------------------------------------


class IndexReads(Protocol):
    """What answering from the index reads: the stored tables, or the stored tables with
    the tail folded in memory (:class:`TailOverlay`)."""

    opener: Opener | None

    def tracked_position(self) -> int: ...

    def load_case_milestones(self, cases: Sequence[str]) -> dict[str, list[Milestone]]: ...

    def count_milestones(self) -> int: ...

    def count_cases(self) -> int: ...

    def select_rows(
        self, stage: str | None, regime: str | None, case: str | None
    ) -> list[IndexRow]: ...

    def select_milestones(
        self, case: str | None, types: Sequence[str] | None
    ) -> list[Milestone]: ...

    def select_clock_facts(self, case: str | None) -> list[StoredClocks]: ...

    def stale_clock_cases(self, fingerprint: str, case: str | None) -> list[str]: ...

    def select_times(self, types: Sequence[str]) -> list[tuple[str, int, str, str]]: ...

    def select_regimes(self) -> dict[str, str]: ...

    def select_status_rows(self, stage: str | None, regime: str | None) -> list[StatusRow]: ...

    def load_clock_inputs(
        self, cases: Sequence[str] | None, types: Sequence[str]
    ) -> tuple[list[ClockHead], list[Milestone]]: ...


class IndexBackend(IndexReads, Protocol):
    """What the index needs from a store: its tables and one-transaction batch writes.

    ``changed`` rows are ``(occurred_at, occurred_day, facts, case_ref, seq)`` of
    corrected milestones; ``facts`` and the rows' JSON columns arrive sealed.
    :meth:`may_keep` says, from the grants and before any write, whether this user may
    write the tables; :meth:`indexed_refs` lists every case with a row in any of them.
    """

    def create_table(self) -> None: ...

    def load_milestone_rows(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Milestone]: ...

    def write_batch(
        self,
        start: int,
        end: int,
        new: Sequence[Sequence[Any]],
        changed: Sequence[Sequence[Any]],
        rows: Sequence[Sequence[Any]],
    ) -> bool: ...

    def reset(self) -> None: ...

    def write_clock_facts(self, rows: Sequence[Sequence[Any]]) -> None: ...

    def tables_exist(self) -> bool: ...

    def may_keep(self) -> bool: ...

    def may_create(self) -> bool: ...

    def indexed_refs(self) -> list[str]: ...

    def check_snapshot(self, cases: Sequence[str]) -> IndexSnapshot: ...


class IndexSnapshot(NamedTuple):
    """Some cases' stored index, read in one snapshot with the tracked position: what
    :mod:`projections.queries.index_trust` compares with the fold of the events."""

    position: int
    """The tracked position in the same snapshot."""
    rows: Mapping[str, Sequence[Any]]
    """case -> ``case_index`` row as stored (:data:`INDEX_COLUMNS` order)."""
    milestones: Mapping[str, Sequence[Milestone]]
    """case -> its ``case_milestones`` rows (opened), by seq."""
    clocks: Mapping[str, Sequence[Any]]
    """case -> ``case_clocks`` row: case_ref, last_position, last_recorded_at, rules,
    until, spans, delays (opened)."""


_INDEX_TABLES: Final = ("case_index", "case_milestones", "case_clocks")
"""The index's own tables (besides the tracking table)."""


def sqlite_read_only(db_name: str) -> bool:
    """Whether an SQLite store named by ``db_name`` (a path or a ``file:`` URI) may only
    be read here: opened ``mode=ro`` or ``immutable=1``, or a file (or folder, where
    SQLite writes its journal) this process may not write.  Decided before any write,
    so a reader never tries one."""
    path = db_name
    if db_name.startswith("file:"):
        parts = urlparse(db_name)
        query = parse_qs(parts.query)
        if query.get("mode", [""])[-1] == "ro":
            return True
        if query.get("immutable", ["0"])[-1].lower() in ("1", "true", "yes", "on"):
            return True
        path = unquote(parts.path)
    folder = os.path.dirname(os.path.abspath(path))
    return not (os.access(path, os.W_OK) and os.access(folder, os.W_OK))


_SQLITE_INDEX_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "entries": "INTEGER NOT NULL",
        "decisions": "INTEGER NOT NULL",
        "open_request_count": "INTEGER NOT NULL",
        "last_position": "INTEGER NOT NULL",
        "case_ref": "TEXT PRIMARY KEY",
    }
)


class IndexSQLiteRecorder(SQLiteTrackingRecorder):
    """The library's SQLite tracking recorder plus the index's two tables."""

    opener: Opener | None = None

    def construct_create_table_statements(self) -> list[str]:
        statements: list[str] = super().construct_create_table_statements()
        columns = ", ".join(f"{c} {_SQLITE_INDEX_TYPES.get(c, 'TEXT')}" for c in INDEX_COLUMNS)
        statements += [
            f"CREATE TABLE IF NOT EXISTS case_index ({columns}) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS case_index_stage ON case_index (stage, regime)",
            "CREATE INDEX IF NOT EXISTS case_index_regime ON case_index (regime)",
            # Rows go in by position (the rowid), so inserting is an append; a case's
            # entries are found through the unique (case_ref, seq) index.
            "CREATE TABLE IF NOT EXISTS case_milestones ("
            "case_ref TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, "
            "occurred_at TEXT NOT NULL, occurred_day TEXT NOT NULL, "
            "recorded_at TEXT NOT NULL, position INTEGER PRIMARY KEY, actor TEXT NOT NULL, "
            "corrected INTEGER NOT NULL, facts TEXT NOT NULL)",
            "CREATE UNIQUE INDEX IF NOT EXISTS case_milestones_case "
            "ON case_milestones (case_ref, seq)",
            "CREATE INDEX IF NOT EXISTS case_milestones_type "
            "ON case_milestones (type, occurred_day)",
            # Each case's clock facts (projections.index.clock_facts), labelled with the
            # case_index position they were derived at.
            "CREATE TABLE IF NOT EXISTS case_clocks ("
            "case_ref TEXT PRIMARY KEY, last_position INTEGER NOT NULL, "
            "last_recorded_at TEXT NOT NULL, rules TEXT NOT NULL, until TEXT, "
            "spans TEXT NOT NULL, delays TEXT) WITHOUT ROWID",
        ]
        return statements

    def create_table(self) -> None:
        # Tables made by an earlier layout of the index are dropped, to be rebuilt.
        with self.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA table_info(case_milestones)")
            columns = {row[1]: row[5] for row in c.fetchall()}
            c.execute("PRAGMA table_info(case_index)")
            old_index = "state" in {row[1] for row in c.fetchall()}
        if (columns and columns.get("position") != 1) or old_index:
            with self.datastore.transaction(commit=True) as c:
                c.execute("DROP TABLE IF EXISTS case_milestones")
                c.execute("DROP TABLE IF EXISTS case_index")
                c.execute("DELETE FROM tracking WHERE application_name=?", (INDEX_NAME,))
        super().create_table()

    def tracked_position(self) -> int:
        return int(self.max_tracking_id(INDEX_NAME) or 0)

    def load_case_milestones(self, cases: Sequence[str]) -> dict[str, list[Milestone]]:
        out: dict[str, list[Milestone]] = {}
        columns = ", ".join(MILESTONE_COLUMNS)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            for chunk in _chunks(cases, 500):
                marks = ",".join("?" * len(chunk))
                c.execute(
                    f"SELECT {columns} FROM case_milestones WHERE case_ref IN ({marks}) "
                    "ORDER BY case_ref, seq",
                    tuple(chunk),
                )
                for row in c.fetchall():
                    milestone = Milestone.from_values(row, self.opener)
                    out.setdefault(milestone.case, []).append(milestone)
        return out

    def load_milestone_rows(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Milestone]:
        out: dict[tuple[str, int], Milestone] = {}
        columns = ", ".join(MILESTONE_COLUMNS)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            for case, seq in keys:
                c.execute(
                    f"SELECT {columns} FROM case_milestones WHERE case_ref=? AND seq=?",
                    (case, seq),
                )
                row = c.fetchone()
                if row is not None:
                    out[(case, seq)] = Milestone.from_values(row, self.opener)
        return out

    def count_milestones(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT COUNT(*) FROM case_milestones")
            return int(c.fetchone()[0])

    def count_cases(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT COUNT(*) FROM case_index")
            return int(c.fetchone()[0])

    def write_batch(
        self,
        start: int,
        end: int,
        new: Sequence[Sequence[Any]],
        changed: Sequence[Sequence[Any]],
        rows: Sequence[Sequence[Any]],
    ) -> bool:
        with self.datastore.get_connection(commit=True) as conn:
            c = conn.cursor()
            try:
                c.execute("BEGIN IMMEDIATE")
                c.execute(self.select_max_tracking_id_statement, (INDEX_NAME,))
                current = c.fetchone()[0] or 0
                if current != start:
                    conn.rollback()
                    return False
                marks = ",".join("?" * len(MILESTONE_COLUMNS))
                c.executemany(f"INSERT INTO case_milestones VALUES ({marks})", new)
                c.executemany(
                    "UPDATE case_milestones SET occurred_at=?, occurred_day=?, corrected=1, "
                    "facts=? WHERE case_ref=? AND seq=?",
                    changed,
                )
                marks = ",".join("?" * len(INDEX_COLUMNS))
                c.executemany(f"INSERT OR REPLACE INTO case_index VALUES ({marks})", rows)
                self._insert_tracking(c, Tracking(INDEX_NAME, end))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                c.sqlite_cursor.close()
        return True

    def reset(self) -> None:
        with self.datastore.get_connection(commit=True) as conn:
            c = conn.cursor()
            try:
                c.execute("BEGIN IMMEDIATE")
                c.execute("DELETE FROM case_milestones")
                c.execute("DELETE FROM case_index")
                c.execute("DELETE FROM case_clocks")
                c.execute("DELETE FROM tracking WHERE application_name=?", (INDEX_NAME,))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                c.sqlite_cursor.close()

    def select_rows(
        self, stage: str | None, regime: str | None, case: str | None
    ) -> list[IndexRow]:
        where, params = _filters(stage=stage, regime=regime, case_ref=case, mark="?")
        columns = ", ".join(INDEX_COLUMNS)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(f"SELECT {columns} FROM case_index{where} ORDER BY case_ref", params)
            return [IndexRow.from_values(row, self.opener) for row in c.fetchall()]

    def select_milestones(self, case: str | None, types: Sequence[str] | None) -> list[Milestone]:
        clauses: list[str] = []
        params: list[Any] = []
        if case is not None:
            clauses.append("case_ref=?")
            params.append(case)
        if types:
            clauses.append(f"type IN ({','.join('?' * len(types))})")
            params.extend(types)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                f"SELECT {', '.join(MILESTONE_COLUMNS)} FROM case_milestones{where} "
                "ORDER BY case_ref, seq",
                params,
            )
            return [Milestone.from_values(row, self.opener) for row in c.fetchall()]

    def select_times(self, types: Sequence[str]) -> list[tuple[str, int, str, str]]:
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                "SELECT case_ref, seq, type, occurred_at FROM case_milestones "
                f"WHERE type IN ({','.join('?' * len(types))})",
                tuple(types),
            )
            return [(row[0], int(row[1]), row[2], row[3]) for row in c.fetchall()]

    def select_regimes(self) -> dict[str, str]:
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute("SELECT case_ref, regime FROM case_index")
            return dict(c.fetchall())

    def stale_clock_cases(self, fingerprint: str, case: str | None) -> list[str]:
        only = " AND i.case_ref=?" if case is not None else ""
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                "SELECT i.case_ref FROM case_index i LEFT JOIN case_clocks k "
                "ON k.case_ref = i.case_ref WHERE (k.case_ref IS NULL "
                f"OR k.last_position <> i.last_position OR k.rules <> ?){only}",
                (fingerprint, case) if case is not None else (fingerprint,),
            )
            return [row[0] for row in c.fetchall()]

    def select_status_rows(self, stage: str | None, regime: str | None) -> list[StatusRow]:
        where, params = _filters(stage=stage, regime=regime, mark="?")
        where = where.replace("stage=", "i.stage=").replace("regime=", "i.regime=")
        columns = ", ".join(f"i.{c}" for c in STATUS_COLUMNS)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                f"SELECT {columns}, k.last_position, k.rules, k.until, k.spans "
                f"FROM case_index i LEFT JOIN case_clocks k ON k.case_ref = i.case_ref{where} "
                "ORDER BY i.case_ref",
                params,
            )
            return list(map(StatusRow._make, c.fetchall()))

    def select_clock_facts(self, case: str | None) -> list[StoredClocks]:
        where = " WHERE i.case_ref=?" if case is not None else ""
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                "SELECT i.case_ref, i.regime, i.last_position, i.last_recorded_at, "
                "k.last_position, k.rules, k.until, k.spans, k.delays FROM case_index i "
                f"LEFT JOIN case_clocks k ON k.case_ref = i.case_ref{where} ORDER BY i.case_ref",
                (case,) if case is not None else (),
            )
            return [_stored_clocks(row, self.opener) for row in c.fetchall()]

    def load_clock_inputs(
        self, cases: Sequence[str] | None, types: Sequence[str]
    ) -> tuple[list[ClockHead], list[Milestone]]:
        heads: list[ClockHead] = []
        milestones: list[Milestone] = []
        columns = ", ".join(MILESTONE_COLUMNS)
        kinds = ",".join("?" * len(types))
        chunks: Iterable[Sequence[str] | None] = [None] if cases is None else _chunks(cases, 500)
        # One read transaction: a snapshot, so the labels match the milestones.
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            for chunk in chunks:
                marks = "" if chunk is None else ",".join("?" * len(chunk))
                where = "" if chunk is None else f" WHERE case_ref IN ({marks})"
                params = tuple(chunk or ())
                c.execute(
                    f"SELECT case_ref, regime, last_position, last_recorded_at FROM case_index"
                    f"{where}",
                    params,
                )
                heads.extend(ClockHead(r[0], r[1], int(r[2]), r[3]) for r in c.fetchall())
                and_cases = "" if chunk is None else where.replace(" WHERE ", " AND ")
                c.execute(
                    f"SELECT {columns} FROM case_milestones WHERE type IN ({kinds}){and_cases}",
                    (*types, *params),
                )
                milestones.extend(Milestone.from_values(r, self.opener) for r in c.fetchall())
        return heads, milestones

    def write_clock_facts(self, rows: Sequence[Sequence[Any]]) -> None:
        with self.datastore.transaction(commit=True) as c:
            # Never replace facts derived at a later position (another process's).
            c.executemany(
                "INSERT INTO case_clocks VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (case_ref) "
                "DO UPDATE SET last_position=excluded.last_position, "
                "last_recorded_at=excluded.last_recorded_at, rules=excluded.rules, "
                "until=excluded.until, spans=excluded.spans, delays=excluded.delays "
                "WHERE excluded.last_position >= case_clocks.last_position",
                rows,
            )

    def tables_exist(self) -> bool:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name IN "
                "('case_index', 'case_milestones', 'case_clocks', 'tracking')"
            )
            return int(c.fetchone()[0]) == 4

    def may_keep(self) -> bool:
        return not sqlite_read_only(self.datastore.pool.db_name)

    def may_create(self) -> bool:
        return self.may_keep()

    def indexed_refs(self) -> list[str]:
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                "SELECT case_ref FROM case_index UNION SELECT case_ref FROM case_milestones "
                "UNION SELECT case_ref FROM case_clocks"
            )
            return sorted(row[0] for row in c.fetchall())

    def check_snapshot(self, cases: Sequence[str]) -> IndexSnapshot:
        rows: dict[str, Sequence[Any]] = {}
        milestones: dict[str, list[Milestone]] = {}
        clocks: dict[str, Sequence[Any]] = {}
        marks = ",".join("?" * len(cases))
        params = tuple(cases)
        # One read transaction: the rows and the tracked position of one moment.
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(self.select_max_tracking_id_statement, (INDEX_NAME,))
            position = int(c.fetchone()[0] or 0)
            c.execute(
                f"SELECT {', '.join(INDEX_COLUMNS)} FROM case_index WHERE case_ref IN ({marks})",
                params,
            )
            for row in c.fetchall():
                rows[row[0]] = tuple(row)
            c.execute(
                f"SELECT {', '.join(MILESTONE_COLUMNS)} FROM case_milestones "
                f"WHERE case_ref IN ({marks}) ORDER BY case_ref, seq",
                params,
            )
            for row in c.fetchall():
                milestones.setdefault(row[0], []).append(Milestone.from_values(row, self.opener))
            c.execute(
                "SELECT case_ref, last_position, last_recorded_at, rules, until, spans, delays "
                f"FROM case_clocks WHERE case_ref IN ({marks})",
                params,
            )
            for row in c.fetchall():
                clocks[row[0]] = _clock_row(row, self.opener)
        return IndexSnapshot(position, rows, milestones, clocks)


def _clock_row(row: Sequence[Any], opener: Opener | None) -> tuple[Any, ...]:
    """A ``case_clocks`` row as read, ``delays`` opened."""
    delays = row[6]
    return (
        row[0],
        int(row[1]),
        row[2],
        row[3],
        row[4],
        row[5],
        _json_column(delays, opener) if delays is not None else None,
    )


def _filters(mark: str, **values: str | None) -> tuple[str, list[str]]:
    clauses = [f"{name}={mark}" for name, value in values.items() if value is not None]
    params = [value for value in values.values() if value is not None]
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def open_backend(ledger: CaseLedger, sealer: Sealer) -> tuple[IndexBackend, bool]:
    """The index's recorder on the ledger's own store (sharing its connections), and
    whether this user may keep it (write its tables).

    Decided up front, from the store's grants (PostgreSQL: ``has_table_privilege``) or
    how the file was opened (SQLite: ``mode=ro``, file permissions), so that a reader
    never attempts a write: it reads the index as it is and folds the entries beyond
    its tracked position in memory (:class:`TailOverlay`).  Where the tables do not
    exist and cannot be created here, an empty index stands in for them.
    """
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    if ledger.location.kind == "postgres":
        # lazy: psycopg costs ~70 ms at start-up; SQLite stores never need it.  The one
        # import cycle left (index_pg builds on this module's rows; see pyproject.toml).
        from projections.index.postgres import IndexPostgresRecorder

        backend: IndexBackend = IndexPostgresRecorder(datastore)
    else:
        backend = IndexSQLiteRecorder(datastore)
    backend.opener = sealer.opener()
    if backend.tables_exist():
        if not backend.may_keep():
            return backend, False
    elif not backend.may_create():
        return EmptyIndex(backend.opener), False
    for attempt in range(1, 6):
        # Two processes creating the tables at once: the loser sees them created.
        try:
            backend.create_table()
            break
        except PersistenceError:
            if attempt == 5:
                raise
            time.sleep(0.02 * attempt)
    return backend, backend.may_keep()


class EmptyIndex:
    """An index with nothing in it, for a store whose index tables were never created
    and that this user may not create: every query folds the whole log in memory."""

    def __init__(self, opener: Opener | None) -> None:
        self.opener = opener

    def create_table(self) -> None:
        """Nothing to create (the user may not)."""

    def tracked_position(self) -> int:
        return 0

    def load_case_milestones(self, cases: Sequence[str]) -> dict[str, list[Milestone]]:
        return {}

    def load_milestone_rows(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Milestone]:
        return {}

    def count_milestones(self) -> int:
        return 0

    def count_cases(self) -> int:
        return 0

    def write_batch(
        self,
        start: int,
        end: int,
        new: Sequence[Sequence[Any]],
        changed: Sequence[Sequence[Any]],
        rows: Sequence[Sequence[Any]],
    ) -> bool:
        raise PersistenceError("this store has no index tables to write")

    def reset(self) -> None:
        raise PersistenceError("this store has no index tables to reset")

    def select_rows(
        self, stage: str | None, regime: str | None, case: str | None
    ) -> list[IndexRow]:
        return []

    def select_milestones(self, case: str | None, types: Sequence[str] | None) -> list[Milestone]:
        return []

    def select_clock_facts(self, case: str | None) -> list[StoredClocks]:
        return []

    def stale_clock_cases(self, fingerprint: str, case: str | None) -> list[str]:
        return []

    def select_times(self, types: Sequence[str]) -> list[tuple[str, int, str, str]]:
        return []

    def select_regimes(self) -> dict[str, str]:
        return {}

    def select_status_rows(self, stage: str | None, regime: str | None) -> list[StatusRow]:
        return []

    def load_clock_inputs(
        self, cases: Sequence[str] | None, types: Sequence[str]
    ) -> tuple[list[ClockHead], list[Milestone]]:
        return [], []

    def write_clock_facts(self, rows: Sequence[Sequence[Any]]) -> None:
        raise PersistenceError("this store has no index tables to write")

    def tables_exist(self) -> bool:
        return False

    def may_keep(self) -> bool:
        return False

    def may_create(self) -> bool:
        return False

    def indexed_refs(self) -> list[str]:
        return []

    def check_snapshot(self, cases: Sequence[str]) -> IndexSnapshot:
        return IndexSnapshot(0, {}, {}, {})


class TailCase:
    """One case touched by the entries beyond the stored index's position, folded in
    memory: its milestone rows (corrections applied) and its ``case_index`` row."""

    __slots__ = ("milestones", "new", "row", "stored")

    def __init__(self, milestones: Iterable[Milestone], new: bool) -> None:
        self.milestones: dict[int, list[Any]] = {m.seq: [*m[:9], dict(m.facts)] for m in milestones}
        self.new = new
        """Whether the stored index has no rows of this case."""
        self.row: IndexRow | None = None
        self.stored: tuple[Any, ...] = ()
        """The ``case_index`` row as it would be stored (sealed)."""

    def listed(self) -> list[Milestone]:
        """Its milestone rows, by seq."""
        return [Milestone(*row) for _, row in sorted(self.milestones.items())]


class TailOverlay:
    """The stored index with the entries recorded beyond its tracked position folded in
    memory: what a user who may only read the index answers from.

    Every touched case is replaced whole (its row and all its milestone rows); the other
    cases are read from the store as they are.  The touched cases have no kept clock
    facts here, so they are derived for each answer (and never written).
    """

    def __init__(self, base: IndexBackend, base_position: int) -> None:
        self.base = base
        self.base_position = base_position
        self.end = base_position
        """The last position folded (the stored one while nothing was)."""
        self.cases: dict[str, TailCase] = {}
        self.opener = base.opener

    def _status_row(self, tail: TailCase) -> StatusRow:
        at = _AT
        return StatusRow._make(
            (*(tail.stored[at[c]] for c in STATUS_COLUMNS), None, None, None, None)
        )

    # The read methods of IndexBackend, with the touched cases replaced.

    def tracked_position(self) -> int:
        return self.end

    def count_cases(self) -> int:
        return self.base.count_cases() + sum(1 for t in self.cases.values() if t.new)

    def count_milestones(self) -> int:
        return self.base.count_milestones() + sum(len(t.milestones) for t in self.cases.values())

    def load_case_milestones(self, cases: Sequence[str]) -> dict[str, list[Milestone]]:
        out = self.base.load_case_milestones([c for c in cases if c not in self.cases])
        for case in cases:
            if case in self.cases:
                out[case] = self.cases[case].listed()
        return out

    def select_rows(
        self, stage: str | None, regime: str | None, case: str | None
    ) -> list[IndexRow]:
        touched = self.cases
        rows = [r for r in self.base.select_rows(stage, regime, case) if r.case not in touched]
        for ref, tail in touched.items():
            row = tail.row
            if row is None or (case is not None and ref != case):
                continue
            if (stage is None or row.stage == stage) and (regime is None or row.regime == regime):
                rows.append(row)
        return sorted(rows, key=lambda r: r.case)

    def select_milestones(self, case: str | None, types: Sequence[str] | None) -> list[Milestone]:
        touched = self.cases
        rows = [m for m in self.base.select_milestones(case, types) if m.case not in touched]
        wanted = set(types) if types else None
        for ref, tail in touched.items():
            if case is None or ref == case:
                rows.extend(m for m in tail.listed() if wanted is None or m.type in wanted)
        return sorted(rows, key=lambda m: (m.case, m.seq))

    def select_times(self, types: Sequence[str]) -> list[tuple[str, int, str, str]]:
        touched = self.cases
        out = [t for t in self.base.select_times(types) if t[0] not in touched]
        wanted = set(types)
        for tail in touched.values():
            out.extend(
                (m.case, m.seq, m.type, m.occurred_at) for m in tail.listed() if m.type in wanted
            )
        return out

    def select_regimes(self) -> dict[str, str]:
        out = self.base.select_regimes()
        for ref, tail in self.cases.items():
            if tail.row is not None:
                out[ref] = tail.row.regime
        return out

    def select_status_rows(self, stage: str | None, regime: str | None) -> list[StatusRow]:
        touched = self.cases
        rows = [r for r in self.base.select_status_rows(stage, regime) if r.case not in touched]
        for tail in touched.values():
            row = tail.row
            if row is None:
                continue
            if (stage is None or row.stage == stage) and (regime is None or row.regime == regime):
                rows.append(self._status_row(tail))
        return sorted(rows, key=lambda r: r.case)

    def select_clock_facts(self, case: str | None) -> list[StoredClocks]:
        touched = self.cases
        rows = [r for r in self.base.select_clock_facts(case) if r.case not in touched]
        for ref, tail in touched.items():
            row = tail.row
            if row is None or (case is not None and ref != case):
                continue
            rows.append(
                StoredClocks(
                    ref,
                    row.regime,
                    row.last_position,
                    row.last_recorded_at,
                    None,
                    None,
                    None,
                    None,
                    None,
                )
            )
        return sorted(rows, key=lambda r: r.case)

    def stale_clock_cases(self, fingerprint: str, case: str | None) -> list[str]:
        touched = self.cases
        out = [c for c in self.base.stale_clock_cases(fingerprint, case) if c not in touched]
        out.extend(
            ref
            for ref, tail in touched.items()
            if tail.row is not None and (case is None or ref == case)
        )
        return out

    def load_clock_inputs(
        self, cases: Sequence[str] | None, types: Sequence[str]
    ) -> tuple[list[ClockHead], list[Milestone]]:
        touched = self.cases
        if cases is None:
            heads, milestones = self.base.load_clock_inputs(None, types)
            heads = [h for h in heads if h.case not in touched]
            milestones = [m for m in milestones if m.case not in touched]
            chosen = list(touched)
        else:
            heads, milestones = self.base.load_clock_inputs(
                [c for c in cases if c not in touched], types
            )
            chosen = [c for c in cases if c in touched]
        wanted = set(types)
        for ref in chosen:
            tail = touched[ref]
            row = tail.row
            if row is None:
                continue
            heads.append(ClockHead(ref, row.regime, row.last_position, row.last_recorded_at))
            milestones.extend(m for m in tail.listed() if m.type in wanted)
        return heads, milestones


# --- the index ------------------------------------------------------------------------

Progress = Callable[[int, int], None]
"""Called after each batch with (entries applied so far, entries to apply in all)."""


class CaseIndex:
    """The cross-case index of one ledger's store.

    >>> index = CaseIndex(ledger)          # doctest: +SKIP
    >>> index.catch_up()                   # apply what was recorded since  # doctest: +SKIP
    >>> index.cases(stage="decided")       # doctest: +SKIP
    """

    def __init__(self, ledger: CaseLedger, *, batch_size: int = BATCH_SIZE) -> None:
        self.ledger = ledger
        self.batch_size = batch_size
        self.sealer = Sealer(ledger.ledger_mapper.cipher)
        self.backend, self.keeps = open_backend(ledger, self.sealer)
        """``keeps``: whether this user may write the index (the store's owner, a writer
        with the grants, or the indexer role); decided once, up front."""
        self._cache: dict[str, CaseSummary] = {}
        self._cache_at = -1
        self._complete = False
        """Whether the cache holds every indexed case (it was filled from position 0)."""
        self.clock_facts_kept = self.keeps
        """Whether derived clock facts are written back (never for a reader)."""
        self._overlay: TailOverlay | None = None

    @property
    def reads(self) -> IndexReads:
        """What answers are read from: the stored index, or for a reader the stored
        index with the tail beyond its tracked position folded in memory."""
        return self._overlay if self._overlay is not None else self.backend

    def require_keeper(self) -> None:
        """Refuse (exit 4) unless this user may write the index."""
        if not self.keeps:
            raise StoreUnavailable(
                "this user may only read the cross-case index of "
                f"{self.ledger.location.describe()}: it is kept by the store's owner or "
                "the indexer role (see docs/security.md, 'Who keeps the index'); queries "
                "still answer, folding what it has not applied yet in memory"
            )

    # --- keeping current --------------------------------------------------------------

    def position(self) -> int:
        """The last position of the store's log that the index has applied."""
        return self.reads.tracked_position()

    def catch_up(self, progress: Progress | None = None, *, batch_size: int | None = None) -> int:
        """Apply every entry recorded since the tracked position; return how many.

        Safe to run from several processes at once: each batch commits only if the
        tracked position is still the one it was computed from.
        """
        if not self.keeps:
            return self._fold_tail()
        size = batch_size or self.batch_size
        collecting = gc.isenabled()
        gc.disable()  # a batch makes many small objects, none of them cyclic
        try:
            return self._catch_up(size, progress)
        finally:
            if collecting:
                gc.enable()

    def _fold_tail(self) -> int:
        """For a user who may not write the index: fold the entries beyond the stored
        index's tracked position in memory (:class:`TailOverlay`), and return how many
        were folded now.  Nothing is written."""
        base = self.backend.tracked_position()
        overlay = self._overlay
        if overlay is None or overlay.base_position != base:
            overlay = TailOverlay(self.backend, base)
        records = list(self.ledger.iter_records(after=overlay.end))
        self._overlay = overlay
        if not records:
            return 0
        touched = {r["case"] for r in records}
        unknown = sorted(touched - overlay.cases.keys())
        if unknown:
            kept = self.backend.load_case_milestones(unknown)
            for case in unknown:
                found = kept.get(case, [])
                overlay.cases[case] = TailCase(found, new=not found)
        for record in records:
            tail = overlay.cases[record["case"]]
            row = milestone_row(record)
            tail.milestones[record["seq"]] = row
            if record["type"] == "EntryCorrected":
                target = tail.milestones.get(parse_ref(record["corrects"])[1])
                if target is not None:
                    _patch(target, record["changes"])
        for case in touched:
            tail = overlay.cases[case]
            values = CaseSummary.from_milestones(case, tail.listed()).values()
            tail.row = IndexRow.from_values(values)
            tail.stored = self._sealed_row(values)
        overlay.end = int(records[-1]["position"])
        return len(records)

    def _read(self, after: int, size: int) -> list[dict[str, Any]]:
        return list(itertools.islice(self.ledger.iter_records(after=after), size))

    def _catch_up(self, size: int, progress: Progress | None) -> int:
        applied = 0
        total = 0
        start = self.position()
        records = self._read(start, size)
        if not records:
            return 0
        # While one batch is folded and written, the next is read (in a thread: the
        # database drivers release the GIL while they wait).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="case-index") as reader:
            while records:
                if progress is not None and total == 0:
                    # Count the backlog only when there is more than one batch of it.
                    total = len(records)
                    if len(records) == size:
                        indexed = self.backend.count_milestones() if start else 0
                        total = max(total, self.ledger.count_events() - indexed)
                end = int(records[-1]["position"])
                ahead = reader.submit(self._read, end, size) if len(records) == size else None
                try:
                    ok = self._apply(start, records)
                except BaseException:
                    self._forget()
                    raise
                if ok:
                    applied += len(records)
                    if progress is not None:
                        progress(applied, max(total, applied))
                    start = end
                    records = ahead.result() if ahead is not None else []
                    if ahead is None:
                        # A short batch was the end of the log when it was read; look
                        # once more for entries recorded since.
                        records = self._read(start, size)
                else:
                    # Another process moved the index on: carry on from where it is.
                    self._forget()
                    if ahead is not None:
                        ahead.cancel()
                    start = self.position()
                    records = self._read(start, size)
        return applied

    def rebuild(self, progress: Progress | None = None) -> int:
        """Empty the index and apply the whole log again, from position zero, then derive
        every case's clock facts."""
        self.require_keeper()
        self.backend.reset()
        self._forget()
        applied = self.catch_up(progress, batch_size=max(self.batch_size, REBUILD_BATCH_SIZE))
        self.clock_facts(catch_up=False)
        return applied

    def _forget(self) -> None:
        self._cache = {}
        self._cache_at = -1
        self._complete = False

    def _apply(self, start: int, records: Sequence[dict[str, Any]]) -> bool:
        """Fold one batch into the touched cases' rows and write it in one transaction."""
        end = int(records[-1]["position"])
        if self._cache_at != start or len(self._cache) > CACHE_LIMIT:
            self._forget()
        if start == 0:
            self._complete = True  # every indexed case will be in the cache
        cache = self._cache
        summaries: dict[str, CaseSummary] = {}
        if not self._complete:
            unknown = sorted({r["case"] for r in records} - cache.keys())
            if unknown:
                for case, kept in self.backend.load_case_milestones(unknown).items():
                    summaries[case] = CaseSummary.from_milestones(case, kept)
        new: dict[tuple[str, int], list[Any]] = {}
        patches: dict[tuple[str, int], dict[str, Any]] = {}
        for record in records:
            case = record["case"]
            seq = record["seq"]
            kind = record["type"]
            occurred = record["occurred_at"]
            recorded = record["recorded_at"]
            position = record["position"]
            row = milestone_row(record)
            facts = row[9]
            new[(case, seq)] = row
            summary = summaries.get(case)
            if summary is None:
                summary = cache.get(case) or CaseSummary(case)
                summaries[case] = summary
            if kind == "EntryCorrected":
                changes = record["changes"]
                summary.add(seq, kind, occurred, recorded, position, facts, changes)
                target = (case, parse_ref(record["corrects"])[1])
                pending = new.get(target)
                if pending is not None:
                    _patch(pending, changes)
                else:
                    patches.setdefault(target, {}).update(changes)
            else:
                summary.add(seq, kind, occurred, recorded, position, facts)
        seal = self.sealer.seal_json
        changed = []
        if patches:
            stored = self.backend.load_milestone_rows(list(patches))
            for key, changes in patches.items():
                found = stored.get(key)
                if found is not None:
                    row = list(found.values())
                    row[9] = dict(found.facts)
                    _patch(row, changes)
                    changed.append((row[3], row[4], seal(row[9]), row[0], row[1]))
        rows = [self._sealed_row(s.values()) for s in summaries.values()]
        values = list(new.values())
        if self.sealer.cipher is None:
            dumps = orjson.dumps
            for row in values:
                row[9] = dumps(row[9]).decode()
        else:
            for row in values:
                row[9] = seal(row[9])
        ok = self.backend.write_batch(start, end, values, changed, rows)
        if ok:
            cache.update(summaries)
            self._cache = cache
            self._cache_at = end
        return ok

    def _sealed_row(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.sealer.cipher is None:
            return values
        row = list(values)
        row[_SUBJECT] = self.sealer.seal_text(row[_SUBJECT])
        row[_REQUESTS] = self.sealer.seal_json(orjson.loads(row[_REQUESTS]))
        return tuple(row)

    # --- reading ----------------------------------------------------------------------

    def cases(
        self,
        stage: str | None = None,
        regime: str | None = None,
        *,
        catch_up: bool = True,
    ) -> list[IndexRow]:
        """Every indexed case (optionally of one stage and/or regime), by reference.

        Catches up first, so what a user has just recorded is always there.
        """
        if stage is not None and stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        if catch_up:
            self.catch_up()
        return self.reads.select_rows(stage, regime, None)

    def row(self, case: str, *, catch_up: bool = True) -> IndexRow | None:
        """One case's row, or None if the case is not in the store."""
        if catch_up:
            self.catch_up()
        rows = self.reads.select_rows(None, None, case)
        return rows[0] if rows else None

    def milestones(
        self,
        case: str | None = None,
        types: Sequence[str] | None = None,
        *,
        catch_up: bool = True,
    ) -> list[Milestone]:
        """Milestone rows (of one case and/or of some entry types), by case then seq."""
        if catch_up:
            self.catch_up()
        return self.reads.select_milestones(case, types)

    def entry_times(
        self, types: Sequence[str], *, catch_up: bool = True
    ) -> list[tuple[str, int, str, str]]:
        """``(case, seq, type, occurred_at)`` of every entry of ``types`` (corrections
        applied), in no particular order: what ``delays`` measures, without the facts."""
        if catch_up:
            self.catch_up()
        return self.reads.select_times(types)

    def regimes(self, *, catch_up: bool = True) -> dict[str, str]:
        """Every indexed case's regime, by reference."""
        if catch_up:
            self.catch_up()
        return self.reads.select_regimes()

    def milestones_of(
        self, cases: Sequence[str], types: Sequence[str], *, catch_up: bool = True
    ) -> list[Milestone]:
        """The milestone rows of some cases and entry types, by case then seq."""
        if catch_up:
            self.catch_up()
        _, rows = self.reads.load_clock_inputs(cases, types)
        return sorted(rows, key=lambda m: (m.case, m.seq))

    def count_cases(self) -> int:
        """How many cases the index holds (without catching up)."""
        return self.reads.count_cases()

    # --- clocks ---------------------------------------------------------------------

    def clock_facts(
        self, case: str | None = None, *, catch_up: bool = True
    ) -> dict[str, CaseClockFacts]:
        """Every case's (or one case's) clock facts (:mod:`projections.index.clock_facts`), by
        reference, each consistent with the position it is labelled with: read from
        ``case_clocks`` where current, derived again from the milestones where not (and
        kept, unless the store may only be read)."""
        if catch_up:
            self.catch_up()
        derived = self.refresh_clock_facts(case)
        fingerprint = rules_fingerprint()
        out: dict[str, CaseClockFacts] = {}
        stale: list[str] = []
        for row in self.reads.select_clock_facts(case):
            if row.case in derived:
                out[row.case] = derived[row.case]
            elif (
                row.spans is None or row.facts_position != row.position or row.rules != fingerprint
            ):
                stale.append(row.case)  # the case moved on since the refresh
            else:
                out[row.case] = CaseClockFacts(
                    case=row.case,
                    regime=row.regime,
                    position=row.position,
                    last_recorded_at=row.last_recorded_at,
                    until=row.until,
                    spans=row.spans,
                    delays=row.delays,
                )
        if stale:
            out.update(self._derive_clock_facts(stale))
        return out

    def refresh_clock_facts(self, case: str | None = None) -> dict[str, CaseClockFacts]:
        """Derive and keep the clock facts of every case (or of ``case``) whose kept
        facts are missing, older than its index row, or from other rule packs; return
        what was derived (nothing when every case was current)."""
        stale = self.reads.stale_clock_cases(rules_fingerprint(), case)
        if not stale:
            return {}
        everything = case is None and len(stale) == self.reads.count_cases()
        return self._derive_clock_facts(None if everything else stale)

    def _derive_clock_facts(self, cases: Sequence[str] | None) -> dict[str, CaseClockFacts]:
        """Derive the clock facts of ``cases`` (None: every case) and keep them."""
        heads, milestones = self.reads.load_clock_inputs(cases, clock_event_types())
        grouped: dict[str, list[Milestone]] = {}
        for milestone in milestones:
            grouped.setdefault(milestone.case, []).append(milestone)
        fingerprint = rules_fingerprint()
        out: dict[str, CaseClockFacts] = {}
        rows = []
        seal = self.sealer.seal_json
        for head in heads:
            kept = sorted(grouped.get(head.case, ()), key=lambda m: m.seq)
            facts = case_clock_facts(
                head.case,
                head.regime,
                [milestone_record(m) for m in kept],
                position=head.position,
                last_recorded_at=head.last_recorded_at,
            )
            out[head.case] = facts
            rows.append(
                (
                    head.case,
                    head.position,
                    head.last_recorded_at,
                    fingerprint,
                    facts.until,
                    facts.spans,
                    seal(facts.delays) if facts.delays is not None else None,
                )
            )
        if rows and self.clock_facts_kept:
            # Only a user who may keep the index (decided up front): a reader derives
            # the facts for its answer and the next query derives them again.
            self.backend.write_clock_facts(rows)
        return out

    def statuses(
        self,
        on: datetime,
        stage: str | None = None,
        regime: str | None = None,
    ) -> list[dict[str, Any]]:
        """``status`` of every case (filtered), answered from the index: each case's
        overdue clocks and next deadline come from the ``spans`` of its clock facts
        (:mod:`projections.index.clock_facts`), read with its row; a case whose facts do not
        hold for ``on`` (an entry dated after it) is computed from its milestones."""
        if stage is not None and stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        self.catch_up()
        covered = index_covers()
        derived = self.refresh_clock_facts() if covered else {}
        fingerprint = rules_fingerprint()
        day = on_day(on)
        moment = format_instant(on)
        answers: list[dict[str, Any] | None] = []
        opener = self.reads.opener
        left: dict[int, StatusRow] = {}
        for row in self.reads.select_status_rows(stage, regime):
            summary = None
            if not covered:
                left[len(answers)] = row
                answers.append(None)
                continue
            if (
                row.facts_position == row.last_position
                and row.rules == fingerprint
                and row.spans is not None
                and (row.until is None or row.until <= moment)
            ):
                summary = summary_from_spans(row.regime, row.spans, day)
            else:
                found = derived.get(row.case)
                if found is None or found.position != row.last_position or not found.holds(moment):
                    left[len(answers)] = row
                    answers.append(None)
                    continue
                summary = summary_from_facts(found, day)
            if summary is None:
                answers.append(row.status(opener))
            else:
                answers.append(row.status(opener, summary.overdue, summary.next_deadline))
        if left:
            if len(left) > len(answers) // 4:
                summaries = summaries_by_case(self.ledger, on, index=self)
            else:
                summaries = {}
                for row in left.values():
                    summaries.update(summaries_by_case(self.ledger, on, index=self, case=row.case))
            for at, row in left.items():
                summary = summaries.get(row.case) or summary_of(())
                answers[at] = row.status(opener, summary.overdue, summary.next_deadline)
        return [answer for answer in answers if answer is not None]


# --- clocks over every case (from the index's rows and clock facts) -----------------


def milestone_record(milestone: Milestone) -> dict[str, Any]:
    """An index milestone row as a record the rules can read (corrections applied)."""
    return {
        **milestone.facts,
        "type": milestone.type,
        "case": milestone.case,
        "seq": milestone.seq,
        "occurred_at": milestone.occurred_at,
        "recorded_at": milestone.recorded_at,
    }


def index_covers(packs: Iterable[RulePack] | None = None) -> bool:
    """Whether the index's milestone facts carry every field the packs' rules read.

    A rule pack is data: if an edited pack reads a field the index does not copy,
    callers of :func:`indexed_case_records` must fold the cases instead.
    """
    chosen = list(packs) if packs is not None else list(all_rule_packs().values())
    needed = [("CaseReferred", "regime")]
    for pack in chosen:
        for rule in pack.clocks:
            needed.extend(_match_fields(rule))
    return all(name in FACT_FIELDS.get(kind, ()) for kind, name in needed)


@dataclass(frozen=True, slots=True)
class CaseRecords:
    """One case's records for a cross-case query: corrected, as of T when asked."""

    case: str
    regime: str
    records: Sequence[Mapping[str, Any]]


def indexed_case_records(
    ledger: CaseLedger,
    types: Sequence[str],
    *,
    as_of: datetime | None = None,
    case: str | None = None,
    cases: Sequence[str] | None = None,
    index: CaseIndex | None = None,
    catch_up: bool = True,
) -> Iterator[CaseRecords]:
    """Every case's (or one ``case``'s, or some ``cases``') records of ``types`` from the
    index's milestone rows, by reference.

    Milestone rows carry the *current* corrections.  As of a past T, a case with a
    correction recorded after T is folded from its stored records instead (corrections
    are rare, so this stays cheap), and rows recorded after T are left out.
    """
    chosen_index = index if index is not None else CaseIndex(ledger)
    # Corrections are already applied to the rows; their own rows matter only to tell,
    # as of a past T, which cases had a correction recorded after T.
    extra = ("EntryCorrected",) if as_of is not None else ()
    wanted = tuple(dict.fromkeys(("CaseReferred", *types, *extra)))
    if cases is not None and case is None:
        rows = chosen_index.milestones_of(cases, wanted, catch_up=catch_up)
    else:
        rows = chosen_index.milestones(case, wanted, catch_up=catch_up)
    limit = format_instant(as_of) if as_of is not None else None
    grouped: dict[str, list[Milestone]] = {}
    for row in rows:
        grouped.setdefault(row.case, []).append(row)
    for ref in sorted(grouped):
        milestones = grouped[ref]
        milestones.sort(key=lambda m: m.seq)  # record order breaks same-moment ties
        if limit is not None:
            if any(m.type == "EntryCorrected" and m.recorded_at > limit for m in milestones):
                view = fold(ledger.case_records(ref), as_of_time=as_of)
                if view is not None:
                    records = [r for r in view_records(view) if r.get("type") in wanted]
                    yield CaseRecords(ref, view.regime, records)
                continue
            milestones = [m for m in milestones if m.recorded_at <= limit]
        kept = [milestone_record(m) for m in milestones if m.type != "EntryCorrected"]
        referral = next((r for r in kept if r["type"] == "CaseReferred"), None)
        if referral is None:
            continue
        yield CaseRecords(ref, str(referral.get("regime", "")), kept)


def folded_case_records(
    ledger: CaseLedger, *, as_of: datetime | None = None, case: str | None = None
) -> Iterator[CaseRecords]:
    """Every case's records by folding each case (when the index cannot answer)."""
    refs = [case] if case is not None else sorted(ledger.case_refs())
    for ref in refs:
        view = fold(ledger.case_records(ref), as_of_time=as_of)
        if view is not None:
            yield CaseRecords(ref, view.regime, view_records(view))


def all_clocks(
    ledger: CaseLedger,
    on: date | datetime,
    *,
    as_of: datetime | None = None,
    include_not_started: bool = False,
    index: CaseIndex | None = None,
    case: str | None = None,
) -> list[ClockState]:
    """``clocks`` over every case (or one, ``case``), from the cross-case index (see
    :func:`indexed_case_records`).

    Each case's clocks come from its clock facts kept in the index
    (:mod:`projections.index.clock_facts`) when they hold for ``on`` and ``as_of``; the other
    cases (an entry dated after ``on``, or recorded after ``as_of``) are computed from
    their milestone rows.  Falls back to folding every case only if the rule packs read a
    field the index does not keep.
    """
    if not index_covers():
        return _clocks_of(
            folded_case_records(ledger, as_of=as_of, case=case), on, include_not_started
        )

    chosen_index = index if index is not None else CaseIndex(ledger)
    moment, day = _on_moment(on)
    moment_text = format_instant(moment)
    as_of_text = format_instant(as_of) if as_of is not None else None
    facts = chosen_index.clock_facts(case)
    out: list[ClockState] = []
    left: list[str] = []
    for ref in sorted(facts):
        found = facts[ref]
        if found.holds(moment_text, as_of_text):
            out.extend(states_from_facts(found, day, include_not_started=include_not_started))
        else:
            left.append(ref)
    if left:
        computed = indexed_case_records(
            ledger,
            clock_event_types(),
            as_of=as_of,
            case=case,
            cases=None if len(left) > len(facts) // 4 else left,
            index=chosen_index,
            catch_up=False,
        )
        wanted = set(left)
        out.extend(_clocks_of((c for c in computed if c.case in wanted), on, include_not_started))
        out.sort(key=lambda s: s.case)  # by reference, each case's clocks in pack order
    return out


def _clocks_of(
    cases: Iterable[CaseRecords], on: date | datetime, include_not_started: bool
) -> list[ClockState]:
    out: list[ClockState] = []
    for item in cases:
        if item.regime not in REGIMES:
            continue
        out.extend(
            clock_states(
                item.case, item.regime, item.records, on, include_not_started=include_not_started
            )
        )
    return out


def summaries_by_case(
    ledger: CaseLedger,
    on: date | datetime,
    *,
    as_of: datetime | None = None,
    index: CaseIndex | None = None,
    case: str | None = None,
) -> dict[str, ClockSummary]:
    """:class:`ClockSummary` of every case (or one, ``case``), from the index in one pass,
    for ``status`` over every case.  Cases with no started clock are absent."""
    grouped: dict[str, list[ClockState]] = {}
    for state in all_clocks(ledger, on, as_of=as_of, index=index, case=case):
        grouped.setdefault(state.case, []).append(state)
    return {case: summary_of(states) for case, states in grouped.items()}
