"""``caseledger demo`` on a fresh folder completes the tour, leaves its store, never
touches the default store, and every command it prints works when pasted."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest


def test_demo_tour_and_every_printed_command(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    env.pop("CASELEDGER_STORE", None)
    demo = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert (tmp_path / "caseledger-demo.db").exists()
    assert not (tmp_path / "caseledger.db").exists()  # the user's default store untouched
    commands = re.findall(r"^\$ caseledger (.+)$", demo.stdout, flags=re.M)
    assert len(commands) >= 10
    for command in commands:
        args = shlex.split(command)
        if "export" in args:
            args[args.index("--out") + 1] = str(tmp_path / "pasted-bundle")
        pasted = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert pasted.returncode == 0, (command, pasted.stderr[-2000:])
    # The person who ran it can record in the demo store.
    note = (
        '{"type": "ContextRecorded", "case": "RR-2026-031", "occurred_at": "2026-11-20", '
        '"topic": "other", "summary": "Tried recording after the demo."}'
    )
    mine = subprocess.run(
        [sys.executable, "-m", "cli.main", "--store", "caseledger-demo.db", "record", "-"],
        input=note,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert mine.returncode == 0, mine.stderr
    # A second demo makes a new store rather than touching the first.
    again = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo", "--no-tour"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and (tmp_path / "caseledger-demo-2.db").exists()


def test_the_demo_ships_the_shared_scenario_unchanged() -> None:
    """The demo's copy of RR-2026-004 (which the tests also use in a clone without
    ``shared/`` beside it) is the shared scenario, byte for byte."""
    from tests.conftest import DEMO_SCENARIO, SHARED_SCENARIO

    if not SHARED_SCENARIO.is_file():
        pytest.skip(f"{SHARED_SCENARIO} is not beside this checkout")
    assert DEMO_SCENARIO.read_bytes() == SHARED_SCENARIO.read_bytes()
