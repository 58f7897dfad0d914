"""Recording: every line validated, each valid one checked against its case (as it
stands with the earlier lines of the same command), the ledger's fields assigned and the
entry hashed, and every affected case saved in one transaction, retried when a
concurrent writer got there first."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Callable, Iterable, Iterator, Sized
from datetime import datetime
from typing import Any, get_args

import orjson
from eventsourcing.persistence import StoredEvent

from ledger.application.lines import LineProblems, ParsedLine, validate_lines
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
from ledger.domain.case import Case, CaseSnapshot, case_id
from ledger.domain.invariants import check_entry
from ledger.domain.personal_screen import Screen, ScreenRow
from ledger.domain.policy import APPROVABLE, check_approval, provenance_approval
from ledger.errors import InputError
from ledger.integrity.canonical import GENESIS_HASH, sealed_record
from ledger.store.sealing import PersonalKey, PersonalRow

#: The event types whose lines can need an approver (``check_approval``): the approvable
#: ones and corrections (of an approver); for every other line the check is skipped.
APPROVAL_TYPES: tuple[type[Envelope], ...] = (
    *(MODELS_BY_TYPE[kind] for kind in APPROVABLE),
    EntryCorrected,
)

#: A case is snapshotted each time its entries cross a multiple of this.
SNAPSHOT_INTERVAL = 50

#: An entry's fields the database checks and keeps as its provenance on PostgreSQL.
ENVELOPE_META = ("case", "seq", "type", "actor", "role", "prev_hash", "hash", "recorded_at")

#: Fields that must be given but may be null: kept in the stored body even when null.
REQUIRED_NULLABLE: dict[str, tuple[str, ...]] = {
    kind: tuple(
        name
        for name, info in model.model_fields.items()
        if info.is_required() and type(None) in get_args(info.annotation)
    )
    for kind, model in MODELS_BY_TYPE.items()
}


class Recording(RegisterOperations):
    """``caseledger record``: checking, chaining and storing entries."""

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
        parsed, problems = validate_lines(lines if progress is None else _told(lines, progress))
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
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._record_retrying(parsed, recorder, earlier or LineProblems(), progress)
        finally:
            if collecting:
                gc.enable()

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
        entry_meta: dict[tuple[uuid.UUID, int], dict[str, Any]] = {}
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
            event = item.event
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
                entry_meta[(case.id, seq)] = {
                    **{name: entry[name] for name in ENVELOPE_META},
                    "case": self.provenance_case(ref),
                    "regime": case.regime,
                    "agency": entry.get("agency"),
                    **provenance_approval(entry, case.type_of),
                }
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
        self.recorder.insert_events(
            [row for case_rows in rows.values() for row in case_rows],
            personal_rows=personal_rows,
            register_rows=self._encode_register(genesis),
            entry_meta=entry_meta,
            personal_keys=personal_keys,
            personal_cases=personal_cases,
            screen_rows=digests,
        )
        del rows
        saved = [c for c in cases.values() if c is not None]
        self._snapshot_crossed(saved, {c.id: starts[c.ref] for c in saved})
        if progress is not None:
            progress("saving", 1, 1)
        return receipts


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
