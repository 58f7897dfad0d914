"""What ``caseledger serve`` tells the web app: the store, where to listen, and who is who.

Local mode (the default) listens on the loopback address only and acts as the OS user, as
the CLI does.  Host mode (``host_mode``) is for a server behind a reverse proxy that has
authenticated each user: the proxy names the user in ``trusted_header``, accepted only from
``proxy_addresses`` (``docs/hosting.md``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from ledger import api as ledger_api

#: The largest bundle ``/verify`` accepts, in bytes (a demo bundle is well under 1 MiB; a
#: bundle of every case of a large store is exported and checked at the command line).
MAX_UPLOAD_BYTES: Final = 64 * 1024 * 1024

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
TRUSTED_HEADER: Final = "X-Remote-User"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebConfig:
    """The server's settings.  ``store`` is resolved as ``--store`` is (None:
    ``CASELEDGER_STORE``, then ``caseledger.db`` here); ``opener`` opens it instead when
    given (tests, the benchmark), and is called once, on the first request that reads."""

    store: str | None = None
    opener: Callable[[], ledger_api.CaseLedger] | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    host_mode: bool = False
    """Behind an authenticating reverse proxy: users come from ``trusted_header``."""
    trusted_header: str = TRUSTED_HEADER
    """Host mode: the request header in which the proxy names the authenticated user."""
    proxy_addresses: tuple[str, ...] = field(default_factory=tuple)
    """Host mode: the addresses (or networks, ``10.0.0.0/24``) the proxy connects from;
    the trusted header is accepted from these only."""
    max_upload_bytes: int = MAX_UPLOAD_BYTES

    def open(self) -> ledger_api.CaseLedger:
        """Open the store (an existing one only: the web view never creates a store)."""
        if self.opener is not None:
            return self.opener()
        return ledger_api.open_store(self.store)

    def binding_problem(self) -> str | None:
        """Why the server may not listen where it was told (None: it may): off the loopback
        address only in host mode, where a proxy says who each user is."""
        if not self.host_mode and not is_loopback(self.host):
            return (
                f"binding to {self.host} would let anyone who can reach it act as "
                f"the OS user; local mode listens on 127.0.0.1 only (give --host 127.0.0.1), "
                f"and serving others needs host mode behind an authenticating proxy "
                f"(docs/hosting.md)"
            )
        if not 0 < self.port < 65536:
            return f"{self.port} is not a port number (1 to 65535)"
        return None
