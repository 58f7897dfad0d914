"""PostgreSQL per-request roles: every pooled connection acts as the request's user.

Imported only when a ``postgresql://`` store is opened (by
``ledger.application.opening``), so the embedded store never loads a PostgreSQL driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


__all__ = ["install_role_switch"]
