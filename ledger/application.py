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
import dataclasses
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
from eventsourcing.utils import get_topic
from pydantic import ValidationError

from ledger.catalogue.models import (
    ASSIGNED_FIELDS,
    LONDON,
    MAX_LINE_BYTES,
    MAX_NESTING,
    MODELS_BY_TYPE,
    NAME_PATTERN,
    ROLES,
    SUBJECT_PATTERN,
    SUBJECT_RULE,
    TEXT_PATTERN,
    CaseReferred,
    Envelope,
    InputLine,
    normalise_occurred_at,
    text_problem,
)
from ledger.domain.case import Case, CaseSnapshot, case_id, corrects_referral
from ledger.domain.invariants import check_entry
from ledger.domain.personal_screen import Screen, ScreenRow, folded, hashed_strings, screen_rows
from ledger.domain.policy import (
    ACTION_OF_REGISTER_TYPE,
    Policy,
    check_approval,
    default_policy,
    default_policy_text,
    normalise_user_name,
    policy_from_text,
    policy_sha256,
    provenance_approval,
    refuse_client_policy,
)
from ledger.domain.register import REGISTER_TYPES, Enrolment, RegisterState, fold_register
from ledger.errors import (
    ConflictError,
    InputError,
    InputErrors,
    StoreUnavailable,
    UsageError,
    gathered,
)
from ledger.integrity.canonical import (
    GENESIS_HASH,
    canonical_json,
    commitment,
    event_hash,
    new_salt,
)
from ledger.store.sealing import (
    SealBroken,
    associated_data,
    new_case_key,
    seal,
    unseal,
    wrapping_key,
)
from ledger.store.sqlite import (
    APPLICATION_NAME,
    LedgerMapper,
    NoStore,
    OrjsonTranscoder,
    PersonalKey,
    PersonalRow,
    StoreLocation,
    check_sqlite_location,
    no_store,
    parse_store,
)

T = TypeVar("T")
Clock = Callable[[], datetime]
"""The ledger's own clock: returns an aware UTC datetime.  Injectable for tests only."""

MAX_ATTEMPTS = 8

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
KEY_CHECK = b"caseledger key check v1"
KEY_FILE_ENV = "CASELEDGER_KEY_FILE"
"""How many times a conflicting write is retried before exit code 3."""


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


@dataclass
class LineProblems:
    """Every problem found in a record's lines, and the line of each case's refused
    referral: a refused line changes nothing later lines are checked against, so lines
    of a case whose referral was refused say so rather than only "unknown case"."""

    found: list[InputError] = dataclasses.field(default_factory=list)
    refused_referrals: dict[str, int] = dataclasses.field(default_factory=dict)

    def copy(self) -> LineProblems:
        """The same problems, to add to afresh (a retried write checks every line again)."""
        return LineProblems(list(self.found), dict(self.refused_referrals))

    def invalid(self, exc: InputError, line: int, text: bytes) -> None:
        """A line that failed validation (noted as a refused referral if it is one)."""
        self.found.append(exc.at_line(line))
        referred = _referral_case(text)
        if referred is not None:
            self.refused_referrals.setdefault(referred, line)

    def refuse(self, item: ParsedLine, case: Case | None, exc: InputError) -> None:
        """A valid line that failed the checks against its case (``case``: its state
        before the line, None when it does not exist)."""
        ref = item.event.case
        if case is None and isinstance(item.event, CaseReferred):
            self.refused_referrals.setdefault(ref, item.line)
        elif case is None and exc.field == "case" and ref in self.refused_referrals:
            exc = InputError(
                f"case {ref} does not exist (its referral at line "
                f"{self.refused_referrals[ref]} was refused)",
                field="case",
            )
        self.found.append(exc.at_line(item.line))

    def raise_if_any(self) -> None:
        """Refuse the whole input, listing the problems in line order (up to a limit)."""
        if self.found:
            raise gathered(self.found)


def validate_lines(lines: Iterable[str | bytes]) -> tuple[list[ParsedLine], LineProblems]:
    """Every non-blank line validated against the catalogue: the valid ones, and the
    problems of all the others (validation goes on after a bad line)."""
    parsed: list[ParsedLine] = []
    problems = LineProblems()
    for number, raw in enumerate(lines, start=1):
        text = raw.encode() if isinstance(raw, str) else raw
        if not text.strip():
            continue
        try:
            parsed.append(ParsedLine(number, parse_line(text)))
        except InputError as exc:
            problems.invalid(exc, number, text)
    return parsed, problems


def _referral_case(text: bytes) -> str | None:
    """The case a line that failed validation would have opened, if it is a referral."""
    if len(text) > MAX_LINE_BYTES:
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and data.get("type") == "CaseReferred":
        case = data.get("case")
        return case if isinstance(case, str) else None
    return None


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
        create: bool = True,
    ) -> None:
        """Open the store; with ``create`` false (every query) a store that is not there
        yet is refused (exit 4) instead of created.  Whatever is at the location and is no
        caseledger store (a text file, another application's database) is refused
        either way, before the library would add its tables to it."""
        refuse_client_policy(dict(os.environ))
        self.location = location or parse_store(None)
        self.clock: Clock = clock or utc_now
        self._personal_reader_checked = False
        self._may_create = create
        full_env = {**self.location.env(), **cipher_env(key_file), **(env or {})}
        try:
            if self.location.kind == "postgres":
                # lazy: psycopg costs ~70 ms at start-up; SQLite stores never need it
                from ledger.store.postgres import creation_lock

                loc = self.location
                with creation_lock(
                    loc.host, loc.port, loc.dbname, loc.user, loc.password, loc.schema, create
                ) as present:
                    if not present and not create:
                        raise no_store(loc)
                    super().__init__(env=full_env)
                    self._check_encryption()
            else:
                check_sqlite_location(self.location, create=create)
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
        # lazy: psycopg costs ~70 ms at start-up; SQLite stores never need it
        from ledger.store.postgres import ReadablePostgresSnapshotRecorder

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
        if mode is None and not self._may_create:
            return  # a store another process is creating this moment: a query writes nothing
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
        parsed, problems = validate_lines(lines)
        problems.raise_if_any()
        return parsed

    def record_lines(self, lines: Iterable[str | bytes], recorder: Recorder) -> list[Receipt]:
        """``caseledger record``: validate every line, check every valid one against its
        case, and store all, or nothing and every problem found (line, field, reason)."""
        parsed, problems = validate_lines(lines)
        if not parsed:
            problems.raise_if_any()
            raise InputError("the input holds no entries")
        return self.record(parsed, recorder, problems)

    def record(
        self, parsed: list[ParsedLine], recorder: Recorder, earlier: LineProblems | None = None
    ) -> list[Receipt]:
        """Check and store validated lines in one transaction, retrying on conflict;
        with any problem (``earlier`` ones of validation, or a line's checks against its
        case) nothing is stored and every problem is reported."""
        # A command allocates many short-lived objects and no cycles worth collecting:
        # pausing the cyclic collector for its duration makes large records ~20% faster.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._record_retrying(parsed, recorder, earlier or LineProblems())
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

    def _record_retrying(
        self, parsed: list[ParsedLine], recorder: Recorder, earlier: LineProblems
    ) -> list[Receipt]:
        return retrying(
            lambda: self._record_once(parsed, recorder, earlier.copy()),
            f"another writer kept changing the same case(s); gave up after {MAX_ATTEMPTS} "
            "attempts. Nothing was written: run the command again.",
        )

    def _record_once(
        self, parsed: list[ParsedLine], recorder: Recorder, problems: LineProblems
    ) -> list[Receipt]:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return an aware datetime")
        recorded_at = format_recorded_at(now)
        command_id = str(uuid.uuid4())
        enrolment, register, genesis = self.authorise(recorder)
        policy = register.policy
        cases: dict[str, Case | None] = {}
        pending: dict[str, dict[int, dict[str, Any]]] = {}
        personal_rows: list[PersonalRow] = []
        entry_meta: dict[tuple[uuid.UUID, int], dict[str, Any]] = {}
        personal_keys: list[PersonalKey] = []
        screens: dict[str, Screen] = {}
        digests: list[ScreenRow] = []
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
                policy.check_entry(recorder.actor, recorder.role, event, regime, enrolment.agency)
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
            entry_meta[(case.id, seq)] = {
                **{name: entry[name] for name in ENVELOPE_META},
                "case": self.provenance_case(ref),
                "regime": case.regime,
                "agency": entry.get("agency"),
                **provenance_approval(entry, case.type_of),
            }
            receipts.append(Receipt(f"{ref}#{seq}", entry["hash"], stamp))
        problems.raise_if_any()
        self.save(
            *[c for c in cases.values() if c is not None],
            personal_rows=personal_rows,
            register_rows=self._encode_register(genesis),
            entry_meta=entry_meta,
            personal_keys=personal_keys,
            screen_rows=digests,
        )
        return receipts

    def _load_case(self, ref: str) -> Case | None:
        """The case's state to check the next entry against: from its latest snapshot
        when that snapshot matches the chain it claims to summarise, else replayed from
        every entry (a snapshot is a cache, never an authority)."""
        aggregate_id = case_id(ref)
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
        recorder: Any = self.recorder
        if self.location.kind == "postgres":
            row = recorder.select_provenance_head(aggregate_id, version)
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
        rows = self.recorder.select_chain_facts(aggregate_id, version)  # type: ignore[attr-defined]
        records = [decode(state) for _, state in rows]
        if not records or records[0]["seq"] != 1 or records[-1]["seq"] != version:
            return None
        regime = records[0]["regime"]
        for record in records:
            if record["type"] == "EntryCorrected" and corrects_referral(record):
                regime = record.get("changes", {}).get("regime", regime)
        return records[-1]["hash"], regime, records[-1]["recorded_at"]

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

    # --- the personal-data screen (issue 13 item 2; ledger/domain/personal_screen.py) -------

    def _refuse_personal_in_text(
        self,
        body: dict[str, Any],
        ref: str,
        new_case: bool,
        screens: dict[str, Screen],
        line: int,
    ) -> None:
        """Refuse (exit 2, the field named) an entry whose hashed text holds a personal
        value recorded for its case: the stored ones, those given earlier in this
        command and those this entry gives itself (``personal``, ``changes.personal``)."""
        screen = screens.get(ref)
        if screen is None:
            screen = screens[ref] = Screen() if new_case else self._case_screen(ref)
        given = body.get("personal")
        if isinstance(given, dict):
            screen.add_all(given)
        changes = body.get("changes")
        if body["type"] == "EntryCorrected" and isinstance(changes, dict):
            if isinstance(changes.get("personal"), dict):
                screen.add_all(changes["personal"])
        found = screen.hit_body(body)
        if found is not None:
            where, personal_field = found
            raise InputError(
                f"holds the personal value {personal_field} recorded for case {ref} "
                "(compared ignoring case, accents, spaces and punctuation, dates in every "
                "usual form); names and dates of birth go only in personal, never in the "
                'hashed record: refer to the child by a pseudonym such as "Child K"',
                field=where,
            ).at_line(line)
        if screen.ask_database:
            strings = list(hashed_strings(body))
            hits = self.recorder.screen_personal(  # type: ignore[attr-defined]
                self.personal_key(ref), [folded(text) for _, text in strings]
            )
            if hits:
                raise InputError(
                    f"holds a personal value recorded for case {ref} (the database's "
                    "screen found it; compared ignoring case, accents, spaces and "
                    "punctuation, dates in every usual form); names and dates of birth go "
                    "only in personal, never in the hashed record",
                    field=strings[min(hits)][0],
                ).at_line(line)

    def _case_screen(self, ref: str) -> Screen:
        """A screen of a case's stored personal values: opened here when this user can
        read them (SQLite; PostgreSQL with ``export-personal``), else one that asks the
        database, which keeps salted digests of them."""
        screen = Screen()
        if self.location.kind == "postgres" and not self._may_read_personal():
            screen.ask_database = True
            return screen
        for row in self.personal_data(ref):
            screen.add(row.field, orjson.loads(row.value))
        return screen

    def _may_read_personal(self) -> bool:
        """Whether the database gives this session user the personal-data keys."""
        if not hasattr(self, "_reads_personal"):
            try:
                self.recorder.check_personal_reader()  # type: ignore[attr-defined]
                self._reads_personal = True
            except StoreUnavailable:
                self._reads_personal = False
        return self._reads_personal

    def _keep_screen_digests(
        self, body: dict[str, Any], ref: str, seq: int, digests: list[ScreenRow]
    ) -> None:
        """On PostgreSQL, the salted digests of the personal values this entry gives, for
        the database's screen of later entries by writers who may not read them."""
        if self.location.kind != "postgres":
            return
        values = body.get("personal")
        changes = body.get("changes")
        if body["type"] == "EntryCorrected" and isinstance(changes, dict):
            values = changes.get("personal")
        if not isinstance(values, dict) or not values:
            return
        salt = new_salt()
        for key, value in values.items():
            digests.extend(screen_rows(self.personal_key(ref), seq, key, value, salt))

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

    def personal_key(self, ref: str) -> str:
        """How the personal-data table names a case: its reference, or in an encrypted
        store a keyed hash of it, so the table shows no case reference in clear."""
        cipher: Any = self.ledger_mapper.cipher
        if cipher is None:
            return ref
        return hmac.new(cipher.key, b"personal:" + ref.encode(), hashlib.sha256).hexdigest()

    def provenance_case(self, ref: str) -> str:
        """How the database's provenance rows name a case: its reference, or in an
        encrypted store its aggregate id (so no reference is kept there in clear)."""
        return str(case_id(ref)) if self.encrypted else ref

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
        (``users``, ``hold``, ``erase-personal``, ``checkpoint``, ``policy``); the check
        itself is made again when the action runs."""
        state = self.register_state()
        who = self.identity()
        enrolment = state.users.get(who)
        if enrolment is None and not state.initialised:
            return Recorder(who, "admin")  # the first user of a new store
        roles = sorted(enrolment.roles) if enrolment is not None else []
        allowed = [
            r for r in roles if r in state.policy.roles and action in state.policy.roles[r].actions
        ]
        return Recorder(who, allowed[0] if allowed else (roles or ["admin"])[0])

    @property
    def policy(self) -> Policy:
        """The store's policy: the one its register last recorded."""
        return self.register_state().policy

    def register_entries(self) -> list[dict[str, Any]]:
        """The administration register's entries, decoded, in ``seq`` order."""
        decode = self.ledger_mapper.decode_state
        rows = self.recorder.select_register()  # type: ignore[attr-defined]
        return [decode(state) for _, state in rows]

    def register_state(self) -> RegisterState:
        """Enrolments, holds, erasures, checkpoints and the policy as the register stands."""
        return fold_register(self.register_entries())

    def _register_entry(
        self, fields: dict[str, Any], recorder: Recorder, after: RegisterState
    ) -> dict[str, Any]:
        """A hashed register entry that follows ``after``'s head (not yet written)."""
        assert fields["type"] in REGISTER_TYPES
        entry = {
            **fields,
            "seq": after.seq + 1,
            "recorded_at": format_recorded_at(self.clock()),
            "actor": recorder.actor,
            "role": recorder.role,
            "prev_hash": after.head_hash,
        }
        entry["hash"] = event_hash(entry)
        return entry

    def _genesis(self, actor: str) -> list[dict[str, Any]]:
        """What a new store's first command writes with its own entries, in the same
        transaction: the shipped policy, recorded as the store's policy, and the first
        user enrolled as admin and business-unit (so a single user needs no set-up)."""
        first = Recorder(actor, "admin")
        text = default_policy_text()
        policy = self._register_entry(
            {
                "type": "PolicyChanged",
                "policy": default_policy().document(),
                "text": text,
                "sha256": policy_sha256(text),
                "reason": "the policy in force when the store was created",
            },
            first,
            RegisterState(),
        )
        enrolment = self._register_entry(
            {
                "type": "UserEnrolled",
                "user": actor,
                "roles": ["admin", "business-unit"],
                "reason": "the first user of the store",
            },
            first,
            fold_register([policy]),
        )
        return [policy, enrolment]

    def authorise(
        self, recorder: Recorder, state: RegisterState | None = None
    ) -> tuple[Enrolment, RegisterState, list[dict[str, Any]]]:
        """The recorder's enrolment, the register state it was checked against, and the
        entries a new store's first command must write with its own (none otherwise):
        nothing is written here, so a refused command leaves no trace."""
        state = state if state is not None else self.register_state()
        genesis: list[dict[str, Any]] = []
        if not state.initialised:
            genesis = self._genesis(recorder.actor)
            state = fold_register(genesis)
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
        return enrolment, state, genesis

    def check_action(self, recorder: Recorder, action: str) -> None:
        """Refuse, before any work, an administrative action the recorder may not run
        (the check is made again when the action's register entry is written)."""
        enrolment, state, _ = self.authorise(recorder)
        state.policy.check_action(recorder.actor, enrolment.roles, action)

    def _encode_register(self, entries: list[dict[str, Any]]) -> list[tuple[dict[str, Any], bytes]]:
        return [(e, self.ledger_mapper.encode_state(e)) for e in entries]

    def _append_register(
        self,
        fields: dict[str, Any],
        recorder: Recorder,
        erase_case: str | None = None,
        check: Callable[[RegisterState], None] | None = None,
    ) -> dict[str, Any]:
        """Check and append one hash-chained register entry (after a new store's first
        entries, in the same transaction), retrying if another writer won."""
        action = ACTION_OF_REGISTER_TYPE[fields["type"]]

        def append() -> dict[str, Any]:
            enrolment, state, genesis = self.authorise(recorder)
            policy = state.policy
            policy.check_action(recorder.actor, enrolment.roles, action)
            acting = recorder
            rules = policy.roles.get(recorder.role)
            if rules is None or action not in rules.actions:
                # the entry names the role that allows the action
                role = min(r for r in enrolment.roles if action in policy.roles[r].actions)
                acting = Recorder(recorder.actor, role)
            if check is not None:
                check(state)
            entry = self._register_entry(fields, acting, state)
            self.recorder.insert_register(  # type: ignore[attr-defined]
                self._encode_register([*genesis, entry]), erase_case
            )
            return entry

        return retrying(
            append, "the register kept changing under other writers; nothing was written"
        )

    def enrol(
        self, user: str, roles: list[str], recorder: Recorder, agency: str | None = None
    ) -> dict[str, Any]:
        """Enrol (or re-enrol, replacing the roles) a user; needs the admin role.  Names
        are normalised (NFC, no surrounding spaces) and refused when they could be
        mistaken for another enrolled user's; the last admin keeps the admin role."""
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise UsageError(f"roles must be some of {', '.join(ROLES)}", field="--role")
        if "agency" in roles and not agency:
            raise UsageError("a user with the agency role needs --agency NAME", field="--agency")
        name = normalise_user_name(user)
        fields: dict[str, Any] = {"type": "UserEnrolled", "user": name, "roles": sorted(set(roles))}
        if agency:
            fields["agency"] = agency

        def check(state: RegisterState) -> None:
            refuse_confusable(name, state)
            after = fold_register([])
            after.users = dict(state.users)
            after.recorded_policy = state.recorded_policy
            after.users[name] = Enrolment(name, frozenset(fields["roles"]), agency, "")
            if state.admins() and not after.admins():
                raise UsageError(
                    f"{name} is the last admin; enrol another admin before taking "
                    "the admin role away",
                    field="--role",
                )

        return self._append_register(fields, recorder, check=check)

    def remove_user(self, user: str, recorder: Recorder, reason: str) -> dict[str, Any]:
        """Remove a user from the register; needs the admin role."""

        def check(state: RegisterState) -> None:
            if user not in state.users:
                raise UsageError(f"{user} is not enrolled", field="NAME")
            if state.admins() == [user]:
                raise UsageError(
                    f"{user} is the last admin; enrol another admin first", field="NAME"
                )

        return self._append_register(
            {"type": "UserRemoved", "user": user, "reason": reason}, recorder, check=check
        )

    def set_policy(self, text: str, reason: str, recorder: Recorder, origin: str) -> dict[str, Any]:
        """Record a new policy for the store (its TOML text, hash and parsed form); needs
        a role the current policy allows ``policy``.  Refused when no enrolled user would
        still be an admin under it."""
        policy = policy_from_text(text, origin)
        if not reason.strip():
            raise UsageError("say why the policy changes", field="--reason")

        def check(state: RegisterState) -> None:
            after = fold_register([])
            after.users = dict(state.users)
            after.recorded_policy = policy
            if not after.admins():
                raise UsageError(
                    "under this policy no enrolled user could enrol users or change the "
                    "policy again; give the admin role the actions 'users' and 'policy'",
                    field="FILE",
                )

        return self._append_register(
            {
                "type": "PolicyChanged",
                "policy": policy.document(),
                "text": text,
                "sha256": policy_sha256(text),
                "reason": reason,
            },
            recorder,
            check=check,
        )

    def place_hold(self, case: str, reason: str, recorder: Recorder) -> dict[str, Any]:
        """A legal hold: the case's personal data cannot be erased until it is released."""
        self._require_case(case)

        def check(state: RegisterState) -> None:
            if case in state.holds:
                raise UsageError(f"case {case} is already on hold", field="CASE")

        return self._append_register(
            {"type": "LegalHoldPlaced", "case": case, "reason": reason}, recorder, check=check
        )

    def release_hold(self, case: str, reason: str, recorder: Recorder) -> dict[str, Any]:
        """Release a legal hold."""

        def check(state: RegisterState) -> None:
            if case not in state.holds:
                raise UsageError(f"case {case} is not on hold", field="CASE")

        return self._append_register(
            {"type": "LegalHoldReleased", "case": case, "reason": reason}, recorder, check=check
        )

    def erase_personal(self, case: str, reason: str, recorder: Recorder) -> dict[str, Any]:
        """Destroy a case's keys and delete its sealed values and salts, in the same
        transaction as the register entry recording who erased what and why; SQLite then
        truncates its WAL, PostgreSQL vacuums the tables (when the user owns them).

        The hashed entries keep their commitments, so every hash still verifies."""
        self._require_case(case)
        fields = self.personal_fields(case)

        def check(state: RegisterState) -> None:
            hold = state.holds.get(case)
            if hold is not None:
                raise InputError(
                    f"case {case} is under a legal hold ({hold['reason']}); release it first",
                    field="CASE",
                )
            if not fields:
                raise UsageError(f"case {case} holds no personal data to erase", field="CASE")

        return self._append_register(
            {"type": "PersonalDataErased", "case": case, "fields": fields, "reason": reason},
            recorder,
            erase_case=self.personal_key(case),
            check=check,
        )

    def record_checkpoint(self, checkpoint: dict[str, Any], recorder: Recorder) -> dict[str, Any]:
        """Keep a signed checkpoint in the register (it is also lodged elsewhere)."""
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
        provenance = self._provenance_rows()
        regimes: dict[str, Any] = {}  # each case's regime as its entries give it
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
            if provenance is not None:
                row = next(provenance, None)
                if row is not None and row["notification_id"] < position:
                    return VerifyResult(
                        False,
                        count,
                        len(heads),
                        f"{row['case_ref']}#{row['seq']}",
                        "the database appended this entry and the store no longer holds it: "
                        "it was deleted",
                    )
                if record["type"] == "CaseReferred":
                    regimes[ref] = record.get("regime")
                elif record["type"] == "EntryCorrected" and corrects_referral(record):
                    regimes[ref] = (record.get("changes") or {}).get("regime", regimes.get(ref))
                differs = self._provenance_differs(record, position, row, regimes.get(ref))
                if differs:
                    return VerifyResult(False, count, len(heads), label, differs)
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
        entries = len(register) if previous != GENESIS_HASH else 0
        lost = next(provenance, None) if provenance is not None else None
        if lost is not None:
            return VerifyResult(
                False,
                count,
                len(heads),
                f"{lost['case_ref']}#{lost['seq']}",
                "the database appended this entry and the store no longer holds it: it was deleted",
                entries,
            )
        problem = self._authority_differs(register) or self._snapshot_differs(list(heads))
        if problem is not None:
            return VerifyResult(False, count, len(heads), problem[0], problem[1], entries)
        return VerifyResult(True, count, len(heads), None, None, entries)

    def _provenance_rows(self) -> Iterator[dict[str, Any]] | None:
        """The database's provenance rows in global order (PostgreSQL only)."""
        if self.location.kind != "postgres":
            return None
        rows: Iterator[dict[str, Any]] = self.recorder.iter_provenance()  # type: ignore[attr-defined]
        return rows

    def _provenance_differs(
        self, record: dict[str, Any], position: int, row: dict[str, Any] | None, regime: Any
    ) -> str | None:
        """Why an entry disagrees with the database's record of who appended it (an entry
        the database's functions did not append has no provenance row), or None."""
        if row is None or row["notification_id"] != position:
            return (
                "the database has no provenance for this entry: it was not appended through "
                "the ledger's functions"
            )
        expected = {
            "case": self.provenance_case(record["case"]),
            "seq": record["seq"],
            "type": record["type"],
            "actor": record["actor"],
            "role": record["role"],
            "prev_hash": record["prev_hash"],
            "hash": record["hash"],
        }
        kept = {**{k: row[k] for k in expected if k != "case"}, "case": row["case_ref"]}
        for name, value in expected.items():
            if kept[name] != value:
                return (
                    f"the entry's {name} ({value}) differs from the database's provenance "
                    f"({kept[name]}): it was not recorded as it claims"
                )
        try:
            claimed = datetime.fromisoformat(str(record["recorded_at"]).replace("Z", "+00:00"))
        except ValueError:
            return "the entry's recorded_at is not a time the ledger writes"
        if row["recorded_at"] != claimed or format_recorded_at(claimed) != record["recorded_at"]:
            return "the entry's recorded_at differs from the database's provenance"
        if not self.encrypted and row.get("agency") != record.get("agency"):
            return "the entry's agency differs from the one the database checked"
        approver = row.get("approved_by")
        if approver is not None and approver != record.get(
            "approved_by", _changed_approver(record)
        ):
            return "the entry's approver differs from the one the database checked"
        if row.get("regime") != regime:
            return "the case's regime after this entry differs from the one the database kept"
        return None

    def _authority_differs(self, register: list[dict[str, Any]]) -> tuple[str, str] | None:
        """On PostgreSQL, whether the database's own enrolments and policy (by which it
        checks every write) agree with the verified register."""
        if self.location.kind != "postgres":
            return None
        kept = self.recorder.select_register_provenance()  # type: ignore[attr-defined]
        for entry, row in zip(register, kept, strict=False):
            claimed = {
                k: entry.get(k) for k in ("seq", "type", "actor", "role", "prev_hash", "hash")
            }
            if row != claimed:
                return (
                    f"register#{entry.get('seq')}",
                    "the register entry differs from what the database's register function "
                    "kept: it was not appended through the ledger's functions",
                )
        if len(kept) != len(register):
            return "register", "the database's register rows and the register's entries differ"
        users, policy = self.recorder.select_authority()  # type: ignore[attr-defined]
        state = fold_register(register)
        folded_users = {
            u: {"roles": sorted(e.roles), "agency": e.agency} for u, e in state.users.items()
        }
        if users != folded_users:
            return "register", "the database's enrolments differ from the register's"
        if state.recorded_policy is not None:
            folded = {
                role: {k: v for k, v in spec.items() if k != "description"}
                for role, spec in state.recorded_policy.document()["roles"].items()  # type: ignore[attr-defined]
            }
            if policy != folded:
                return "register", "the database's policy differs from the register's"
        return None

    def _snapshot_differs(self, refs: list[str]) -> tuple[str, str] | None:
        """Whether any case's snapshot differs from the state its chain gives at that
        entry (a snapshot is used only after a cheap check; this is the full one)."""
        if self.snapshots is None:
            return None
        for ref in refs:
            aggregate_id = case_id(ref)
            snapshots: dict[int, Any] = {
                s.originator_version: s for s in self.snapshots.get(aggregate_id)
            }
            if not snapshots:
                continue
            case: Any = None
            for event in self.events.get(aggregate_id, lte=max(snapshots)):
                case = event.mutate(case)  # type: ignore[attr-defined]
                snapshot = snapshots.get(case.version)
                if snapshot is None:
                    continue
                if snapshot.topic != CASE_TOPIC or set(snapshot.state) != SNAPSHOT_KEYS:
                    return (
                        f"{ref}#{case.version}",
                        "the case's snapshot at this entry is not a snapshot of a case",
                    )
                for name in SNAPSHOT_FIELDS:
                    if snapshot.state.get(name) != getattr(case, name, None):
                        return (
                            f"{ref}#{case.version}",
                            f"the case's snapshot at this entry differs from its chain ({name})",
                        )
            missing = set(snapshots) - set(range(1, (case.version if case else 0) + 1))
            if missing:
                return f"{ref}#{min(missing)}", "a snapshot claims an entry the chain lacks"
        return None


def _changed_approver(record: dict[str, Any]) -> Any:
    """The approver a correction writes (``changes.approved_by``), if any."""
    changes = record.get("changes")
    return changes.get("approved_by") if isinstance(changes, dict) else None


def _type_of(case: Case | None) -> Callable[[int], str | None]:
    """The type of a case's entry ``seq`` (none for a case not yet referred)."""
    return case.type_of if case is not None else (lambda _seq: None)


def refuse_confusable(name: str, state: RegisterState) -> None:
    """Refuse a new user name that could be mistaken for an enrolled user's (the same
    letters in another case, or look-alike characters such as Cyrillic "а" for "a",
    per Unicode's confusables list)."""
    from confusables import is_confusable

    for other in state.users:
        if other == name:
            continue
        if other.casefold() == name.casefold() or is_confusable(other, name):
            raise UsageError(
                f"{name!r} could be mistaken for the enrolled user {other!r}; choose a "
                "name that cannot",
                field="NAME",
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
    """Validate one JSON line against the catalogue; raise :class:`InputError` if bad.

    A line is refused before it is parsed when it is longer than
    :data:`~ledger.catalogue.models.MAX_LINE_BYTES`, and after when an object in it repeats a
    key (JSON parsers keep the last silently, so what was written and what is recorded
    would differ).
    """
    if len(text) > MAX_LINE_BYTES:
        raise InputError(
            f"the line is {len(text)} bytes; a line holds at most {MAX_LINE_BYTES} bytes "
            f"({MAX_LINE_BYTES // 1_048_576} MiB)"
        )
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError("each line must be one JSON object (an event)")
    _refuse_duplicate_keys(text, data)
    for name in ASSIGNED_FIELDS:
        if name in data:
            raise InputError(f"{name} is assigned by the ledger and cannot be given", field=name)
    kind = data.get("type")
    if kind is None:
        raise InputError("every event needs a type", field="type")
    if not isinstance(kind, str) or kind not in MODELS_BY_TYPE:
        raise InputError(
            f"{_shown(kind)} is not an event type; the types are {', '.join(MODELS_BY_TYPE)}",
            field="type",
        )
    try:
        return InputLine.validate_json(text)
    except ValidationError as exc:
        raise describe_validation(exc, kind) from None


class _Members(dict[str, Any]):
    """A parsed JSON object that remembers the keys it was given more than once."""

    repeated: tuple[str, ...] = ()


def _members(pairs: list[tuple[str, Any]]) -> _Members:
    obj = _Members(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        repeated: list[str] = []
        for key, _ in pairs:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        obj.repeated = tuple(repeated)
    return obj


def _refuse_duplicate_keys(text: bytes, data: dict[str, Any]) -> None:
    """Refuse a line in which any object, at any depth, repeats a key.

    Re-encoding what was parsed can only shorten a line (orjson writes no white space
    and the shortest escapes), and a repeated key is dropped from what was parsed; so a
    line that re-encodes to its own length has no repeated key, which is the case for
    every line a program writes compactly.  (Fractional numbers, which can re-encode
    longer, are refused anyway.)  Only the other lines are parsed again, keeping every
    key, to find the repeated one and where it is.
    """
    try:
        if len(orjson.dumps(data)) >= len(text.strip()):
            return
    except TypeError:
        raise InputError(
            f"objects and lists nest more than {MAX_NESTING} levels deep in this line"
        ) from None
    import json  # the standard parser, for its hook that sees every key

    try:
        pairs = json.loads(text, object_pairs_hook=_members)
    except (ValueError, RecursionError):
        return  # orjson accepted it; anything the standard parser refuses has no pairs
    found = _first_repeated(pairs, "")
    if found is not None:
        path, key = found
        raise InputError(
            f"the key {_shown(key)} is given more than once in one object; "
            "each field may appear only once",
            field=path or None,
        )


def _first_repeated(value: Any, path: str) -> tuple[str, str] | None:
    """The path of the first repeated key inside a value parsed by :func:`_members`."""
    if isinstance(value, _Members):
        if value.repeated:
            key = value.repeated[0]
            return (f"{path}.{key}" if path else key), key
        for key, item in value.items():
            found = _first_repeated(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_repeated(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _shown(value: Any) -> str:
    """A value quoted for a message: escaped (no control character reaches a terminal)
    and shortened."""
    shown = repr(value)
    return shown if len(shown) < 60 else shown[:57] + "...'"


def describe_validation(exc: ValidationError, kind: str) -> InputError:
    """Turn pydantic's errors into messages naming the field and the reason: one per
    field (an :class:`InputErrors` when several fields are wrong)."""
    problems: dict[str | None, InputError] = {}
    for error in exc.errors(include_url=False):
        problem = _describe_error(error, kind)
        problems.setdefault(problem.field, problem)
    found = list(problems.values())
    return found[0] if len(found) == 1 else InputErrors(found)


def _describe_error(error: Any, kind: str) -> InputError:
    """One of pydantic's errors as a message naming the field and the reason."""
    loc = [str(p) for p in error["loc"]]
    if loc and loc[0] == kind:
        loc = loc[1:]
    field = ".".join(loc) or None
    kind_article = f"an {kind}" if kind[0] in "AEIOU" else f"a {kind}"
    error_type = error["type"]
    given = error.get("input")
    context = error.get("ctx") or {}
    if error_type == "missing":
        reason = f"is required for {kind_article} entry"
    elif error_type == "extra_forbidden":
        reason = f"is not a field of {kind_article} entry"
    elif error_type == "string_pattern_mismatch" and context.get("pattern") == SUBJECT_PATTERN:
        return InputError(SUBJECT_RULE, field=field)
    elif error_type == "string_pattern_mismatch" and context.get("pattern") in (
        TEXT_PATTERN,
        NAME_PATTERN,
    ):
        assert isinstance(given, str)
        return InputError(
            text_problem(given, name=context.get("pattern") == NAME_PATTERN), field=field
        )
    elif error_type == "string_too_long":
        size = len(given) if isinstance(given, str) else "too many"
        return InputError(
            f"is {size} characters long; it may hold at most "
            f"{context.get('max_length')} characters",
            field=field,
        )
    elif error_type == "too_long":
        return InputError(
            f"holds {context.get('actual_length')} items; it may hold at most "
            f"{context.get('max_length')}",
            field=field,
        )
    else:
        message = error["msg"].replace("Input should be", "must be")
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if ": " in message and field is None and message.split(":", 1)[0].isidentifier():
            field, message = message.split(": ", 1)
        elif ": " in message and field is not None and message.startswith(field + "."):
            field, message = message.split(": ", 1)  # e.g. personal.name: ...
        reason = message
        if error_type not in ("model_type",) and isinstance(given, (str, int, bool)):
            reason = f"{reason} (given {_shown(given)})"
    return InputError(reason, field=field)


def open_store(
    store: str | None = None,
    *,
    create: bool = False,
    key_file: str | None = None,
    vacant_as_empty: bool = False,
    clock: Clock | None = None,
) -> CaseLedger:
    """Open the store at ``store`` (a file path, ``sqlite:///path`` or
    ``postgresql://user@host/db``; default ``CASELEDGER_STORE``, else ``caseledger.db``
    here), as the CLI's ``--store`` does.  Only with ``create`` is a store that is not
    there yet created (else :class:`~ledger.store.sqlite.NoStore`, exit 4); with
    ``vacant_as_empty`` a missing store reads as an empty one in memory (a dry run).
    ``key_file``: the AES key of an encrypted store (default ``CASELEDGER_KEY_FILE``).
    The facade's :func:`ledger.api.open_store`; defined here so that opening a store
    costs no more than the application (the CLI opens every store with it)."""
    try:
        return CaseLedger(parse_store(store), create=create, key_file=key_file, clock=clock)
    except NoStore:
        if not vacant_as_empty:
            raise
        return CaseLedger(StoreLocation(kind="sqlite", path=":memory:"), key_file=key_file)
