"""Who a request acts as.

Local mode: the OS user running the server, exactly as the CLI acts (the store's
``identity()``: the OS user on SQLite, the session user on PostgreSQL).  Host mode: the
user named in the trusted header by the reverse proxy that authenticated them, believed
only when the request's TCP peer is one of the configured proxy addresses (uvicorn is run
without its proxy-header rewriting, so the peer is the connection's own), and mapped to
the enrolment register: a name the register does not hold is refused (403) before any
page is asked.  Every request of a host-mode server then runs inside
:func:`ledger.api.acting_as` for that user, so the policy decides what they may record and,
on PostgreSQL, the database's own rules apply to their role (``docs/hosting.md``); the read
facades ask the store who acts and narrow what they answer to what the policy lets that user
see (``projections/queries/visibility.py``), so the pages need not pass the reader on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from cli.web.config import WebConfig
from ledger import api as ledger_api
from ledger.errors import StoreUnavailable


@dataclass(frozen=True)
class Identity:
    """The person a request acts for."""

    name: str
    """Their login (local mode) or the name the proxy gave (host mode)."""
    mode: str
    """``local`` or ``host``."""
    roles: tuple[str, ...] = field(default=())
    """Their enrolled roles (none: not enrolled, which only local mode lets through)."""
    agency: str | None = None
    """The agency they are enrolled for, if any."""

    def to_json(self) -> dict[str, Any]:
        """As shown in a page's JSON and footer."""
        return {
            "name": self.name,
            "mode": self.mode,
            "roles": list(self.roles),
            "agency": self.agency,
        }


class Refused(Exception):
    """A request the server will not serve: who sent it cannot be told, or is nobody the
    store knows.  ``status`` is the HTTP status of the page that says so."""

    def __init__(self, status: int, title: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.title = title
        self.reason = reason


def peer_trusted(peer: str | None, proxies: tuple[str, ...]) -> bool:
    """Whether the TCP peer ``peer`` is one of the proxy addresses or networks."""
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for proxy in proxies:
        try:
            if address in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue
    return False


def _enrolment(ledger: ledger_api.CaseLedger, name: str) -> ledger_api.EnrolledUser | None:
    for user in ledger_api.list_users(ledger).users:
        if user.user == name:
            return user
    return None


def identify(request: Request, config: WebConfig) -> Identity:
    """The identity ``request`` acts as under ``config``, or :class:`Refused`.  Local mode:
    the server's user, asked of the store once and kept (on PostgreSQL it is a query);
    their roles are read by the pages that need them (:func:`enrolment`).  Host mode: the
    proxy's user, whose enrolment is read for every request, so a user removed from the
    register is refused at once."""
    state = request.app.state
    if not config.host_mode:
        known: Identity | None = getattr(state, "local_identity", None)
        if known is None:
            known = Identity(state.ledger().identity(), "local")
            state.local_identity = known
        return known
    ledger = state.ledger()
    peer = request.client.host if request.client else None
    if not peer_trusted(peer, config.proxy_addresses):
        raise Refused(
            403,
            "Not through the proxy",
            f"This server answers only through its authenticating proxy; this request came "
            f"from {peer or 'an unknown address'}, which is not one of its proxies.",
        )
    name = request.headers.get(config.trusted_header, "").strip()
    if not name:
        raise Refused(
            400,
            "Nobody named",
            f"The proxy did not name the user (no {config.trusted_header} header): sign in "
            "again, or ask the server's administrator to check the proxy's set-up.",
        )
    if len(name) > 63 or not name.isprintable():
        raise Refused(403, "Not enrolled", "The name the proxy gave is not a user's name.")
    try:
        with ledger_api.acting_as(ledger, name):
            enrolled = _enrolment(ledger, name)
    except StoreUnavailable as error:
        if error.code != "cannot-act-as":
            raise
        enrolled = None  # on PostgreSQL: no database role the server may act as
    if enrolled is None:
        raise Refused(
            403,
            "Not enrolled",
            f"{name} is not enrolled in this store: ask its administrator to enrol you "
            "(caseledger users add).",
        )
    return Identity(name, "host", enrolled.roles, enrolled.agency)


def enrolment(request: Request, identity: Identity) -> tuple[tuple[str, ...], str | None]:
    """The roles and agency ``identity`` is enrolled with (none: not enrolled)."""
    if identity.mode == "host":
        return identity.roles, identity.agency
    enrolled = _enrolment(request.app.state.ledger(), identity.name)
    return (enrolled.roles, enrolled.agency) if enrolled is not None else ((), None)


@contextmanager
def acting(request: Request, identity: Identity) -> Iterator[None]:
    """The block acts as ``identity``: in host mode, as that user through the store
    (:func:`ledger.api.acting_as`); in local mode as the server's own user."""
    if identity.mode != "host":
        with nullcontext():
            yield
        return
    with ledger_api.acting_as(request.app.state.ledger(), identity.name):
        yield
