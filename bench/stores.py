"""The stores under test and their raw baselines, at equal durability.

A :class:`Target` is one throw-away store: an SQLite file in a temporary folder, or a
fresh PostgreSQL schema (``?schema=bench_...``) dropped afterwards.  A raw baseline writes
the very bytes the ledger stored (read back from its events table) with the plain driver
(``sqlite3`` / ``psycopg``) into a table of the same shape, with the durability settings
read from the ledger's own connection: ``journal_mode`` and ``synchronous`` for SQLite,
``synchronous_commit`` for PostgreSQL.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ledger.application import CaseLedger, Clock
from ledger.store.locations import parse_store

Row = tuple[Any, int, str, bytes]
"""One stored event as the events table holds it: originator id, version, topic, state."""

SQLITE_EVENTS = "stored_events"
PG_EVENTS = "caseledger_events"
RAW_TABLE = "bench_raw_events"
SQLITE_RAW_DDL = (
    f"CREATE TABLE {RAW_TABLE} (originator_id TEXT, originator_version INTEGER, topic TEXT, "
    "state BLOB, PRIMARY KEY (originator_id, originator_version))"
)
"""The library's own SQLite events table, under another name."""


def pg_reachable(url: str) -> str | None:
    """None if the PostgreSQL server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return None
    except Exception as exc:  # reported as the reason, not swallowed
        return f"PostgreSQL at {url} is unreachable: {exc}"


@dataclass
class Target:
    """One throw-away store: where it is, how to open it, how to remove it."""

    kind: str  # "sqlite" | "postgres"
    url: str
    workdir: Path
    schema: str = ""
    base_url: str = ""
    ledgers: list[CaseLedger] = field(default_factory=list)

    @classmethod
    def sqlite(cls, workdir: Path, name: str) -> Target:
        """An SQLite file ``name.db`` in ``workdir``."""
        return cls("sqlite", str(workdir / f"{name}.db"), workdir)

    @classmethod
    def postgres(cls, base_url: str, workdir: Path) -> Target:
        """A fresh schema on the PostgreSQL database of ``base_url``."""
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        sep = "&" if "?" in base_url else "?"
        return cls("postgres", f"{base_url}{sep}schema={schema}", workdir, schema, base_url)

    def sibling(self, name: str) -> Target:
        """Another empty store of the same kind (a file beside, or another schema)."""
        if self.kind == "sqlite":
            return Target.sqlite(self.workdir, name)
        return Target.postgres(self.base_url, self.workdir)

    def open(self, clock: Clock | None = None) -> CaseLedger:
        """The real ledger on this store."""
        ledger = CaseLedger(parse_store(self.url), clock=clock)
        self.ledgers.append(ledger)
        return ledger

    def drop(self) -> None:
        """Close every ledger opened here and remove the store."""
        for ledger in self.ledgers:
            ledger.close()
        self.ledgers.clear()
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(self.url + suffix).unlink(missing_ok=True)
            return
        import psycopg
        from psycopg.sql import SQL, Identifier

        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(self.schema)))

    # --- what the ledger's connections use -------------------------------------------

    def durability(self, ledger: CaseLedger) -> dict[str, Any]:
        """The durability settings of the ledger's own connection."""
        datastore: Any = ledger.recorder.datastore  # type: ignore[attr-defined]
        if self.kind == "sqlite":
            with datastore.transaction(commit=False) as c:
                c.execute("PRAGMA journal_mode")
                journal_mode = str(c.fetchone()[0])
                c.execute("PRAGMA synchronous")
                synchronous = int(c.fetchone()[0])
            return {"journal_mode": journal_mode, "synchronous": synchronous}
        settings = ("synchronous_commit", "fsync", "wal_sync_method", "full_page_writes")
        out: dict[str, Any] = {}
        with datastore.get_connection() as conn, conn.cursor() as curs:
            for name in settings:
                curs.execute(f"SHOW {name}")
                row = curs.fetchone()
                out[name] = next(iter(row.values())) if isinstance(row, dict) else row[0]
        return out

    def rows_after(self, position: int, pg_table: str = PG_EVENTS) -> list[Row]:
        """The stored event rows after a position, in order (what the ledger wrote)."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.url) as conn:
                cur = conn.execute(
                    "SELECT originator_id, originator_version, topic, state "
                    f"FROM {SQLITE_EVENTS} WHERE rowid>? ORDER BY rowid",
                    (position,),
                )
                return [(r[0], r[1], r[2], bytes(r[3])) for r in cur]
        import psycopg
        from psycopg.sql import SQL, Identifier

        with psycopg.connect(self.base_url) as pg:
            found = pg.execute(
                SQL(
                    "SELECT originator_id, originator_version, topic, state FROM {}.{} "
                    "WHERE notification_id>%s ORDER BY notification_id"
                ).format(Identifier(self.schema), Identifier(pg_table)),
                (position,),
            )
            return [(r[0], r[1], r[2], bytes(r[3])) for r in found]

    def last_position(self, pg_table: str = PG_EVENTS) -> int:
        """The position of the last stored event (0 when empty)."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.url) as conn:
                found = conn.execute(f"SELECT MAX(rowid) FROM {SQLITE_EVENTS}").fetchone()[0]
                return int(found or 0)
        import psycopg
        from psycopg.sql import SQL, Identifier

        with psycopg.connect(self.base_url) as conn:
            row = conn.execute(
                SQL("SELECT MAX(notification_id) FROM {}.{}").format(
                    Identifier(self.schema), Identifier(pg_table)
                )
            ).fetchone()
            return int(row[0] or 0) if row else 0

    def raw(self, durability: dict[str, Any]) -> RawBaseline:
        """A raw baseline writing to this store's kind with the same durability."""
        if self.kind == "sqlite":
            return SQLiteRaw(self.workdir / "raw-baseline.db", durability)
        return PostgresRaw(self.base_url, self.schema, durability)


class RawBaseline(Protocol):
    """The plain driver writing the same bytes: one row per transaction, or all at once."""

    def reset(self) -> None:
        """Empty the raw table (not timed)."""

    def insert_each(self, rows: Sequence[Row]) -> float:
        """INSERT and COMMIT each row in its own transaction; seconds taken."""

    def insert_many(self, rows: Sequence[Row]) -> float:
        """``executemany`` of every row in one transaction; seconds taken."""

    def close(self) -> None:
        """Close and remove what the baseline created."""


class SQLiteRaw:
    """``sqlite3`` on a file beside the store, with the ledger's journal mode and sync."""

    def __init__(self, path: Path, durability: dict[str, Any]) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute(f"PRAGMA journal_mode={durability['journal_mode']}")
        self.conn.execute(f"PRAGMA synchronous={int(durability['synchronous'])}")
        self.applied = {
            "journal_mode": self.conn.execute("PRAGMA journal_mode").fetchone()[0],
            "synchronous": self.conn.execute("PRAGMA synchronous").fetchone()[0],
        }
        if self.applied != {
            "journal_mode": durability["journal_mode"],
            "synchronous": durability["synchronous"],
        }:
            raise RuntimeError(f"the baseline could not match the ledger: {self.applied}")
        self.reset()

    def reset(self) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        self.conn.execute(SQLITE_RAW_DDL)

    def insert_each(self, rows: Sequence[Row]) -> float:
        conn = self.conn
        sql = f"INSERT INTO {RAW_TABLE} VALUES (?,?,?,?)"
        start = time.perf_counter()
        for row in rows:
            conn.execute("BEGIN")
            conn.execute(sql, row)
            conn.execute("COMMIT")
        return time.perf_counter() - start

    def insert_many(self, rows: Sequence[Row]) -> float:
        conn = self.conn
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO {RAW_TABLE} VALUES (?,?,?,?)", rows)
        conn.execute("COMMIT")
        return time.perf_counter() - start

    def close(self) -> None:
        self.conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)


class PostgresRaw:
    """``psycopg`` on a table shaped like the library's, with the same synchronous_commit."""

    def __init__(self, base_url: str, schema: str, durability: dict[str, Any]) -> None:
        import psycopg
        from psycopg.sql import SQL, Identifier

        self.conn = psycopg.connect(base_url)
        self.conn.execute(
            SQL("SET synchronous_commit = {}").format(
                SQL(str(durability["synchronous_commit"]).replace("'", ""))
            )
        )
        self.conn.commit()
        self.table = SQL("{}.{}").format(Identifier(schema), Identifier(RAW_TABLE))
        self.insert = SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s)"
        ).format(self.table)
        self.applied = {
            "synchronous_commit": self.conn.execute("SHOW synchronous_commit").fetchone()[0]  # type: ignore[index]
        }
        self.conn.commit()
        self.reset()

    def reset(self) -> None:
        from psycopg.sql import SQL

        self.conn.execute(SQL("DROP TABLE IF EXISTS {}").format(self.table))
        self.conn.execute(
            SQL(
                "CREATE TABLE {} (originator_id uuid NOT NULL, originator_version bigint NOT "
                "NULL, topic text, state bytea, notification_id bigserial, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(self.table)
        )
        self.conn.execute(SQL("CREATE UNIQUE INDEX ON {} (notification_id)").format(self.table))
        self.conn.commit()

    def insert_each(self, rows: Sequence[Row]) -> float:
        conn = self.conn
        start = time.perf_counter()
        with conn.cursor() as cur:
            for row in rows:
                cur.execute(self.insert, row)
                conn.commit()
        return time.perf_counter() - start

    def insert_many(self, rows: Sequence[Row]) -> float:
        conn = self.conn
        start = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(self.insert, rows)
        conn.commit()
        return time.perf_counter() - start

    def close(self) -> None:
        from psycopg.sql import SQL

        self.conn.execute(SQL("DROP TABLE IF EXISTS {}").format(self.table))
        self.conn.commit()
        self.conn.close()


def remove_tree(path: Path) -> None:
    """Remove a work folder, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)
