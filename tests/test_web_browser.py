"""The web view in a real browser (issue 17, part 5): Playwright driving Debian's Chromium
(``executable_path``, never a downloaded browser) against ``caseledger serve``'s app on the
demo store, served by uvicorn on 127.0.0.1.

With scripts off (the pages have none): the desk lists the demo's cases in urgency order;
the case page shows the decision and its reasons; moving the date control back before the
decision shows no decision; a bundle uploaded to /verify verifies.  With scripts on only to
run axe-core (injected past the page's CSP): no accessibility violation on any page, and at
390 px wide no page scrolls sideways.  Screenshots of each page go to ``tests/artefacts/web``.

Needs ``/usr/bin/chromium`` and axe-core (``.ci/run`` installs it into ``.ci/node``).
Without them these tests skip with the reason; with ``CASELEDGER_REQUIRE_BROWSER=1`` (set by
``.ci/run``) they fail instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.web.app import create_app
from cli.web.config import WebConfig
from ledger import api as ledger_api
from projections import api
from tests.browser import AXE, ROOT, chromium, free_port, require_browser

pytestmark = pytest.mark.browser

ARTEFACTS = ROOT / "tests" / "artefacts" / "web"
CASE = "RR-2026-004"
#: Every page, by the name its screenshot takes.
PAGES = {
    "desk": "/",
    "case": f"/cases/{CASE}",
    "why": f"/cases/{CASE}/why",
    "clocks": "/clocks",
    "verify": "/verify",
    # a middle page of each paged list, with its links to the others
    "desk-paged": "/?per_page=1&page=2&due_page=2",
    "clocks-paged": "/clocks?per_page=3&page=2",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(ledger_api.record_demo(tmp_path_factory.mktemp("demo")).path)


@pytest.fixture(scope="module")
def led(demo: Path) -> Iterator[ledger_api.CaseLedger]:
    ledger = ledger_api.open_store(str(demo))
    yield ledger
    ledger.close()


@pytest.fixture(scope="module")
def server(demo: Path) -> Iterator[str]:
    """The web view of the demo store, served by uvicorn on 127.0.0.1 in a thread."""
    require_browser()
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        create_app(WebConfig(store=str(demo), port=port)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def no_script(browser: Any) -> Iterator[Any]:
    """A page with JavaScript disabled, as a careful user may browse."""
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def checker(browser: Any) -> Iterator[Any]:
    """A page with scripts on and the CSP bypassed, only so that axe-core can be injected
    and the layout measured; the pages themselves run no script."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _shot(page: Any, name: str) -> None:
    """The whole page (``NAME.png``) and what the window shows (``NAME-top.png``: the
    size ``docs/images/web-*.png`` are copied from)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}-top.png"))


def test_desk_lists_the_cases_in_urgency_order(
    no_script: Any, server: str, led: ledger_api.CaseLedger
) -> None:
    no_script.goto(server + "/")
    assert no_script.title().startswith("Desk")
    shown = no_script.locator("a.case-link").all_inner_texts()
    expected = [row["case"] for row in api.status(led, sort="urgency").rows]
    assert shown == expected and len(shown) == 4
    first = api.status(led, sort="urgency").rows[0]
    assert first["overdue"], "the demo's most urgent case has an overdue clock"
    due = no_script.locator("#due-title").inner_text()
    assert str(len(api.due(led).deadlines)) in due
    _shot(no_script, "desk")


def test_case_page_shows_the_decision_and_moving_the_date_back_hides_it(
    no_script: Any, server: str, led: ledger_api.CaseLedger
) -> None:
    decision = api.why(led, CASE).answer.decision
    assert decision is not None
    no_script.goto(server + "/")
    no_script.click(f"a.case-link:text('{CASE}')")
    assert no_script.url.endswith(f"/cases/{CASE}")
    box = no_script.locator("#decision")
    assert decision.rationale in box.inner_text()
    assert "Review" in box.inner_text() and decision.ref in box.inner_text()
    assert no_script.locator("#criteria-title").count() == 1
    assert no_script.locator("svg.timeline circle.mark").count() == len(
        api.timeline(led, CASE).entries
    )
    assert no_script.get_by_text("As the record stood on").count() >= 1
    _shot(no_script, "case")
    day_before = (
        api.timeline(led, CASE).entries[decision.seq - 2].recorded_at[:10]
    )  # the entry before the decision was recorded by then
    assert day_before < decision.recorded_at[:10]
    no_script.fill("#as_of", day_before)
    no_script.click("form.controls button")
    assert f"as_of={day_before}" in no_script.url
    assert no_script.locator("#no-decision").is_visible()
    assert no_script.locator("#decision").count() == 0
    assert decision.rationale not in no_script.content()
    _shot(no_script, "case-before-decision")
    no_script.goto(server + f"/cases/{CASE}/why?as_of={decision.recorded_at[:10]}")
    assert decision.rationale in no_script.locator("#decision").inner_text()
    _shot(no_script, "why")


def test_verify_page_checks_an_uploaded_bundle(
    no_script: Any, server: str, led: ledger_api.CaseLedger, tmp_path: Path
) -> None:
    bundle = tmp_path / "rr-2026-004.zip"
    api.export(led, [CASE], out_path=bundle, as_zip=True)
    no_script.goto(server + "/verify")
    no_script.set_input_files("#bundle", str(bundle))
    no_script.click("form.controls button")
    verdict = no_script.locator("#verdict").inner_text()
    assert "verifies" in verdict and "does not" not in verdict
    _shot(no_script, "verify")
    no_script.goto(server + "/clocks?regime=wt2023")
    assert no_script.locator("svg.chart rect").count() > 0
    _shot(no_script, "clocks")


def test_every_page_is_accessible_and_fits_390_px(checker: Any, server: str) -> None:
    for name, path in PAGES.items():
        checker.set_viewport_size({"width": 1280, "height": 900})
        checker.goto(server + path)
        checker.add_script_tag(path=str(AXE))
        result = checker.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        violations = [
            f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['target']})"
            for v in result["violations"]
        ]
        assert not violations, f"{path}: {violations}"
        checker.set_viewport_size({"width": 390, "height": 844})
        checker.goto(server + path)
        wide = checker.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert wide[0] <= wide[1], f"{path} scrolls sideways at 390 px: {wide}"
        _shot(checker, f"{name}-390")


def test_the_server_answers_requests_at_once(server: str) -> None:
    """Pages run in the server's worker threads over one opened store: eight at a time
    all answer, each with its own page."""
    import concurrent.futures
    import urllib.request

    def fetch(path: str) -> tuple[int, str]:
        with urllib.request.urlopen(server + path, timeout=30) as response:
            return response.status, response.read().decode()

    paths = list(PAGES.values())[:4] * 6
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(fetch, paths))
    assert all(status == 200 for status, _ in answers)
    for path, (_, text) in zip(paths, answers, strict=True):
        assert ("<h1>Desk</h1>" in text) == (path == "/"), path
