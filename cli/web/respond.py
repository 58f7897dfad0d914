"""One answer, two forms: the page for people, or its JSON for programs.

A request whose ``Accept`` header prefers ``application/json`` (over ``text/html``) gets the
facade's ``to_json()`` answer; every other request gets the rendered page.  Errors are
answered the same way: a page (or a JSON object) naming the field that was wrong, with
400 for a bad parameter and 404 for what the store does not hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import jinja2
import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ledger.errors import InputError, LedgerError, each_problem

TEMPLATES: Final = Path(__file__).with_name("templates")

_ENV: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def words(value: object) -> str:
    """A name from the record (``gathering-information``, ``rapid_review``) in words."""
    return "" if value is None else str(value).replace("_", " ").replace("-", " ")


def days_left(value: int | None) -> str:
    """Working days left on a deadline, or over it, in words."""
    if value is None:
        return ""
    if value < 0:
        return f"{-value} working day{'s' if value != -1 else ''} over"
    return f"{value} working day{'s' if value != 1 else ''} left"


def limit(value: int | None, unit: str | None) -> str:
    """A clock's limit in words, singular or plural as the number needs (``1 calendar
    month``, ``15 working days``), as the export's report writes it."""
    if value is None or not unit:
        return ""
    text = words(unit)
    return f"{value} {text.removesuffix('s') if value == 1 else text}"


_ENV.filters["words"] = words
_ENV.filters["limit"] = limit
_ENV.filters["days_left"] = days_left


def _quality(accept: str, kind: str) -> float:
    """The q-value ``accept`` gives the media type ``kind`` (0 when not listed)."""
    best = 0.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        if media not in (kind, kind.split("/")[0] + "/*", "*/*"):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        exact = 0.001 if media == kind else 0.0  # the exact type wins a tie with a wildcard
        best = max(best, q + exact)
    return best


def wants_json(request: Request) -> bool:
    """Whether the client asked for JSON rather than HTML."""
    accept = request.headers.get("accept", "")
    as_json = _quality(accept, "application/json")
    return as_json > 0 and as_json > _quality(accept, "text/html")


def json_response(value: Any, status: int = 200) -> Response:
    """``value`` as JSON (orjson: dates and datetimes in ISO 8601, as ``--json`` prints)."""
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def render(request: Request, template: str, context: dict[str, Any]) -> str:
    """The page ``template`` rendered with ``context`` and what every page shows."""
    base = {
        "request": request,
        "identity": getattr(request.state, "identity", None),
        "page": "",
        # every form's CSRF token (cli.web.forms.CsrfMiddleware puts it on the request)
        "csrf_token": request.scope.get("state", {}).get("csrf_token", ""),
    }
    return _ENV.get_template(template).render({**base, **context})


def respond(
    request: Request,
    template: str,
    context: dict[str, Any],
    data: Any,
    status: int = 200,
) -> Response:
    """The page, or ``data`` (the facade's ``to_json()``) when JSON is asked for."""
    if wants_json(request):
        return json_response(data, status)
    return HTMLResponse(render(request, template, context), status_code=status)


def error_status(error: LedgerError) -> int:
    """404 for a case the store does not hold, 400 for other bad input, 500 else."""
    if isinstance(error, InputError):
        if error.field == "case" and "unknown" in error.reason:
            return 404
        return 400
    return 500


def error_response(request: Request, error: LedgerError) -> Response:
    """A refusal as a page (or JSON) naming each field that was wrong and why."""
    status = error_status(error)
    if isinstance(error, InputError):
        problems = [{"field": p.field, "reason": p.reason} for p in each_problem(error)]
    else:
        problems = [{"field": None, "reason": str(error)}]
    title = "Not found" if status == 404 else "That cannot be shown"
    data = {"error": title, "status": status, "problems": problems}
    context = {"title": title, "status": status, "problems": problems}
    return respond(request, "error.html", context, data, status)
