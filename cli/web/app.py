"""The Starlette application of ``caseledger serve``: routes, security headers, errors.

:func:`create_app` builds it from a :class:`~cli.web.config.WebConfig`.  The store is opened
once, on the first request that reads it, and closed when the server stops; every page then
asks the read facade (:mod:`cli.web.pages`).  Every response carries a strict
Content-Security-Policy (no script at all, styles from this server's own sheet only),
frame denial, ``nosniff`` and a referrer policy: the pages hold special-category data.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cli.web import forms, pages
from cli.web.config import WebConfig
from cli.web.identity import Refused, acting, identify
from cli.web.pages import Endpoint, TooLarge
from cli.web.respond import error_response, respond
from ledger import api as ledger_api
from ledger.errors import LedgerError, StoreUnavailable

STATIC: Final = Path(__file__).with_name("static")

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

#: The headers every response carries.
SECURITY_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


class SecurityHeaders:
    """ASGI middleware that adds :data:`SECURITY_HEADERS` to every HTTP response
    (replacing any the route set), static files and errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in SECURITY_HEADERS}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + list(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Store:
    """The store, opened once on first use (from any of the server's threads) and
    closed when the server stops."""

    def __init__(self, config: WebConfig) -> None:
        self._config = config
        self._ledger: ledger_api.CaseLedger | None = None
        self._lock = threading.Lock()

    def __call__(self) -> ledger_api.CaseLedger:
        with self._lock:
            if self._ledger is None:
                self._ledger = self._config.open()
            return self._ledger

    def close(self) -> None:
        """Close the store if it was opened."""
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None


def refused_response(request: Request, status: int, title: str, reason: str) -> Response:
    """A request the server will not serve (who sent it, or a form's token), as a page
    or JSON saying why."""
    problems = [{"field": None, "reason": reason}]
    data = {"error": title, "status": status, "problems": problems}
    return respond(request, "error.html", {**data, "title": title}, data, status)


def _refused(request: Request, error: Exception) -> Response:
    """A refusal the page raised, as a page (or JSON)."""
    if isinstance(error, TooLarge):
        limit = request.app.state.config.max_upload_bytes // (1024 * 1024)
        problems = [
            {"field": "bundle", "reason": f"is larger than this server takes ({limit} MiB)"}
        ]
        data = {"error": "Too large", "status": 413, "problems": problems}
        return respond(request, "error.html", {**data, "title": "Too large"}, data, 413)
    assert isinstance(error, LedgerError)
    return error_response(request, error)


def _with_identity(
    endpoint: Endpoint, config: WebConfig
) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` with the request's identity found first (kept on ``request.state``)
    and the ledger's refusals answered as pages; a plain function runs in a worker thread
    (the store's calls block)."""

    async def page(request: Request) -> Response:
        try:
            identity = await run_in_threadpool(identify, request, config)
            request.state.identity = identity
            with acting(request, identity):  # the worker threads inherit who acts
                if inspect.iscoroutinefunction(endpoint):
                    return cast("Response", await endpoint(request))
                return cast("Response", await run_in_threadpool(endpoint, request))
        except Refused as refusal:
            return refused_response(request, refusal.status, refusal.title, refusal.reason)
        except StoreUnavailable as error:
            if error.code != "cannot-act-as":
                return _refused(request, error)
            return refused_response(request, 403, "Not allowed", str(error))
        except (LedgerError, TooLarge) as error:
            return _refused(request, error)

    page.__name__ = endpoint.__name__
    page.__doc__ = endpoint.__doc__
    return page


def _posted(
    endpoint: Callable[[Request, FormData], Response], config: WebConfig
) -> Callable[[Request], Awaitable[Response]]:
    """A form's POST ``endpoint`` as a page of :func:`_with_identity`: the submitted form
    read first (the CSRF middleware has checked its token), then the endpoint run in a
    worker thread (the facades block) as the request's user."""

    async def posted(request: Request) -> Response:
        data = await request.form(max_files=10, max_fields=2000)
        try:
            return await run_in_threadpool(endpoint, request, data)
        finally:
            await data.close()

    posted.__name__ = endpoint.__name__
    posted.__doc__ = endpoint.__doc__
    return _with_identity(posted, config)


def _not_found(request: Request, exc: Exception) -> Response:
    """An unknown address (or a method a page does not take), as a page or JSON."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    problems = [{"field": None, "reason": f"nothing is served at {request.url.path}"}]
    if status == 405:
        problems = [{"field": None, "reason": f"{request.method} is not taken here"}]
    title = "Not found" if status == 404 else "That cannot be done"
    data = {"error": title, "status": status, "problems": problems}
    return respond(request, "error.html", {**data, "title": title}, data, status)


def create_app(config: WebConfig) -> Starlette:
    """The web view over the store of ``config``: the read pages of :mod:`cli.web.pages`,
    the style sheet under ``/static``, and security headers on every response."""
    store = Store(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    routes: list[BaseRoute] = [
        Route(path, _with_identity(endpoint, config), methods=methods, name=name)
        for path, endpoint, methods, name in (*pages.ROUTES, *forms.ROUTES)
    ]
    routes += [
        Route(path, _posted(endpoint, config), methods=methods, name=name)
        for path, endpoint, methods, name in forms.POST_ROUTES
    ]
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC), name="static"))

    def refuse_post(scope: MutableMapping[str, Any], status: int, reason: str) -> Response:
        title = "Refused" if status == 403 else "Too large"
        return refused_response(Request(scope), status, title, reason)

    guard = forms.CsrfGuard(secure=config.host_mode)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(forms.CsrfMiddleware, guard=guard, refuse=refuse_post),
        ],
        exception_handlers={HTTPException: _not_found},
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.ledger = store
    return app
