"""What is stored, read back: a case's entries, one entry, every entry in order, the
cases, the register and the policy it records; and a case's state to check a new entry
against, loaded from its latest snapshot only when that snapshot matches its chain."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from ledger.application.opening import LedgerStore
from ledger.application.writes import format_recorded_at
from ledger.domain.case import Case, CaseSnapshot, case_id, corrects_referral
from ledger.domain.policy import Policy
from ledger.domain.register import RegisterState, fold_register
from ledger.errors import UsageError
from ledger.store.locations import APPLICATION_NAME, parse_store
from ledger.store.sqlite import LedgerSQLiteRecorder

#: The case state a snapshot must repeat exactly (checked by ``verify``).
SNAPSHOT_FIELDS = (
    "ref",
    "regime",
    "incident_date",
    "closed",
    "types",
    "request_ids",
    "open_requests",
    "head_hash",
    "last_recorded_at",
)

#: The keys of a case snapshot's state (the aggregate's attributes), and its topic.
SNAPSHOT_KEYS = frozenset({"_created_on", "_modified_on", *SNAPSHOT_FIELDS})
CASE_TOPIC = get_topic(Case)


def project_case(aggregate: Any, events: Iterable[Any]) -> Any:
    """Replay events onto a case, as the library's ``project_aggregate`` does but without
    its per-event ``isinstance`` check against a runtime Protocol (slow, and our events
    are always the case's own)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class LedgerReads(LedgerStore):
    """Reads of the stored entries, cases and register."""

    def case_records(self, ref: str) -> list[dict[str, Any]]:
        """Every stored record of a case in ``seq`` order, each with its ``position``."""
        decode = self.ledger_mapper.decode_state
        out = []
        for position, state in self.ledger_recorder.select_case(case_id(ref)):
            record = decode(state)
            record["position"] = position
            out.append(record)
        return out

    def entry(self, ref: str, seq: int) -> dict[str, Any]:
        """One stored record (``CASE#seq``)."""
        stored = list(self.recorder.select_events(case_id(ref), gt=seq - 1, lte=seq))
        if not stored:
            raise UsageError(f"{ref}#{seq} does not exist", field="ref")
        record: dict[str, Any] = self.ledger_mapper.decode_state(stored[0].state)
        return record

    def iter_records(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Every stored record in global order after a position, each with ``position``."""
        decode = self.ledger_mapper.decode_state
        for position, state in self.ledger_recorder.iter_states(after):
            record = decode(state)
            record["position"] = position
            yield record

    def case_refs(self) -> list[str]:
        """The references of every case in the store, in the order they were opened."""
        decode = self.ledger_mapper.decode_state
        refs: list[str] = []
        start = 1
        while True:
            batch = self.recorder.select_notifications(
                start=start, limit=5000, topics=["CaseReferred"]
            )
            refs.extend(decode(n.state)["case"] for n in batch)
            if len(batch) < 5000:
                return refs
            start = batch[-1].id + 1

    def has_case(self, ref: str) -> bool:
        """Whether a case has been referred."""
        return bool(self.recorder.select_events(case_id(ref), lte=1))

    def provenance_case(self, ref: str) -> str:
        """How the database's provenance rows name a case: its reference, or in an
        encrypted store its aggregate id (so no reference is kept there in clear)."""
        return str(case_id(ref)) if self.encrypted else ref

    @property
    def policy(self) -> Policy:
        """The store's policy: the one its register last recorded."""
        return self.register_state().policy

    def register_entries(self) -> list[dict[str, Any]]:
        """The administration register's entries, decoded, in ``seq`` order."""
        decode = self.ledger_mapper.decode_state
        rows = self.ledger_recorder.select_register()
        return [decode(state) for _, state in rows]

    def register_state(self) -> RegisterState:
        """Enrolments, holds, erasures, checkpoints and the policy as the register stands."""
        return fold_register(self.register_entries())

    def _load_case(self, ref: str, *, narrowed: bool = False) -> Case | None:
        """The case's state to check the next entry against: from its latest snapshot
        when that snapshot matches the chain it claims to summarise, else replayed from
        every entry (a snapshot is a cache, never an authority).  ``narrowed`` says the
        writer's role sees only its own agency's part: on PostgreSQL the database then
        hides the rest of the case from them (:meth:`_narrowed_case`)."""
        aggregate_id = case_id(ref)
        if narrowed and self.location.kind == "postgres" and not self.encrypted:
            # lazy: PostgreSQL stores only (psycopg's roles module, ~1 ms, never on SQLite)
            from ledger.store.pgroles import narrowed_case

            given = narrowed_case(self.factory.datastore, aggregate_id)  # type: ignore[attr-defined]
            if given is not None:
                return self._narrowed_case(ref, *given)
        snapshot = self._trusted_snapshot(aggregate_id)
        try:
            if snapshot is None:
                events = self.events.get(aggregate_id)
                case = project_case(None, events)
                if case is None:
                    return None
            else:
                case = snapshot.mutate(None)
                case = project_case(case, self.events.get(aggregate_id, gt=case.version))
        except AggregateNotFoundError:
            return None
        assert isinstance(case, Case)
        return case

    def _narrowed_case(
        self,
        ref: str,
        rows: list[tuple[int, bytes, bool]],
        head: tuple[int, str, datetime, str] | None,
    ) -> Case | None:
        """The state a writer the database narrows to their agency checks their entry
        against, from the entries it lets them read (their agency's, the referral, the
        closing) and the case's head: their requests, replies and the case's regime,
        dates and closing are all in what they read; the types of the entries hidden
        from them are unknown (``""``).  Such a state is never snapshotted
        (``Recording._snapshot_crossed``).  None: the case is not theirs."""
        decode = self.ledger_mapper.decode_state
        records = [decode(state) for _, state, _ in rows]
        if head is None or not records or records[0].get("type") != "CaseReferred":
            return None
        seq, head_hash, recorded_at, regime = head
        shell = object.__new__(Case)  # the state only, as a snapshot holds it
        shell.open(records[0])
        for record in records[1:]:
            shell.apply_entry(record)
        types = [""] * seq
        for record in records:
            types[int(record["seq"]) - 1] = str(record["type"])
        state: dict[str, Any] = {name: getattr(shell, name) for name in SNAPSHOT_FIELDS}
        state.update(
            types=types,
            regime=regime,
            head_hash=head_hash,
            last_recorded_at=format_recorded_at(recorded_at),
            _created_on=datetime.fromisoformat(records[0]["recorded_at"].replace("Z", "+00:00")),
            _modified_on=recorded_at,
        )
        snapshot = CaseSnapshot(
            originator_id=case_id(ref),
            originator_version=seq,
            timestamp=recorded_at,
            topic=CASE_TOPIC,
            state=state,
        )
        case = snapshot.mutate(None)
        assert isinstance(case, Case)
        return case

    def _trusted_snapshot(self, aggregate_id: uuid.UUID) -> CaseSnapshot | None:
        """The case's latest snapshot if it is one the ledger could have taken of this
        chain: the case aggregate's topic, exactly the case state's keys, and the head
        hash, regime and recorded time of the entry it claims to follow (on PostgreSQL
        from the database's provenance row, on SQLite from the stored entries).  Anything
        else is a cache miss: the case is replayed from its entries."""
        if self.snapshots is None:
            return None
        try:
            found = list(self.snapshots.get(aggregate_id, desc=True, limit=1))
        except Exception:  # a snapshot that cannot even be decoded is a cache miss
            return None
        if not found:
            return None
        snapshot = found[0]
        if not isinstance(snapshot, CaseSnapshot) or snapshot.topic != CASE_TOPIC:
            return None
        state = snapshot.state
        version = snapshot.originator_version
        if set(state) != SNAPSHOT_KEYS or len(state.get("types", ())) != version:
            return None
        if self.location.kind == "postgres":
            row = self.authority_recorder.select_provenance_head(aggregate_id, version)
            expected = (
                None
                if row is None
                else (row["hash"], row["regime"], format_recorded_at(row["recorded_at"]))
            )
        else:
            expected = self._chain_facts_at(aggregate_id, version)
        claimed = (state.get("head_hash"), state.get("regime"), state.get("last_recorded_at"))
        if expected != claimed:
            return None
        return snapshot

    def _chain_facts_at(self, aggregate_id: uuid.UUID, version: int) -> tuple[str, str, str] | None:
        """``(hash, regime, recorded_at)`` of a case's chain at entry ``version``, from
        the entries."""
        decode = self.ledger_mapper.decode_state
        recorder = self.recorder
        assert isinstance(recorder, LedgerSQLiteRecorder)  # asked only of an SQLite store
        rows = recorder.select_chain_facts(aggregate_id, version)
        records = [decode(state) for _, state in rows]
        if not records or records[0]["seq"] != 1 or records[-1]["seq"] != version:
            return None
        regime = records[0]["regime"]
        for record in records:
            if record["type"] == "EntryCorrected" and corrects_referral(record):
                regime = record.get("changes", {}).get("regime", regime)
        return records[-1]["hash"], regime, records[-1]["recorded_at"]


class CaseReader(LedgerReads):
    """The ledger opened to read it back only, by :func:`open_reader`: the same store,
    tables, key check and reads as :class:`~ledger.application.CaseLedger`'s, without
    the write side's modules (checking lines, recording, verifying, the register's
    writes), which a cold read of one case (``caseledger why``) need not import."""

    name = APPLICATION_NAME  # the library names an application's tables after its class otherwise
    # the same snapshot store as the ledger's (nothing here reads or takes a snapshot)
    is_snapshotting_enabled = True
    snapshot_class = CaseSnapshot


def open_reader(store: str | None = None) -> CaseReader:
    """Open the store at ``store`` (as :func:`ledger.application.open_store` reads the
    location and its key) to read it: a store that is not there is refused (exit 4),
    never created."""
    return CaseReader(parse_store(store), create=False)
