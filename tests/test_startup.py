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
code = 0
try:
    from cli.start import main
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
finally:
    with open(target, "w", encoding="utf-8") as out:
        out.write("\n".join([f"exit={code}", *sorted(sys.modules)]))
"""

BUDGET: dict[str, int] = {
    "--help": 154,
    "why": 135,
    "why (people)": 194,
    "why --help": 263,
    "status": 162,
    "timeline": 139,
    "due": 178,
    "clocks": 177,
    "delays": 180,
    "decide --help": 289,
    "record": 340,
    "verify": 354,
}
"""The most modules each command may import beyond a bare interpreter, about 3% over what
each imported when set (``--help`` 149, ``why`` 131 and 188 for people since the fast
path of issue 18 (neither imports typer or pydantic),
``why --help`` 255, ``status`` 285 (594 before the bank holidays came from a table generated
from the ``holidays`` package, whose countries were about 300 of them), ``timeline`` 266,
``decide --help`` 280, ``record`` 330, ``verify`` 343; ``timeline`` 134 and ``status`` 157
since they took the fast path too, ``status`` without pydantic since the shipped rule packs
come from a generated table; ``due`` 172, ``clocks`` 171, ``delays`` 174 on the fast path): see
docs/performance.md, "CLI start-up"."""

#: What typer's help formatter imports at its top but the app never uses (Markdown help,
#: pretty tracebacks): :func:`cli.start.defer_typer_extras` keeps them out.
TYPER_EXTRAS = ("rich.markdown", "rich.traceback", "rich.pretty", "markdown_it")

#: The write side's application and what only it needs: a command's help needs none.
APPLICATION = ("ledger.application", "eventsourcing", "cryptography", "sqlite3", "projections")

#: What a cold daily read on the fast path (``status``, ``due``, ``clocks``, ``delays`` with
#: ``--json``)
#: never imports: typer, pydantic and the models, the ``holidays`` package, rich, the writes.
DAILY_READ = (
    "rich",
    "typer",
    "pydantic",
    "ledger.catalogue.models",
    "psycopg",
    "openpyxl",
    "jinja2",
    "holidays",
    "ledger.application.recording",
)

NEVER: dict[str, tuple[str, ...]] = {
    "--help": (
        "pydantic",
        "eventsourcing",
        "ledger.application",
        "ledger.catalogue",
        "projections",
        "cli.commands",
        "sqlite3",
        "orjson",
        *TYPER_EXTRAS,
    ),
    "why": (
        "typer",
        "click",
        "pydantic",
        "ledger.catalogue.models",
        "ledger.application.lines",
        "ledger.application.recording",
        "rich",
        "psycopg",
        "openpyxl",
        "jinja2",
        "projections.export",
        "projections.assess",
        "holidays",
        "cli.commands.assessments",
    ),
    "why (people)": (
        "typer",
        "pydantic",
        "psycopg",
        "openpyxl",
        "jinja2",
        "projections.export",
        *TYPER_EXTRAS,
    ),
    "why --help": ("ledger.catalogue", "orjson", *APPLICATION, *TYPER_EXTRAS),
    "status": (*DAILY_READ, "projections.export"),
    "timeline": (
        "rich",
        "typer",
        "pydantic",
        "psycopg",
        "openpyxl",
        "jinja2",
        "cli.commands.record",
        "holidays",
    ),
    "due": DAILY_READ,
    "clocks": DAILY_READ,
    "delays": DAILY_READ,
    "decide --help": (
        "psycopg",
        "openpyxl",
        "jinja2",
        "projections",
        "cli.commands.queries",
        *TYPER_EXTRAS,
    ),
    "record": ("psycopg", "openpyxl", "jinja2", "projections.export", "cli.commands.queries"),
    "verify": ("psycopg", "openpyxl", "jinja2", "projections.export", "cli.commands.queries"),
}
"""What each must not import: a module here, or any module under it.  ``why``,
``status`` and ``timeline`` print ``--json`` (no rich: :class:`cli.common.LazyConsole`);
``why (people)`` draws its panels."""


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
    first, *modules = out.read_text(encoding="utf-8").split()
    assert first == "exit=0", f"`caseledger {' '.join(args)}` ended with {first}"
    return set(modules) - _bare()


@pytest.fixture(scope="module")
def scenario_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store holding the shared scenario (the commands read it)."""
    from tests.conftest import open_ledger

    url = f"sqlite:///{tmp_path_factory.mktemp('startup') / 'ledger.db'}"
    led = open_ledger(url)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.close()
    return url


def _args(name: str, store: str, tmp_path: Path) -> list[str]:
    if name == "record":
        lines = tmp_path / "entries.jsonl"
        lines.write_bytes(b"\n".join(scenario_lines()) + b"\n")
        fresh = f"sqlite:///{tmp_path / 'new.db'}"
        return ["--store", fresh, "record", str(lines), "--json"]
    return {
        "--help": ["--help"],
        "why": ["--store", store, "why", "RR-2026-004", "--json"],
        "why (people)": ["--store", store, "why", "RR-2026-004"],
        "why --help": ["why", "--help"],
        "status": ["--store", store, "status", "--json", "--on", "2026-06-01"],
        "timeline": ["--store", store, "timeline", "RR-2026-004", "--json"],
        "due": ["--store", store, "due", "--json", "--on", "2026-06-01"],
        "clocks": ["--store", store, "clocks", "--json", "--on", "2026-06-01"],
        "delays": [
            "--store",
            store,
            "delays",
            "--from",
            "IncidentNotified",
            "--to",
            "DecisionMade",
            "--json",
        ],
        "decide --help": ["decide", "--help"],
        "verify": ["--store", store, "verify", "--json"],
    }[name]


@pytest.mark.parametrize("name", list(BUDGET))
def test_a_command_imports_within_its_budget(name: str, scenario_db: str, tmp_path: Path) -> None:
    modules = imported_by(_args(name, scenario_db, tmp_path), tmp_path)
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


def _python(code: str) -> None:
    """Run ``code`` in a new interpreter (this one may have imported rich already)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_typers_extras_are_the_real_ones_when_used() -> None:
    """The stand-ins typer's help formatter gets for ``Markdown`` and ``Traceback`` give
    the real classes on first use, and a later ``import rich.markdown`` is the real one."""
    _python(
        """
import sys
from cli.start import defer_typer_extras
defer_typer_extras()
import typer.rich_utils as ru
assert "rich.markdown" not in sys.modules and "rich.traceback" not in sys.modules
text = ru._make_rich_text(text="*a*", markup_mode="markdown")
import rich.markdown, rich.traceback
assert type(text) is rich.markdown.Markdown, type(text)
assert ru.Traceback.from_exception.__self__ is rich.traceback.Traceback
defer_typer_extras()
assert sum(type(f).__name__ == "_TyperExtrasFinder" for f in sys.meta_path) == 1
"""
    )


def test_the_consoles_are_built_on_first_use_at_the_width_given() -> None:
    """Importing the CLI builds no console (rich is not imported); the first use builds
    it at ``COLUMNS`` as it is then, as :func:`cli.common.fit_consoles` fits a built one."""
    _python(
        """
import os, sys
import cli.common as common
assert not any(m == "rich" or m.startswith("rich.") for m in sys.modules)
common.fit_consoles()
os.environ["COLUMNS"] = "57"
assert common.out.width == 57 and "rich.console" in sys.modules
os.environ["COLUMNS"] = "61"
assert common.err.width == 61
common.fit_consoles()
assert common.out.width == 61
assert common.escape("[b]") == "\\\\[b]"
with common.err as console:  # rich's live displays enter the console they are given
    assert type(console).__name__ == "Console"
"""
    )


def test_the_startup_bench_times_each_command_against_the_baseline(scenario_db: str) -> None:
    """``python -m bench.startup``'s measurement: every command ran (exit 0, else it
    stops), each with its medians and its ratios to ``python -c pass``."""
    from bench.startup import measure

    only = ("--help", "why --json")
    result = measure(scenario_db, "RR-2026-004", rounds=1, only=only, warm_up=False)
    figures = result["figures"]
    assert list(figures) == ["python -c pass", *only]
    assert figures["python -c pass"]["cpu_ratio"] == 1.0
    for name, figure in figures.items():
        assert figure["wall_ms"] > 0 and figure["cpu_ms"] > 0, name
        assert figure["cpu_ratio"] > 1.0 or name == "python -c pass", name
