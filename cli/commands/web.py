"""``caseledger serve``: the web view for chairs, partners and inspectors (issue 17).

Starlette and uvicorn are imported only when the command runs (``tests/test_startup.py``).
"""

from __future__ import annotations

import typer

from cli.common import app, session

EPILOG = (
    "Examples: caseledger serve  |  caseledger serve --port 8000  |  "
    "caseledger --store caseledger-demo.db serve (then open http://127.0.0.1:8080/)  |  "
    "caseledger serve --host-mode --host 10.0.0.7 --trusted-proxy 10.0.0.5"
)


@app.command(epilog=EPILOG)
def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="The address to listen on. Local mode listens on this machine only "
        "(127.0.0.1, ::1); any other address needs host mode (docs/hosting.md).",
    ),
    port: int = typer.Option(8080, "--port", help="The port to listen on."),
    host_mode: bool = typer.Option(
        False,
        "--host-mode",
        help="Serve other people behind an authenticating reverse proxy: each request acts "
        "as the enrolled user the proxy names in --trusted-header, believed only from a "
        "--trusted-proxy address (docs/hosting.md).",
    ),
    trusted_header: str = typer.Option(
        "X-Remote-User",
        "--trusted-header",
        help="Host mode: the request header in which the proxy names the signed-in user.",
    ),
    trusted_proxy: list[str] = typer.Option(
        [],
        "--trusted-proxy",
        help="Host mode: an address (or network, 10.0.0.0/24) the proxy connects from; "
        "repeat for each. Requests from anywhere else are refused.",
    ),
) -> None:
    """Serve the web view of the store: the desk, each case, why, clocks and delays, and
    bundle verification, as pages (scripts off) and as JSON, acting as you."""
    # lazy: the web view (starlette, uvicorn, the templates) costs ~150 ms, which no other
    # command needs
    from cli.web import server

    server.serve(
        session(ctx).store,
        host=host,
        port=port,
        host_mode=host_mode,
        trusted_header=trusted_header,
        trusted_proxy=trusted_proxy,
    )
