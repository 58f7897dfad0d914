"""The read pages: each a few calls to :mod:`projections.api`, rendered or given as JSON.

Every parameter a page takes is the facade's own option of the same name (``as_of``,
``on``, ``regime``, ``status``...), passed through as given: the facade checks it and a
mistake comes back as a :class:`~ledger.errors.UsageError` naming the field, which
:func:`cli.web.respond.error_response` shows as a 400 page.  No page holds logic of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from cli.web.respond import respond
from ledger import api as ledger_api
from projections import api


def _ledger(request: Request) -> ledger_api.CaseLedger:
    """The store the server reads (opened on first use)."""
    store: Callable[[], ledger_api.CaseLedger] = request.app.state.ledger
    return store()


def _param(request: Request, name: str) -> str | None:
    """A query parameter, None when absent or empty (an empty date box means "now")."""
    value = request.query_params.get(name, "").strip()
    return value or None


def desk(request: Request) -> Response:
    """``/``: every open case by urgency (``status``), and every open deadline, overdue
    clocks and replies first (``due``)."""
    led = _ledger(request)
    on = _param(request, "on")
    cases = api.status(led, on=on, sort="urgency")
    deadlines = api.due(led, on=on)
    data = {"cases": cases.to_json(), "due": deadlines.to_json()}
    context = {"title": "Desk", "cases": cases, "due": deadlines, "on": on or ""}
    return respond(request, "desk.html", context, data)


#: Every page: its path, its function, the methods it takes and its name.
ROUTES: Final[tuple[tuple[str, Callable[[Request], Response], list[str], str], ...]] = (
    ("/", desk, ["GET"], "desk"),
)

__all__ = ["ROUTES", "desk"]
