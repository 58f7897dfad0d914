"""The ledger's use cases on the write side: record entries, read them back, verify.

:class:`CaseLedger` is an ``eventsourcing`` application pinned to the name
``caseledger``.  Recording validates every line first, checks each against its case,
assigns the ledger's fields (``seq``, ``recorded_at``, ``actor``, ``role``,
``command_id``, ``prev_hash``, ``hash``), and saves all the affected cases in one
transaction, retrying when a concurrent writer got there first.
"""

from __future__ import annotations

import getpass
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
)
from .errors import ConflictError, InputError, InputErrors, StoreUnavailable, UsageError
from .invariants import check_entry
from .store import (
    APPLICATION_NAME,
    LedgerMapper,
    OrjsonTranscoder,
    PersonalRow,
    StoreLocation,
    parse_store,
)

Clock = Callable[[], datetime]
"""The ledger's own clock: returns an aware UTC datetime.  Injectable for tests only."""

MAX_ATTEMPTS = 8
"""How many times a conflicting write is retried before exit code 3."""
MAX_REPORTED_PROBLEMS = 20


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

    @classmethod
    def from_environment(cls, actor: str | None = None, role: str | None = None) -> Recorder:
        """``--actor``/``CASELEDGER_ACTOR`` or the OS user; role ``business-unit`` by default."""
        name = actor or os.environ.get("CASELEDGER_ACTOR") or getpass.getuser()
        chosen = role or os.environ.get("CASELEDGER_ROLE") or "business-unit"
        if chosen not in ROLES:
            raise UsageError(
                f"{chosen!r} is not a role; roles are {', '.join(ROLES)}", field="--role"
            )
        if not name.strip():
            raise UsageError("the actor name is empty", field="--actor")
        return cls(actor=name, role=chosen)


@dataclass
class ParsedLine:
    """One validated input line, before it is checked against its case."""

    line: int
    event: Envelope


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-hashing the store's chains."""

    ok: bool
    events: int
    cases: int
    first_bad: str | None
    reason: str | None


class CaseLedger(Application[uuid.UUID]):
    """The case ledger on one store (SQLite file or PostgreSQL database)."""

    name = APPLICATION_NAME
    snapshotting_intervals = {Case: 50}  # noqa: RUF012 - the library's class attribute
    snapshot_class = CaseSnapshot

    def __init__(
        self,
        location: StoreLocation | None = None,
        *,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.location = location or parse_store(None)
        self.clock: Clock = clock or utc_now
        full_env = {**self.location.env(), **(env or {})}
        try:
            if self.location.kind == "postgres" and self.location.schema:
                from .pgstore import ensure_schema

                loc = self.location
                ensure_schema(loc.host, loc.port, loc.dbname, loc.user, loc.password, loc.schema)
            super().__init__(env=full_env)
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
        for key in ("CIPHER_TOPIC", "CIPHER_KEY", "COMPRESSOR_TOPIC"):
            if key in os.environ and key not in base:
                base[key] = os.environ[key]
        base.setdefault("IS_SNAPSHOTTING_ENABLED", "y")
        return Environment(name, base)

    def construct_mapper(self) -> LedgerMapper:
        return LedgerMapper(
            transcoder=OrjsonTranscoder(),
            cipher=self.factory.cipher(),
            compressor=self.factory.compressor(),
        )

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
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self._record_once(parsed, recorder)
            except (IntegrityError, OperationalError, InterfaceError) as exc:
                if (
                    isinstance(exc, OperationalError)
                    and "locked" not in str(exc).lower()
                    and ("lock" not in str(exc).lower())
                ):
                    raise StoreUnavailable(f"the store failed while writing: {exc}") from None
                if attempt == MAX_ATTEMPTS:
                    raise ConflictError(
                        f"another writer kept changing the same case(s); gave up after "
                        f"{MAX_ATTEMPTS} attempts. Nothing was written: run the command again."
                    ) from None
                time.sleep(random.uniform(0.005, 0.05) * attempt)
        raise AssertionError("unreachable")

    def _record_once(self, parsed: list[ParsedLine], recorder: Recorder) -> list[Receipt]:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return an aware datetime")
        recorded_at = format_recorded_at(now)
        command_id = str(uuid.uuid4())
        cases: dict[str, Case | None] = {}
        pending: dict[str, dict[int, dict[str, Any]]] = {}
        personal_rows: list[PersonalRow] = []
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
            except InputError as exc:
                raise exc.at_line(item.line) from None
            seq = 1 if case is None else case.version + 1
            stamp = recorded_at
            if case is not None and case.last_recorded_at > stamp:
                stamp = case.last_recorded_at  # never before the case's previous entry
            body = event.model_dump(mode="json", exclude_none=True)
            body["occurred_at"] = occurred_at
            body = self._commit_personal(body, ref, seq, personal_rows)
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
        self.save(*[c for c in cases.values() if c is not None], personal_rows=personal_rows)
        return receipts

    def _load_case(self, ref: str) -> Case | None:
        try:
            case: Case = self.repository.get(case_id(ref))
        except AggregateNotFoundError:
            return None
        assert isinstance(case, Case)
        return case

    @staticmethod
    def _commit_personal(
        body: dict[str, Any], ref: str, seq: int, rows: list[PersonalRow]
    ) -> dict[str, Any]:
        """Replace personal values by salted commitments; keep values and salts aside."""

        def commit(values: dict[str, Any]) -> dict[str, str]:
            commitments = {}
            for field, value in values.items():
                salt = new_salt()
                commitments[field] = commitment(salt, value)
                rows.append(PersonalRow(ref, seq, field, canonical_json(value), salt))
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
        """The personal values and salts of a case (for exports that include them)."""
        rows: list[PersonalRow] = self.recorder.select_personal(ref)  # type: ignore[attr-defined]
        return rows

    def count_events(self) -> int:
        """How many entries the store holds."""
        return int(self.recorder.count_events())  # type: ignore[attr-defined]

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
        return VerifyResult(True, count, len(heads), None, None)


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
