"""What the browser tests share: Debian's Chromium driven by Playwright, axe-core from
``.ci/node`` (``.ci/run`` installs it from the npm registry), and the rule that a missing
piece skips the tests with its reason, or fails them where CI requires the browser
(``CASELEDGER_REQUIRE_BROWSER=1``)."""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / ".ci" / "node" / "node_modules" / "axe-core" / "axe.min.js"
REQUIRED = os.environ.get("CASELEDGER_REQUIRE_BROWSER") == "1"


def missing(*extra_modules: str) -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    for module in ("playwright.sync_api", *extra_modules):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"{module.split('.')[0]} is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (apt-get install -y chromium)"
    if not AXE.exists():
        return f"axe-core is not installed ({AXE}; .ci/run installs it from the npm registry)"
    return None


def require_browser(*extra_modules: str) -> None:
    """Skip the calling test (or fixture) with the reason, or fail it where required."""
    reason = missing(*extra_modules)
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"{reason}; it is required here (CASELEDGER_REQUIRE_BROWSER=1)")
        pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 for a test server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
