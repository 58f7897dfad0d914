"""Who a request acts as.

Local mode: the OS user running the server, exactly as the CLI acts (the store's
``identity()``: the OS user on SQLite, the session user on PostgreSQL).  Host mode (added
with the forms): the user named by the reverse proxy's trusted header, mapped to the
enrolment register.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from cli.web.config import WebConfig


@dataclass(frozen=True)
class Identity:
    """The person a request acts for."""

    name: str
    """Their login (local mode) or the name the proxy gave (host mode)."""
    mode: str
    """``local`` or ``host``."""

    def to_json(self) -> dict[str, str]:
        """As shown in a page's JSON and footer."""
        return {"name": self.name, "mode": self.mode}


def identify(request: Request, config: WebConfig) -> Identity:
    """The identity ``request`` acts as under ``config`` (local mode: the server's user,
    asked of the store once and kept: on PostgreSQL it is a query)."""
    state = request.app.state
    known: Identity | None = getattr(state, "local_identity", None)
    if known is None:
        known = Identity(state.ledger().identity(), "local")
        state.local_identity = known
    return known
