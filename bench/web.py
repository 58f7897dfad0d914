"""``python -m bench.web``: each page of the web view against the facade calls it makes.

Issue 17, part 6: every page should answer in under 100 ms (median) at the 10,000-case
benchmark store (1,000,000 events, the size of ``python -m bench``).  Each page is asked
through Starlette's test client (the whole ASGI app: routing, security headers, the
templates or the JSON), and the same question is asked of :mod:`projections.api` directly;
the ratio page / facade is what the web view adds.  The case and why pages use the
largest case.  The store is built once (``--store`` keeps it between runs)::

    python -m bench.web --events 1000000 --store /tmp/bench-1m.db
    python -m bench.web --events 100000 --json

The desk and clocks pages are paged (``page``, :data:`projections.api.PER_PAGE` rows a
page): each is measured at its first page and its last (``desk_last``, ``clocks_last``),
and the clocks page also without a regime (``clocks_all``: every clock of every case),
each against the same page asked of the facade.

Prints a table, or with ``--json`` one object: per page, the median milliseconds of the
HTML page, of its JSON, of the facade calls (the three taken in turn in each repetition,
so that a busy moment on a shared machine slows all three), and the ratios; the same in
CPU time of the process (``*_cpu_ms``: what each costs on a machine to itself); and the
facade's first call with nothing kept (``facade_cold_ms``: the first page of a day,
before :func:`projections.index.records._states_of` has kept the clock states, and the
first of a server, before the register's fold is kept).  ``register`` compares
``register_state`` kept by its last position with the register read and folded whole.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from cli.web.app import create_app
from cli.web.config import WebConfig
from ledger.application import CaseLedger
from projections import api

from .generate import plan_ledger
from .profile import build

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note on its test client's HTTP library
    from starlette.testclient import TestClient

TARGET_MS = 100.0


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    """The median wall time of ``call`` in milliseconds, after one warm-up call."""
    return medians_ms([call], repeat)[0][0]


def medians_ms(calls: list[Callable[[], Any]], repeat: int) -> list[tuple[float, float]]:
    """The median wall time and the median CPU time of this process (every thread: the
    test client runs the app in one of its own) of each call in milliseconds, after one
    warm-up call each, the calls taken in turn in every repetition: on a shared machine
    a busy moment then slows all of them alike, so their ratios hold.  The CPU time is
    what the call costs with the machine to itself (the other programs' load stretches
    the wall time, not this), SQLite's reads from the page cache included."""
    for call in calls:
        call()
    times: list[list[tuple[float, float]]] = [[] for _ in calls]
    for _ in range(repeat):
        for call, kept in zip(calls, times, strict=True):
            start, cpu = time.perf_counter(), time.process_time()
            call()
            kept.append(((time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000))
    return [
        (statistics.median(w for w, _ in kept), statistics.median(c for _, c in kept))
        for kept in times
    ]


def cold_ms(call: Callable[[], Any], ledger: CaseLedger) -> float:
    """The wall time of one call in milliseconds, with the clock states kept between
    questions (:func:`projections.index.records._states_of`) and the register's kept fold
    forgotten first: what the first page of a day costs."""
    from projections.index import records

    records._KEPT.clear()
    ledger.__dict__.pop("_kept_register", None)
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def facade_calls(ledger: CaseLedger, case: str, bundle: Path) -> dict[str, Callable[[], Any]]:
    """What each page asks of the facade, asked directly (and made JSON, as a program
    using the facade would)."""

    def case_page() -> Any:
        line = api.timeline(ledger, case, full=True)
        clocks = api.clocks(ledger, case)
        chart = api.timeline_chart(line, clocks)
        return (
            api.status(ledger, case).to_json(),
            api.due(ledger, case=case).to_json(),
            api.why(ledger, case, full=True).to_json(),
            clocks.to_json(),
            api.quality(ledger, case).to_json(),
            line.to_json(),
            chart.svg(),
        )

    def desk(page: int, due_page: int) -> Callable[[], Any]:
        return lambda: (
            api.status(ledger, sort="urgency", page=page).to_json(),
            api.due(ledger, page=due_page).to_json(),
        )

    def clocks(page: int, regime: str | None = "wt2023") -> Callable[[], Any]:
        def ask() -> Any:
            table = api.clock_table(ledger, regime=regime, page=page)
            return table.to_json(), table.counts()

        return ask

    last = last_pages(ledger)
    return {
        "desk": desk(1, 1),
        "desk_last": desk(last["desk_last"], last["due_last"]),
        "case": case_page,
        "why": lambda: api.why(ledger, case, full=True).to_json(),
        "clocks": clocks(1),
        "clocks_last": clocks(last["clocks_last"]),
        "clocks_all": clocks(1, None),
        "verify": lambda: api.verify(None, bundle).to_json(),
    }


def last_pages(ledger: CaseLedger) -> dict[str, int]:
    """The last page of the desk's cases, of its deadlines and of one regime's clocks."""
    cases = api.status(ledger, sort="urgency", page=1).paging
    due = api.due(ledger, page=1).paging
    table = api.clock_table(ledger, regime="wt2023", page=1).paging
    assert cases is not None and due is not None and table is not None
    return {"desk_last": cases.pages, "due_last": due.pages, "clocks_last": table.pages}


def csrf_token(page: str) -> str:
    """The CSRF token a page's form carries (every POST must send it back)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def measure(
    ledger: CaseLedger, case: str, work: Path, repeat: int, pages: list[str] | None = None
) -> dict[str, Any]:
    """Per page: the median ms of the page (HTML, JSON) and of its facade calls."""
    bundle = work / "case.zip"
    api.export(ledger, [case], out_path=bundle, as_zip=True)
    upload = bundle.read_bytes()
    direct = facade_calls(ledger, case, bundle)
    last = last_pages(ledger)
    paths = {
        "desk": "/",
        "desk_last": f"/?page={last['desk_last']}&due_page={last['due_last']}",
        "case": f"/cases/{case}",
        "why": f"/cases/{case}/why",
        "clocks": "/clocks?regime=wt2023",
        "clocks_last": f"/clocks?regime=wt2023&page={last['clocks_last']}",
        "clocks_all": "/clocks",
    }
    figures: dict[str, Any] = {}
    with TestClient(create_app(WebConfig(opener=lambda: ledger))) as client:

        def page(name: str, as_json: bool) -> Callable[[], Any]:
            headers = {"accept": "application/json"} if as_json else {}
            if name == "verify":
                files = {"bundle": ("case.zip", upload)}
                token = {"csrf_token": csrf_token(client.get("/verify").text)}
                return lambda: client.post("/verify", data=token, files=files, headers=headers)
            return lambda: client.get(paths[name], headers=headers)

        for name, call in direct.items():
            if pages and name not in pages:
                continue
            for as_json in (False, True):
                response = page(name, as_json)()
                assert response.status_code == 200, (name, response.text[:500])
            cold = cold_ms(call, ledger)
            timed = medians_ms([call, page(name, False), page(name, True)], repeat)
            (facade, facade_cpu), (html, html_cpu), (json, json_cpu) = timed
            figures[name] = {
                "html_ms": round(html, 2),
                "json_ms": round(json, 2),
                "facade_ms": round(facade, 2),
                "facade_cold_ms": round(cold, 2),
                "html_ratio": round(html / facade, 2),
                "json_ratio": round(json / facade, 2),
                "html_cpu_ms": round(html_cpu, 2),
                "json_cpu_ms": round(json_cpu, 2),
                "facade_cpu_ms": round(facade_cpu, 2),
                "under_target": html < TARGET_MS and json < TARGET_MS,
                "under_target_cpu": html_cpu < TARGET_MS and json_cpu < TARGET_MS,
            }
            print(f"{name}: {figures[name]}", file=sys.stderr)
        figures["register"] = register_figures(ledger, repeat)
    return figures


def register_figures(ledger: CaseLedger, repeat: int) -> dict[str, Any]:
    """``register_state`` with its fold kept (one query of the last row) against the
    register read and folded whole (what every facade call paid before)."""
    from ledger.domain.register import fold_register

    (kept, _), (whole, _) = medians_ms(
        [ledger.register_state, lambda: fold_register(ledger.register_entries())], repeat
    )
    return {
        "entries": len(ledger.register_entries()),
        "kept_ms": round(kept, 3),
        "whole_ms": round(whole, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", help="an SQLite file to build once and reuse")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per figure")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--pages",
        help="comma-separated: desk, desk_last, case, why, clocks, clocks_last, clocks_all, verify",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="caseledger-bench-web-"))
    try:
        with contextlib.redirect_stdout(sys.stderr):  # build's progress is not the answer
            ledger = build(args.store or str(work / "ledger.db"), args.events, args.seed)
        spec = plan_ledger(args.seed, args.events)
        case = max(spec.cases, key=lambda c: (c.length, -c.index)).ref
        events = ledger.count_events()
        chosen = args.pages.split(",") if args.pages else None
        figures = measure(ledger, case, work, args.repeat, chosen)  # the app closes the store after
        result = {
            "events": events,
            "cases": len(spec.cases),
            "case": case,
            "target_ms": TARGET_MS,
            "pages": figures,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        return
    print(f"web pages at {result['events']:,} events, {result['cases']:,} cases (median ms)")
    print(
        f"{'page':<12}{'HTML':>9}{'JSON':>9}{'facade':>9}{'HTML/f':>8}{'JSON/f':>8}"
        f"{'HTML cpu':>10}{'JSON cpu':>10}{'f cpu':>8}"
    )
    register = figures.pop("register")
    for name, f in figures.items():
        print(
            f"{name:<12}{f['html_ms']:>9.1f}{f['json_ms']:>9.1f}{f['facade_ms']:>9.1f}"
            f"{f['html_ratio']:>8.2f}{f['json_ratio']:>8.2f}"
            f"{f['html_cpu_ms']:>10.1f}{f['json_cpu_ms']:>10.1f}{f['facade_cpu_ms']:>8.1f}"
        )
    print(
        f"register of {register['entries']} entries: kept {register['kept_ms']} ms, "
        f"read and folded whole {register['whole_ms']} ms"
    )


if __name__ == "__main__":
    main()
