"""Start-up budget: what a cold ``caseledger`` imports, per command (issue 18).

Each command runs in a new interpreter through the console entry point
(:func:`cli.start.main`); the modules it leaves in ``sys.modules`` beyond a bare
interpreter's are counted against :data:`BUDGET` and checked against what it must never
import.  Deterministic (no timing): a command whose imports grow past its budget fails
here, and the import that grew it is named.  The cost of each module on this machine is
in docs/performance.md ("CLI start-up"); raise a budget only with a reason there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.command_index import COMMANDS
from cli.start import COMPLETING, wanted_module
from tests.conftest import scenario_lines

ROOT = Path(__file__).resolve().parents[1]

_PROBE = r"""
import sys
sys.argv = ["caseledger", *sys.argv[2:]]
target = sys.argv and __import__("os").environ["STARTUP_PROBE_OUT"]
try:
    from cli.start import main
    main()
except SystemExit:
    pass
finally:
    with open(target, "w", encoding="utf-8") as out:
        out.write("\n".join(sorted(sys.modules)))
"""

BUDGET: dict[str, int] = {
    "--help": 275,
    "why": 360,
    "status": 690,
    "timeline": 360,
    "decide --help": 455,
}
"""The most modules each command may import beyond a bare interpreter (measured when
set: ``--help`` 265, ``why`` and ``timeline`` 346, ``status`` 672 (of them about 300 are
the ``holidays`` package's countries, loaded for the working-day clocks), ``decide
--help`` 442); about 3% headroom."""

NEVER: dict[str, tuple[str, ...]] = {
    "--help": (
        "pydantic",
        "eventsourcing",
        "ledger.application",
        "ledger.catalogue",
        "projections",
        "cli.commands",
        "sqlite3",
    ),
    "why": ("psycopg", "openpyxl", "jinja2", "projections.export", "cli.commands.assessments"),
    "status": ("psycopg", "openpyxl", "jinja2", "projections.export", "cli.commands.exports"),
    "timeline": ("psycopg", "openpyxl", "jinja2", "cli.commands.record", "cli.commands.tracker"),
    "decide --help": ("psycopg", "openpyxl", "jinja2", "projections", "cli.commands.queries"),
}
"""What each must not import: a module here, or any module under it."""


def _bare() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def imported_by(args: list[str], tmp_path: Path) -> set[str]:
    """The modules a cold ``caseledger ARGS`` imports beyond a bare interpreter's."""
    out = tmp_path / "modules.txt"
    env = {k: v for k, v in os.environ.items() if k != COMPLETING}
    env.update({"STARTUP_PROBE_OUT": str(out), "COLUMNS": "100"})
    subprocess.run(
        [sys.executable, "-c", _PROBE, "probe", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return set(out.read_text(encoding="utf-8").split()) - _bare()


@pytest.fixture(scope="module")
def scenario_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store holding the shared scenario (the commands read it)."""
    from tests.conftest import open_ledger

    url = f"sqlite:///{tmp_path_factory.mktemp('startup') / 'ledger.db'}"
    led = open_ledger(url)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.close()
    return url


def _args(name: str, store: str) -> list[str]:
    return {
        "--help": ["--help"],
        "why": ["--store", store, "why", "RR-2026-004", "--json"],
        "status": ["--store", store, "status", "--json", "--on", "2026-06-01"],
        "timeline": ["--store", store, "timeline", "RR-2026-004", "--json"],
        "decide --help": ["decide", "--help"],
    }[name]


@pytest.mark.parametrize("name", list(BUDGET))
def test_a_command_imports_within_its_budget(name: str, scenario_db: str, tmp_path: Path) -> None:
    modules = imported_by(_args(name, scenario_db), tmp_path)
    assert "cli" in modules, "the probe ran the command"
    banned = sorted(m for m in modules for b in NEVER[name] if m == b or m.startswith(b + "."))
    assert not banned, f"`caseledger {name}` imports {banned[:10]}"
    packages: dict[str, int] = {}
    for module in modules:
        packages[module.partition(".")[0]] = packages.get(module.partition(".")[0], 0) + 1
    assert len(modules) <= BUDGET[name], (
        f"`caseledger {name}` imports {len(modules)} modules, over its budget of "
        f"{BUDGET[name]}; by package: {sorted(packages.items(), key=lambda p: -p[1])}"
    )


def test_the_lazy_start_prints_the_same_help_as_every_command_loaded(tmp_path: Path) -> None:
    """The root help built from the index, and a command's or group's help with only its
    module imported, print what ``python -m cli.main`` (every command) prints."""
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    env.pop(COMPLETING, None)
    for args in ([], ["--help"], ["why", "--help"], ["users", "--help"], ["nosuch"], ["--store"]):
        lazy, full = (
            subprocess.run(
                [sys.executable, "-m", module, *args], capture_output=True, env=env, cwd=tmp_path
            )
            for module in ("cli.start", "cli.main")
        )
        assert (lazy.returncode, lazy.stdout, lazy.stderr) == (
            full.returncode,
            full.stdout,
            full.stderr,
        ), args


def test_the_index_is_what_the_commands_are() -> None:
    """cli/command_index.py is regenerated from the real commands: names, order, helps."""
    from cli.reference import INDEX, command_index

    assert INDEX.read_text(encoding="utf-8") == command_index(), "run python -m cli.reference"
    assert len(COMMANDS) >= 40


def test_the_command_name_picks_its_module_only() -> None:
    assert wanted_module([]) == ""
    assert wanted_module(["--help"]) == wanted_module(["--store", "x", "-h"]) == ""
    assert wanted_module(["why", "RR-1"]) == "cli.commands.queries"
    assert wanted_module(["--store=x", "users", "add"]) == "cli.commands.admin"
    assert wanted_module(["status", "--store", "x"]) == "cli.commands.queries"
    assert wanted_module(["nosuch"]) is None
    assert wanted_module(["demo", "--no-tour"]) is None, "the tour runs other commands"
    assert wanted_module(["--install-completion"]) is None


def test_completion_loads_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMPLETING, "bash_complete")
    assert wanted_module(["why"]) is None
