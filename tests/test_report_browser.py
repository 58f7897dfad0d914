"""``report.html`` in a real browser (issue 5): headless Chromium renders it with no
console messages at all (the report has no scripts, so any message is an error, such as
a blocked network fetch), the SVG timeline is there after rendering with one mark per
entry, and printing to PDF works.

Needs Debian's ``chromium`` (``apt-get install -y chromium``).  Without it these tests
skip with the reason; with ``CASELEDGER_REQUIRE_BROWSER=1`` (set by ``.ci/run``) a
missing browser fails them instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from projections.export.bundle import export_bundle
from tests.conftest import open_ledger

pytestmark = pytest.mark.browser

CASE = "RR-2026-004"
REQUIRED = os.environ.get("CASELEDGER_REQUIRE_BROWSER") == "1"
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
    from datetime import UTC, datetime

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
