"""``report.html`` in a real browser (issues 5 and 19): headless Chromium renders it with no
console messages at all (the report has no scripts, so any message is an error, such as
a blocked network fetch), the SVG timeline is there after rendering with one mark per
entry, and printing to PDF works.

On the demo's bundle (four cases, exported on a fixed day), through Playwright driving
Debian's Chromium (``executable_path``, never a downloaded browser): the overdue clock's bar
reaches the export's moment on the chart's own axis; a justified and an unjustified late
clock are drawn differently; every mark is 3:1 against what it is drawn on, as rendered;
printed on A4 and on Letter the report keeps within a bound of pages, each numbered
"Page N of M" and each case's pages headed with its reference; at 390 px the page does not
scroll sideways and the facts are not cut off; axe-core finds no violation at 1280 or
390 px.  Screenshots at both widths go to ``tests/artefacts/report``.

Needs Debian's ``chromium`` (``apt-get install -y chromium``), and for the Playwright tests
axe-core (``.ci/run`` installs it into ``.ci/node``).  Without them these tests skip with
the reason; with ``CASELEDGER_REQUIRE_BROWSER=1`` (set by ``.ci/run``) a missing browser
fails them instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from projections.export.bundle import export_bundle
from tests.browser import AXE, REQUIRED, ROOT, require_browser
from tests.browser import chromium as launched_chromium
from tests.conftest import open_ledger

pytestmark = pytest.mark.browser

CASE = "RR-2026-004"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
)
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]?\s*\"?(.*)")


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def chromium() -> str:
    found = _browser()
    if found is None:
        reason = "headless Chromium is not installed (apt-get install -y chromium)"
        if REQUIRED:
            pytest.fail(f"{reason}; it is required here (CASELEDGER_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return found


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def console(self) -> list[str]:
        """The page's console messages, as Chromium logs them."""
        return [m.group(1) for line in self.stderr.splitlines() if (m := CONSOLE.search(line))]


def run_chromium(chromium: str, profile: Path, *args: str) -> Run:
    proc = subprocess.run(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(profile)},
    )
    return Run(
        proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The scenario's bundle, exported once."""
    from tests.conftest import FixedClock, scenario_lines

    root = tmp_path_factory.mktemp("browser")
    clock = FixedClock(datetime(2026, 9, 1, 9, 0, tzinfo=UTC))
    led = open_ledger(str(root / "ledger.db"), clock)
    led.record_lines(scenario_lines(), led.recorder_for())
    export_bundle(led, root / "bundle")
    led.close()
    yield root / "bundle" / "report.html"


class _Dom(HTMLParser):
    """What the rendered DOM holds: timeline SVGs and their marks."""

    def __init__(self) -> None:
        super().__init__()
        self.svgs: list[dict[str, str | None]] = []
        self.marks: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg" and "timeline" in (found.get("class") or ""):
            self.svgs.append(found)
        if tag == "circle" and "mark" in (found.get("class") or "").split():
            self.marks.append(found.get("data-ref") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_renders_with_no_console_errors_and_one_mark_per_entry(
    chromium: str, report: Path, tmp_path: Path
) -> None:
    run = run_chromium(chromium, tmp_path / "profile", "--dump-dom", report.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.console == [], run.console
    assert "Refused to" not in run.stderr  # no blocked fetch: nothing to fetch
    dom = _Dom()
    dom.feed(run.stdout)
    assert len(dom.svgs) == 1
    assert dom.svgs[0].get("data-marks") == "22"
    assert sorted(dom.marks, key=lambda r: int(r.split("#")[1])) == [
        f"{CASE}#{n}" for n in range(1, 23)
    ]
    text = " ".join(dom.text)
    assert "The decision in force" in text
    assert "Reg 11 (a), (b) and (c) are met" in text  # its reasons
    assert "Timeline and statutory clocks" in text
    assert "rapid review" in text.lower()


def test_the_harness_does_see_console_errors(chromium: str, tmp_path: Path) -> None:
    """The check above would notice: a page that logs an error is caught."""
    page = tmp_path / "noisy.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title></head>"
        "<body><script>console.error('deliberate error')</script></body></html>"
    )
    run = run_chromium(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert any("deliberate error" in message for message in run.console), run.stderr[-2000:]


def test_report_prints_to_pdf(chromium: str, report: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    run = run_chromium(
        chromium,
        tmp_path / "profile",
        f"--print-to-pdf={pdf}",
        "--no-pdf-header-footer",
        report.as_uri(),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert pdf.is_file(), run.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert b"%%EOF" in data[-1024:]
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert 2 <= pages <= 40, pages  # A4, a few pages for one case
    assert run.console == [], run.console


# --- the demo's bundle through Playwright (issue 19) ---------------------------------------------

ARTEFACTS = ROOT / "tests" / "artefacts" / "report"
#: The demo's cases in the report's order, and the day it is exported on (a fixed clock:
#: RR-2026-031's rapid review, due 26 Nov 2026, is then overdue by six working days).
DEMO_CASES = ("RR-2025-017", "RR-2026-004", "RR-2026-031", "SCR-2016-011")
EXPORTED = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
#: The printed report's most pages, by paper size: the four cases took 29 A4 pages before
#: issue 19 (whole tables kept from breaking left pages half empty); 18 A4 and 19 Letter
#: pages after it, with a little room for the words to change.
MOST_PAGES = {"A4": 20, "Letter": 22}


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo store's bundle, exported once on :data:`EXPORTED`."""
    from ledger import api as ledger_api
    from tests.conftest import FixedClock

    root = tmp_path_factory.mktemp("demo-report")
    led = open_ledger(str(ledger_api.record_demo(root).path), FixedClock(EXPORTED))
    export_bundle(led, root / "bundle")
    led.close()
    return root / "bundle" / "report.html"


@pytest.fixture(scope="module")
def page(demo_report: Path) -> Iterator[Any]:
    """A page of the demo's report, with scripts on and the CSP bypassed only so that
    axe-core can be injected and the layout measured; the report itself runs no script."""
    require_browser("pypdf")
    with launched_chromium() as browser:
        context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
        opened = context.new_page()
        opened.goto(demo_report.as_uri())
        yield opened
        context.close()


_CHART = """(svg) => {
  const n = (el, name) => parseFloat(el.getAttribute(name));
  return {
    on: svg.dataset.on,
    ticks: [...svg.querySelectorAll("line.grid")].map((line, i) => [
      svg.querySelectorAll("line.grid + text")[i].textContent, n(line, "x1")]),
    marks: [...svg.querySelectorAll("circle.mark")].map((c) => n(c, "cx")),
    moment: svg.querySelector("line.moment") && n(svg.querySelector("line.moment"), "x1"),
    clocks: [...svg.querySelectorAll("g.clock")].map((g) => {
      const parts = [...g.querySelectorAll("rect.elapsed, rect.over")];
      const over = g.querySelector("rect.over");
      return {
        css: g.getAttribute("class"),
        text: g.textContent,
        end: Math.max(...parts.map((r) => n(r, "x") + n(r, "width"))),
        over: over && {
          css: over.getAttribute("class"),
          fill: over.getAttribute("fill"),
          dashes: getComputedStyle(over).strokeDasharray,
          computedFill: getComputedStyle(over).fill,
        },
      };
    }),
  };
}"""


def _chart(page: Any, case: str) -> dict[str, Any]:
    found: dict[str, Any] = page.locator(f"#case-{case} svg.timeline").evaluate(_CHART)
    return found


def test_the_overdue_clocks_bar_reaches_the_export_moment_on_the_axis(page: Any) -> None:
    chart = _chart(page, "RR-2026-031")
    assert chart["on"] == "2026-12-04"  # the export's moment, not the last entry (13 Nov)
    # The axis's own scale: its weekly ticks (Mondays of 2026) give the x of any day.
    ticks = [(date_of(label), x) for label, x in chart["ticks"]]
    (a_day, a_x), (b_day, b_x) = ticks[-2], ticks[-1]
    per_day = (b_x - a_x) / (b_day - a_day).days
    moment_x = b_x + (date(2026, 12, 4) - b_day).days * per_day
    (overdue,) = [c for c in chart["clocks"] if "clock-overdue" in c["css"]]
    assert abs(overdue["end"] - moment_x) < 0.5, (overdue["end"], moment_x)
    assert abs(chart["moment"] - moment_x) < 0.5
    assert overdue["end"] > max(chart["marks"]) + 100  # far past the last entry's mark
    assert "6 working days over, not justified" in overdue["text"]
    assert "due 26 Nov 2026" in overdue["text"]


def date_of(label: str) -> date:
    """A tick's label (``30 Nov``) as a day of 2026, the year RR-2026-031's chart spans."""
    return datetime.strptime(f"{label} 2026", "%d %b %Y").date()


def test_justified_and_unjustified_late_clocks_differ_in_the_charts_markup(page: Any) -> None:
    clocks = _chart(page, "SCR-2016-011")["clocks"]
    (justified,) = [c for c in clocks if "justified" in c["css"].split()]
    unjustified = [c for c in clocks if "clock-late" in c["css"] and c not in [justified]]
    assert justified["over"]["css"] == "over over-justified"
    assert justified["over"]["fill"].startswith("url(#") and "hatch" in justified["over"]["fill"]
    assert justified["over"]["dashes"] not in ("none", "")
    assert "justified by an approved delay" in justified["text"]
    assert unjustified and all(c["over"]["css"] == "over over-unjustified" for c in unjustified)
    assert all(c["over"]["dashes"] == "none" for c in unjustified)
    assert all(c["over"]["fill"].startswith("#") for c in unjustified)
    assert all("not justified" in c["text"] for c in unjustified)


_GREY = """async (svg) => {
  const xml = new XMLSerializer().serializeToString(svg);
  const image = new Image();
  image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(xml);
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = +svg.getAttribute("width");
  canvas.height = +svg.getAttribute("height");
  const ink = canvas.getContext("2d");
  ink.filter = "grayscale(1)";
  ink.drawImage(image, 0, 0);
  const spread = (rect) => {
    const at = (name) => parseFloat(rect.getAttribute(name));
    const box = [at("x") + 2, at("y") + 2, at("width") - 4, at("height") - 4];
    const pixels = ink.getImageData(...box).data;
    const grey = [];
    for (let i = 0; i < pixels.length; i += 4) grey.push(pixels[i]);
    const mean = grey.reduce((a, b) => a + b, 0) / grey.length;
    return Math.sqrt(grey.reduce((a, b) => a + (b - mean) ** 2, 0) / grey.length);
  };
  return {
    justified: [...svg.querySelectorAll("rect.over-justified")].map(spread),
    unjustified: [...svg.querySelectorAll("rect.over-unjustified")].map(spread),
  };
}"""


def test_justified_and_unjustified_lateness_differ_in_black_and_white(page: Any) -> None:
    """Drawn in grey only, the justified lateness is a pattern of light and dark (hatched)
    and the unjustified one a flat dark bar: they differ without colour."""
    spread = page.locator("#case-SCR-2016-011 svg.timeline").evaluate(_GREY)
    assert len(spread["justified"]) == 1 and len(spread["unjustified"]) == 1, spread
    assert spread["justified"][0] > 40, spread  # stripes: grey levels far apart
    assert spread["unjustified"][0] < 5, spread  # one flat grey


_PAINT = """(svg) => {
  const paint = (el, what) => getComputedStyle(el)[what];
  const all = (css, what) => [...svg.querySelectorAll(css)].map((el) => paint(el, what));
  return {
    paper: paint(svg.querySelector("rect.paper"), "fill"),
    band: paint(svg.querySelector("rect.lane-band"), "fill"),
    allowed: all("rect.allowed", "fill"),
    marks: all("circle.mark", "fill"),
    bars: all("rect.elapsed, rect.over-unjustified", "fill"),
    edges: all("rect.allowed, rect.over-justified", "stroke"),
    lines: all("line.due, line.moment", "stroke"),
  };
}"""


def _rgb(css: str) -> str:
    found = re.fullmatch(r"rgb\((\d+), (\d+), (\d+)\)", css)
    assert found, css
    return "#" + "".join(f"{int(v):02x}" for v in found.groups())


def test_every_mark_is_3_to_1_against_its_background_as_rendered(page: Any) -> None:
    from tests.test_chart import contrast

    for case in DEMO_CASES:
        paint = page.locator(f"#case-{case} svg.timeline").evaluate(_PAINT)
        paper, band = _rgb(paint["paper"]), _rgb(paint["band"])
        allowed = {_rgb(c) for c in paint["allowed"]}
        for name, grounds in (
            ("marks", {band}),
            ("bars", {paper} | allowed),
            ("edges", {paper}),
            ("lines", {paper, band} | allowed),
        ):
            for colour in {_rgb(c) for c in paint[name]}:
                for ground in grounds:
                    assert contrast(colour, ground) >= 3, (case, name, colour, ground)


def _pdf_pages(page: Any, paper: str) -> list[str]:
    import io

    import pypdf

    data = page.pdf(format=paper)
    return [p.extract_text() or "" for p in pypdf.PdfReader(io.BytesIO(data)).pages]


@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_the_printed_report_numbers_every_page_and_heads_each_cases_pages(
    page: Any, paper: str
) -> None:
    pages = _pdf_pages(page, paper)
    count = len(pages)
    assert 4 < count <= MOST_PAGES[paper], count
    seen: list[int] = []
    for number, text in enumerate(pages, 1):
        assert f"Page {number} of {count}" in text, (number, text[:300])
        lines = [
            line
            for line in text.splitlines()
            if line.strip() and not re.fullmatch(r"(Page \d+ of \d+|Case \S+)", line.strip())
        ]
        assert len(lines) >= 4, f"page {number} holds only {lines}"
        if number == 1:
            continue
        heads = [i for i, ref in enumerate(DEMO_CASES) if f"Case {ref}" in text]
        assert len(heads) == 1, (number, heads)  # one case to a page, its reference on top
        seen.append(heads[0])
    assert seen == sorted(seen) and set(seen) == set(range(len(DEMO_CASES)))


def _axe(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['target']})"
        for v in result["violations"]
    ]


def test_the_report_is_accessible_and_fits_390_px(page: Any, demo_report: Path) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(demo_report.as_uri())
    assert _axe(page) == []
    page.screenshot(path=str(ARTEFACTS / "report-1280.png"), full_page=True)
    page.locator("#case-RR-2026-031").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTEFACTS / "report-1280-overdue.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(demo_report.as_uri())
    wide = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1], f"the report scrolls sideways at 390 px: {wide}"
    cut = page.evaluate(
        """() => [...document.querySelectorAll("dl.facts, table, .panel")]
          .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
          .map((el) => el.outerHTML.slice(0, 80))"""
    )
    assert cut == [], cut
    charts = page.evaluate(
        """() => [...document.querySelectorAll(".chart-scroll")].map((region) =>
          [region.scrollWidth > region.clientWidth, region.getAttribute("role"),
           region.tabIndex, region.querySelector("svg").getBoundingClientRect().width])"""
    )
    assert len(charts) == len(DEMO_CASES)
    for scrolls, role, tab_index, width in charts:
        assert scrolls and role == "region" and tab_index == 0 and width >= 640  # legible
    assert _axe(page) == []
    page.screenshot(path=str(ARTEFACTS / "report-390.png"), full_page=True)
    page.locator("#case-RR-2026-031 figure").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTEFACTS / "report-390-chart.png"))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(demo_report.as_uri())
