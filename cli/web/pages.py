"""The read pages: each a few calls to :mod:`projections.api`, rendered or given as JSON.

Every parameter a page takes is the facade's own option of the same name (``as_of``,
``on``, ``regime``, ``status``...), passed through as given: the facade checks it, and a
mistake comes back as a :class:`~ledger.errors.UsageError` naming the field, which
:func:`cli.web.respond.error_response` shows as a 400 page.  No page holds logic of its
own: what a page adds is grouping for the eye (the agencies' entries together) and words.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from python_multipart.exceptions import MultipartParseError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from cli.web.config import WebConfig
from cli.web.respond import respond
from ledger import api as ledger_api
from ledger.errors import UsageError
from projections import api

#: The entry types a case page groups, each under its heading (the catalogue's names).
AGENCY_TYPES: Final = ("InformationReceived", "InformationDeclined", "AgencyViewGiven")
DISCUSSION_TYPES: Final = ("DiscussionHeld", "RecommendationMade")
PANEL_TYPES: Final = ("PanelResponded",)
DECLINED_TYPE: Final = "InformationDeclined"
#: The longest page number a page takes (more digits would be past any store's last page,
#: and Python refuses to read numbers of thousands of digits).
MOST_PAGE_DIGITS: Final = 9

AS_OF_ON: Final = (
    "“As the record stood on” shows only what had been recorded by then (what a reader "
    "could have seen that day); “as the world was on” shows what had happened by then, "
    "including what was recorded later, with clocks measured to that day."
)


def _ledger(request: Request) -> ledger_api.CaseLedger:
    """The store the server reads (opened on first use)."""
    store: Callable[[], ledger_api.CaseLedger] = request.app.state.ledger
    return store()


def _param(request: Request, name: str) -> str | None:
    """A query parameter, None when absent or empty (an empty date box means "now")."""
    value = request.query_params.get(name, "").strip()
    return value or None


def _page(request: Request, name: str) -> int:
    """The page number parameter ``name`` (1 when absent), a mistake named as the field."""
    text = _param(request, name)
    if text is None:
        return 1
    if not (text.isascii() and text.isdigit()) or len(text) > MOST_PAGE_DIGITS or int(text) < 1:
        raise UsageError(f"must be a page number such as 2, not {text!r}", field=name)
    return int(text)


def _per_page(request: Request) -> int:
    """The ``per_page`` parameter (:data:`projections.api.PER_PAGE` when absent); the
    facade checks its range, naming the field."""
    text = _param(request, "per_page")
    if text is None:
        return api.PER_PAGE
    if not (text.isascii() and text.isdigit()) or len(text) > MOST_PAGE_DIGITS:
        raise UsageError(f"must be a number of rows such as 50, not {text!r}", field="per_page")
    return int(text)


def _pager(request: Request, name: str, paging: api.Paging | None) -> dict[str, Any]:
    """``paging`` (from the facade) with the address of each page it links to: this
    page's address with the parameter ``name`` changed (every other parameter kept, so
    the filters and the other list's page hold)."""
    assert paging is not None  # the page asked the facade for a page

    def link(number: int | None) -> str | None:
        if number is None:
            return None
        url = request.url.include_query_params(**{name: number})
        return f"{url.path}?{url.query}"

    return {
        **paging.to_json(),
        "first_link": link(1),
        "previous_link": link(paging.previous_page),
        "next_link": link(paging.next_page),
        "last_link": link(paging.pages),
    }


def desk(request: Request) -> Response:
    """``/``: the open cases by urgency (``status``), and the open deadlines, overdue
    clocks and replies first (``due``), each a page at a time (``page`` and
    ``due_page``, ``per_page`` rows a page: :data:`projections.api.PER_PAGE` unless
    asked)."""
    led = _ledger(request)
    on = _param(request, "on")
    page, due_page, per_page = (
        _page(request, "page"),
        _page(request, "due_page"),
        _per_page(request),
    )
    cases = api.status(led, on=on, sort="urgency", page=page, per_page=per_page)
    deadlines = api.due(led, on=on, page=due_page, per_page=per_page)
    paging = {"cases": _pager(request, "page", cases.paging)}
    paging["due"] = _pager(request, "due_page", deadlines.paging)
    data = {"cases": cases.to_json(), "due": deadlines.to_json(), "paging": paging}
    context = {"title": "Desk", "cases": cases, "due": deadlines, "on": on or ""}
    context.update(cases_pages=paging["cases"], due_pages=paging["due"])
    return respond(request, "desk.html", context, data)


def case(request: Request) -> Response:
    """``/cases/{case}``: what a chair needs on one screen, as the record stood on
    ``as_of`` and the world was on ``on``: where it stands (``status``), what is due
    (``due``), the decision and its reasons (``why``), the clocks, the QM2 answers
    (``quality``), every entry (``timeline``) and its chart."""
    led = _ledger(request)
    ref = request.path_params["case"]
    as_of, on = _param(request, "as_of"), _param(request, "on")
    where = api.status(led, ref, as_of=as_of, on=on)
    why = api.why(led, ref, as_of=as_of, on=on, full=True)
    line = api.timeline(led, ref, as_of=as_of, on=on, full=True)
    clocks = api.clocks(led, ref, as_of=as_of, on=on)
    deadlines = api.due(led, case=ref, as_of=as_of, on=on)
    quality = api.quality(led, ref, as_of=as_of, on=on)
    chart = api.timeline_chart(line, clocks)
    data = {
        "status": where.to_json(),
        "due": deadlines.to_json(),
        "why": why.to_json(),
        "clocks": clocks.to_json(),
        "quality": quality.to_json(),
        "timeline": line.to_json(),
    }
    by_ref = {e.ref: e for e in line.entries}
    context = {
        "title": f"Case {ref}",
        "ref": ref,
        "row": where.to_json(),
        "due": deadlines,
        "why": why,
        "answer": why.answer,
        "line": line,
        "by_ref": by_ref,
        "clocks": clocks,
        "quality": quality,
        "chart_svg": chart.svg("timeline"),
        "agency_entries": [e for e in line.entries if e.type in AGENCY_TYPES],
        "declined": [e for e in line.entries if e.type == DECLINED_TYPE],
        "discussion": [e for e in line.entries if e.type in DISCUSSION_TYPES],
        "panel": [e for e in line.entries if e.type in PANEL_TYPES],
        "as_of": as_of or "",
        "on": on or "",
        "explain": AS_OF_ON,
        "criterion_words": api.criterion_words,
        "factor_words": api.factor_words,
        "clock_words": api.clock_words,
    }
    return respond(request, "case.html", context, data)


def why(request: Request) -> Response:
    """``/cases/{case}/why``: the decision in force as the record stood on ``as_of``,
    what was known then, what it relied on, what was learned since, and the flags."""
    led = _ledger(request)
    ref = request.path_params["case"]
    as_of, on = _param(request, "as_of"), _param(request, "on")
    report = api.why(led, ref, as_of=as_of, on=on, full=True)
    context = {
        "title": f"Why: case {ref}",
        "ref": ref,
        "why": report,
        "answer": report.answer,
        "as_of": as_of or "",
        "on": on or "",
        "explain": AS_OF_ON,
        "criterion_words": api.criterion_words,
        "factor_words": api.factor_words,
    }
    return respond(request, "why.html", context, report.to_json())


def _year(request: Request) -> int | None:
    """The ``year`` filter as a number (a year that is not one is named as the field)."""
    text = _param(request, "year")
    if text is None:
        return None
    if not text.isdigit():
        raise UsageError(f"must be a year such as 2026, not {text!r}", field="year")
    return int(text)


def clocks(request: Request) -> Response:
    """``/clocks``: every case's statutory clocks, filtered by regime, clock, the year
    it started and status (``clock_table``), drawn as counts per clock (of every
    matching clock) and listed a page at a time (``page``, ``per_page``)."""
    led = _ledger(request)
    statuses = [s for s in request.query_params.getlist("status") if s]
    table = api.clock_table(
        led,
        regime=_param(request, "regime"),
        clock=_param(request, "clock"),
        year=_year(request),
        status=statuses or None,
        as_of=_param(request, "as_of"),
        on=_param(request, "on"),
        page=_page(request, "page"),
        per_page=_per_page(request),
    )
    counts = table.counts()
    paging = _pager(request, "page", table.paging)
    data = {
        "clocks": table.to_json(),
        "counts": {name: by_status for name, by_status in counts},
        "paging": paging,
    }
    context = {
        "title": "Clocks and delays across cases",
        "table": table,
        "counts": counts,
        "most": max((sum(c.values()) for _, c in counts), default=0),
        "regimes": [p.regime for p in api.rules().packs],
        "clock_names": api.clock_names(),
        "statuses": ("running", "met", "overdue", "late", "withdrawn"),
        "chosen": {
            "regime": table.regime or "",
            "clock": table.clock or "",
            "year": "" if table.year is None else str(table.year),
            "status": set(table.status),
            "on": _param(request, "on") or "",
        },
        "clock_words": api.clock_words,
        "paging": paging,
    }
    return respond(request, "clocks.html", context, data)


class TooLarge(Exception):
    """An upload larger than the server accepts."""


def _capped(request: Request, limit: int) -> Request:
    """``request`` reading its body through a counter that stops past ``limit`` bytes, so
    an oversized upload is refused before it is all read (or spooled to disk)."""
    receive = request.receive
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge
        return message

    return Request(request.scope, counted)


def _verify_context(config: WebConfig) -> dict[str, Any]:
    return {
        "title": "Verify a bundle",
        "limit_mib": config.max_upload_bytes // (1024 * 1024),
        "verdict": None,
        "filename": None,
        "summary": None,
    }


async def verify(request: Request) -> Response:
    """``/verify``: upload an audit bundle (.zip) and see the standard-library verifier's
    verdict (``verify`` of a bundle, as ``caseledger verify BUNDLE``), with the first
    failure named.  The upload is capped and kept only in a temporary folder."""
    config: WebConfig = request.app.state.config
    context = _verify_context(config)
    if request.method == "GET":
        return respond(request, "verify.html", context, {"limit_bytes": config.max_upload_bytes})
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > config.max_upload_bytes:
        raise TooLarge
    try:
        form = await _capped(request, config.max_upload_bytes).form(max_files=1, max_fields=4)
    except (MultipartParseError, HTTPException) as exc:
        reason = exc.detail if isinstance(exc, HTTPException) else str(exc)
        raise UsageError(f"the upload could not be read: {reason}", field="bundle") from None
    upload = form.get("bundle")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise UsageError("choose a bundle (.zip) to check", field="bundle")
    with tempfile.TemporaryDirectory(prefix="caseledger-verify-") as folder:
        path = Path(folder) / "bundle.zip"  # never the uploaded name: nothing outside folder
        with path.open("wb") as out:
            while chunk := await upload.read(1 << 20):
                out.write(chunk)
        await upload.close()
        verdict = await run_in_threadpool(api.verify, None, path)
        summary = verdict.summary().replace(str(path), upload.filename)
    # The verdict names the upload as it was sent, never the server's temporary path.
    data = {**verdict.to_json(), "bundle": upload.filename}
    context.update(verdict=verdict, filename=upload.filename, summary=summary)
    return respond(request, "verify.html", context, data)


Endpoint = Callable[[Request], Response] | Callable[[Request], Awaitable[Response]]

#: Every page: its path, its function, the methods it takes and its name.
ROUTES: Final[tuple[tuple[str, Endpoint, list[str], str], ...]] = (
    ("/", desk, ["GET"], "desk"),
    ("/cases/{case}", case, ["GET"], "case"),
    ("/cases/{case}/why", why, ["GET"], "why"),
    ("/clocks", clocks, ["GET"], "clocks"),
    ("/verify", verify, ["GET", "POST"], "verify"),
)
