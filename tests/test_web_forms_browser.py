"""The forms in a real browser (issue 17 part 5): Playwright drives Debian's Chromium (its
``executable_path``, never a downloaded browser) against ``caseledger serve``'s app run by
uvicorn on 127.0.0.1 and a free port, in host mode behind a stand-in for the proxy (the
browser sends the trusted header itself, from 127.0.0.1, the configured proxy address).

A form with two mistakes shows both next to their fields and writes nothing; corrected, it
records an entry that ``caseledger verify`` then checks; an inspector's request for a form
gets 403.  axe-core (from the npm registry, installed by ``.ci/run`` under ``.ci/node``)
reports no violation on any of these pages, at 390 px wide too.  Screenshots go to
``tests/artefacts/web/``.

Without Chromium or axe-core these tests skip with the reason; with
``CASELEDGER_REQUIRE_BROWSER=1`` (``.ci/run``) they fail instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cli.web.app import create_app
from cli.web.config import WebConfig
from ledger import api
from tests.browser import AXE, ROOT, chromium, free_port, require_browser
from tests.conftest import invoke, open_ledger, scenario_lines

pytestmark = pytest.mark.browser

ARTEFACTS = ROOT / "tests" / "artefacts" / "web"
CASE = "RR-2026-004"
CLERK = "clerk"
INSPECTOR = "inspector"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """uvicorn serving the forms of a store holding the scenario's opening entries, in
    host mode with 127.0.0.1 as the proxy; yields the base URL and the store."""
    require_browser()
    import uvicorn

    store = str(tmp_path_factory.mktemp("web") / "ledger.db")
    led = open_ledger(store)
    api.add_user(led, led.identity(), role=["admin", "business-unit"])
    led.record_lines(scenario_lines()[:5], led.recorder_for())
    api.add_user(led, CLERK, role=["business-unit"])
    api.add_user(led, INSPECTOR, role=["inspector"])
    led.close()
    port = free_port()
    config = WebConfig(
        store=store, host_mode=True, proxy_addresses=("127.0.0.1",), host="127.0.0.1", port=port
    )
    app = create_app(config)
    runner = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)
    )
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not runner.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", store
    finally:
        runner.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser(server: tuple[str, str]) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def axe_violations(page: Any) -> list[str]:
    """axe-core's violations on the page as it stands (none expected)."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)" for v in found]


def shot(page: Any, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def test_a_form_shows_two_mistakes_then_records_a_verified_entry(
    server: tuple[str, str], browser: Any
) -> None:
    base, store = server
    context = browser.new_context(
        extra_http_headers={"X-Remote-User": CLERK},
        viewport={"width": 390, "height": 900},
        bypass_csp=True,  # to inject axe-core; the pages themselves run no script
    )
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    before = len(open_ledger(store).case_records(CASE))

    page.goto(f"{base}/cases/{CASE}/record/discuss")
    assert page.locator("h1").inner_text() == f"Discussion held {CASE}"
    assert axe_violations(page) == []
    page.select_option("#field-forum", "rapid-review-meeting")
    page.fill("#field-occurred_at", "2026-02-18")
    page.click("button[type=submit]")  # attendees and summary left out: two mistakes

    assert page.locator(".error-box h2").inner_text() == "2 problems: nothing was recorded"
    assert "required" in page.locator("#err-attendees").inner_text()
    assert "required" in page.locator("#err-summary").inner_text()
    assert page.locator("#field-forum").input_value() == "rapid-review-meeting"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert axe_violations(page) == []
    shot(page, "form-two-mistakes")
    assert len(open_ledger(store).case_records(CASE)) == before

    page.fill("#field-attendees", "Northshire Police\nNorthshire ICB")
    page.fill("#field-summary", "Rapid review meeting: chronology gaps discussed.")
    page.click("button[type=submit]")
    heading = page.locator("h1").inner_text()
    assert heading == f"Recorded {CASE}#{before + 1}"
    stored = open_ledger(store).case_records(CASE)[-1]
    assert stored["actor"] == CLERK and stored["hash"] in page.locator(".hash").inner_text()
    assert axe_violations(page) == []
    shot(page, "form-recorded")
    # no console message but the failed loads the 422 page and the favicon's 404 are
    assert [m for m in console if "Failed to load resource" not in m] == []
    context.close()

    verified = invoke(["--store", store, "verify"])
    assert verified.exit_code == 0, verified.stdout + verified.stderr


def test_an_inspector_gets_no_form(server: tuple[str, str], browser: Any) -> None:
    base, _ = server
    context = browser.new_context(extra_http_headers={"X-Remote-User": INSPECTOR}, bypass_csp=True)
    page = context.new_page()
    response = page.goto(f"{base}/cases/{CASE}/record/decide")
    assert response is not None and response.status == 403
    assert "may not record DecisionMade" in page.locator("main").inner_text()
    assert axe_violations(page) == []
    shot(page, "form-inspector-403")
    context.close()
