"""PostgreSQL per-request roles: every pooled connection acts as the request's user; and
what the database lets a user it narrows to their agency read (row security,
``ledger/data/pgauthority.sql``): their entries, screened, and their cases' heads.

Imported only when a ``postgresql://`` store is opened (by
``ledger.application.opening``), so the embedded store never loads a PostgreSQL driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from ledger.errors import StoreUnavailable
from ledger.store.acting import acting_user


def install_role_switch(datastore: PostgresDatastore) -> None:
    """Make every connection ``datastore`` lends act as :func:`~ledger.store.acting.acting_user`.

    Inside :func:`ledger.store.acting.acting_as`, a connection taken from the pool first
    runs ``SET ROLE`` to that user's database role, so every statement (and every
    ``SECURITY DEFINER`` function, which reads the role through ``caseledger_me()``) is
    theirs, with their grants only; before the connection goes back to the pool it runs
    ``RESET ROLE``, and a connection that cannot be reset is closed, so the pool never
    hands a role on to the next request.  Outside such a block nothing changes: the CLI
    acts as its login.  The login role of a server is a member of each user's role with
    NOINHERIT (``docs/hosting.md``): without ``SET ROLE`` it can read nothing but the
    store's meta table."""
    import psycopg
    from psycopg.pq import TransactionStatus

    lend = datastore.get_connection

    @contextmanager
    def get_connection() -> Iterator[Any]:
        role = acting_user()
        with lend() as conn:
            if role is None:
                yield conn
                return
            try:
                conn.execute(SQL("SET ROLE {}").format(Identifier(role)))
            except psycopg.Error as exc:
                raise StoreUnavailable(
                    f"the database refuses to act as {role}: {str(exc).strip()} (give the "
                    f"server's login role membership of {role}: docs/hosting.md)",
                    code="cannot-act-as",
                    params={"user": role},
                ) from None
            try:
                yield conn
            finally:
                try:
                    if conn.info.transaction_status != TransactionStatus.IDLE:
                        conn.rollback()
                    conn.execute("RESET ROLE")
                except psycopg.Error:
                    conn.close()  # the pool discards a closed connection: no role survives

    datastore.get_connection = get_connection  # type: ignore[method-assign]


def seen_entries(datastore: PostgresDatastore, case: UUID | None) -> list[tuple[int, bytes, bool]]:
    """``(position, state, rebuilt)`` of the entries the acting user may read when the
    policy narrows them to their agency, of one case (its aggregate id) or of all, in
    stored order, as the database chooses them (``caseledger_seen_entries`` in
    ``ledger/data/pgauthority.sql``): row security hides the bodies that hold
    personal-data commitments, so they come from this function with the commitments
    taken out (``rebuilt``: re-serialised by the database, not canonical JSON).  Empty
    for a user who reads every entry (they read the table itself)."""
    with datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(
            SQL(
                "SELECT notification_id, state, rebuilt FROM {}.caseledger_seen_entries(%s)"
            ).format(Identifier(datastore.schema)),
            (case,),
            binary=True,
        )
        return [
            (int(row["notification_id"]), bytes(row["state"]), bool(row["rebuilt"]))
            for row in curs.fetchall()
        ]


def narrowed_case(
    datastore: PostgresDatastore, case: UUID
) -> tuple[list[tuple[int, bytes, bool]], tuple[int, str, datetime, str] | None] | None:
    """What a user the database narrows to their agency may know of one case, to check
    an entry they record: the entries they may read (as :func:`seen_entries`) and the
    case's head (its last entry's number, hash and time, and its regime; None: the case
    is not theirs, or not there).  None when the database does not narrow them."""
    schema = Identifier(datastore.schema)
    with datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(SQL("SELECT {}.caseledger_sees_all() AS all").format(schema))
        row = curs.fetchone()
        if row is None or row["all"]:
            return None
        curs.execute(
            SQL("SELECT seq, hash, recorded_at, regime FROM {}.caseledger_case_head(%s)").format(
                schema
            ),
            (case,),
        )
        found = curs.fetchone()
    head = (
        None
        if found is None
        else (int(found["seq"]), str(found["hash"]), found["recorded_at"], str(found["regime"]))
    )
    return seen_entries(datastore, case), head


__all__ = ["install_role_switch", "narrowed_case", "seen_entries"]
