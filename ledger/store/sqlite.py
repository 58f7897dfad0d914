"""Where the ledger lives: store URLs, the library's recorders extended with the
personal-data table, and the mapper that stores entries as canonical JSON.

Two stores, one behaviour: an SQLite file (the embedded default) and PostgreSQL through
``eventsourcing.postgres``.  Personal values and salts are written by the recorder in the
same transaction as the events, into a table of their own, so erasing them never touches
a hashed body; they are sealed with keys of their case's own, kept in a key table that
erasure empties for the case (see :mod:`ledger.store.sealing`).  The SQLite file is created
private (0600) and runs with ``secure_delete``, so freed cells are overwritten.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic

from ledger.domain.case import Case, CaseSnapshot, case_id
from ledger.errors import StoreUnavailable, UsageError
from ledger.integrity.canonical import canonical_json
from ledger.store.sealing import PersonalKey, PersonalRow

DEFAULT_STORE = "caseledger.db"
APPLICATION_NAME = "caseledger"
"""Pinned: PostgreSQL table names derive from it (``caseledger_events``)."""


# --- store URLs -------------------------------------------------------------------


@dataclass(frozen=True)
class StoreLocation:
    """A parsed ``--store`` value: an SQLite file or a PostgreSQL database."""

    kind: str  # "sqlite" | "postgres"
    path: str = ""
    host: str = ""
    port: str = "5432"
    dbname: str = ""
    user: str = ""
    password: str = ""
    schema: str = ""

    def describe(self) -> str:
        """A human name for messages, without any password."""
        if self.kind == "sqlite":
            return f"SQLite file {self.path}"
        schema = f" (schema {self.schema})" if self.schema else ""
        return f"PostgreSQL {self.user}@{self.host}:{self.port}/{self.dbname}{schema}"

    def env(self) -> dict[str, str]:
        """The library's environment for this store."""
        if self.kind == "sqlite":
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": self.path,
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": get_topic(LedgerSQLiteRecorder),
            }
        # lazy: psycopg costs ~70 ms at start-up; SQLite stores never need it
        from ledger.store.postgres import ReadableLedgerPostgresRecorder

        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": self.port,
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_LOCK_TIMEOUT": "30",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "APPLICATION_RECORDER_TOPIC": get_topic(ReadableLedgerPostgresRecorder),
        }


def parse_store(url: str | None) -> StoreLocation:
    """Parse ``--store`` / ``CASELEDGER_STORE`` per ``cli.md``."""
    url = url or os.environ.get("CASELEDGER_STORE") or DEFAULT_STORE
    if "\x00" in url:  # no file name or URL holds one; the OS would refuse it later
        raise UsageError(f"{url!r} cannot name a store: it holds a NUL character", field="store")
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlparse(url)
        query = parse_qs(parts.query)
        schema = (query.get("schema") or [os.environ.get("POSTGRES_SCHEMA", "")])[0]
        dbname = unquote(parts.path.lstrip("/"))
        if schema and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise UsageError(
                f"{schema!r} cannot be a schema name: use lower-case letters, digits and _ "
                "(PostgreSQL folds unquoted names to lower case)",
                field="schema",
            )
        if not parts.hostname or not dbname:
            raise UsageError(
                f"{url!r} is not a PostgreSQL URL of the form "
                "postgresql://user[:password]@host[:port]/dbname",
                field="store",
            )
        return StoreLocation(
            kind="postgres",
            host=parts.hostname,
            port=str(parts.port or 5432),
            dbname=dbname,
            user=unquote(parts.username or os.environ.get("PGUSER", "") or _os_user()),
            password=unquote(parts.password or os.environ.get("PGPASSWORD", "")),
            schema=schema,
        )
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
    elif "://" in url:
        raise UsageError(
            f"{url!r} is neither a file path, a sqlite:/// URL nor a postgresql:// URL",
            field="store",
        )
    else:
        path = url
    if not path:
        raise UsageError("the SQLite store needs a file path", field="store")
    if path.startswith("file:"):
        # An SQLite URI (e.g. file:/data/ledger.db?mode=ro), passed to SQLite as it is.
        file_part = unquote(urlparse(path).path)
        if not Path(file_part).parent.is_dir():
            raise StoreUnavailable(f"cannot open the SQLite store {path}: no such folder")
        return StoreLocation(kind="sqlite", path=path)
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise StoreUnavailable(
            f"cannot open the SQLite store {path}: folder {parent} does not exist"
        )
    return StoreLocation(kind="sqlite", path=str(Path(path).expanduser()))


# --- is there a caseledger store? ---------------------------------------------------

#: The tables only a caseledger SQLite store has (besides the library's ``stored_events``):
#: their presence is what makes a file a caseledger store.
SQLITE_MARKER_TABLES = frozenset({"stored_events", "ledger_meta", "ledger_register"})
SQLITE_MAGIC = b"SQLite format 3\x00"


class NoStore(StoreUnavailable):
    """No store is at the location yet (exit 4 for a query; a recording command would
    create one there)."""


def not_a_store(where: str, reason: str) -> StoreUnavailable:
    """The refusal for something that is there but is no caseledger store (exit 4)."""
    return StoreUnavailable(f"{where} is not a caseledger store ({reason}); it was left unchanged")


def no_store(location: StoreLocation) -> NoStore:
    """The refusal of a query where no store exists: only recording creates one."""
    where = location.path if location.kind == "sqlite" else location.describe()
    return NoStore(
        f"there is no caseledger store at {where}: nothing was created (only recording "
        "creates a store; check the store's location or CASELEDGER_STORE)",
        code="no-store",
        params={"where": where},
    )


def check_sqlite_location(location: StoreLocation, *, create: bool) -> None:
    """Refuse (exit 4) an SQLite location that holds no caseledger store, unless it is
    vacant and ``create`` is set (a recording command may create the store there).

    Checked before the library opens the file, which would create it and add its tables
    to whatever database it found.  Only the file's header and its list of tables are
    read, read-only: with ``immutable=1`` unless the file's ``-wal`` and ``-shm`` files
    are both there already (a live WAL database), so no side file is ever left behind.
    Vacant means a missing file, a zero-byte file or an SQLite database with no tables
    at all; a store is a database with the ledger's own tables (``ledger_meta`` and
    ``ledger_register`` beside the library's ``stored_events``)."""
    vacancy = _sqlite_vacancy(location)
    if vacancy is None or create:
        return
    if vacancy == "nothing":
        raise no_store(location)
    raise not_a_store(location.path, vacancy)


def _sqlite_vacancy(location: StoreLocation) -> str | None:
    """None when a caseledger store is at the location; what is there instead when a
    store may be created in it (``nothing``, ``an empty file``, ...); anything else
    raises."""
    path = sqlite_file(location.path)
    if path is None:
        return "nothing"  # in memory: nothing persists, nothing to protect
    shown = location.path
    if not path.exists():
        if path.is_symlink():
            raise not_a_store(shown, "a symbolic link to nothing")
        return "nothing"
    if path.is_dir():
        raise not_a_store(shown, "a folder")
    if not path.is_file():
        raise not_a_store(shown, "not a regular file")
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        raise StoreUnavailable(f"cannot read the SQLite store {shown}: {exc.strerror}") from None
    if not header:
        return "an empty file"
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise not_a_store(shown, "not an SQLite database")
    tables = _sqlite_tables(path, shown)
    if not tables:
        return "an SQLite database with no tables"
    if SQLITE_MARKER_TABLES <= tables:
        return None
    listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    raise not_a_store(shown, f"an SQLite database of something else, with tables {listed}")


def _sqlite_tables(path: Path, shown: str) -> set[str]:
    """The names of an SQLite file's tables, read without writing anything."""
    import sqlite3

    side = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    mode = "mode=ro" if all(p.exists() for p in side) else "immutable=1"
    uri = f"{path.resolve().as_uri()}?{mode}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise not_a_store(shown, f"SQLite cannot read it: {exc}") from None
    return {str(row[0]) for row in rows}


def _os_user() -> str:
    import getpass

    return getpass.getuser()


# --- mapper -----------------------------------------------------------------------


class OrjsonTranscoder(Transcoder):
    """Encodes stored state as canonical JSON through orjson."""

    def encode(self, obj: Any) -> bytes:
        # orjson returns its bytes in a buffer of at least 4 KiB whatever their length;
        # a command holds every new entry's state until it is stored, so keep an
        # exact-size copy (a 100,000-line record peaked at 1 GiB without it).
        return bytes(memoryview(canonical_json(obj)))

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


SNAPSHOT_TOPIC = get_topic(CaseSnapshot)


class LedgerMapper(Mapper[UUID]):
    """Stores each entry as the canonical JSON of its complete record (hash included).

    The stored topic is the catalogue's event type, so the store itself can be filtered
    by type; snapshots keep the library's topic.  The library's cipher and compressor
    apply as usual when configured.
    """

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if isinstance(domain_event, CaseSnapshot):
            state = dict(domain_event.state)
            for key in ("_created_on", "_modified_on"):
                state[key] = state[key].isoformat()
            payload = {
                "timestamp": domain_event.timestamp.isoformat(),
                "topic": domain_event.topic,
                "state": state,
            }
            topic = SNAPSHOT_TOPIC
        else:
            payload = domain_event.entry
            topic = payload["type"]
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic,
            state=self.encode_state(payload),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        data = self.decode_state(stored_event.state)
        if stored_event.topic == SNAPSHOT_TOPIC:
            state = data["state"]
            for key in ("_created_on", "_modified_on"):
                state[key] = datetime.fromisoformat(state[key])
            return CaseSnapshot(
                originator_id=UUID(str(stored_event.originator_id)),
                originator_version=stored_event.originator_version,
                timestamp=datetime.fromisoformat(data["timestamp"]),
                topic=data["topic"],
                state=state,
            )
        timestamp = datetime.fromisoformat(data["recorded_at"].replace("Z", "+00:00"))
        if stored_event.topic == "CaseReferred":
            return Case.Referred(  # type: ignore[call-arg]
                originator_id=UUID(str(stored_event.originator_id)),
                originator_version=stored_event.originator_version,
                timestamp=timestamp,
                originator_topic=get_topic(Case),
                entry=data,
            )
        return Case.Recorded(  # type: ignore[call-arg]
            originator_id=UUID(str(stored_event.originator_id)),
            originator_version=stored_event.originator_version,
            timestamp=timestamp,
            entry=data,
        )

    def encode_state(self, payload: Any) -> bytes:
        """Canonical JSON, then compressed and encrypted when configured."""
        state = self.transcoder.encode(payload)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return state

    def decode_state(self, state: bytes) -> Any:
        """The inverse of :meth:`encode_state`."""
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return self.transcoder.decode(state)


# --- SQLite recorder ----------------------------------------------------------------


def sqlite_file(db_name: str) -> Path | None:
    """The file an SQLite database name opens, or None for an in-memory database."""
    if not db_name or ":memory:" in db_name or "mode=memory" in db_name:
        return None
    if db_name.startswith("file:"):
        return Path(unquote(urlparse(db_name).path))
    return Path(db_name)


def create_private(path: Path) -> None:
    """Create the store file with mode 0600 (whatever the umask) if it does not exist;
    SQLite gives its -wal and -shm files the main file's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.fchmod(fd, 0o600)  # the umask can only narrow os.open's mode; be exact
    os.close(fd)


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, plus the personal-data and key tables and read
    queries; every connection runs with ``secure_delete`` on."""

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        path = sqlite_file(datastore.pool.db_name)
        if path is not None and "mode=ro" not in datastore.pool.db_name:
            create_private(path)
        pool = datastore.pool
        create = pool._create_connection

        def create_secure() -> Any:
            conn = create()
            # Freed cells and pages are overwritten with zeros, so a deleted key or
            # value leaves no copy in the file's free space (or in the WAL's frames).
            conn._sqlite_conn.execute("PRAGMA secure_delete=ON")
            return conn

        pool._create_connection = create_secure
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            "CREATE TABLE IF NOT EXISTS personal_keys ("
            "case_ref TEXT NOT NULL, seq INTEGER NOT NULL, key BLOB NOT NULL, "
            "PRIMARY KEY (case_ref, seq)) WITHOUT ROWID"
        )
        statements.append(
            "CREATE TABLE IF NOT EXISTS personal_data ("
            "case_ref TEXT NOT NULL, seq INTEGER NOT NULL, field TEXT NOT NULL, "
            "value BLOB NOT NULL, salt BLOB NOT NULL, "
            "PRIMARY KEY (case_ref, seq, field)) WITHOUT ROWID"
        )
        statements.append(
            "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)"
        )
        statements.append(
            "CREATE TABLE IF NOT EXISTS ledger_register "
            "(seq INTEGER PRIMARY KEY, state BLOB NOT NULL)"
        )
        return statements

    def get_meta(self, key: str) -> bytes | None:
        """A value of the store's metadata (e.g. the encryption key check)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT value FROM ledger_meta WHERE key=?", (key,))
            row = c.fetchone()
            return None if row is None else bytes(row[0])

    def put_meta_if_absent(self, key: str, value: bytes) -> None:
        """Set a metadata value once; a later call never overwrites it."""
        with self.datastore.transaction(commit=True) as c:
            c.execute("INSERT OR IGNORE INTO ledger_meta VALUES (?, ?)", (key, value))

    def select_register(self) -> list[tuple[int, bytes]]:
        """``(seq, state)`` of every register entry."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT seq, state FROM ledger_register ORDER BY seq")
            return [(row[0], bytes(row[1])) for row in c.fetchall()]

    def insert_register(
        self, entries: Sequence[tuple[dict[str, Any], bytes]], erase_case: str | None = None
    ) -> None:
        """Append register entries (each ``(entry, stored state)``) in one transaction;
        with ``erase_case``, delete that case's personal values and their keys in it too,
        then truncate the WAL so no frame keeps a copy.  A taken ``seq`` raises
        IntegrityError."""
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                "INSERT INTO ledger_register VALUES (?, ?)", [(e["seq"], s) for e, s in entries]
            )
            if erase_case is not None:
                c.execute("DELETE FROM personal_keys WHERE case_ref=?", (erase_case,))
                c.execute("DELETE FROM personal_data WHERE case_ref=?", (erase_case,))
        if erase_case is not None:
            self.truncate_wal()

    def truncate_wal(self, attempts: int = 50) -> bool:
        """Checkpoint the WAL into the file and truncate it to nothing, waiting (up to
        about five seconds) for readers in other processes; whether it was truncated."""
        for _ in range(attempts):
            with self.datastore.get_connection(commit=True) as conn:
                busy = conn._sqlite_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy is None or busy[0] == 0:
                return True
            time.sleep(0.1)
        return False

    def check_personal_reader(self) -> None:
        """On SQLite nothing below the ledger tells users apart: its own policy check,
        and the file's permissions, are the boundary."""

    def select_personal_keys(self, case_ref: str) -> dict[int, bytes]:
        """The stored keys of a case's personal values, by entry ``seq``."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT seq, key FROM personal_keys WHERE case_ref=?", (case_ref,))
            return {int(row[0]): bytes(row[1]) for row in c.fetchall()}

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        register: Sequence[tuple[dict[str, Any], bytes]] = kwargs.get("register_rows") or ()
        if register:  # a new store's first entries, written with the command's own
            c.executemany(
                "INSERT INTO ledger_register VALUES (?, ?)", [(e["seq"], s) for e, s in register]
            )
        ids = super()._insert_events(c, stored_events, **kwargs)
        rows: Sequence[PersonalRow] = kwargs.get("personal_rows") or ()
        if rows:
            c.executemany(
                "INSERT INTO personal_data VALUES (?,?,?,?,?)",
                [(r.case_ref, r.seq, r.field, r.value, r.salt) for r in rows],
            )
        keys: Sequence[PersonalKey] = kwargs.get("personal_keys") or ()
        if keys:
            c.executemany(
                "INSERT INTO personal_keys VALUES (?,?,?)",
                [(k.case_ref, k.seq, k.key) for k in keys],
            )
        return ids

    def select_case(self, originator_id: UUID) -> list[tuple[int, bytes]]:
        """``(position, state)`` of every entry of one case, in ``seq`` order."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT rowid, state FROM stored_events WHERE originator_id=? "
                "ORDER BY originator_version",
                (originator_id.hex,),
            )
            return [(row[0], row[1]) for row in c.fetchall()]

    def select_chain_facts(self, originator_id: UUID, version: int) -> list[tuple[int, bytes]]:
        """``(seq, state)`` of a case's referral, its entry ``version`` and the corrections
        up to it: what checking a snapshot against the chain needs."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT originator_version, state FROM stored_events WHERE originator_id=? "
                "AND (originator_version IN (1, ?) OR "
                "(topic='EntryCorrected' AND originator_version<=?)) ORDER BY originator_version",
                (originator_id.hex, version, version),
            )
            return [(row[0], row[1]) for row in c.fetchall()]

    def iter_states(self, after: int = 0, batch: int = 5000) -> Iterator[tuple[int, bytes]]:
        """``(position, state)`` of every entry in global order, after a position."""
        while True:
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    "SELECT rowid, state FROM stored_events WHERE rowid>? ORDER BY rowid LIMIT ?",
                    (after, batch),
                )
                rows = [(row[0], row[1]) for row in c.fetchall()]
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def select_personal(self, case_ref: str) -> list[PersonalRow]:
        """The personal values and salts kept for a case."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT case_ref, seq, field, value, salt FROM personal_data "
                "WHERE case_ref=? ORDER BY seq, field",
                (case_ref,),
            )
            return [PersonalRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4])) for r in c.fetchall()]

    def count_events(self) -> int:
        """How many entries the store holds."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT COUNT(*) FROM stored_events")
            return int(c.fetchone()[0])


__all__ = [
    "APPLICATION_NAME",
    "DEFAULT_STORE",
    "LedgerMapper",
    "LedgerSQLiteRecorder",
    "NoStore",
    "OrjsonTranscoder",
    "PersonalKey",
    "PersonalRow",
    "StoreLocation",
    "case_id",
    "check_sqlite_location",
    "no_store",
    "not_a_store",
    "parse_store",
]
