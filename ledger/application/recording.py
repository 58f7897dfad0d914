"""Recording: every line validated, each valid one checked against its case (as it
stands with the earlier lines of the same command), the ledger's fields assigned and the
entry hashed, and every affected case saved in one transaction, retried when a
concurrent writer got there first."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sized
from datetime import datetime
from typing import Any, Literal, get_args

import orjson
from eventsourcing.persistence import StoredEvent

from ledger.application.lines import LineProblems, ParsedLine, validate_lines
from ledger.application.reading import CASE_TOPIC, SNAPSHOT_FIELDS
from ledger.application.register import RegisterOperations
from ledger.application.writes import (
    MAX_ATTEMPTS,
    PROGRESS_EVERY,
    Progress,
    Receipt,
    Recorder,
    format_recorded_at,
    retrying,
)
from ledger.catalogue.models import (
    LONDON,
    MODELS_BY_TYPE,
    EntryCorrected,
    Envelope,
    normalise_occurred_at,
)
from ledger.collection import without_cycle_collection
from ledger.domain.case import Case, CaseSnapshot, case_id, corrects_referral
from ledger.domain.invariants import check_entry
from ledger.domain.personal_screen import Screen, ScreenRow
from ledger.domain.policy import APPROVABLE, check_approval, provenance_approval
from ledger.errors import InputError
from ledger.integrity.canonical import GENESIS_HASH, sealed_record
from ledger.store.acting import acting_user
from ledger.store.recorder import ENVELOPE_KEYS
from ledger.store.sealing import PersonalKey, PersonalRow
from ledger.store.sqlite import LedgerSQLiteRecorder

#: The event types whose lines can need an approver (``check_approval``): the approvable
#: ones and corrections (of an approver); for every other line the check is skipped.
APPROVAL_TYPES: tuple[type[Envelope], ...] = (
    *(MODELS_BY_TYPE[kind] for kind in APPROVABLE),
    EntryCorrected,
)

#: A case is snapshotted each time its entries cross a multiple of this.
SNAPSHOT_INTERVAL = 50

#: An entry's fields the database checks and keeps as its provenance on PostgreSQL.
ENVELOPE_META = ENVELOPE_KEYS[:8]  # case, seq, type, actor, role, prev_hash, hash, recorded_at

#: Fields that must be given but may be null: kept in the stored body even when null.
REQUIRED_NULLABLE: dict[str, tuple[str, ...]] = {
    kind: tuple(
        name
        for name, info in model.model_fields.items()
        if info.is_required() and type(None) in get_args(info.annotation)
    )
    for kind, model in MODELS_BY_TYPE.items()
}


#: The most case heads a ledger keeps in memory: past this it starts again.
MOST_KEPT_HEADS = 10_000

HEAD_KEYS = frozenset(SNAPSHOT_FIELDS)


class Recording(RegisterOperations):
    """``caseledger record``: checking, chaining and storing entries."""

    def _load_case(self, ref: str, *, narrowed: bool = False) -> Case | None:
        """The case's state to check the next entry against: from its head (on SQLite
        the head row the last write kept, on PostgreSQL the state this process kept
        after its last write) when the stored chain agrees with it, else as
        :meth:`LedgerReads._load_case` loads it (a snapshot and a replay)."""
        if not (narrowed and self.location.kind == "postgres"):
            case = self._case_at_head(ref)
            if case is False:
                return None  # no entry of it is stored: a new case
            if case is not None:
                return case
        return super()._load_case(ref, narrowed=narrowed)

    def _case_at_head(self, ref: str) -> Case | Literal[False] | None:
        """The case from its head, if the stored chain agrees with the head; None
        otherwise (no head, or one the chain contradicts: the case is then loaded as
        before); False when (SQLite) the read of its head found no entry of the case
        at all, so that a new case costs one read, not three.  First the state this
        process kept after its own last write to the case, then (SQLite) the head row
        the last write of any process kept."""
        aggregate_id = case_id(ref)
        case = self._kept_case(aggregate_id)
        if case is not None or self.location.kind == "postgres":
            return case
        return self._head_row_case(ref, aggregate_id)

    def _kept_case(self, aggregate_id: uuid.UUID) -> Case | None:
        """The state this process kept after its last write to the case (its own fold),
        while the chain's last entry is still the one it followed: the same ``seq``,
        hash and recorded time (and, on PostgreSQL, regime), from the database's
        provenance on PostgreSQL, from the stored entry on SQLite."""
        user = acting_user() if self.location.kind == "postgres" else None
        kept = self._kept_heads().get((user, aggregate_id))
        if kept is None:
            return None
        version, state = kept
        claimed = (version, state["head_hash"], state["last_recorded_at"])
        if self.location.kind == "postgres":
            row = self.authority_recorder.select_provenance_last(aggregate_id)
            if row is None or row["regime"] != state["regime"]:
                return None
            found = (row["seq"], row["hash"], format_recorded_at(row["recorded_at"]))
        else:
            recorder = self.recorder
            assert isinstance(recorder, LedgerSQLiteRecorder)
            last = recorder.select_last_entry(aggregate_id)
            if last is None:
                return None
            record = self.ledger_mapper.decode_state(last[1])
            found = (last[0], record["hash"], record["recorded_at"])
        if found != claimed:
            return None
        fresh = {
            **state,
            "types": list(state["types"]),  # the write moves the case on, not what is kept
            "request_ids": list(state["request_ids"]),
            "open_requests": dict(state["open_requests"]),
        }
        return _case_from(aggregate_id, version, fresh)

    def _head_row_case(self, ref: str, aggregate_id: uuid.UUID) -> Case | Literal[False] | None:
        """The case from its SQLite head row, checked against the chain in the same
        read (the row is in the user's own file): its version is the chain's last
        ``seq``; its head hash and recorded time are that entry's; its reference, regime
        and incident date are the referral's as its corrections leave them; it is
        closed exactly when a ``CaseClosed`` entry is stored; and it names those
        entries' types at their ``seq``."""
        recorder = self.recorder
        if not isinstance(recorder, LedgerSQLiteRecorder):
            return None
        found = recorder.select_case_head(aggregate_id)
        if found is None or found is False:
            return found
        version, stored, facts = found
        decode = self.ledger_mapper.decode_state
        try:
            claimed = decode(stored)
            created = _head_agrees(ref, version, claimed, facts, decode)
        except Exception:  # a head row that cannot even be read is a miss
            return None
        if created is None:
            return None
        claimed["_created_on"] = created
        return _case_from(aggregate_id, version, claimed)

    def _kept_heads(self) -> dict[tuple[str | None, uuid.UUID], tuple[int, dict[str, Any]]]:
        """This ledger's kept case heads, by database role (on PostgreSQL; else None)
        and case: each its version and state (:func:`_head_state`, with
        ``_created_on``)."""
        kept: dict[tuple[str | None, uuid.UUID], tuple[int, dict[str, Any]]] | None
        kept = self.__dict__.get("_kept_heads_by_case")
        if kept is None:
            kept = self.__dict__.setdefault("_kept_heads_by_case", {})
        return kept

    def _keep_heads(self, saved: list[Case]) -> None:
        """After a committed write, keep each written case's state (a narrowed writer's
        state, which lacks the hidden types, is never kept); at most
        :data:`MOST_KEPT_HEADS`, then it starts again."""
        kept = self._kept_heads()
        user = acting_user() if self.location.kind == "postgres" else None
        if len(kept) + len(saved) > MOST_KEPT_HEADS:
            kept.clear()
        for case in saved[-MOST_KEPT_HEADS:]:
            if "" not in case.types:
                kept[(user, case.id)] = (
                    case.version,
                    {**_head_state(case), "_created_on": case.created_on},
                )

    def parse_lines(self, lines: Iterable[str | bytes]) -> list[ParsedLine]:
        """Validate every line against the catalogue; report all bad lines, write nothing."""
        parsed, problems = validate_lines(lines)
        problems.raise_if_any()
        return parsed

    def record_lines(
        self,
        lines: Iterable[str | bytes],
        recorder: Recorder,
        progress: Progress | None = None,
    ) -> list[Receipt]:
        """``caseledger record``: validate every line, check every valid one against its
        case, and store all, or nothing and every problem found (line, field, reason).
        ``progress`` follows the three phases: ``validating``, ``checking``, ``saving``."""
        read = lines if progress is None else _told(lines, progress)
        parsed, problems = validate_lines(read, later=True)  # validated as each is checked
        if not parsed:
            problems.raise_if_any()
            raise InputError("the input holds no entries")
        return self.record(parsed, recorder, problems, progress)

    def record(
        self,
        parsed: list[ParsedLine],
        recorder: Recorder,
        earlier: LineProblems | None = None,
        progress: Progress | None = None,
    ) -> list[Receipt]:
        """Check and store validated lines in one transaction, retrying on conflict;
        with any problem (``earlier`` ones of validation, or a line's checks against its
        case) nothing is stored and every problem is reported.  ``progress`` is told
        ``("checking", done, total)`` every :data:`PROGRESS_EVERY` lines, then
        ``("saving", 0, None)`` as the transaction starts and ``("saving", 1, 1)`` once
        it is committed."""
        # A command allocates many short-lived objects and no cycles worth collecting:
        # pausing the cyclic collector for its duration makes large records ~20% faster.
        with without_cycle_collection():
            return self._record_retrying(parsed, recorder, earlier or LineProblems(), progress)

    def _snapshot_crossed(self, saved: list[Case], starts: dict[Any, int]) -> None:
        """Snapshot each saved case whose entries crossed a multiple of
        :data:`SNAPSHOT_INTERVAL`, from the aggregate in memory, all in one transaction (the
        library's own snapshotting re-reads and re-projects each case and writes each
        snapshot in a transaction of its own); through the public snapshot store, so no
        protected method of the library is overridden."""
        if self.snapshots is None:
            return
        interval = SNAPSHOT_INTERVAL
        taken = [
            CaseSnapshot.take(case)
            for case in saved
            if case.version // interval > (starts[case.id] - 1) // interval
            and "" not in case.types  # a narrowed writer's state lacks the hidden types
        ]
        if taken:
            self.snapshots.put(taken)

    def _record_retrying(
        self,
        parsed: list[ParsedLine],
        recorder: Recorder,
        earlier: LineProblems,
        progress: Progress | None,
    ) -> list[Receipt]:
        return retrying(
            lambda: self._record_once(parsed, recorder, earlier.copy(), progress),
            f"another writer kept changing the same case(s); gave up after {MAX_ATTEMPTS} "
            "attempts. Nothing was written: run the command again.",
        )

    def _record_once(
        self,
        parsed: list[ParsedLine],
        recorder: Recorder,
        problems: LineProblems,
        progress: Progress | None,
    ) -> list[Receipt]:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return an aware datetime")
        recorded_at = format_recorded_at(now)
        command_id = str(uuid.uuid4())
        enrolment, register, genesis = self.authorise(recorder)
        policy = register.policy
        # a writer whose role sees only its agency's part (the database may hide the rest)
        narrowed = getattr(policy.roles.get(recorder.role), "sees", "all") != "all"
        on_postgres = self.location.kind == "postgres"
        mapper = self.ledger_mapper
        sealed = mapper.cipher is not None or mapper.compressor is not None
        cases: dict[str, Case | None] = {}
        starts: dict[str, int] = {}
        # The canonical bytes of each entry of this command, by case and seq: what the
        # checks of later lines read back (decoded when asked, rarely), kept as bytes so
        # that a large command does not hold a dict per entry until its commit.
        pending: dict[str, dict[int, bytes]] = {}
        rows: dict[str, list[StoredEvent]] = {}
        personal_rows: list[PersonalRow] = []
        entry_meta: dict[tuple[uuid.UUID, int], tuple[Any, ...]] = {}  # ENVELOPE_KEYS
        personal_keys: list[PersonalKey] = []
        personal_cases: dict[str, uuid.UUID] = {}  # how the personal rows name each case
        screens: dict[str, Screen] = {}
        digests: list[ScreenRow] = []
        receipts: list[Receipt] = []
        total = len(parsed)
        default_occurred = now.astimezone(LONDON).isoformat(timespec="seconds")
        for done, item in enumerate(parsed):
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress("checking", done, total)
            try:
                event = item.event  # a line read without validation is validated here
            except InputError as exc:
                assert item.text is not None  # only a line with its text is validated late
                problems.invalid(exc, item.line, item.text)
                continue
            ref = event.case
            if ref not in cases:
                loaded = cases[ref] = self._load_case(ref, narrowed=narrowed)
                starts[ref] = 1 if loaded is None else loaded.version + 1
                pending[ref] = {}
                rows[ref] = []
            case = cases[ref]
            occurred_at = event.occurred_at or default_occurred
            written = pending[ref]

            def load_body(seq: int, _ref: str = ref, _written: dict[int, bytes] = written) -> Any:
                found = _written.get(seq)
                return orjson.loads(found) if found is not None else self.entry(_ref, seq)

            try:
                check_entry(case, event, occurred_at, now, load_body)
                regime = case.regime if case is not None else getattr(event, "regime", "")
                policy.check_entry(recorder.actor, recorder.role, event, regime, enrolment.agency)
                if isinstance(event, APPROVAL_TYPES):  # none other can need an approver
                    event = check_approval(policy, register.users, event, regime, _type_of(case))
            except InputError as exc:
                problems.refuse(item, case, exc)  # later lines see the case without it
                continue
            seq = 1 if case is None else case.version + 1
            stamp = recorded_at
            if case is not None and case.last_recorded_at > stamp:
                stamp = case.last_recorded_at  # never before the case's previous entry
            body = event.model_dump(mode="json", exclude_none=True)
            for name in REQUIRED_NULLABLE.get(body["type"], ()):
                body.setdefault(name, None)  # e.g. PeerChallengeReceived.agrees: null
            body["occurred_at"] = occurred_at
            changes = body.get("changes")
            if isinstance(changes, dict) and isinstance(changes.get("occurred_at"), str):
                # stored as the envelope stores it: a date, or a datetime with an offset
                body["changes"] = {
                    **changes,
                    "occurred_at": normalise_occurred_at(changes["occurred_at"]),
                }
            try:
                self._refuse_personal_in_text(body, ref, case is None, screens, item.line)
            except InputError as exc:
                problems.refuse(item, case, exc)
                continue
            self._keep_screen_digests(body, ref, seq, digests)
            kept = len(personal_keys)
            body = self._commit_personal(body, ref, seq, personal_rows, personal_keys)
            if len(personal_keys) > kept:
                personal_cases[personal_keys[-1].case_ref] = case_id(ref)
            if body["type"] == "InformationRequested" and "request_id" not in body:
                body["request_id"] = _new_request_id(case, seq)
            body["seq"] = seq
            body["recorded_at"] = stamp
            body["actor"] = recorder.actor
            body["role"] = recorder.role
            body["command_id"] = command_id
            body["prev_hash"] = GENESIS_HASH if case is None else case.head_hash
            digest, canonical = sealed_record(body)
            entry = body
            entry["hash"] = digest
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if case is None:
                case = Case.refer(entry, moment)
                case.collect_events()  # stored below, as every other entry is
                cases[ref] = case
            else:
                # The case moves on without a library event object per entry: the entry
                # is stored below from its canonical bytes, and the case's state and
                # version change as the library's event would change them.
                case.apply_entry(entry)
                case.version = seq
                case.modified_on = moment
            written[seq] = canonical
            rows[ref].append(
                StoredEvent(
                    originator_id=case.id,
                    originator_version=seq,
                    topic=entry["type"],
                    state=mapper.seal_state(canonical) if sealed else canonical,
                )
            )
            if on_postgres:
                approval = provenance_approval(entry, case.type_of)
                entry_meta[(case.id, seq)] = (
                    self.provenance_case(ref),
                    *(entry[name] for name in ENVELOPE_META[1:]),
                    case.regime,
                    entry.get("agency"),
                    approval.get("approval"),
                    approval.get("approved_by"),
                )
            receipts.append(Receipt(f"{ref}#{seq}", digest, stamp, entry["type"], command_id))
            item.release()  # its row is built: the model goes (made again if retried)
        problems.raise_if_any()
        if progress is not None:
            progress("checking", total, total)
            progress("saving", 0, None)
        pending.clear()
        # One transaction, through the store's recorder as the library's save would
        # call it: the primary key (case, seq) refuses a lost race (retried above) and
        # the notification log numbers the rows in the order the library's save gave
        # them (case by case, in the order the cases first appear in the input).
        saved = [c for c in cases.values() if c is not None]
        heads = [] if on_postgres else _encoded_heads(saved, mapper.encode_state)
        self.recorder.insert_events(
            [row for case_rows in rows.values() for row in case_rows],
            personal_rows=personal_rows,
            register_rows=self._encode_register(genesis),
            entry_meta=entry_meta,
            personal_keys=personal_keys,
            personal_cases=personal_cases,
            screen_rows=digests,
            case_heads=heads,
        )
        del rows, heads
        self._keep_heads(saved)
        self._snapshot_crossed(saved, {c.id: starts[c.ref] for c in saved})
        if progress is not None:
            progress("saving", 1, 1)
        return receipts


def _head_state(case: Case) -> dict[str, Any]:
    """What a case's head keeps: the case state a snapshot keeps, but its times (given
    again by the chain it is checked against), as plain values (copies)."""
    state = {name: getattr(case, name) for name in SNAPSHOT_FIELDS}
    state["types"] = list(case.types)
    state["request_ids"] = list(case.request_ids)
    state["open_requests"] = dict(case.open_requests)
    return state


def _encoded_heads(
    saved: list[Case], encode: Callable[[Any], bytes]
) -> list[tuple[uuid.UUID, int, bytes]]:
    """The head rows of the written cases, as stored (a narrowed writer's state, which
    lacks the hidden types, is never kept)."""
    return [(c.id, c.version, encode(_head_state(c))) for c in saved if "" not in c.types]


def _head_agrees(
    ref: str,
    version: int,
    claimed: Any,
    facts: list[tuple[int, str, bytes]],
    decode: Callable[[bytes], Any],
) -> datetime | None:
    """When a head row's claims are what the chain's facts (``(seq, type, state)`` of
    the referral, the corrections, the closings and the last entry) say, the case's
    creation time (the referral's recorded time); None when any is not."""
    if not isinstance(claimed, dict) or set(claimed) != HEAD_KEYS or not facts:
        return None
    types = claimed["types"]
    if not isinstance(types, list) or len(types) != version:
        return None
    if facts[0][0] != 1 or facts[-1][0] != version:
        return None
    referral = decode(facts[0][2])
    last = referral if version == 1 else decode(facts[-1][2])
    regime, incident, closed = referral["regime"], referral["incident_date"], False
    for seq, topic, state in facts:
        if types[seq - 1] != topic:
            return None
        if topic == "CaseClosed":
            closed = True
        elif topic == "EntryCorrected":
            record = decode(state)
            if corrects_referral(record):
                changes = record.get("changes", {})
                regime = changes.get("regime", regime)
                incident = changes.get("incident_date", incident)
    expected = (ref, regime, incident, closed, last["hash"], last["recorded_at"])
    given = tuple(
        claimed[name]
        for name in ("ref", "regime", "incident_date", "closed", "head_hash", "last_recorded_at")
    )
    if given != expected or referral["type"] != "CaseReferred":
        return None
    return datetime.fromisoformat(referral["recorded_at"].replace("Z", "+00:00"))


def _case_from(aggregate_id: uuid.UUID, version: int, state: dict[str, Any]) -> Case:
    """The case at ``version`` from a head's state (with its ``_created_on``)."""
    modified = datetime.fromisoformat(state["last_recorded_at"].replace("Z", "+00:00"))
    snapshot = CaseSnapshot(
        originator_id=aggregate_id,
        originator_version=version,
        timestamp=modified,
        topic=CASE_TOPIC,
        state={**state, "_modified_on": modified},
    )
    case = snapshot.mutate(None)
    assert isinstance(case, Case)
    return case


def _told(lines: Iterable[str | bytes], progress: Progress) -> Iterator[str | bytes]:
    """``lines`` as they are read, telling ``progress`` ``("validating", done, total)``
    every :data:`PROGRESS_EVERY` lines (``total``: None when ``lines`` has no length)."""
    total = len(lines) if isinstance(lines, Sized) else None
    done = 0
    for done, line in enumerate(lines, start=1):
        if done % PROGRESS_EVERY == 0:
            progress("validating", done, total)
        yield line
    progress("validating", done, done)


def _type_of(case: Case | None) -> Callable[[int], str | None]:
    """The type of a case's entry ``seq`` (none for a case not yet referred)."""
    return case.type_of if case is not None else (lambda _seq: None)


def _new_request_id(case: Case | None, seq: int) -> str:
    taken = set(case.request_ids) if case is not None else set()
    candidate = f"R{seq}"
    suffix = 1
    while candidate in taken:
        suffix += 1
        candidate = f"R{seq}-{suffix}"
    return candidate
