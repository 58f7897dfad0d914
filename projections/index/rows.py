"""The index's tables as rows: their columns, the rows as written, and the row types
they are read back as (:class:`Milestone`, :class:`IndexRow`, :class:`StatusRow`,
:class:`StoredClocks`, ...), sealed columns opened (:mod:`projections.index.sealing`).

Three tables, next to the events (and the tracking table's row :data:`INDEX_NAME`):

``case_index``
    one row per case: regime, subject, stage, the key milestone times, the decision in
    force, the open information requests (JSON), how many entries, the last position
    (:data:`INDEX_COLUMNS`, read as :class:`IndexRow`).
``case_milestones``
    one row per entry: case, seq, type, ``occurred_at`` (corrected), ``occurred_day``
    (Europe/London), ``recorded_at``, position, actor, whether it was corrected, and a
    compact JSON ``facts`` of the fields other queries need without folding
    (:data:`FACT_FIELDS`; :data:`MILESTONE_COLUMNS`, read as :class:`Milestone`).
``case_clocks``
    one row per case: its clock facts (:mod:`projections.index.clock_facts`), labelled with
    the ``case_index`` position they were derived at (read as :class:`StoredClocks`).

Both recorders (:mod:`projections.index.sqlite`, :mod:`projections.index.postgres`) build
on this module, and it imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, NamedTuple

import orjson

from ledger.catalogue.registry import KINDS
from projections.assess.clocks import requests_on
from projections.fold.case_view import status_payload
from projections.index.sealing import Opener, Sealer, json_column

__all__ = [
    "FACT_FIELDS",
    "INDEX_COLUMNS",
    "INDEX_NAME",
    "INDEX_TABLES",
    "MILESTONE_COLUMNS",
    "MILESTONE_TIMES",
    "STATUS_COLUMNS",
    "ClockHead",
    "IndexRow",
    "IndexSnapshot",
    "Milestone",
    "MilestoneValues",
    "StatusRow",
    "StoredClocks",
    "clock_row",
    "home_area",
    "milestone_record",
    "sealed_index_row",
]

INDEX_NAME: Final = "case_index"
"""The key of the index's row in the tracking table."""

#: Per entry type, the fields copied into ``case_milestones.facts``.
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

INDEX_TABLES: Final = ("case_index", "case_milestones", "case_clocks")
"""The index's own tables (besides the tracking table)."""


def home_area(facts: Mapping[str, Any]) -> str:
    """The area a referral's facts name as responsible (``""`` when none), as every read
    of the referrals' areas gives it."""
    return str(facts.get("home_area") or "")


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
            json_column(values[9], opener),
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
        requests = json_column(values[at["open_requests"]], opener)
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

    @staticmethod
    def from_values(values: Sequence[Any], opener: Opener | None = None) -> StoredClocks:
        """A row as read back (``delays`` as JSON text or decoded, sealed or not)."""
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
            json_column(delays, opener) if delays is not None else None,
        )


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

    @staticmethod
    def without_clocks(stored: Sequence[Any]) -> StatusRow:
        """The status row of a ``case_index`` row as it would be stored (in
        :data:`INDEX_COLUMNS` order, sealed) that has no clock facts kept."""
        return StatusRow._make((*(stored[_AT[c]] for c in STATUS_COLUMNS), None, None, None, None))

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
            open_requests=json_column(self.open_requests, opener),
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


def clock_row(row: Sequence[Any], opener: Opener | None) -> tuple[Any, ...]:
    """A ``case_clocks`` row as read, ``delays`` opened."""
    delays = row[6]
    return (
        row[0],
        int(row[1]),
        row[2],
        row[3],
        row[4],
        row[5],
        json_column(delays, opener) if delays is not None else None,
    )


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


def sealed_index_row(sealer: Sealer, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A ``case_index`` row (:data:`INDEX_COLUMNS` order, ``open_requests`` as JSON text)
    as written: ``subject`` and ``open_requests`` sealed in an encrypted store."""
    if sealer.cipher is None:
        return values
    row = list(values)
    row[_SUBJECT] = sealer.seal_text(row[_SUBJECT])
    row[_REQUESTS] = sealer.seal_json(orjson.loads(row[_REQUESTS]))
    return tuple(row)
