"""The SQLite recorder: the library's, extended with the personal-data, key, metadata and
register tables, and the read queries the ledger makes.

Personal values and salts are written in the same transaction as the events, into a
table of their own, so erasing them never touches a hashed body; they are sealed with
keys of their case's own, kept in a key table that erasure empties for the case (see
:mod:`ledger.store.sealing`).  The file is created private (0600) and runs with
``secure_delete``, so freed cells are overwritten.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from ledger.store.sealing import PersonalKey, PersonalRow

if TYPE_CHECKING:
    from ledger.store.recorder import LedgerRecorder


#: Each case's head row: its version and the state its next entry is checked against,
#: written in the transaction of every write to the case (a cache the chain is checked
#: against before use, never an authority).
CREATE_CASE_HEADS = (
    "CREATE TABLE IF NOT EXISTS case_heads (originator_id TEXT PRIMARY KEY, "
    "version INTEGER NOT NULL, state BLOB NOT NULL) WITHOUT ROWID"
)


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

    def select_register(self, from_seq: int = 0) -> list[tuple[int, bytes]]:
        """``(seq, state)`` of every register entry from ``seq`` ``from_seq`` on."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT seq, state FROM ledger_register WHERE seq>=? ORDER BY seq", (from_seq,)
            )
            return [(row[0], bytes(row[1])) for row in c.fetchall()]

    def insert_register(
        self, entries: Sequence[tuple[dict[str, Any], bytes]], erase_case: str | None = None
    ) -> None:
        """Append register entries (each ``(entry, stored state)``) in one transaction;
        with ``erase_case``, delete that case's personal values and their keys in it too
        (:meth:`clear_erased` then truncates the WAL).  A taken ``seq`` raises
        IntegrityError."""
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                "INSERT INTO ledger_register VALUES (?, ?)", [(e["seq"], s) for e, s in entries]
            )
            if erase_case is not None:
                c.execute("DELETE FROM personal_keys WHERE case_ref=?", (erase_case,))
                c.execute("DELETE FROM personal_data WHERE case_ref=?", (erase_case,))

    #: How many times an erasure tries to truncate the WAL, each try waiting a tenth of a
    #: second for readers and a tenth more before the next: about five seconds in all.
    WAL_TRUNCATE_ATTEMPTS = 25

    def clear_erased(self) -> str | None:
        """Truncate the WAL so that no frame keeps a copy of the erased rows (the file's
        own pages are overwritten as they are freed: ``secure_delete``)."""
        if self.truncate_wal():
            return None
        seconds = self.WAL_TRUNCATE_ATTEMPTS * 0.2
        return (
            f"another process kept reading the store for {seconds:g} seconds, so its "
            "write-ahead log "
            "(the -wal file beside it) could not be emptied and still holds a copy of the "
            "erased key; once no other process has the store open, empty it with "
            "sqlite3 STORE 'PRAGMA wal_checkpoint(TRUNCATE)' (or the store's next erasure does)"
        )

    def truncate_wal(self) -> bool:
        """Checkpoint the WAL into the file and truncate it to nothing, waiting for readers
        in other processes (:data:`WAL_TRUNCATE_ATTEMPTS` tries, each waiting a tenth of
        a second, not the store's 30-second lock timeout); whether it was truncated."""
        with self.datastore.get_connection(commit=True) as conn:
            raw = conn._sqlite_conn
            (timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
            raw.execute("PRAGMA busy_timeout=100")
            try:
                for _ in range(self.WAL_TRUNCATE_ATTEMPTS):
                    busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    if busy is None or busy[0] == 0:
                        return True
                    time.sleep(0.1)
                return False
            finally:
                raw.execute(f"PRAGMA busy_timeout={int(timeout)}")

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
        ids = self._insert_rows(c, stored_events)
        heads: Sequence[tuple[UUID, int, bytes]] = kwargs.get("case_heads") or ()
        if heads:
            # Created here, in the write's own transaction, rather than with the other
            # tables: a store made before head rows existed still opens read-only.
            c.execute(CREATE_CASE_HEADS)
            c.executemany(
                "INSERT INTO case_heads VALUES (?, ?, ?) ON CONFLICT (originator_id) DO "
                "UPDATE SET version=excluded.version, state=excluded.state",
                [(case.hex, version, state) for case, version, state in heads],
            )
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

    def _insert_rows(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """The library's insert of the event rows, in one ``executemany`` rather than a
        statement per row; the same rows, and the same notification ids: in one write
        transaction SQLite gives consecutive rows the next rowids, so the ids are the
        run that ends at the last one inserted."""
        if not stored_events:
            return []
        c.executemany(
            self.insert_events_statement,
            [
                (
                    s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                    s.originator_version,
                    s.topic,
                    s.state,
                )
                for s in stored_events
            ],
        )
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        return list(range(last - len(stored_events) + 1, last + 1))

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

    def select_last_entry(self, originator_id: UUID) -> tuple[int, bytes] | None:
        """``(seq, state)`` of a case's last entry (None: no such case)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT originator_version, state FROM stored_events WHERE originator_id=? "
                "ORDER BY originator_version DESC LIMIT 1",
                (originator_id.hex,),
            )
            row = c.fetchone()
            return None if row is None else (int(row[0]), bytes(row[1]))

    def select_case_head(
        self, originator_id: UUID
    ) -> tuple[int, bytes, list[tuple[int, str, bytes]]] | Literal[False] | None:
        """A case's head row ``(version, state)`` and, read in the same transaction, the
        chain facts it is checked against: ``(seq, type, state)`` of the referral, every
        correction and closing, and the chain's last entry.  None: no head row (or a
        store made before head rows, which has no table for them yet).  False: no head
        row and no entry of the case either (a new case: nothing else need be read)."""
        with self.datastore.transaction(commit=False) as c:
            try:
                c.execute(
                    "SELECT version, state FROM case_heads WHERE originator_id=?",
                    (originator_id.hex,),
                )
            except sqlite3.OperationalError:
                return None  # no such table: no write has kept a head row here yet
            head = c.fetchone()
            if head is None:
                c.execute(
                    "SELECT 1 FROM stored_events WHERE originator_id=? LIMIT 1",
                    (originator_id.hex,),
                )
                return None if c.fetchone() is not None else False
            c.execute(
                "SELECT originator_version, topic, state FROM stored_events "
                "WHERE originator_id=?1 AND (originator_version=1 "
                "OR topic IN ('EntryCorrected', 'CaseClosed') OR originator_version="
                "(SELECT MAX(originator_version) FROM stored_events WHERE originator_id=?1)) "
                "ORDER BY originator_version",
                (originator_id.hex,),
            )
            facts = [(int(row[0]), str(row[1]), bytes(row[2])) for row in c.fetchall()]
            return int(head[0]), bytes(head[1]), facts

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

    def select_personal_with_keys(self, case_ref: str) -> list[tuple[PersonalRow, bytes | None]]:
        """The personal values and salts kept for a case, each with its entry's key."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT p.case_ref, p.seq, p.field, p.value, p.salt, k.key FROM personal_data p "
                "LEFT JOIN personal_keys k ON k.case_ref = p.case_ref AND k.seq = p.seq "
                "WHERE p.case_ref=? ORDER BY p.seq, p.field",
                (case_ref,),
            )
            return [
                (
                    PersonalRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4])),
                    None if r[5] is None else bytes(r[5]),
                )
                for r in c.fetchall()
            ]

    def count_events(self) -> int:
        """How many entries the store holds."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT COUNT(*) FROM stored_events")
            return int(c.fetchone()[0])


if TYPE_CHECKING:
    _SATISFIES: type[LedgerRecorder] = LedgerSQLiteRecorder  # checked by mypy
