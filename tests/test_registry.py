"""The registry of event types (``ledger/catalogue/registry.py``) is the one list: every model
of the catalogue has exactly one kind and every kind one model, in the same order; the CLI's
entry commands, the describers, the report's lanes, the index's facts and the stage rules read
it; and a kind added to the registry reaches the CLI and the describers with no other edit."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from cli.commands.entries import COMMAND_NAMES, add_entry_commands
from cli.main import app
from ledger.catalogue import registry
from ledger.catalogue.models import (
    ENVELOPE_FIELDS,
    EVENT_MODELS,
    EVENT_TYPES,
    MODELS_BY_TYPE,
    AnyEvent,
    Envelope,
    Name,
    Text,
)
from ledger.catalogue.registry import (
    KINDS,
    KINDS_BY_COMMAND,
    KINDS_BY_NAME,
    TIMELINE_LANES,
    EventKind,
    kind_named,
)
from ledger.domain.register import REGISTER_TYPES
from ledger.importing.mapping import PHASES
from projections.export import chart, report
from projections.fold.case_view import GATHERING_TYPES
from projections.fold.describe import describe
from projections.index.records import index_covers
from projections.index.rows import FACT_FIELDS, MILESTONE_TIMES

ROOT = Path(__file__).resolve().parents[1]
ENTRY_PANEL = "Record one entry"


def _union_members() -> tuple[type[Envelope], ...]:
    union, _discriminator = get_args(AnyEvent)
    return tuple(get_args(union))


def test_every_model_of_the_union_has_exactly_one_kind_and_every_kind_one_model() -> None:
    members = _union_members()
    kinds = [kind.model for kind in KINDS]
    assert len(set(members)) == len(members)
    assert len(set(kinds)) == len(kinds), "a model has more than one kind"
    assert set(kinds) == set(members)
    assert tuple(kinds) == members, "the registry is not in catalogue order"
    assert EVENT_MODELS == members
    assert tuple(KINDS_BY_NAME) == EVENT_TYPES == tuple(MODELS_BY_TYPE)


def test_each_kind_is_named_by_its_models_type_literal() -> None:
    for kind in KINDS:
        (literal,) = get_args(kind.model.model_fields["type"].annotation)
        assert literal == kind.name
        assert kind_named(kind.name) is kind
    assert kind_named("PolicyChanged") is None  # a register entry, not a case event


def test_commands_are_unique_and_every_entry_command_comes_from_the_registry() -> None:
    assert len(KINDS_BY_COMMAND) == len(KINDS)
    entry_commands = [c for c in app.registered_commands if c.rich_help_panel == ENTRY_PANEL]
    assert [c.name for c in entry_commands] == [kind.command for kind in KINDS]
    for info in entry_commands:
        assert info.name is not None and info.callback is not None
        kind = KINDS_BY_COMMAND[info.name]
        assert info.callback.__doc__ == kind.help
        assert info.epilog is not None and info.epilog.startswith(f"Example: {kind.usage}  |")
    others = {c.name for c in app.registered_commands if c.rich_help_panel != ENTRY_PANEL}
    assert others.isdisjoint(KINDS_BY_COMMAND), "a command of another panel has a kind's name"
    assert dict(COMMAND_NAMES) == {kind.name: kind.command for kind in KINDS}


def test_every_example_calls_its_own_command() -> None:
    for kind in KINDS:
        assert kind.usage.startswith(f"caseledger {kind.command} "), kind.name


def test_the_index_copies_only_fields_of_the_model() -> None:
    for kind in KINDS:
        fields = set(kind.model.model_fields) - set(ENVELOPE_FIELDS)
        assert set(kind.index_facts) <= fields, kind.name
        assert len(set(kind.index_facts)) == len(kind.index_facts), kind.name
    assert dict(FACT_FIELDS) == {kind.name: kind.index_facts for kind in KINDS}
    assert index_covers()  # the shipped rule packs read only fields the index copies


def test_every_kind_has_a_lane_and_every_lane_a_colour() -> None:
    used = {kind.lane for kind in KINDS}
    assert used <= set(TIMELINE_LANES)
    assert used == set(TIMELINE_LANES), "a lane of the chart draws no type"
    for i in range(len(TIMELINE_LANES)):
        # the chart carries its colours itself (projections.export.chart.COLOURS)
        assert re.fullmatch(r"#[0-9a-f]{6}", chart.COLOURS.get(f"lane{i}", "")), i
    assert [label for label, _ in chart.LANES] == list(TIMELINE_LANES)
    drawn = [name for _, names in chart.LANES for name in names]
    assert sorted(drawn) == sorted(EVENT_TYPES)


def test_the_stage_rules_and_the_tracker_read_the_registry() -> None:
    assert {kind.name for kind in KINDS if kind.gathering} == GATHERING_TYPES
    assert PHASES == EVENT_TYPES
    assert set(MILESTONE_TIMES) <= set(KINDS_BY_NAME), "an index column names no type"


_CAMEL = re.compile(r"[A-Z][a-z]+(?:[A-Z][a-z]+)+")


def _compared_type_names(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every CamelCase string a comparison holds (``kind == "DecisionMade"``, ``in
    ("InformationReceived", ...)``) or ``of_type`` asks for: the names the logic that
    stays per type is keyed by."""
    for node in ast.walk(tree):
        sides: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "of_type":
            sides = list(node.args)
        for side in sides:
            items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
            for item in items:
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    if _CAMEL.fullmatch(item.value):
                        yield item.lineno, item.value


def test_the_logic_kept_per_type_names_only_kinds_or_register_entries() -> None:
    """The folds, clocks, quality answers, the tracker and the stores keep their own logic
    per type, keyed by the type's name: every name they compare with is a kind of the
    registry (or a register entry), so a renamed or removed type cannot leave a rule that
    silently never matches."""
    known = set(KINDS_BY_NAME) | set(REGISTER_TYPES)
    unknown = []
    for package in ("ledger", "projections", "cli"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for line, name in _compared_type_names(tree):
                if name not in known:
                    unknown.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not unknown, unknown


class _Reading(Mapping[str, Any]):
    """The fields of an entry, remembering every name the wording asks for."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = dict(fields)
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.asked.add(name)
        return self.fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)


def _sample_bodies() -> dict[str, list[dict[str, Any]]]:
    """The demo's entries, by type."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((ROOT / "cli" / "demo").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                body = json.loads(line)
                found.setdefault(body["type"], []).append(body)
    return found


def test_every_wording_reads_only_fields_of_its_model() -> None:
    """Both wordings of every kind give a line for a bare entry and for the demo's entries,
    and ask only for fields the model has (a misspelt field would print None for ever)."""
    samples = _sample_bodies()
    for kind in KINDS:
        fields = set(kind.model.model_fields)
        for body in [{"type": kind.name}, *samples.get(kind.name, [])]:
            for wording in (kind.wording, kind.report_wording):
                reading = _Reading(body)
                text = wording(reading)
                assert isinstance(text, str) and text.strip(), kind.name
                assert reading.asked <= fields, (kind.name, reading.asked - fields)


class WitnessHeard(Envelope):
    """A witness is heard (a type that exists only in this test)."""

    type: Literal["WitnessHeard"]
    witness: Name
    account: Text
    heard_in: Literal["person", "writing"] | None = None


FAKE = EventKind(
    WitnessHeard,
    command="hear-witness",
    lane="Information",
    index_facts=("witness",),
    wording=lambda f: f"{f.get('witness')} heard: {f.get('account')}",
    report_wording=lambda f: f"Witness {f.get('witness')} heard ({f.get('heard_in')})",
    example="caseledger hear-witness SCR-2026-001 --witness 'W' --account 'Saw it.'",
)


def test_a_kind_added_to_the_registry_reaches_the_cli() -> None:
    target = typer.Typer()

    @target.callback()
    def main() -> None:
        """A program with only the registry's entry commands."""

    add_entry_commands(target, [*KINDS, FAKE])
    names = [c.name for c in target.registered_commands]
    assert names == [*(kind.command for kind in KINDS), "hear-witness"]
    command = typer.main.get_command(target).commands["hear-witness"]  # type: ignore[attr-defined]
    options = {opt for param in command.params for opt in param.opts}
    assert {"--witness", "--account", "--heard-in", "--occurred-at", "--role", "--json"} <= options
    result = CliRunner().invoke(target, ["hear-witness", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Record a WitnessHeard entry: A witness is heard" in text
    assert "one of person, writing" in text
    assert "caseledger hear-witness SCR-2026-001 --witness 'W'" in text


def test_a_kind_added_to_the_registry_reaches_the_describers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = {"type": "WitnessHeard", "witness": "W", "account": "Saw it.", "note": "By phone."}
    assert describe("WitnessHeard", body) == "WitnessHeard"  # not yet in the registry
    monkeypatch.setitem(registry.KINDS_BY_NAME, "WitnessHeard", FAKE)  # type: ignore[index]
    assert describe("WitnessHeard", body) == "W heard: Saw it."
    assert report.describe(body) == "Witness W heard (None) (note: By phone.)"
