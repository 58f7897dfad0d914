"""``caseledger demo`` on a fresh folder completes the tour, leaves its store, never
touches the default store, and every command it prints works when pasted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine

from cli.commands.demo import DEMO_DAY, TOUR
from ledger.importing.sample import record_sample
from tests.conftest import SCENARIO, invoke

#: The console script of the environment running the tests (the README's ``.venv``).
SCRIPT = Path(sys.executable).parent / "caseledger"


def _env(path_has_venv: bool) -> dict[str, str]:
    """The environment of a shell after the README's set-up: the virtual environment's
    ``bin`` on PATH (activated) or not (as the README's one line leaves it)."""
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    env.pop("CASELEDGER_STORE", None)
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != SCRIPT.parent]
    if path_has_venv:
        parts.insert(0, str(SCRIPT.parent))
    env["PATH"] = os.pathsep.join(parts or ["/usr/bin:/bin"])
    return env


def _run_demo(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``caseledger demo`` as the README runs it: the environment's console script."""
    command = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "cli.main"]
    return subprocess.run(
        [*command, "demo", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _paste(command: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A printed command pasted into a shell in that folder."""
    return subprocess.run(
        command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )


def test_demo_tour_and_every_printed_command_pasted_twice(tmp_path: Path) -> None:
    """Every command the demo prints runs when pasted into a shell where caseledger is
    not on PATH (as after the README's set-up line), and again when pasted a second time
    (the export replaces its own earlier bundle)."""
    env = _env(path_has_venv=False)
    demo = _run_demo(tmp_path, env)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert (tmp_path / "caseledger-demo.db").exists()
    assert not (tmp_path / "caseledger.db").exists()  # the user's default store untouched
    commands = re.findall(r"^\$ (.+)$", demo.stdout, flags=re.M)
    assert len(commands) >= 10
    assert "caseledger is not on your PATH" in demo.stdout
    assert any(" export " in c and "caseledger-demo-bundle" in c for c in commands)
    for round_ in (1, 2):
        for command in commands:
            assert not command.startswith("caseledger ")  # not on PATH: the path is shown
            pasted = _paste(command, tmp_path, env)
            assert pasted.returncode == 0, (round_, command, pasted.stderr[-2000:])
    start = re.search(r"Start with: (.+)$", demo.stdout, flags=re.M)
    assert start is not None and _paste(start.group(1), tmp_path, env).returncode == 0
    # The person who ran it can record in the demo store.
    note = (
        # dated on the sample's last day: a child process runs at the real date, always later
        '{"type": "ContextRecorded", "case": "RR-2026-031", "occurred_at": "2026-11-13", '
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
    again = _run_demo(tmp_path, env, "--no-tour")
    assert again.returncode == 0 and (tmp_path / "caseledger-demo-2.db").exists()
    explore = re.search(r"Explore it yourself: (.+)$", again.stdout, flags=re.M)
    assert explore is not None and "caseledger-demo-2.db" in explore.group(1)
    assert _paste(explore.group(1), tmp_path, env).returncode == 0


@pytest.mark.skipif(not SCRIPT.is_file(), reason=f"no console script at {SCRIPT}")
def test_with_the_environment_activated_the_demo_prints_plain_caseledger(
    tmp_path: Path,
) -> None:
    env = _env(path_has_venv=True)
    demo = _run_demo(tmp_path, env, "--no-tour")
    assert demo.returncode == 0, demo.stderr
    assert "not on your PATH" not in demo.stdout
    explore = re.search(r"Explore it yourself: (.+)$", demo.stdout, flags=re.M)
    assert explore is not None and explore.group(1).startswith("caseledger --store ")
    assert _paste(explore.group(1), tmp_path, env).returncode == 0


@pytest.mark.skipif(not SCRIPT.is_file(), reason=f"no console script at {SCRIPT}")
def test_run_from_the_readme_folder_the_demo_prints_the_relative_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``.venv/bin/caseledger demo`` in the README's folder prints ``.venv/bin/caseledger``
    and how to activate that environment (``. .venv/bin/activate``)."""
    from cli.commands.demo import program

    venv = SCRIPT.parent.parent
    monkeypatch.chdir(venv.parent)
    monkeypatch.setattr(sys, "argv", [f"{venv.name}/bin/caseledger", "demo"])
    monkeypatch.setenv("PATH", _env(path_has_venv=False)["PATH"])
    prog, hint = program()
    assert prog == f"{venv.name}/bin/caseledger"
    assert hint is not None and f"`. {venv.name}/bin/activate`" in hint


@pytest.mark.usefixtures("fixed_today")  # the scenario, recorded through the real clock
def test_export_replace_replaces_only_an_earlier_bundle(tmp_path: Path) -> None:
    """``export --replace`` (what the demo prints) replaces a folder holding exactly an
    earlier bundle; a folder with any other file is refused (exit 2), untouched."""
    store = str(tmp_path / "ledger.db")
    assert invoke(["--store", store, "record", str(SCENARIO)]).exit_code == 0
    bundle = tmp_path / "bundle"
    first = invoke(["--store", store, "export", "--out", str(bundle), "--json"])
    assert first.exit_code == 0
    again = invoke(["--store", store, "export", "--out", str(bundle), "--json"])
    assert again.exit_code == 2 and "--replace" in again.stderr
    replaced = invoke(["--store", store, "export", "--out", str(bundle), "--replace", "--json"])
    assert replaced.exit_code == 0, replaced.stderr
    assert invoke(["verify", str(bundle), "--json"]).json()["ok"] is True
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")]  # no leftovers
    (bundle / "my-notes.txt").write_text("the inspector's own notes")
    before = sorted((p.name, p.read_bytes()) for p in bundle.iterdir())
    refused = invoke(["--store", store, "export", "--out", str(bundle), "--replace"])
    assert refused.exit_code == 2 and "my-notes.txt" in refused.stderr
    assert sorted((p.name, p.read_bytes()) for p in bundle.iterdir()) == before
    other = tmp_path / "papers"
    other.mkdir()
    (other / "letter.txt").write_text("keep me")
    refused = invoke(["--store", store, "export", "--out", str(other), "--replace"])
    assert refused.exit_code == 2 and (other / "letter.txt").read_text() == "keep me"
    archive = tmp_path / "bundle.zip"
    assert invoke(["--store", store, "export", "--out", str(archive)]).exit_code == 0
    assert invoke(["--store", store, "export", "--out", str(archive), "--replace"]).exit_code == 0
    assert invoke(["verify", str(archive), "--json"]).json()["ok"] is True


def test_the_demo_ships_the_shared_scenario_unchanged() -> None:
    """The demo's copy of RR-2026-004 (which the tests also use in a clone without
    ``shared/`` beside it) is the shared scenario, byte for byte."""
    from tests.conftest import DEMO_SCENARIO, SHARED_SCENARIO

    if not SHARED_SCENARIO.is_file():
        pytest.skip(f"{SHARED_SCENARIO} is not beside this checkout")
    assert DEMO_SCENARIO.read_bytes() == SHARED_SCENARIO.read_bytes()


def test_the_tour_answers_the_same_on_any_day(tmp_path: Path) -> None:
    """Each question of the tour is asked about DEMO_DAY, so the demo prints the same
    answers whatever day it runs (before its cases, during them, decades later); the
    open case's rapid review has run out on that day, as the tour says."""
    store = str(tmp_path / "demo.db")
    record_sample(store)
    questions = [args for _, args in TOUR if "{bundle}" not in args]  # the bundle: made now
    asks_now = ("status", "due", "clocks", "delays", "quality")
    assert all(args[-2:] == ["--on", DEMO_DAY] for args in questions if args[0] in asks_now)
    seen = []
    for day in ("2026-01-15", "2026-11-10", "2040-01-01"):
        with time_machine.travel(f"{day}T12:00:00+00:00", tick=True):
            answers = [invoke(["--store", store, *args]) for args in questions]
        assert [a.exit_code for a in answers] == [0] * len(questions), [a.stderr for a in answers]
        seen.append([a.stdout for a in answers])
    assert seen[0] == seen[1] == seen[2]
    open_case = questions[[a[:2] for a in questions].index(["clocks", "RR-2026-031"])]
    shown = invoke(["--store", store, *open_case, "--json"]).json()
    assert {c["clock"]: c["status"] for c in shown}["rapid_review"] == "overdue"
