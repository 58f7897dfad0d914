"""Running the web view: ``caseledger serve`` checks where it may listen, then runs uvicorn.

This is presentation, not a question or a record, so it is no function of the facades
(``tests/test_api_coverage.py`` names it as the one documented exemption): every page it
serves calls them (:mod:`cli.web.pages`).
"""

from __future__ import annotations

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
    proxy_addresses: Sequence[str] = (),
) -> WebConfig:
    """The server's settings, refused (a usage error, exit 2) where it may not listen:
    anywhere but the loopback address outside host mode."""
    config = WebConfig(
        store=store,
        host=host,
        port=port,
        host_mode=host_mode,
        trusted_header=trusted_header or TRUSTED_HEADER,
        proxy_addresses=tuple(proxy_addresses),
    )
    problem = config.binding_problem()
    if problem is not None:
        raise UsageError(problem, field="port" if "port number" in problem else "host")
    return config


def serve(
    store: str | None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    host_mode: bool = False,
    trusted_header: str | None = None,
    proxy_addresses: Sequence[str] = (),
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
        proxy_addresses=proxy_addresses,
    )
    config.open().close()  # refuse a missing or foreign store now, not on the first page
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")
