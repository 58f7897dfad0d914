"""Who the store acts as for the current request: a web server's per-request identity.

The command line acts as the person who runs it (the OS user on SQLite, the database
session user on PostgreSQL).  A server that answers many people acts as each in turn:
inside :func:`acting_as`, the ledger's identity is that person's name, and on PostgreSQL
every connection the store takes from its pool runs ``SET ROLE`` to that person's
database role first and ``RESET ROLE`` before it goes back (``ledger.store.postgres``),
as PostgREST does, so the database's own checks apply to them as to the CLI.

The name is kept in a :class:`~contextvars.ContextVar`: each thread and each asyncio task
has its own, so two requests served at once never see each other's identity, and nothing
of it survives the ``with`` block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ledger.errors import UsageError

_ACTING_AS: ContextVar[str | None] = ContextVar("caseledger_acting_as", default=None)

#: The longest name PostgreSQL keeps for a role (NAMEDATALEN - 1 bytes).
MAX_ROLE_NAME = 63


def acting_user() -> str | None:
    """The name the store acts as here (None: the process's own identity)."""
    return _ACTING_AS.get()


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Act as ``name`` (an enrolled user; on PostgreSQL also their database role) for
    the block; a name that cannot be a role (empty, too long, a NUL) is refused."""
    if not name or "\x00" in name or len(name.encode("utf-8")) > MAX_ROLE_NAME:
        raise UsageError(f"{name!r} cannot be a user's name", field="user")
    token = _ACTING_AS.set(name)
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


__all__ = ["MAX_ROLE_NAME", "acting_as", "acting_user"]
