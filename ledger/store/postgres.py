"""The PostgreSQL recorder: the library's tables, the ledger's own, and the database's
authority over every write.

Users of a PostgreSQL store hold no INSERT, UPDATE or DELETE on any table: entries,
register entries and snapshots are appended through the SECURITY DEFINER functions of
``ledger/data/pgauthority.sql``, which check the session user, the recorded policy and
each chain's head, and keep a provenance row per entry (see ``docs/security.md``).
Imported only when a ``postgresql://`` store is used, so the embedded store needs no
PostgreSQL driver.

Why one module: it is the one adapter between the library's PostgreSQL recorder and the
database's authority; every method is a call through those SQL functions, and the tables,
grants and erasure (vacuum) it names must agree with each other and with pgauthority.sql.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from psycopg import Cursor
from psycopg.errors import UndefinedFunction
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal
from psycopg.types.json import Jsonb, set_json_loads

from ledger.domain.personal_screen import ScreenRow
from ledger.errors import StoreUnavailable
from ledger.store.recorder import ENVELOPE_KEYS
from ledger.store.sealing import PersonalKey, PersonalRow

if TYPE_CHECKING:
    from ledger.store.recorder import AuthorityRecorder

# jsonb columns (the index's open requests, delays and milestone facts) decoded by orjson,
# as the ledger decodes its own JSON, not the standard library's json: about 20 ms of a
# status --all over 10,000 cases.  The values are the same: every one holds what orjson
# wrote (the entries' canonical JSON, or the index's rows made from them), so what it reads.
set_json_loads(orjson.loads)


@cache
def _authority_sql() -> str:
    return (resources.files("ledger") / "data" / "pgauthority.sql").read_text(encoding="utf-8")


def authority_statements(schema: str) -> list[Composed]:
    """The tables, triggers and functions by which the database enforces the ledger's
    rules, for one schema (``ledger/data/pgauthority.sql``)."""
    quoted = Identifier(schema).as_string(None)
    literal = Literal(schema).as_string(None)
    text = _authority_sql().replace("__S__", quoted).replace("__SCHEMA__", literal)
    parts = [p.strip() for p in text.split("-- ;;")]
    return [Composed([SQL(p)]) for p in parts if p]


APPEND_CHUNK = 5_000
"""Entries per call of ``caseledger_append`` within one command's transaction."""


def _chunks(
    events: Sequence[StoredEvent],
    rows: Sequence[PersonalRow],
    keys: Sequence[PersonalKey],
    cases: dict[str, UUID] | None,
) -> Iterator[tuple[Sequence[StoredEvent], Sequence[PersonalRow], Sequence[PersonalKey]]]:
    """The command's entries in runs of :data:`APPEND_CHUNK`, each with the personal
    rows and keys of its entries; one run of everything when the command is small or
    does not say which case each personal name is."""
    if len(events) <= APPEND_CHUNK or cases is None:
        yield events, rows, keys
        return
    every = {(UUID(str(e.originator_id)), e.originator_version) for e in events}
    # a row of no entry of the command goes with the first run, for the database to refuse
    stray_rows = [r for r in rows if (cases.get(r.case_ref), r.seq) not in every]
    stray_keys = [k for k in keys if (cases.get(k.case_ref), k.seq) not in every]
    for start in range(0, len(events), APPEND_CHUNK):
        chunk = events[start : start + APPEND_CHUNK]
        entries = {(UUID(str(e.originator_id)), e.originator_version) for e in chunk}
        yield (
            chunk,
            [r for r in rows if (cases.get(r.case_ref), r.seq) in entries] + stray_rows,
            [k for k in keys if (cases.get(k.case_ref), k.seq) in entries] + stray_keys,
        )
        stray_rows, stray_keys = [], []


@contextmanager
def _keys_refused() -> Iterator[None]:
    """The database's refusal of the personal-data keys (``caseledger_personal_keys_of``)
    as the exit-4 StoreUnavailable it is, with its reason; the library wraps the driver's
    error, and the refusal is the one to report."""
    from eventsourcing.persistence import ProgrammingError
    from psycopg.errors import InsufficientPrivilege

    try:
        yield
    except (InsufficientPrivilege, ProgrammingError) as exc:
        refusal = exc if isinstance(exc, InsufficientPrivilege) else exc.__cause__
        if not isinstance(refusal, InsufficientPrivilege):
            raise
        raise StoreUnavailable(str(refusal).splitlines()[0]) from None


#: Above every position (bigint's largest): the bound of a read where every committed
#: entry is settled.
_NO_POSITION_ABOVE = 2**63 - 1

#: The columns of a provenance row that ``verify`` compares with the stored entry.
PROVENANCE_FIELDS = ("case", "seq", "type", "actor", "role", "prev_hash", "hash", "recorded_at")


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """Appends entries (with their personal rows and a new store's first register
    entries) in one transaction, through the database's checking functions."""

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
                "(seq bigint PRIMARY KEY, state bytea NOT NULL, type text, actor text, "
                "role text, prev_hash text, hash text)"
            ).format(schema=schema, table=self.register_table)
        )
        self._add_personal_keys(schema, prefix)
        self.sql_create_statements.extend(authority_statements(self.datastore.schema))
        # The entries' rows and the byte strings in binary (%b): psycopg's text form of a
        # row array, escaped field by field in Python, cost a quarter of a large
        # record's client time and its parsing the server's.
        self._append = SQL(
            "SELECT * FROM {schema}.caseledger_append(%b, %s, %s, %s, %s, %b, %b, %s, %s, %b)"
        ).format(schema=schema)
        self._register_append = SQL(
            "SELECT {schema}.caseledger_register_append(%s, %s, %s)"
        ).format(schema=schema)
        self._provenance = SQL("{schema}.caseledger_provenance").format(schema=schema)
        self._settled = SQL("SELECT {schema}.caseledger_settled_position() AS settled").format(
            schema=schema
        )
        self._meta = SQL("{schema}.{table}").format(schema=schema, table=self.meta_table)
        self._register = SQL("{schema}.{table}").format(schema=schema, table=self.register_table)
        self._events = SQL("{schema}.{table}").format(
            schema=schema, table=Identifier(self.events_table_name)
        )
        self._personal = SQL("{schema}.{table}").format(
            schema=schema, table=Identifier(self.personal_table)
        )
        self._personal_with_keys = SQL(
            "SELECT p.case_ref, p.seq, p.field, p.value, p.salt, k.key FROM {personal} p "
            "LEFT JOIN {schema}.caseledger_personal_keys_of(%s) k ON k.seq = p.seq "
            "WHERE p.case_ref=%s ORDER BY p.seq, p.field"
        ).format(personal=self._personal, schema=schema)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Append entries through ``caseledger_append`` (and a new store's first register
        entries through ``caseledger_register_append``) in one transaction.

        A large command is sent in calls of :data:`APPEND_CHUNK` entries, each with the
        personal rows and keys of its own entries (``personal_cases`` says which case
        each stored personal name is), all in the one transaction: the client never
        builds one parameter for the whole command, and the database checks each call's
        chains against the rows the earlier calls inserted, as it would in one call.

        ``entry_meta`` gives each entry's clear envelope, keyed by ``(case id, seq)``, as
        the values of :data:`ENVELOPE_KEYS` in their order: the
        database checks it (against the stored entry itself when entries are not
        encrypted) and keeps it as the entry's provenance.  Personal rows go in the same
        call.  A lost race raises IntegrityError (retried by ``CaseLedger.record``); a
        refusal by the database raises ProgrammingError (exit code 4, nothing written).
        """
        meta: dict[tuple[UUID, int], tuple[Any, ...]] = kwargs.get("entry_meta") or {}
        rows: Sequence[PersonalRow] = kwargs.get("personal_rows") or ()
        register: Sequence[tuple[dict[str, Any], bytes]] = kwargs.get("register_rows") or ()
        keys: Sequence[PersonalKey] = kwargs.get("personal_keys") or ()
        screen: Sequence[ScreenRow] = kwargs.get("screen_rows") or ()
        cases: dict[str, UUID] | None = kwargs.get("personal_cases")
        # A command of one append call and nothing else (the usual single entry) is one
        # statement, its own transaction on the pool's autocommit connection: atomic as
        # the function is, without a BEGIN and a COMMIT of two more round trips.
        one_statement = (
            not register and not screen and (len(stored_events) <= APPEND_CHUNK or cases is None)
        )
        with self.datastore.get_connection() as conn:
            alone = one_statement and conn.autocommit  # else a transaction would stay open
            with nullcontext() if alone else conn.transaction(), conn.cursor() as curs:
                if register:
                    self._call_register_append(curs, register, None)
                if not stored_events:
                    return []
                appended: list[int] = []
                for chunk, chunk_rows, chunk_keys in _chunks(stored_events, rows, keys, cases):
                    keyed = ((UUID(str(e.originator_id)), e.originator_version) for e in chunk)
                    envelopes = [dict(zip(ENVELOPE_KEYS, meta[k], strict=True)) for k in keyed]
                    curs.execute(
                        self._append,
                        (
                            [
                                self.construct_pg_stored_event(
                                    e.originator_id, e.originator_version, e.topic, e.state
                                )
                                for e in chunk
                            ],
                            Jsonb(envelopes),
                            [r.case_ref for r in chunk_rows],
                            [r.seq for r in chunk_rows],
                            [r.field for r in chunk_rows],
                            [r.value for r in chunk_rows],
                            [r.salt for r in chunk_rows],
                            [k.case_ref for k in chunk_keys],
                            [k.seq for k in chunk_keys],
                            [k.key for k in chunk_keys],
                        ),
                    )
                    appended.extend(row["caseledger_append"] for row in curs.fetchall())
                if screen:
                    curs.execute(
                        SQL("SELECT {}.caseledger_put_screen(%s, %s, %b, %s, %b)").format(
                            Identifier(self.datastore.schema)
                        ),
                        (
                            [r.case_ref for r in screen],
                            [r.seq for r in screen],
                            [r.salt for r in screen],
                            [r.length for r in screen],
                            [r.digest for r in screen],
                        ),
                    )
                return appended

    def screen_personal(self, case_ref: str, texts: Sequence[str]) -> set[int]:
        """The (0-based) numbers of the folded texts that hold a personal value of the
        case, as the database answers from its screen digests without giving the
        values (``caseledger_personal_screen``)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT {}.caseledger_personal_screen(%s, %s) AS hits").format(
                    Identifier(self.datastore.schema)
                ),
                (case_ref, list(texts)),
            )
            row = curs.fetchone()
        return {int(n) - 1 for n in (row["hits"] if row else None) or ()}

    def _call_register_append(
        self,
        curs: Cursor[DictRow],
        entries: Sequence[tuple[dict[str, Any], bytes]],
        erase_case: str | None,
    ) -> None:
        curs.execute(
            self._register_append,
            (Jsonb([e for e, _ in entries]), [state for _, state in entries], erase_case),
        )

    def select_case(self, originator_id: UUID) -> list[tuple[int, bytes]]:
        """``(position, state)`` of every entry of one case, in ``seq`` order."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                SQL(
                    "SELECT notification_id, state FROM {t} WHERE originator_id=%s "
                    "ORDER BY originator_version"
                ).format(t=self._events),
                (originator_id,),
                binary=True,  # bytea as bytes, not hex text: half the transfer, no decoding
            )
            # rows as tuples: a dict per row costs more than the rest of the read
            return [(position, bytes(state)) for position, state in curs.fetchall()]

    def iter_states(
        self, after: int = 0, batch: int = 5000, upto: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """``(position, state)`` of every entry in global order, after a position, up to
        the log's settled position when the call starts (:meth:`settled_position`), or
        ``upto`` (a settled position read before): writers append without a table lock,
        so only that prefix can no longer gain an entry below a position already read."""
        query = SQL(
            "SELECT notification_id, state FROM {t} WHERE notification_id>%s "
            "AND notification_id<=%s ORDER BY notification_id LIMIT %s"
        ).format(t=self._events)
        for rows in self._settled_pages(query, after, upto, batch, binary=True, tuples=True):
            yield from ((position, bytes(state)) for position, state in rows)

    def _settled_pages(
        self,
        query: Composed,
        after: int,
        upto: int | None,
        batch: int,
        *,
        binary: bool = False,
        tuples: bool = False,
    ) -> Iterator[list[Any]]:
        """Pages of ``query`` (its parameters: after, up to, limit; its first column the
        position) over positions after ``after`` up to ``upto``, or the settled position
        read with the first page; rows as dicts, or as tuples (``tuples``)."""
        while True:
            with self.datastore.get_connection() as conn:
                if upto is None:
                    with conn.cursor() as curs:
                        upto = self.settled_position(curs)
                factory: Any = tuple_row if tuples else dict_row
                with conn.cursor(row_factory=factory) as curs:
                    curs.execute(query, (after, upto, batch), binary=binary)
                    rows = curs.fetchall()
            yield rows
            if len(rows) < batch:
                return
            after = rows[-1][0] if tuples else rows[-1]["notification_id"]

    def settled(self) -> int:
        """The log's settled position now (:meth:`settled_position`), for reading the
        entries and their provenance up to the same position."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self.settled_position(curs)

    def settled_position(self, curs: Cursor[DictRow]) -> int:
        """The highest position below which no entry can still be committed
        (``caseledger_settled_position``: it waits for the transactions that may still
        commit one), read in a statement of its own so that the next statement's
        snapshot holds every entry up to it.  A store whose functions predate it (not yet
        opened by its owner with this version) still appends under the table lock, which
        keeps its log gap-free in commit order: everything committed is settled there."""
        try:
            curs.execute(self._settled)
        except UndefinedFunction:
            return _NO_POSITION_ABOVE
        row = curs.fetchone()
        assert row is not None
        return int(row["settled"])

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

    def select_register(self, from_seq: int = 0) -> list[tuple[int, bytes]]:
        """``(seq, state)`` of every register entry from ``seq`` ``from_seq`` on."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT seq, state FROM {t} WHERE seq>=%s ORDER BY seq").format(
                    t=self._register
                ),
                (from_seq,),
            )
            return [(row["seq"], bytes(row["state"])) for row in curs.fetchall()]

    def insert_register(
        self, entries: Sequence[tuple[dict[str, Any], bytes]], erase_case: str | None = None
    ) -> None:
        """Append register entries through ``caseledger_register_append`` in one
        transaction (an erasure deletes the case's personal rows in it).  A taken ``seq``
        raises IntegrityError."""
        with self.datastore.transaction(commit=True) as curs:
            self._call_register_append(curs, entries, erase_case)

    def clear_erased(self) -> str | None:
        """VACUUM the key and personal tables (:meth:`vacuum_personal`)."""
        return self.vacuum_personal()

    def iter_provenance(
        self, batch: int = 5000, upto: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The database's provenance rows in global order: who appended each entry (the
        session user), under which role, with which hashes and time; up to the settled
        position, as :meth:`iter_states` (a row is written with its entry)."""
        query = SQL(
            "SELECT notification_id, case_ref, seq, type, actor, role, prev_hash, "
            "hash, recorded_at, regime, agency, approved_by FROM {t} "
            "WHERE notification_id>%s AND notification_id<=%s "
            "ORDER BY notification_id LIMIT %s"
        ).format(t=self._provenance)
        for rows in self._settled_pages(query, 0, upto, batch):
            yield from rows

    def select_register_provenance(self) -> list[dict[str, Any]]:
        """The clear columns the register function kept for each register entry."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT seq, type, actor, role, prev_hash, hash FROM {t} ORDER BY seq").format(
                    t=self._register
                )
            )
            return [dict(row) for row in curs.fetchall()]

    def select_provenance_head(self, originator_id: UUID, seq: int) -> dict[str, Any] | None:
        """The provenance of one entry (for checking a snapshot before use)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT hash, regime, recorded_at FROM {t} WHERE originator_id=%s AND seq=%s"
                ).format(t=self._provenance),
                (originator_id, seq),
            )
            row = curs.fetchone()
            return None if row is None else dict(row)

    def select_provenance_last(self, originator_id: UUID) -> dict[str, Any] | None:
        """The provenance of a case's last entry (``seq``, hash, regime, recorded time):
        what a case head kept in memory is checked against before use."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT seq, hash, regime, recorded_at FROM {t} WHERE originator_id=%s "
                    "ORDER BY seq DESC LIMIT 1"
                ).format(t=self._provenance),
                (originator_id,),
            )
            row = curs.fetchone()
            return None if row is None else dict(row)

    def select_authority(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The database's own enrolments and policy (kept from the register)."""
        schema = Identifier(self.datastore.schema)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT name, roles, agency FROM {}.caseledger_users").format(schema))
            users = {
                r["name"]: {"roles": sorted(r["roles"]), "agency": r["agency"]}
                for r in curs.fetchall()
            }
            curs.execute(
                SQL(
                    "SELECT role, record, regimes, own_agency, actions, approves, sees "
                    "FROM {}.caseledger_policy"
                ).format(schema)
            )
            policy = {
                r["role"]: {
                    "record": sorted(r["record"]),
                    "regimes": None if r["regimes"] is None else sorted(r["regimes"]),
                    "own_agency": r["own_agency"],
                    "actions": sorted(r["actions"]),
                    "approves": sorted(r["approves"]),
                    "sees": r["sees"],
                }
                for r in curs.fetchall()
            }
        return users, policy

    # --- personal-data keys ------------------------------------------------------

    def _add_personal_keys(self, schema: Identifier, prefix: str) -> None:
        """The key table: each entry's key for its personal values.  Users get no
        privilege on it; keys are appended by ``caseledger_append``, deleted by an
        erasure through ``caseledger_register_append``, and read only through
        ``caseledger_personal_keys_of(case)``, which the database answers only for a
        session user enrolled with a role the recorded policy allows ``export-personal``
        (``ledger/data/pgauthority.sql``).  The table is vacuumed by autovacuum at its
        first dead tuple (threshold 0), so an erased key's tuple does not linger.
        """
        keys = prefix + "_personal_keys"
        self.check_identifier_length(keys)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "case_ref text NOT NULL, seq bigint NOT NULL, key bytea NOT NULL, "
                "PRIMARY KEY (case_ref, seq)) "
                "WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0)"
            ).format(schema=schema, table=Identifier(keys))
        )
        self._keys_name = keys
        self._keys = SQL("{schema}.{table}").format(schema=schema, table=Identifier(keys))
        self._keys_of = SQL("SELECT seq, key FROM {schema}.caseledger_personal_keys_of(%s)").format(
            schema=schema
        )

    def select_personal_keys(self, case_ref: str) -> dict[int, bytes]:
        """The stored keys of a case's personal values, by entry ``seq``, through the
        database's own check of the session user; a refusal exits 4 with its reason."""
        with _keys_refused(), self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._keys_of, (case_ref,), binary=True)
            return {int(r["seq"]): bytes(r["key"]) for r in curs.fetchall()}

    def select_personal_with_keys(self, case_ref: str) -> list[tuple[PersonalRow, bytes | None]]:
        """The personal values and salts kept for a case, each with its entry's key, in one
        statement: for a session user the database gives keys (the function refuses
        anyone else, exit 4 with its reason, as :meth:`select_personal_keys`)."""
        with (
            _keys_refused(),
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(self._personal_with_keys, (case_ref, case_ref), binary=True)
            return [
                (
                    PersonalRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4])),
                    None if r[5] is None else bytes(r[5]),
                )
                for r in curs.fetchall()
            ]

    def check_personal_reader(self) -> None:
        """Ask the database, before anything is written, whether this session user may
        read keys at all (the function refuses, or returns nothing for no case)."""
        self.select_personal_keys("")

    def vacuum_personal(self) -> str | None:
        """Vacuum the key and personal tables after an erasure, so the deleted tuples'
        bytes leave the heap now, when this user owns them (else autovacuum does it at
        its next round); None when it ran with no older transaction left, else what
        remains and why."""
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
            schema = self.datastore.schema
            tables = ", ".join(f'"{schema}"."{t}"' for t in (self._keys_name, self.personal_table))
            if row is None or not row["own"]:
                return (
                    f"this database user does not own {tables}, so it could not VACUUM "
                    "them: the deleted key stays in their heap until autovacuum's next "
                    f"round (a minute by default), or until their owner runs VACUUM {tables}"
                )
            older = self._await_older_snapshots(curs)
            curs.execute(SQL("VACUUM {k}, {p}").format(k=self._keys, p=self._personal))
            if older:
                return (
                    f"after {self.SNAPSHOT_WAIT_SECONDS:g} s, sessions of this database that "
                    f"began before the erasure were still open ({older}), so VACUUM could "
                    "not remove the deleted key from the heap; once they end, run "
                    f"VACUUM {tables}"
                )
            return None

    #: How long an erasure waits for transactions that could still see the erased rows (a
    #: long import or reindex elsewhere in the database can hold one for a minute or more;
    #: erasure is a rare administrative act, so it waits rather than leave the bytes).
    SNAPSHOT_WAIT_SECONDS = 120.0

    def _await_older_snapshots(self, curs: Cursor[DictRow]) -> str:
        """Wait (bounded) until no other session of this database holds a snapshot or a
        transaction id older than the erasure: VACUUM may not remove a row such a
        session could still read, and a write transaction idle between statements holds
        its horizon back by its id alone (its ``backend_xmin`` is NULL), so vacuuming
        earlier would leave the deleted keys' bytes in the heap.  Returns the sessions
        still holding one when the wait ends (``pid 123 (user u)``, ...), or ``""``."""
        curs.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS horizon")
        row = curs.fetchone()
        assert row is not None
        horizon = int(row["horizon"])
        deadline = time.monotonic() + self.SNAPSHOT_WAIT_SECONDS
        while True:
            curs.execute(
                "SELECT pid, usename FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND coalesce(backend_xmin, backend_xid) IS NOT NULL "
                "AND pg_snapshot_xmax(pg_current_snapshot())::text::bigint "
                "- greatest(age(backend_xmin), age(backend_xid)) < %s ORDER BY pid",
                (horizon,),
            )
            found = curs.fetchall()
            if not found:
                return ""
            if time.monotonic() >= deadline:
                return ", ".join(f"pid {r['pid']} (user {r['usename']})" for r in found)
            time.sleep(0.05)

    def count_events(self) -> int:
        """How many entries the store holds."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT COUNT(*) AS n FROM {t}").format(t=self._events))
            row = curs.fetchone()
            assert row is not None
            return int(row["n"])


@contextmanager
def creation_lock(
    host: str,
    port: str,
    dbname: str,
    user: str,
    password: str,
    schema: str,
    create: bool = True,
) -> Iterator[bool]:
    """Serialise the creation of the store's schema and tables between processes, and
    say (yield) whether a caseledger store is in the schema already.

    Concurrent ``CREATE ... IF NOT EXISTS`` statements can fail in PostgreSQL ("tuple
    concurrently updated"), so whoever opens the store holds a session advisory lock,
    keyed by the schema, while the library creates its tables.  A missing schema is
    created only when ``create`` is set (a recording command); whether the store is
    there is read under the lock, so a store half-way through its creation by another
    process is never mistaken for none.
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
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname=%s", (schema or "public",)
            ).fetchone()
            if exists is None:
                if create and schema:
                    conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
                yield False
            else:
                yield store_present(conn, schema or "public")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def store_present(conn: Any, schema: str) -> bool:
    """Whether the schema holds a caseledger store (its ``caseledger_meta`` table, made
    in the same transaction as its other tables); a schema with a ``caseledger_events``
    table but no ``caseledger_meta`` belongs to something else and is refused, since the
    library would add its tables to it."""

    def exists(table: str) -> bool:
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{table}"',)
        ).fetchone()
        return bool(row is not None and row[0])

    if exists("caseledger_meta"):
        return True
    if exists("caseledger_events"):
        raise StoreUnavailable(
            f"schema {schema} is not a caseledger store (it has a caseledger_events table "
            "but no caseledger_meta); it was left unchanged"
        )
    return False


class TolerantCreate:
    """Lets a database user who may only read open an existing store.

    The library creates its tables (and a type and a function) on every open; a user
    without CREATE rights is refused even when everything exists.  Where the tables are
    there already, the refusal is ignored and only the type adapters are registered, so
    inspectors with ``SELECT`` rights can read; their writes are refused by the server.
    """

    datastore: PostgresDatastore
    events_table_name: str
    sql_create_statements: list[Composed]

    def create_table(self) -> None:
        digest = self._statements_digest()
        if self._recorded_digest() == digest:
            # Every statement below has run on this schema as they now are (the owner
            # ran them, and only the owner may write the meta table): skip ~80 DDL
            # round trips that each open would make again to change nothing.
            self.datastore.register_type_adapters()
            return
        try:
            super().create_table()  # type: ignore[misc]
        except Exception as exc:
            if "permission denied" not in str(exc).lower() or not self._table_exists():
                raise
            self.datastore.register_type_adapters()
            return
        self._record_digest(digest)

    def _statements_digest(self) -> bytes:
        """SHA-256 of this recorder's create statements, as they would run on this schema."""
        text = "\n;\n".join(s.as_string(None) for s in self.sql_create_statements)
        return hashlib.sha256(text.encode()).digest()

    def _digest_key(self) -> str:
        return f"ddl:{self.events_table_name}"

    def _meta_table(self) -> Composed:
        return Composed([Identifier(self.datastore.schema, "caseledger_meta")])

    def _recorded_digest(self) -> bytes | None:
        """The digest the store's owner recorded when these statements last ran here
        (none before the meta table exists, or for a store made before digests)."""
        import psycopg

        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                curs.execute(
                    SQL("SELECT value FROM {} WHERE key=%s").format(self._meta_table()),
                    (self._digest_key(),),
                )
            except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
                return None
            row = curs.fetchone()
            return None if row is None else bytes(row["value"])

    def _record_digest(self, digest: bytes) -> None:
        """Record that the statements ran (by whoever may create them: the owner)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "INSERT INTO {} VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                ).format(self._meta_table()),
                (self._digest_key(), digest),
            )

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


if TYPE_CHECKING:
    _SATISFIES: type[AuthorityRecorder] = ReadableLedgerPostgresRecorder  # checked by mypy


class ReadablePostgresSnapshotRecorder(TolerantCreate, PostgresAggregateRecorder):
    """The library's snapshot recorder, openable by users who may only read; snapshots
    are kept through ``caseledger_put_snapshots``, which checks each against the chain."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        snaps = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL("SELECT {}.caseledger_put_snapshots(%b)").format(  # rows in binary
                    Identifier(self.datastore.schema)
                ),
                (snaps,),
            )
        return None


#: What each kind of database user is granted on a store's schema (``docs/security.md``
#: shows these statements for a schema ``northshire``; tests grant exactly these).
GRANT_KINDS = ("reader", "writer", "indexer")

#: The derived read model's tables, which only the indexer (a service role) writes.
INDEX_TABLES = ("case_index", "case_milestones", "case_clocks", "case_index_tracking")


def role_grants(schema: str, role: str, kind: str) -> list[str]:
    """The exact grants for a ``reader`` (inspectors: reads only), a ``writer`` (every
    enrolled recorder: reads, and appends only through the ledger's functions) or the
    ``indexer`` service role (reads, and keeps the cross-case index, a derived read model
    that ``verify`` checks).  No person is granted INSERT, UPDATE or DELETE on any table."""
    if kind not in GRANT_KINDS:
        raise ValueError(f"{kind!r} is not one of {GRANT_KINDS}")
    s = Identifier(schema).as_string(None)
    r = Identifier(role).as_string(None)
    statements = [
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}",
        f"REVOKE ALL ON {s}.caseledger_personal_keys FROM {r}",
        f"REVOKE ALL ON {s}.caseledger_personal_screen FROM {r}",
    ]
    if kind in ("reader", "writer"):  # keys only as the recorded policy allows
        statements.append(f"GRANT EXECUTE ON FUNCTION {s}.caseledger_personal_keys_of(text) TO {r}")
    if kind == "writer":
        statements.append(
            f"GRANT EXECUTE ON FUNCTION {s}.caseledger_append({s}.stored_event_uuid[], jsonb, "
            f"text[], bigint[], text[], bytea[], bytea[], text[], bigint[], bytea[]), "
            f"{s}.caseledger_register_append(jsonb, bytea[], text), "
            f"{s}.caseledger_put_snapshots({s}.stored_event_uuid[]), "
            f"{s}.caseledger_put_screen(text[], bigint[], bytea[], int[], bytea[]), "
            f"{s}.caseledger_personal_screen(text, text[]) TO {r}"
        )
    if kind == "indexer":
        tables = ", ".join(f"{s}.{Identifier(t).as_string(None)}" for t in INDEX_TABLES)
        statements.append(f"GRANT INSERT, UPDATE, DELETE ON {tables} TO {r}")
    return statements
