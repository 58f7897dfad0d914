"""The ledger's use cases on the write side: record entries, read them back, verify.

:class:`CaseLedger` is an ``eventsourcing`` application pinned to the name
``caseledger``.  Recording validates every line first, checks each against its case,
assigns the ledger's fields (``seq``, ``recorded_at``, ``actor``, ``role``,
``command_id``, ``prev_hash``, ``hash``), and saves all the affected cases in one
transaction, retrying when a concurrent writer got there first.
"""

from __future__ import annotations

import base64
import binascii
import gc
import getpass
import hashlib
import hmac
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, get_args

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
)
from pydantic import ValidationError

from .canonical import GENESIS_HASH, canonical_json, commitment, event_hash, new_salt
from .case import Case, CaseSnapshot, case_id
from .catalogue import (
    ASSIGNED_FIELDS,
    LONDON,
    MODELS_BY_TYPE,
    ROLES,
    Envelope,
    InputLine,
    normalise_occurred_at,
)
from .errors import ConflictError, InputError, InputErrors, StoreUnavailable, UsageError
from .invariants import check_entry
from .personal import (
    SealBroken,
    associated_data,
    new_case_key,
    seal,
    unseal,
    wrapping_key,
)
from .policy import Policy, load_policy
from .register import REGISTER_TYPES, Enrolment, RegisterState, fold_register
from .store import (
    APPLICATION_NAME,
    LedgerMapper,
    OrjsonTranscoder,
    PersonalKey,
    PersonalRow,
    StoreLocation,
    parse_store,
)

T = TypeVar("T")
Clock = Callable[[], datetime]
"""The ledger's own clock: returns an aware UTC datetime.  Injectable for tests only."""

MAX_ATTEMPTS = 8

#: Fields that must be given but may be null: kept in the stored body even when null.
REQUIRED_NULLABLE: dict[str, tuple[str, ...]] = {
    kind: tuple(
        name
        for name, info in model.model_fields.items()
        if info.is_required() and type(None) in get_args(info.annotation)
    )
    for kind, model in MODELS_BY_TYPE.items()
}
KEY_CHECK = b"caseledger key check v1"
KEY_FILE_ENV = "CASELEDGER_KEY_FILE"
"""How many times a conflicting write is retried before exit code 3."""
MAX_REPORTED_PROBLEMS = 20


def cipher_env(key_file: str | None) -> dict[str, str]:
    """The library's cipher settings for a key file (``CASELEDGER_KEY_FILE``)."""
    path = key_file or os.environ.get(KEY_FILE_ENV)
    if not path:
        return {}
    try:
        key = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreUnavailable(f"cannot read the key file {path}: {exc}") from None
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise StoreUnavailable(
            f"{path} is not a caseledger key (expected a base64 AES-256 key; "
            "make one with: caseledger keys new --out FILE)"
        )
    return {"CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": key}


def project_case(aggregate: Any, events: Iterable[Any]) -> Any:
    """Replay events onto a case, as the library's ``project_aggregate`` does but without
    its per-event ``isinstance`` check against a runtime Protocol (slow, and our events
    are always the case's own)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def retrying(write: Callable[[], T], gave_up: str) -> T:
    """Run a write, again while it loses races with other writers (with jitter); a
    refused write exits 4, and retries running out exit 3, both with nothing written."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return write()
        except PersistenceError as exc:
            if not is_conflict(exc):
                raise StoreUnavailable(
                    f"the store refused the write ({exc}); nothing was written"
                ) from None
            if attempt == MAX_ATTEMPTS:
                raise ConflictError(gave_up) from None
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


def is_conflict(exc: PersistenceError) -> bool:
    """Whether a failed write lost a race with another writer (worth retrying): a taken
    ``seq`` (the primary key), or a lock that timed out."""
    if isinstance(exc, IntegrityError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (OperationalError, InterfaceError)) and (
        "lock" in text or "deadlock" in text or "could not serialize" in text
    )


def utc_now() -> datetime:
    """The ledger's default clock."""
    return datetime.now(UTC)


def format_recorded_at(moment: datetime) -> str:
    """UTC with microseconds, e.g. ``2026-03-06T10:15:02.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Receipt:
    """What ``record`` reports for each stored entry."""

    ref: str
    hash: str
    recorded_at: str


@dataclass(frozen=True)
class Recorder:
    """Who records: the actor and the role stamped on each entry."""

    actor: str
    role: str = "business-unit"


@dataclass
class ParsedLine:
    """One validated input line, before it is checked against its case."""

    line: int
    event: Envelope


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-hashing the store's chains (cases, then the register)."""

    ok: bool
    events: int
    cases: int
    first_bad: str | None
    reason: str | None
    register_entries: int = 0


class CaseLedger(Application[uuid.UUID]):
    """The case ledger on one store (SQLite file or PostgreSQL database)."""

    name = APPLICATION_NAME
    snapshotting_intervals = {Case: 50}  # noqa: RUF012 - the library's class attribute
    snapshotting_projectors = {Case: project_case}  # noqa: RUF012
    snapshot_class = CaseSnapshot

    def __init__(
        self,
        location: StoreLocation | None = None,
        *,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
        key_file: str | None = None,
        policy_file: str | None = None,
    ) -> None:
        self.location = location or parse_store(None)
        self.clock: Clock = clock or utc_now
        self.policy: Policy = load_policy(policy_file or os.environ.get("CASELEDGER_POLICY"))
        self._personal_reader_checked = False
        full_env = {**self.location.env(), **cipher_env(key_file), **(env or {})}
        try:
            if self.location.kind == "postgres":
                from .pgstore import creation_lock

                loc = self.location
                with creation_lock(
                    loc.host, loc.port, loc.dbname, loc.user, loc.password, loc.schema
                ):
                    super().__init__(env=full_env)
                    self._check_encryption()
            else:
                super().__init__(env=full_env)
                self._check_encryption()
        except (PersistenceError, OSError) as exc:
            raise StoreUnavailable(
                f"cannot open the store ({self.location.describe()}): {exc}"
            ) from None
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise StoreUnavailable(
                    f"cannot reach the store ({self.location.describe()}): {exc}"
                ) from None
            raise

    def construct_env(self, name: str, env: Any = None) -> Any:
        # Only the ledger's own settings (and the library's cipher settings) are read
        # from the process environment, so stray variables cannot redirect the store.
        from eventsourcing.utils import Environment

        base = dict(env or {})
        base.setdefault("IS_SNAPSHOTTING_ENABLED", "y")
        return Environment(name, base)

    def construct_snapshot_store(self) -> Any:
        if self.location.kind != "postgres":
            return super().construct_snapshot_store()
        from .pgstore import ReadablePostgresSnapshotRecorder

        recorder = ReadablePostgresSnapshotRecorder(
            datastore=self.factory.datastore,  # type: ignore[attr-defined]
            events_table_name=f"{self.name.lower()}_snapshots",
        )
        recorder.create_table()
        return self.factory.event_store(mapper=self.mapper, recorder=recorder)

    def construct_mapper(self) -> LedgerMapper:
        return LedgerMapper(
            transcoder=OrjsonTranscoder(),
            cipher=self.factory.cipher(),
            compressor=self.factory.compressor(),
        )

    def _check_encryption(self) -> None:
        """A store is encrypted from creation or never; open it only with its key."""
        recorder: Any = self.recorder
        cipher = self.ledger_mapper.cipher
        mode = recorder.get_meta("encryption")
        if mode is None:
            if cipher is not None and self.count_events() > 0:
                raise StoreUnavailable(
                    "this store was created without encryption; unset CASELEDGER_KEY_FILE"
                )
            recorder.put_meta_if_absent("encryption", b"aes-gcm" if cipher else b"none")
            if cipher is not None:
                recorder.put_meta_if_absent("key_check", cipher.encrypt(KEY_CHECK))
            mode = recorder.get_meta("encryption")
        if mode == b"none" and cipher is not None:
            raise StoreUnavailable(
                "this store is not encrypted; unset CASELEDGER_KEY_FILE to open it"
            )
        if mode == b"aes-gcm":
            if cipher is None:
                raise StoreUnavailable(
                    "this store is encrypted: set CASELEDGER_KEY_FILE to its key file"
                )
            try:
                ok = cipher.decrypt(recorder.get_meta("key_check") or b"") == KEY_CHECK
            except Exception:
                ok = False
            if not ok:
                raise StoreUnavailable("the key in CASELEDGER_KEY_FILE is not this store's key")

    @property
    def encrypted(self) -> bool:
        """Whether entries and personal data are encrypted at rest."""
        return self.ledger_mapper.cipher is not None

    @property
    def ledger_mapper(self) -> LedgerMapper:
        """The mapper, typed."""
        assert isinstance(self.mapper, LedgerMapper)
        return self.mapper

    # --- recording --------------------------------------------------------------

    def parse_lines(self, lines: Iterable[str | bytes]) -> list[ParsedLine]:
        """Validate every line against the catalogue; report all bad lines, write nothing."""
        parsed: list[ParsedLine] = []
        problems: list[InputError] = []
        for number, raw in enumerate(lines, start=1):
            text = raw.encode() if isinstance(raw, str) else raw
            if not text.strip():
                continue
            try:
                parsed.append(ParsedLine(number, parse_line(text)))
            except InputError as exc:
                problems.append(exc.at_line(number))
                if len(problems) >= MAX_REPORTED_PROBLEMS:
                    break
        if problems:
            raise InputErrors(problems)
        return parsed

    def record_lines(self, lines: Iterable[str | bytes], recorder: Recorder) -> list[Receipt]:
        """``caseledger record``: validate every line, then store all or nothing."""
        parsed = self.parse_lines(lines)
        if not parsed:
            raise InputError("the input holds no entries")
        return self.record(parsed, recorder)

    def record(self, parsed: list[ParsedLine], recorder: Recorder) -> list[Receipt]:
        """Check and store validated lines in one transaction, retrying on conflict."""
        # A command allocates many short-lived objects and no cycles worth collecting:
        # pausing the cyclic collector for its duration makes large records ~20% faster.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._record_retrying(parsed, recorder)
        finally:
            if collecting:
                gc.enable()

    def _take_snapshots(self, processing_event: Any) -> None:
        """Snapshot each saved case whose entries crossed a multiple of the interval,
        from the aggregate in memory, all in one transaction (the library re-reads and
        re-projects each case and writes each snapshot in a transaction of its own)."""
        if self.snapshots is None:
            return
        interval = self.snapshotting_intervals[Case]
        first: dict[Any, int] = {}
        for event in processing_event.events:
            first.setdefault(event.originator_id, event.originator_version)
        taken = []
        for aggregate_id, aggregate in processing_event.aggregates.items():
            start = first.get(aggregate_id)
            if start is not None and aggregate.version // interval > (start - 1) // interval:
                taken.append(CaseSnapshot.take(aggregate))
        if taken:
            self.snapshots.put(taken)

    def _record_retrying(self, parsed: list[ParsedLine], recorder: Recorder) -> list[Receipt]:
        return retrying(
            lambda: self._record_once(parsed, recorder),
            f"another writer kept changing the same case(s); gave up after {MAX_ATTEMPTS} "
            "attempts. Nothing was written: run the command again.",
        )

    def _record_once(self, parsed: list[ParsedLine], recorder: Recorder) -> list[Receipt]:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return an aware datetime")
        recorded_at = format_recorded_at(now)
        command_id = str(uuid.uuid4())
        enrolment = self.authorise(recorder)
        cases: dict[str, Case | None] = {}
        pending: dict[str, dict[int, dict[str, Any]]] = {}
        personal_rows: list[PersonalRow] = []
        personal_keys: list[PersonalKey] = []
        receipts: list[Receipt] = []
        for item in parsed:
            event = item.event
            ref = event.case
            if ref not in cases:
                cases[ref] = self._load_case(ref)
                pending[ref] = {}
            case = cases[ref]
            occurred_at = event.occurred_at or now.astimezone(LONDON).isoformat(timespec="seconds")

            def load_body(seq: int, _ref: str = ref) -> dict[str, Any]:
                return pending[_ref].get(seq) or self.entry(_ref, seq)

            try:
                check_entry(case, event, occurred_at, now, load_body)
                regime = case.regime if case is not None else getattr(event, "regime", "")
                self.policy.check_entry(
                    recorder.actor, recorder.role, event, regime, enrolment.agency
                )
            except InputError as exc:
                raise exc.at_line(item.line) from None
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
            body = self._commit_personal(body, ref, seq, personal_rows, personal_keys)
            if body["type"] == "InformationRequested" and "request_id" not in body:
                body["request_id"] = _new_request_id(case, seq)
            entry = {
                **body,
                "seq": seq,
                "recorded_at": stamp,
                "actor": recorder.actor,
                "role": recorder.role,
                "command_id": command_id,
                "prev_hash": GENESIS_HASH if case is None else case.head_hash,
            }
            entry["hash"] = event_hash(entry)
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if case is None:
                case = Case.refer(entry, moment)
                cases[ref] = case
            else:
                case.record(entry, moment)
            pending[ref][seq] = entry
            receipts.append(Receipt(f"{ref}#{seq}", entry["hash"], stamp))
        self.save(
            *[c for c in cases.values() if c is not None],
            personal_rows=personal_rows,
            personal_keys=personal_keys,
        )
        return receipts

    def _load_case(self, ref: str) -> Case | None:
        try:
            case: Case = self.repository.get(case_id(ref), projector_func=project_case)
        except AggregateNotFoundError:
            return None
        assert isinstance(case, Case)
        return case

    def _commit_personal(
        self,
        body: dict[str, Any],
        ref: str,
        seq: int,
        rows: list[PersonalRow],
        keys: list[PersonalKey],
    ) -> dict[str, Any]:
        """Replace personal values by salted commitments; keep values and salts aside,
        sealed with a new key of this entry's own (AES-256-GCM), and the key in the key
        table (itself sealed by the store key when the store is encrypted).  A writer
        never needs to read a key, so recording needs no right to export personal data."""
        stored_ref = self.personal_key(ref)
        key: bytes | None = None

        def commit(values: dict[str, Any]) -> dict[str, str]:
            nonlocal key
            if key is None:
                key = new_case_key()
                keys.append(PersonalKey(stored_ref, seq, self._wrap_key(stored_ref, seq, key)))
            commitments = {}
            for field, value in values.items():
                salt = new_salt()
                commitments[field] = commitment(salt, value)
                raw = canonical_json(value)
                rows.append(
                    PersonalRow(
                        stored_ref,
                        seq,
                        field,
                        seal(key, raw, associated_data(stored_ref, seq, field, "value")),
                        seal(key, salt, associated_data(stored_ref, seq, field, "salt")),
                    )
                )
            return commitments

        if "personal" in body:
            body["personal"] = commit(body["personal"])
        changes = body.get("changes")
        if (
            body["type"] == "EntryCorrected"
            and isinstance(changes, dict)
            and isinstance(changes.get("personal"), dict)
        ):
            body["changes"] = {**changes, "personal": commit(changes["personal"])}
        return body

    def _wrap_key(self, stored_ref: str, seq: int, key: bytes) -> bytes:
        """A case key as stored: sealed by a key derived from the store key when the
        store is encrypted at rest, as it is otherwise."""
        cipher: Any = self.ledger_mapper.cipher
        if cipher is None:
            return key
        aad = associated_data(stored_ref, seq, "", "key")
        return seal(wrapping_key(cipher.key), key, aad)

    def _unwrap_key(self, stored_ref: str, seq: int, stored: bytes) -> bytes:
        cipher: Any = self.ledger_mapper.cipher
        if cipher is None:
            return stored
        return unseal(wrapping_key(cipher.key), stored, associated_data(stored_ref, seq, "", "key"))

    # --- reading ----------------------------------------------------------------

    def case_records(self, ref: str) -> list[dict[str, Any]]:
        """Every stored record of a case in ``seq`` order, each with its ``position``."""
        decode = self.ledger_mapper.decode_state
        out = []
        for position, state in self.recorder.select_case(case_id(ref)):  # type: ignore[attr-defined]
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
        for position, state in self.recorder.iter_states(after):  # type: ignore[attr-defined]
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

    def personal_data(self, ref: str) -> list[PersonalRow]:
        """The personal values and salts of a case, opened with the case's keys (for
        exports that include them).  A command that gives them to its user first calls
        :meth:`check_personal_export`; on PostgreSQL the database refuses keys to a user
        not allowed ``export-personal`` whatever the caller does.  Values whose key is
        gone (an erased case in a data backup) exit 4 rather than come back wrong."""
        stored_ref = self.personal_key(ref)
        rows: list[PersonalRow] = self.recorder.select_personal(stored_ref)  # type: ignore[attr-defined]
        if not rows:
            return []
        stored = self.recorder.select_personal_keys(stored_ref)  # type: ignore[attr-defined]
        opened = []
        for r in rows:
            if r.seq not in stored:
                raise StoreUnavailable(
                    f"the personal data of {ref}#{r.seq} has no key in this store: it was "
                    "erased, or this is a data backup restored without its key backup"
                )
            try:
                key = self._unwrap_key(stored_ref, r.seq, stored[r.seq])
                value = unseal(key, r.value, associated_data(stored_ref, r.seq, r.field, "value"))
                salt = unseal(key, r.salt, associated_data(stored_ref, r.seq, r.field, "salt"))
            except SealBroken as exc:
                raise StoreUnavailable(
                    f"the personal data of {ref}#{r.seq} ({r.field}) cannot be opened: {exc}"
                ) from None
            opened.append(PersonalRow(ref, r.seq, r.field, value, salt))
        return opened

    def case_keys(self, ref: str) -> dict[int, bytes]:
        """A case's keys, unwrapped, by entry ``seq`` (for tests and key audits); read
        as :meth:`personal_data` reads them."""
        stored_ref = self.personal_key(ref)
        stored = self.recorder.select_personal_keys(stored_ref)  # type: ignore[attr-defined]
        return {seq: self._unwrap_key(stored_ref, seq, key) for seq, key in stored.items()}

    def personal_fields(self, ref: str) -> list[str]:
        """``CASE#seq:field`` of every personal value kept for a case, without opening
        any (erasure lists them; it needs no right to read them)."""
        rows = self.recorder.select_personal(self.personal_key(ref))  # type: ignore[attr-defined]
        return sorted({f"{ref}#{r.seq}:{r.field}" for r in rows})

    def check_personal_export(self) -> None:
        """Refuse (exit 2) a user none of whose enrolled roles the policy allows
        ``export-personal``, then (exit 4) one the database refuses keys to; checked
        once per ledger, before an export writes anything."""
        if self._personal_reader_checked:
            return
        who = self.identity()
        enrolment = self.register_state().users.get(who)
        self.policy.check_action(
            who, enrolment.roles if enrolment else frozenset(), "export-personal"
        )
        self.recorder.check_personal_reader()  # type: ignore[attr-defined]
        self._personal_reader_checked = True

    def personal_readers(self, state: RegisterState) -> list[str]:
        """The users a register state enrols with a role the policy allows
        ``export-personal``: on PostgreSQL, the only session users the database gives
        keys to."""
        return sorted(
            user
            for user, enrolment in state.users.items()
            if any(
                "export-personal" in self.policy.roles[r].actions
                for r in enrolment.roles
                if r in self.policy.roles
            )
        )

    def personal_key(self, ref: str) -> str:
        """How the personal-data table names a case: its reference, or in an encrypted
        store a keyed hash of it, so the table shows no case reference in clear."""
        cipher: Any = self.ledger_mapper.cipher
        if cipher is None:
            return ref
        return hmac.new(cipher.key, b"personal:" + ref.encode(), hashlib.sha256).hexdigest()

    def count_events(self) -> int:
        """How many entries the store holds."""
        return int(self.recorder.count_events())  # type: ignore[attr-defined]

    # --- identity, the register and administration ---------------------------

    def identity(self) -> str:
        """Who is using the store: the OS user (SQLite) or the database session user."""
        if self.location.kind == "postgres":
            datastore: Any = self.recorder.datastore  # type: ignore[attr-defined]
            with datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute("SELECT session_user AS u")
                return str(curs.fetchone()["u"])
        return getpass.getuser()

    def recorder_for(self, role: str | None = None) -> Recorder:
        """The store identity, recording under ``role`` (default: its usual role)."""
        who = self.identity()
        if role is None:
            enrolment = self.register_state().users.get(who)
            roles = set() if enrolment is None else set(enrolment.roles)
            if not roles or "business-unit" in roles:
                role = "business-unit"
            else:
                role = sorted(roles - {"admin"} or roles)[0]
        if role not in ROLES:
            raise UsageError(
                f"{role!r} is not a role; roles are {', '.join(ROLES)}", field="--role"
            )
        return Recorder(who, role)

    def recorder_for_action(self, action: str) -> Recorder:
        """The store identity under one of its roles that the policy allows ``action``
        (``users``, ``hold``, ``erase-personal``, ``checkpoint``); the check itself is
        made again when the action runs."""
        enrolment = self.register_state().users.get(self.identity())
        roles = sorted(enrolment.roles) if enrolment is not None else []
        allowed = [r for r in roles if action in self.policy.roles[r].actions]
        return Recorder(self.identity(), allowed[0] if allowed else (roles or ["admin"])[0])

    def register_entries(self) -> list[dict[str, Any]]:
        """The administration register's entries, decoded, in ``seq`` order."""
        decode = self.ledger_mapper.decode_state
        rows = self.recorder.select_register()  # type: ignore[attr-defined]
        return [decode(state) for _, state in rows]

    def register_state(self) -> RegisterState:
        """Enrolments, holds, erasures and checkpoints as the register stands."""
        return fold_register(self.register_entries())

    def authorise(self, recorder: Recorder) -> Enrolment:
        """The recorder's enrolment.  The first writer to an empty register enrols
        itself as admin and business-unit, so a single user needs no set-up."""
        state = self.register_state()
        if not state.initialised:
            self._append_register(
                {
                    "type": "UserEnrolled",
                    "user": recorder.actor,
                    "roles": ["admin", "business-unit"],
                    "reason": "the first user of the store",
                },
                Recorder(recorder.actor, "admin"),
            )
            state = self.register_state()
        enrolment = state.users.get(recorder.actor)
        if enrolment is None:
            raise InputError(
                f"{recorder.actor} is not enrolled in this store; an admin can enrol them "
                f"with: caseledger users add {recorder.actor} --role ROLE",
                field="actor",
            )
        if recorder.role not in enrolment.roles:
            raise InputError(
                f"{recorder.actor} is enrolled as {', '.join(sorted(enrolment.roles))}, "
                f"not {recorder.role}; choose one of those with --role",
                field="role",
            )
        return enrolment

    def _administer(self, recorder: Recorder, action: str) -> None:
        enrolment = self.authorise(recorder)
        self.policy.check_action(recorder.actor, enrolment.roles, action)

    def _append_register(
        self, fields: dict[str, Any], recorder: Recorder, erase_case: str | None = None
    ) -> dict[str, Any]:
        """Append one hash-chained register entry, retrying if another writer won."""
        assert fields["type"] in REGISTER_TYPES

        def append() -> dict[str, Any]:
            state = self.register_state()
            entry = {
                **fields,
                "seq": state.seq + 1,
                "recorded_at": format_recorded_at(self.clock()),
                "actor": recorder.actor,
                "role": recorder.role,
                "prev_hash": state.head_hash,
            }
            entry["hash"] = event_hash(entry)
            readers = None
            if entry["type"] in ("UserEnrolled", "UserRemoved"):
                readers = self.personal_readers(fold_register([*self.register_entries(), entry]))
            self.recorder.insert_register(  # type: ignore[attr-defined]
                entry["seq"], self.ledger_mapper.encode_state(entry), erase_case, readers
            )
            return entry

        return retrying(
            append, "the register kept changing under other writers; nothing was written"
        )

    def enrol(
        self, user: str, roles: list[str], recorder: Recorder, agency: str | None = None
    ) -> dict[str, Any]:
        """Enrol (or re-enrol, replacing the roles) a user; needs the admin role."""
        self._administer(recorder, "users")
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise UsageError(f"roles must be some of {', '.join(ROLES)}", field="--role")
        if "agency" in roles and not agency:
            raise UsageError("a user with the agency role needs --agency NAME", field="--agency")
        if not user.strip():
            raise UsageError("the user name is empty", field="NAME")
        fields: dict[str, Any] = {"type": "UserEnrolled", "user": user, "roles": sorted(set(roles))}
        if agency:
            fields["agency"] = agency
        return self._append_register(fields, recorder)

    def remove_user(self, user: str, recorder: Recorder, reason: str) -> dict[str, Any]:
        """Remove a user from the register; needs the admin role."""
        self._administer(recorder, "users")
        state = self.register_state()
        if user not in state.users:
            raise UsageError(f"{user} is not enrolled", field="NAME")
        admins = [u for u, e in state.users.items() if "admin" in e.roles]
        if admins == [user]:
            raise UsageError(f"{user} is the last admin; enrol another admin first", field="NAME")
        return self._append_register(
            {"type": "UserRemoved", "user": user, "reason": reason}, recorder
        )

    def place_hold(self, case: str, reason: str, recorder: Recorder) -> dict[str, Any]:
        """A legal hold: the case's personal data cannot be erased until it is released."""
        self._administer(recorder, "hold")
        self._require_case(case)
        if case in self.register_state().holds:
            raise UsageError(f"case {case} is already on hold", field="CASE")
        return self._append_register(
            {"type": "LegalHoldPlaced", "case": case, "reason": reason}, recorder
        )

    def release_hold(self, case: str, reason: str, recorder: Recorder) -> dict[str, Any]:
        """Release a legal hold."""
        self._administer(recorder, "hold")
        if case not in self.register_state().holds:
            raise UsageError(f"case {case} is not on hold", field="CASE")
        return self._append_register(
            {"type": "LegalHoldReleased", "case": case, "reason": reason}, recorder
        )

    def erase_personal(self, case: str, reason: str, recorder: Recorder) -> dict[str, Any]:
        """Destroy a case's keys and delete its sealed values and salts, in the same
        transaction as the register entry recording who erased what and why; SQLite then
        truncates its WAL, PostgreSQL vacuums the tables (when the user owns them).

        The hashed entries keep their commitments, so every hash still verifies."""
        self._administer(recorder, "erase-personal")
        self._require_case(case)
        hold = self.register_state().holds.get(case)
        if hold is not None:
            raise InputError(
                f"case {case} is under a legal hold ({hold['reason']}); release it first",
                field="CASE",
            )
        fields = self.personal_fields(case)
        if not fields:
            raise UsageError(f"case {case} holds no personal data to erase", field="CASE")
        return self._append_register(
            {"type": "PersonalDataErased", "case": case, "fields": fields, "reason": reason},
            recorder,
            erase_case=self.personal_key(case),
        )

    def record_checkpoint(self, checkpoint: dict[str, Any], recorder: Recorder) -> dict[str, Any]:
        """Keep a signed checkpoint in the register (it is also lodged elsewhere)."""
        self._administer(recorder, "checkpoint")
        return self._append_register({"type": "CheckpointSigned", **checkpoint}, recorder)

    def _require_case(self, case: str) -> None:
        if not self.has_case(case):
            raise UsageError(f"case {case} does not exist in this store", field="CASE")

    # --- integrity --------------------------------------------------------------

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyResult:
        """Re-hash every case's chain in global order; stop at the first bad entry."""
        heads: dict[str, tuple[int, str]] = {}
        count = 0
        decode = self.ledger_mapper.decode_state
        for position, state in self.recorder.iter_states(0):  # type: ignore[attr-defined]
            count += 1
            if progress is not None and count % 10_000 == 0:
                progress(count)
            try:
                record = decode(state)
                ref = record["case"]
                seq = record["seq"]
            except Exception as exc:
                return VerifyResult(
                    False,
                    count,
                    len(heads),
                    f"position {position}",
                    f"the stored entry cannot be read: {exc}",
                )
            label = f"{ref}#{seq}"
            last_seq, last_hash = heads.get(ref, (0, GENESIS_HASH))
            if seq != last_seq + 1:
                return VerifyResult(
                    False,
                    count,
                    len(heads),
                    label,
                    f"expected {ref}#{last_seq + 1} next in the chain",
                )
            if record.get("prev_hash") != last_hash:
                return VerifyResult(
                    False,
                    count,
                    len(heads),
                    label,
                    "prev_hash does not match the previous entry's hash",
                )
            if record.get("hash") != event_hash(record):
                return VerifyResult(
                    False, count, len(heads), label, "the stored entry does not match its hash"
                )
            heads[ref] = (seq, record["hash"])
        previous = GENESIS_HASH
        register = self.register_entries()
        for seq, entry in enumerate(register, start=1):
            label = f"register#{entry.get('seq')}"
            if entry.get("seq") != seq or entry.get("prev_hash") != previous:
                return VerifyResult(
                    False, count, len(heads), label, "the register's chain is broken here"
                )
            if entry.get("hash") != event_hash(entry):
                return VerifyResult(
                    False, count, len(heads), label, "the register entry does not match its hash"
                )
            previous = entry["hash"]
        return VerifyResult(
            True, count, len(heads), None, None, seq if previous != GENESIS_HASH else 0
        )


def _new_request_id(case: Case | None, seq: int) -> str:
    taken = set(case.request_ids) if case is not None else set()
    candidate = f"R{seq}"
    suffix = 1
    while candidate in taken:
        suffix += 1
        candidate = f"R{seq}-{suffix}"
    return candidate


def parse_line(text: bytes) -> Envelope:
    """Validate one JSON line against the catalogue; raise :class:`InputError` if bad."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError("each line must be one JSON object (an event)")
    for name in ASSIGNED_FIELDS:
        if name in data:
            raise InputError(f"{name} is assigned by the ledger and cannot be given", field=name)
    kind = data.get("type")
    if kind is None:
        raise InputError("every event needs a type", field="type")
    if not isinstance(kind, str) or kind not in MODELS_BY_TYPE:
        raise InputError(
            f"{kind!r} is not an event type; the types are {', '.join(MODELS_BY_TYPE)}",
            field="type",
        )
    try:
        return InputLine.validate_json(text)
    except ValidationError as exc:
        raise describe_validation(exc, kind) from None


def describe_validation(exc: ValidationError, kind: str) -> InputError:
    """Turn pydantic's first error into a message naming the field and the reason."""
    error = exc.errors(include_url=False)[0]
    loc = [str(p) for p in error["loc"]]
    if loc and loc[0] == kind:
        loc = loc[1:]
    field = ".".join(loc) or None
    kind_article = f"an {kind}" if kind[0] in "AEIOU" else f"a {kind}"
    error_type = error["type"]
    if error_type == "missing":
        reason = f"is required for {kind_article} entry"
    elif error_type == "extra_forbidden":
        reason = f"is not a field of {kind_article} entry"
    else:
        message = error["msg"].replace("Input should be", "must be")
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if ": " in message and field is None and message.split(":", 1)[0].isidentifier():
            field, message = message.split(": ", 1)
        reason = message
        given = error.get("input")
        if error_type not in ("model_type",) and isinstance(given, (str, int, bool)):
            shown = repr(given) if len(repr(given)) < 60 else repr(given)[:57] + "...'"
            reason = f"{reason} (given {shown})"
    return InputError(reason, field=field)
