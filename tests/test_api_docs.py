"""``docs/api.md`` is a guide to the Python API whose every example runs: its ```python
blocks are executed top to bottom in one namespace, in a fresh directory, and a ```text block
right after a block is the output that block must print (as sqlite-utils documents its API)."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "api.md"
BLOCK = re.compile(r"^```(python|text)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


def examples() -> list[tuple[int, str, str | None]]:
    """(line, code, the output it must print or None) for each ```python block."""
    text = GUIDE.read_text(encoding="utf-8")
    found: list[tuple[int, str, str | None]] = []
    for match in BLOCK.finditer(text):
        kind, body = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        if kind == "python":
            found.append((line, body, None))
        elif found and found[-1][2] is None and text[: match.start()].rstrip().endswith("```"):
            found[-1] = (found[-1][0], found[-1][1], body)
    return found


def test_the_guide_has_examples() -> None:
    assert len(examples()) >= 10


def test_every_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All blocks share one namespace, as a reader typing them in order would."""
    monkeypatch.chdir(tmp_path)
    for variable in ("CASELEDGER_STORE", "CASELEDGER_KEY", "CASELEDGER_USER"):
        monkeypatch.delenv(variable, raising=False)
    namespace: dict[str, object] = {"__name__": "api_guide"}
    for line, code, expected in examples():
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                exec(compile(code, f"{GUIDE}:{line}", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"docs/api.md line {line}: {error!r}") from error
        if expected is not None:
            assert printed.getvalue().strip() == expected.strip(), f"docs/api.md line {line}"
    assert os.listdir(tmp_path), "the examples wrote no store"
