"""The PostgreSQL recorder: the library's, plus the personal-data table and read queries.

Imported only when a ``postgresql://`` store is used, so the embedded store needs no
PostgreSQL driver.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from .errors import StoreUnavailable
from .store import PersonalKey, PersonalRow


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """Writes personal rows in the same transaction as the events they belong to."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.personal_table = events_table_name.rsplit("_", 1)[0] + "_personal"
        self.check_identifier_length(self.personal_table)
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "case_ref text NOT NULL, seq bigint NOT NULL, field text NOT NULL, "
                "value bytea NOT NULL, salt bytea NOT NULL, "
                "PRIMARY KEY (case_ref, seq, field))"
            ).format(schema=schema, table=Identifier(self.personal_table))
        )
        prefix = events_table_name.rsplit("_", 1)[0]
        self.meta_table = Identifier(prefix + "_meta")
        self.register_table = Identifier(prefix + "_register")
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} "
                "(key text PRIMARY KEY, value bytea NOT NULL)"
            ).format(schema=schema, table=self.meta_table)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} "
                "(seq bigint PRIMARY KEY, state bytea NOT NULL)"
            ).format(schema=schema, table=self.register_table)
        )
        self._add_personal_keys(schema, prefix)
        self._meta = SQL("{schema}.{table}").format(schema=schema, table=self.meta_table)
        self._register = SQL("{schema}.{table}").format(schema=schema, table=self.register_table)
        self._insert_personal_many = SQL(
            "INSERT INTO {schema}.{table} "
            "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::bytea[], %s::bytea[])"
        ).format(schema=schema, table=Identifier(self.personal_table))
        self._events = SQL("{schema}.{table}").format(
            schema=schema, table=Identifier(self.events_table_name)
        )
        self._personal = SQL("{schema}.{table}").format(
            schema=schema, table=Identifier(self.personal_table)
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert events (and their personal rows) in one transaction, without pipeline.

        The library pipelines the statements; a command carrying several megabytes then
        hangs, client and server each waiting for the other (seen from about 10,000
        lines).  Plain statements in one transaction cost nothing measurable for a
        single entry.  The table lock that keeps the log's order is taken as before.
        Conflicts are retried by ``CaseLedger.record``.
        """
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return []
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        rows: Sequence[PersonalRow] = kwargs.get("personal_rows") or ()
        if rows:
            # One statement for every row, rather than one per row.
            curs.execute(
                self._insert_personal_many,
                (
                    [r.case_ref for r in rows],
                    [r.seq for r in rows],
                    [r.field for r in rows],
                    [r.value for r in rows],
                    [r.salt for r in rows],
                ),
            )
        keys: Sequence[PersonalKey] = kwargs.get("personal_keys") or ()
        if keys:
            curs.execute(
                self._insert_keys_many,
                ([k.case_ref for k in keys], [k.seq for k in keys], [k.key for k in keys]),
            )

    def select_case(self, originator_id: UUID) -> list[tuple[int, bytes]]:
        """``(position, state)`` of every entry of one case, in ``seq`` order."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT notification_id, state FROM {t} WHERE originator_id=%s "
                    "ORDER BY originator_version"
                ).format(t=self._events),
                (originator_id,),
                binary=True,  # bytea as bytes, not hex text: half the transfer, no decoding
            )
            return [(row["notification_id"], bytes(row["state"])) for row in curs.fetchall()]

    def iter_states(self, after: int = 0, batch: int = 5000) -> Iterator[tuple[int, bytes]]:
        """``(position, state)`` of every entry in global order, after a position."""
        while True:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(
                    SQL(
                        "SELECT notification_id, state FROM {t} WHERE notification_id>%s "
                        "ORDER BY notification_id LIMIT %s"
                    ).format(t=self._events),
                    (after, batch),
                    binary=True,
                )
                rows = [(row["notification_id"], bytes(row["state"])) for row in curs.fetchall()]
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def select_personal(self, case_ref: str) -> list[PersonalRow]:
        """The personal values and salts kept for a case."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT case_ref, seq, field, value, salt FROM {t} WHERE case_ref=%s "
                    "ORDER BY seq, field"
                ).format(t=self._personal),
                (case_ref,),
                binary=True,
            )
            return [
                PersonalRow(
                    r["case_ref"], r["seq"], r["field"], bytes(r["value"]), bytes(r["salt"])
                )
                for r in curs.fetchall()
            ]

    def get_meta(self, key: str) -> bytes | None:
        """A value of the store's metadata (e.g. the encryption key check)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT value FROM {t} WHERE key=%s").format(t=self._meta), (key,))
            row = curs.fetchone()
            return None if row is None else bytes(row["value"])

    def put_meta_if_absent(self, key: str, value: bytes) -> None:
        """Set a metadata value once; a later call never overwrites it."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL("INSERT INTO {t} VALUES (%s, %s) ON CONFLICT (key) DO NOTHING").format(
                    t=self._meta
                ),
                (key, value),
            )

    def select_register(self) -> list[tuple[int, bytes]]:
        """``(seq, state)`` of every register entry."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT seq, state FROM {t} ORDER BY seq").format(t=self._register))
            return [(row["seq"], bytes(row["state"])) for row in curs.fetchall()]

    def insert_register(
        self,
        seq: int,
        state: bytes,
        erase_case: str | None = None,
        readers: Sequence[str] | None = None,
    ) -> None:
        """Append a register entry; with ``erase_case``, delete that case's personal
        values and keys in the same transaction (then vacuum them, when this user owns
        the tables); with ``readers``, replace who may read keys (the users enrolled with
        a role allowed ``export-personal``).  A taken ``seq`` raises IntegrityError."""
        from eventsourcing.persistence import IntegrityError
        from psycopg.errors import UniqueViolation

        try:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    SQL("INSERT INTO {t} VALUES (%s, %s)").format(t=self._register), (seq, state)
                )
                if erase_case is not None:
                    for table in (self._keys, self._personal):
                        curs.execute(
                            SQL("DELETE FROM {t} WHERE case_ref=%s").format(t=table),
                            (erase_case,),
                        )
                if readers is not None:
                    curs.execute(SQL("DELETE FROM {t}").format(t=self._readers))
                    curs.execute(
                        SQL("INSERT INTO {t} SELECT unnest(%s::text[])").format(t=self._readers),
                        (list(readers),),
                    )
        except UniqueViolation as exc:
            raise IntegrityError(exc) from exc
        if erase_case is not None:
            self.vacuum_personal()

    # --- personal-data keys ------------------------------------------------------

    def _add_personal_keys(self, schema: Identifier, prefix: str) -> None:
        """The key table, who may read it, and the one function that reads it.

        Users get no privilege on the key table: keys are read only through
        ``<prefix>_personal_keys_of(case)``, a SECURITY DEFINER function that refuses
        any session user not in ``<prefix>_personal_readers``.  The ledger keeps that
        table equal to the users the register enrols with a role the policy allows
        ``export-personal``, in the same transaction as each enrolment or removal.
        The key table is vacuumed by autovacuum at its first dead tuple (threshold 0),
        so an erased key's dead tuple does not wait for 20% of the table to change.
        """
        keys, readers = prefix + "_personal_keys", prefix + "_personal_readers"
        function = prefix + "_personal_keys_of"
        for name in (keys, readers, function):
            self.check_identifier_length(name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "case_ref text NOT NULL, seq bigint NOT NULL, key bytea NOT NULL, "
                "PRIMARY KEY (case_ref, seq)) "
                "WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0)"
            ).format(schema=schema, table=Identifier(keys))
        )
        self.sql_create_statements.append(
            SQL('CREATE TABLE IF NOT EXISTS {schema}.{table} ("user" text PRIMARY KEY)').format(
                schema=schema, table=Identifier(readers)
            )
        )
        # Created once, by whoever creates the store (its owner), so that later opens by
        # users who may not replace it never try to.
        self.sql_create_statements.append(
            SQL(
                "DO $do$ BEGIN IF to_regprocedure({signature}) IS NULL THEN EXECUTE $fn$"
                " CREATE FUNCTION {schema}.{function}(p_case text)"
                " RETURNS TABLE (seq bigint, key bytea)"
                " LANGUAGE plpgsql STABLE SECURITY DEFINER"
                " SET search_path = pg_catalog, pg_temp AS $body$"
                " BEGIN"
                "  IF NOT EXISTS (SELECT 1 FROM {schema}.{readers} r"
                '                 WHERE r."user" = session_user) THEN'
                "   RAISE EXCEPTION 'the database refuses % the personal-data keys: "
                "export-personal needs a role the policy allows it, given by an admin', "
                "session_user USING ERRCODE = 'insufficient_privilege';"
                "  END IF;"
                "  RETURN QUERY SELECT k.seq, k.key FROM {schema}.{keys} k"
                "   WHERE k.case_ref = p_case ORDER BY k.seq;"
                " END $body$ $fn$; END IF; END $do$"
            ).format(
                signature=Literal(f'"{self.datastore.schema}"."{function}"(text)'),
                schema=schema,
                function=Identifier(function),
                readers=Identifier(readers),
                keys=Identifier(keys),
            )
        )
        self._keys_name = keys
        self._keys = SQL("{schema}.{table}").format(schema=schema, table=Identifier(keys))
        self._readers = SQL("{schema}.{table}").format(schema=schema, table=Identifier(readers))
        self._keys_of = SQL("SELECT seq, key FROM {schema}.{function}(%s)").format(
            schema=schema, function=Identifier(function)
        )
        self._insert_keys_many = SQL(
            "INSERT INTO {t} SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bytea[])"
        ).format(t=self._keys)

    def select_personal_keys(self, case_ref: str) -> dict[int, bytes]:
        """The stored keys of a case's personal values, by entry ``seq``, through the
        database's own check of the session user; a refusal exits 4 with its reason."""
        from eventsourcing.persistence import ProgrammingError
        from psycopg.errors import InsufficientPrivilege

        try:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(self._keys_of, (case_ref,), binary=True)
                return {int(r["seq"]): bytes(r["key"]) for r in curs.fetchall()}
        except (InsufficientPrivilege, ProgrammingError) as exc:
            # the library wraps the driver's error; the refusal is the one to report
            refusal = exc if isinstance(exc, InsufficientPrivilege) else exc.__cause__
            if not isinstance(refusal, InsufficientPrivilege):
                raise
            raise StoreUnavailable(str(refusal).splitlines()[0]) from None

    def check_personal_reader(self) -> None:
        """Ask the database, before anything is written, whether this session user may
        read keys at all (the function refuses, or returns nothing for no case)."""
        self.select_personal_keys("")

    def vacuum_personal(self) -> bool:
        """Vacuum the key and personal tables after an erasure, so the deleted tuples'
        bytes leave the heap now, when this user owns them (else autovacuum does it at
        its next round); whether it ran."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT bool_and(pg_has_role(current_user, c.relowner, 'USAGE')) AS own "
                    "FROM pg_class c WHERE c.oid IN ({k}::regclass, {p}::regclass)"
                ).format(
                    k=Literal(f'"{self.datastore.schema}"."{self._keys_name}"'),
                    p=Literal(f'"{self.datastore.schema}"."{self.personal_table}"'),
                )
            )
            row = curs.fetchone()
            if row is None or not row["own"]:
                return False
            curs.execute(SQL("VACUUM {k}, {p}").format(k=self._keys, p=self._personal))
            return True

    def count_events(self) -> int:
        """How many entries the store holds."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT COUNT(*) AS n FROM {t}").format(t=self._events))
            row = curs.fetchone()
            assert row is not None
            return int(row["n"])


@contextmanager
def creation_lock(
    host: str, port: str, dbname: str, user: str, password: str, schema: str
) -> Iterator[None]:
    """Serialise the creation of the store's schema and tables between processes.

    Concurrent ``CREATE ... IF NOT EXISTS`` statements can fail in PostgreSQL ("tuple
    concurrently updated"), so whoever opens the store holds a session advisory lock,
    keyed by the schema, while the library creates its tables.
    """
    import psycopg

    with psycopg.connect(
        host=host,
        port=port,
        dbname=dbname,
        user=user,
        password=password,
        connect_timeout=5,
        autocommit=True,
    ) as conn:
        digest = hashlib.sha256(f"caseledger:{schema}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            if schema:
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname=%s", (schema,)
                ).fetchone()
                if exists is None:
                    conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


class TolerantCreate:
    """Lets a database user who may only read open an existing store.

    The library creates its tables (and a type and a function) on every open; a user
    without CREATE rights is refused even when everything exists.  Where the tables are
    there already, the refusal is ignored and only the type adapters are registered, so
    inspectors with ``SELECT`` rights can read; their writes are refused by the server.
    """

    datastore: PostgresDatastore
    events_table_name: str

    def create_table(self) -> None:
        try:
            super().create_table()  # type: ignore[misc]
        except Exception as exc:
            if "permission denied" not in str(exc).lower() or not self._table_exists():
                raise
            self.datastore.register_type_adapters()

    def _table_exists(self) -> bool:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT to_regclass(%s) AS t",
                (f'"{self.datastore.schema}"."{self.events_table_name}"',),
            )
            row = curs.fetchone()
            return row is not None and row["t"] is not None


class ReadableLedgerPostgresRecorder(TolerantCreate, LedgerPostgresRecorder):
    """The ledger's recorder, openable by users who may only read."""


class ReadablePostgresSnapshotRecorder(TolerantCreate, PostgresAggregateRecorder):
    """The library's snapshot recorder, openable by users who may only read."""
