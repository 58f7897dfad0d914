"""Where the ledger lives: a ``--store`` value parsed into a location (an SQLite file or
a PostgreSQL database), and the check that an SQLite location holds a caseledger store or
may get one, made before the library opens (and so creates) anything there.

The location chooses its recorder (:mod:`ledger.store.sqlite`, or
:mod:`ledger.store.postgres` only when a ``postgresql://`` store is used, so the embedded
store never loads a PostgreSQL driver).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from eventsourcing.utils import get_topic

from ledger.errors import StoreUnavailable, UsageError
from ledger.store.sqlite import LedgerSQLiteRecorder, sqlite_file

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
            # one connection opened at start (the library's default opens five, in
            # threads of this process); more are opened as a command needs them
            "POSTGRES_POOL_SIZE": "1",
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
