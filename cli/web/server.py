"""Running the web view: ``caseledger serve`` checks where it may listen, then runs uvicorn.

This is presentation, not a question or a record, so it is no function of the facades
(``tests/test_api_coverage.py`` names it as the one documented exemption): every page it
serves calls them (:mod:`cli.web.pages`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import uvicorn

from cli.web.app import create_app
from cli.web.config import DEFAULT_HOST, DEFAULT_PORT, TRUSTED_HEADER, WebConfig
from ledger.errors import UsageError


def checked_config(
    store: str | None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    host_mode: bool = False,
    trusted_header: str | None = None,
    trusted_proxy: Sequence[str] = (),
) -> WebConfig:
    """The server's settings, refused (a usage error, exit 2) where it may not listen
    (anywhere but the loopback address outside host mode) or where host mode could not
    tell who is who (no proxy address, one that is no address, a header that is no
    header name)."""
    config = WebConfig(
        store=store,
        host=host,
        port=port,
        host_mode=host_mode,
        trusted_header=trusted_header or TRUSTED_HEADER,
        proxy_addresses=tuple(trusted_proxy),
    )
    problem = config.binding_problem()
    if problem is not None:
        raise UsageError(problem, field="port" if "port number" in problem else "host")
    if not host_mode and trusted_proxy:
        raise UsageError(
            "proxy addresses are only for host mode, which this server is not in",
            field="trusted_proxy",
        )
    if host_mode:
        if not trusted_proxy:
            raise UsageError(
                "host mode needs the address of the proxy that authenticates users "
                "(requests from anywhere else are refused)",
                field="trusted_proxy",
            )
        for proxy in trusted_proxy:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise UsageError(
                    f"{proxy!r} is not an IP address or network (10.0.0.5, 10.0.0.0/24)",
                    field="trusted_proxy",
                ) from None
        name = config.trusted_header
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise UsageError(f"{name!r} is not a header name", field="trusted_header")
    return config


def serve(
    store: str | None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    host_mode: bool = False,
    trusted_header: str | None = None,
    trusted_proxy: Sequence[str] = (),
) -> None:
    """Serve the web view of ``store`` on ``host:port`` until interrupted.  The store must
    exist (the web view never creates one): it is opened before listening, so a missing
    store is refused (exit 4) before any request."""
    config = checked_config(
        store,
        host=host,
        port=port,
        host_mode=host_mode,
        trusted_header=trusted_header,
        trusted_proxy=trusted_proxy,
    )
    config.open().close()  # refuse a missing or foreign store now, not on the first page
    # proxy_headers off: the peer address host mode trusts is the connection's own, never
    # one a client wrote into X-Forwarded-For
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="info",
        proxy_headers=False,
        server_header=False,
    )
