"""The overview across cases in a real browser (issue 19, item 1): Playwright driving Debian's
Chromium (``executable_path``, never a downloaded browser) on the demo store's bundle, opened
from the file system as an inspector opens it.

With scripts off (the report has none): the overview lists every case of the demo bundle in
the urgency order of ``caseledger status``, and each row's link leads to its case.  With
scripts on only to run axe-core (injected past the page's CSP): no accessibility violation on
report.html, nor on a case's own page of the same bundle exported a page per case.
Screenshots at 1280 and 390 px go to ``tests/artefacts/report``.

Needs ``/usr/bin/chromium`` and axe-core (``.ci/run`` installs it into ``.ci/node``).  Without
them these tests skip with the reason; with ``CASELEDGER_REQUIRE_BROWSER=1`` (set by
``.ci/run``) they fail instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger import api as ledger_api
from projections import api
from tests.browser import AXE, ROOT, chromium, require_browser

pytestmark = pytest.mark.browser

ARTEFACTS = ROOT / "tests" / "artefacts" / "report"


@dataclass(frozen=True)
class Bundles:
    """The demo store's bundle twice: one report.html, and a page per case."""

    one: Path
    pages: Path
    urgency: list[str]
    """The cases as ``caseledger status --include-closed`` lists them."""


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    require_browser()
    root = tmp_path_factory.mktemp("overview")
    demo = ledger_api.record_demo(root)
    led = ledger_api.open_store(str(demo.path))
    try:
        api.export(led, out_path=root / "one")
        api.export(led, out_path=root / "pages", case_pages_above=0)
        urgency = [row["case"] for row in api.status(led, include_closed=True).rows]
    finally:
        led.close()
    return Bundles(root / "one", root / "pages", urgency)


@pytest.fixture(scope="module")
def browser(bundles: Bundles) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def no_script(browser: Any) -> Iterator[Any]:
    """A page with JavaScript disabled, as the report is meant to be read."""
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def checker(browser: Any) -> Iterator[Any]:
    """Scripts on and the CSP bypassed, only so that axe-core can be injected."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _shot(page: Any, name: str) -> None:
    """What the window shows (``NAME.png``) and the whole page (``NAME-full.png``)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"))
    page.screenshot(path=str(ARTEFACTS / f"{name}-full.png"), full_page=True)


def _violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['target']})"
        for v in result["violations"]
    ]


def test_the_overview_lists_every_demo_case_in_urgency_order(
    no_script: Any, bundles: Bundles
) -> None:
    no_script.goto((bundles.one / "report.html").as_uri())
    rows = no_script.locator("table.overview-table tbody tr")
    shown = [rows.nth(i).locator("th a").inner_text() for i in range(rows.count())]
    assert shown == bundles.urgency and len(shown) == 4
    caption = no_script.locator("table.overview-table caption").inner_text()
    assert "Most urgent first" in caption and "caseledger status" in caption
    # The most urgent case's link leads to its section, whose heading names it.
    first = bundles.urgency[0]
    no_script.locator("table.overview-table tbody tr").first.locator("th a").click()
    assert no_script.url.endswith("#case-" + first.replace("/", "~"))
    heading = no_script.locator(f"article.case#case-{first} > h2").first
    assert heading.inner_text() == f"Case {first}"
    assert heading.is_visible()
    _shot(no_script, "overview-1280")


def test_a_case_page_links_back_and_is_reached_from_the_overview(
    no_script: Any, bundles: Bundles
) -> None:
    no_script.goto((bundles.pages / "report.html").as_uri())
    links = no_script.locator("table.overview-table tbody th a")
    assert [links.nth(i).inner_text() for i in range(links.count())] == bundles.urgency
    links.first.click()
    first = bundles.urgency[0]
    assert no_script.url.endswith(f"/case-{first}.html")
    assert no_script.locator("article.case > h2").first.inner_text() == f"Case {first}"
    assert no_script.locator("article.case").count() == 1
    no_script.locator('a[href="report.html"]').first.click()
    assert no_script.url.endswith("/report.html")


@pytest.mark.parametrize("name", ["report", "case-page"])
def test_the_report_and_a_case_page_have_no_accessibility_violation(
    checker: Any, bundles: Bundles, name: str
) -> None:
    path = {
        "report": bundles.one / "report.html",
        "case-page": bundles.pages / f"case-{bundles.urgency[0]}.html",
    }[name]
    checker.set_viewport_size({"width": 1280, "height": 900})
    checker.goto(path.as_uri())
    violations = _violations(checker)
    assert not violations, f"{path.name}: {violations}"
    _shot(checker, f"{name}-1280")
    checker.set_viewport_size({"width": 390, "height": 844})
    _shot(checker, f"{name}-390")
