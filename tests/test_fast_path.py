"""The fast path of a cold ``why`` or ``timeline`` (:mod:`cli.fast_path`) answers as typer
does.

Both paths run in this process over the same arguments and the same SQLite store (the
shared scenario): :func:`cli.start.main` (the fast path where it applies) and
:func:`cli.common.run` (typer always, every command loaded).  Hypothesis writes the
arguments in every order and form typer takes (``--opt V``, ``--opt=V``, ``--store``
before or after the command or from ``CASELEDGER_STORE``), and mixes in the forms the
fast path must leave to typer (a help, a repeat, ``--``, an unknown option, a missing or
second argument, a flag given a value, a value that looks like an option, an unknown
case, a bad time); standard output, standard error and the exit code must be the same.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli.main  # every command registered: typer's answer is the whole app's
from cli import fast_path
from cli.command_index import FAST_COMMANDS
from cli.common import run
from cli.start import main
from tests.conftest import open_ledger, scenario_lines

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
CASES = ("RR-2026-004", "RR-2026-999")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store holding the shared scenario."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fast') / 'ledger.db'}"
    led = open_ledger(url)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.close()
    return url


@contextmanager
def _captured() -> Iterator[list[bytes]]:
    """Standard output and error as bytes (filled in when the block ends)."""
    streams = [io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)] * 1
    streams.append(io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True))
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = streams
    found: list[bytes] = []
    try:
        yield found
    finally:
        sys.stdout, sys.stderr = saved
        for stream in streams:
            stream.flush()
            raw = stream.detach()
            assert isinstance(raw, io.BytesIO)
            found.append(raw.getvalue())


def _outcome(entry: object, args: list[str]) -> tuple[int, bytes, bytes]:
    """Exit code, standard output and standard error of ``entry(args)``."""
    code = 0
    with time_machine.travel(NOW, tick=False), _captured() as found:
        try:
            entry(args)  # type: ignore[operator]
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, found[0], found[1]


def _same_outcome(args: list[str], env_store: str | None = None) -> tuple[int, bytes, bytes]:
    """Both paths' outcome for ``args``, asserted equal."""
    saved = os.environ.pop("CASELEDGER_STORE", None)
    if env_store is not None:
        os.environ["CASELEDGER_STORE"] = env_store
    try:
        fast = _outcome(main, args)
        typer_ = _outcome(run, args)
    finally:
        os.environ.pop("CASELEDGER_STORE", None)
        if saved is not None:
            os.environ["CASELEDGER_STORE"] = saved
    assert fast == typer_, args
    return fast


WHY = next(c for c in FAST_COMMANDS if c.name == "why")
VALUES = st.sampled_from(["2026-03-01", "2026-05-01T10:00", "", "2026-13-40", "tomorrow"])

#: A local rules file for ``status --rules`` (a longer notification clock from 2023).
LOCAL_RULES = """
[[clocks]]
regime = "wt2023"
name = "notification"
title = "Serious incident notified to the national panel"
label = "notification"
start = { event = "CaseReferred", field = "aware_date" }
end = { event = "IncidentNotified", where = { field = "recipients", contains = "national-panel" } }
limit = 9
unit = "working_days"
source = "A local procedure (check)"
effective_from = 2023-12-15
"""
RULES_FILE = Path(tempfile.mkdtemp(prefix="fast-rules-")) / "local.toml"
RULES_FILE.write_text(LOCAL_RULES, encoding="utf-8")

#: The values drawn for the options that are not times (``status``'s).
OPTION_VALUES = {
    "stage": st.sampled_from(["decided", "referred", "nosuch", ""]),
    "regime": st.sampled_from(["wt2023", "wt2018", "nosuch"]),
    "sort": st.sampled_from(["ref", "urgency", "nosuch"]),
    "rules": st.sampled_from([str(RULES_FILE), str(RULES_FILE.with_name("none.toml")), ""]),
    "within": st.sampled_from(["0", "5", "05", "31", "abc", "5.0", "", "\u0665"]),
    "kind": st.sampled_from(["clock", "reply", "nosuch"]),
    "status": st.sampled_from(["running", "met", "late", "overdue", "withdrawn", "nosuch"]),
    "from_type": st.sampled_from(["IncidentNotified", "CaseReferred", "Nosuch"]),
    "to_type": st.sampled_from(["DecisionMade", "RapidReviewSent", ""]),
    "over": st.sampled_from(["0", "3", "abc", "2.5"]),
    "case": st.sampled_from([*CASES, ""]),
}


@st.composite
def plain_call(draw: st.DrawFn, store: str, name: str = "why") -> tuple[list[str], str | None]:
    """A plain ``why`` (or ``timeline``): the argument and a subset of the options in any
    order and form, ``--store`` before the command, after it, or from the environment."""
    command = next(c for c in FAST_COMMANDS if c.name == name)
    given = command.argument is not None and (command.required or draw(st.booleans()))
    parts: list[list[str]] = [[draw(st.sampled_from(CASES))]] if given else []
    for option in command.options:
        for _ in range(draw(st.integers(1, 2)) if option.multiple else 1):
            if not draw(st.booleans()):
                continue
            if option.flag:
                parts.append([option.opt])
            else:
                value = draw(OPTION_VALUES.get(option.name, VALUES))
                eq = draw(st.booleans()) or value == ""
                parts.append([f"{option.opt}={value}"] if eq else [option.opt, value])
    parts = draw(st.permutations(parts))
    where = draw(st.sampled_from(["front", "after", "env", "front="]))
    tail = [a for part in parts for a in part]
    if where == "front":
        return ["--store", store, name, *tail], None
    if where == "front=":
        return [f"--store={store}", name, *tail], None
    if where == "after":
        at = draw(st.integers(0, len(parts)))
        moved = [a for part in parts[:at] for a in part]
        rest = [a for part in parts[at:] for a in part]
        return [name, *moved, "--store", store, *rest], None
    return [name, *tail], store


UNUSUAL = st.sampled_from(
    [
        ["--help"],
        ["-h"],
        ["--json"],
        ["--full"],
        ["--"],
        ["--as-of", "--json"],
        ["--json=yes"],
        ["--nosuch"],
        ["RR-2026-005"],
        ["-"],
        ["--store"],
    ]
)


@pytest.mark.parametrize("name", [c.name for c in FAST_COMMANDS])
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_both_paths_answer_alike(store: str, name: str, data: st.DataObject) -> None:
    args, env_store = data.draw(plain_call(store, name))
    if data.draw(st.booleans()):
        extra = data.draw(UNUSUAL)
        at = data.draw(st.integers(1, len(args)))
        args = [*args[:at], *extra, *args[at:]]
    _same_outcome(args, env_store)


def test_the_plain_forms_take_the_fast_path(store: str) -> None:
    """A plain ``why`` is parsed here; the option's value and the store's are typer's."""
    call = fast_path.parse(["why", "--on=2026-03-01", "RR-2026-004", "--store", store], {})
    assert call == fast_path.FastCall(
        "why",
        {
            "case": "RR-2026-004",
            "as_of": None,
            "on": "2026-03-01",
            "full": False,
            "as_json": False,
            "store": store,
        },
    )
    env = {"CASELEDGER_STORE": store}
    assert fast_path.parse(["why", "X", "--json"], env) == fast_path.FastCall(
        "why",
        {"case": "X", "as_of": None, "on": None, "full": False, "as_json": True, "store": store},
    )
    assert fast_path.parse(["why", "X"], {"CASELEDGER_STORE": ""}).params["store"] is None  # type: ignore[union-attr]
    code, out, _ = _same_outcome(["--store", store, "why", "RR-2026-004", "--json"])
    assert code == 0 and b'"case": "RR-2026-004"' in out
    timeline = fast_path.parse(["timeline", "RR-2026-004", "--csv", "--store", store], {})
    assert timeline is not None and timeline.params["as_csv"] is True
    for form in (["--csv"], ["--json"], [], ["--json", "--csv"]):
        code, out, err = _same_outcome(["--store", store, "timeline", "RR-2026-004", *form])
        assert (code, bool(out)) == ((2, False) if len(form) == 2 else (0, True)), (form, err)


def test_delays_takes_the_fast_path_with_its_required_options(store: str) -> None:
    """``delays`` needs ``--from`` and ``--to``: without either it is typer's to say so."""
    call = fast_path.parse(["delays", "--from", "A", "--to=B", "--over", "0"], {})
    assert call is not None and (call.params["from_type"], call.params["over"]) == ("A", 0)
    assert fast_path.parse(["delays", "--from", "A"], {}) is None
    assert fast_path.parse(["delays", "--to", "B"], {}) is None
    base = ["--store", store, "delays", "--from", "IncidentNotified", "--to", "DecisionMade"]
    for form in ([], ["--json"], ["--csv"], ["--over", "3"], ["--case", "RR-2026-004"]):
        code, out, err = _same_outcome([*base, "--on", "2026-06-01", *form])
        assert code == 0 and out, (form, err)
    code, out, err = _same_outcome(["--store", store, "delays", "--from", "IncidentNotified"])
    assert code == 2 and not out and b"--to" in err


def test_clocks_takes_the_fast_path_with_a_repeated_status(store: str) -> None:
    """``clocks --status`` may be repeated: its values in the order given, None unless
    given, and every form of the answer alike on both paths."""
    call = fast_path.parse(["clocks", "--status", "met", "--status=late", "--store", store], {})
    assert call is not None and call.params["status"] == ["met", "late"]
    assert fast_path.parse(["clocks"], {}).params["status"] is None  # type: ignore[union-attr]
    for form in ([], ["--json"], ["--csv"], ["--all"], ["RR-2026-004"], ["--status", "late"]):
        code, out, err = _same_outcome(["--store", store, "clocks", "--on", "2026-06-01", *form])
        assert code == 0 and out, (form, err)


def test_due_takes_the_fast_path_with_its_number_and_no_argument(store: str) -> None:
    """``due`` takes no argument and a number of working days: digits are read as typer
    reads them; any other spelling of a number is typer's to refuse, in its words."""
    call = fast_path.parse(["due", "--within", "05", "--store", store], {})
    assert call is not None and call.params["within"] == 5 and "case" in call.params
    for odd in (["--within", "5.0"], ["--within", "\u0665"], ["--within="], ["RR-2026-004"]):
        assert fast_path.parse(["due", *odd], {}) is None, odd
    for form in ([], ["--json"], ["--csv"], ["--within", "3"], ["--kind", "reply"]):
        code, out, err = _same_outcome(["--store", store, "due", "--on", "2026-03-02", *form])
        assert code == 0 and out, (form, err)
    code, out, err = _same_outcome(["--store", store, "due", "--within", "abc"])
    assert code == 2 and not out and b"within" in err


def test_status_takes_the_fast_path_with_its_defaults_and_variables(store: str) -> None:
    """``status`` with no case, its ``--sort`` default and ``--rules`` from the variable
    (a path, as typer makes it), and every form of its answer alike on both paths."""
    call = fast_path.parse(["status", "--store", store], {"CASELEDGER_RULES": str(RULES_FILE)})
    assert call is not None
    assert call.params["case"] is None and call.params["sort"] == "urgency"
    assert call.params["rules"] == RULES_FILE
    assert fast_path.parse(["status"], {"CASELEDGER_RULES": ""}).params["rules"] is None  # type: ignore[union-attr]
    saved = os.environ.get("CASELEDGER_RULES")
    os.environ["CASELEDGER_RULES"] = str(RULES_FILE)
    try:
        for form in ([], ["--json"], ["--csv"], ["--all"], ["RR-2026-004"], ["--json", "--csv"]):
            code, out, err = _same_outcome(
                ["--store", store, "status", *form, "--on", "2026-06-01"]
            )
            assert (code, bool(out)) == ((2, False) if len(form) == 2 else (0, True)), (form, err)
            if code == 0 and form != ["RR-2026-004"]:
                assert RULES_FILE.name in (out + err).decode(), "the local rules are disclosed"
    finally:
        os.environ.pop("CASELEDGER_RULES", None)
        if saved is not None:
            os.environ["CASELEDGER_RULES"] = saved


@pytest.mark.parametrize(
    "args",
    [
        ["why", "X", "--help"],
        ["why", "X", "-h"],
        ["why", "X", "--json", "--json"],
        ["why", "X", "--on", "1", "--on=2"],
        ["--store", "a", "why", "X", "--store", "b"],
        ["why", "X", "Y"],
        ["why"],
        ["why", "--", "X"],
        ["why", "X", "--as-of", "-1"],
        ["why", "X", "--as-of"],
        ["why", "X", "--full=1"],
        ["why", "X", "--nosuch"],
        ["--json", "why", "X"],
        ["status", "X", "Y"],
        ["status", "--sort"],
        ["status", "--all=1"],
        ["status", "--stage", "decided", "--stage", "closed"],
        ["timeline", "X", "--csv", "--csv"],
        ["timeline", "X", "--full", "--help"],
        [],
    ],
)
def test_every_other_form_is_left_to_typer(args: list[str]) -> None:
    assert fast_path.parse(args, {}) is None


def test_completion_is_left_to_typer() -> None:
    assert fast_path.parse(["why", "X"], {fast_path.COMPLETING: "bash_complete"}) is None


def test_an_error_on_the_fast_path_is_typers(store: str, tmp_path: Path) -> None:
    """An unknown case, a bad time, a store that is not there: typer's words and code."""
    for args in (
        ["--store", store, "why", "RR-2026-999", "--json"],
        ["--store", store, "why", "RR-2026-004", "--on", "2026-13-40"],
        ["--store", f"sqlite:///{tmp_path / 'none.db'}", "why", "RR-2026-004"],
    ):
        assert fast_path.parse(args, {}) is not None
        code, out, err = _same_outcome(args)
        assert code in (2, 4) and out == b"" and err.startswith(b"error:"), (args, err)
    assert not (tmp_path / "none.db").exists(), "a query creates no store"


def test_the_fast_table_is_the_real_commands() -> None:
    """The table is generated from typer's commands (``python -m cli.reference --check``
    fails when it is stale), so an option added to ``why`` reaches the fast parser."""
    import typer.main

    from cli.reference import fast_table

    assert cli.main.app is not None
    root = typer.main.get_command(cli.main.app)
    text = fast_table(root)
    assert "FastCommand('why', 'case'" in text
    for option in WHY.options:
        assert f"ParsedOption{tuple(option)!r}" in text


def test_the_policys_written_out_types_are_the_catalogues() -> None:
    """The policy names its entry types without the pydantic models (a cold ``why`` folds
    the register's policy): exactly the catalogue's types, and those with ``approved_by``."""
    from ledger.catalogue import models
    from ledger.domain import policy

    assert policy.EVENT_TYPES == models.EVENT_TYPES
    approvable = [t for t in models.EVENT_TYPES if "approved_by" in models.body_fields(t)]
    assert policy.APPROVABLE == tuple(approvable)


def test_a_cold_why_imports_no_pydantic_model() -> None:
    """What a plain ``why --json`` needs is importable without pydantic or typer."""
    import subprocess

    code = (
        "import sys, cli.start, cli.fast_path, ledger.application.reading, projections.api\n"
        "import ledger.domain.register, projections.queries.cases\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pydantic', 'typer')]\n"
        "bad += [m for m in sys.modules if m.startswith('ledger.catalogue.models')]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_fast_commands_parameter_is_its_facades() -> None:
    """The fast path passes each parameter but the CLI's own to the facade function of
    the command's name, by the same name: every one must be that function's."""
    import inspect

    from projections import api

    for command in FAST_COMMANDS:
        accepted = set(inspect.signature(getattr(api, command.name)).parameters)
        names = {o.name for o in command.options} | {command.argument} - {None}
        assert names - fast_path._CLI_ONLY <= accepted, command.name
