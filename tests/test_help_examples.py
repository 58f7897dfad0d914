"""Every one-entry command's help shows a real command (issue 15 item 6): its example parses
with the command's own options and gives an entry the catalogue accepts, so a business
manager can copy it and change the values."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer.main

from cli.commands.entries import field_for
from cli.main import app
from ledger.api import record_entry
from ledger.catalogue.registry import KINDS, EventKind


class Validated(Exception):
    """Raised by the opener: the entry was accepted, and only then is a store wanted."""


def _no_store() -> Any:
    raise Validated


@pytest.mark.parametrize("kind", KINDS, ids=[k.command for k in KINDS])
def test_the_example_is_a_command_that_validates(
    kind: EventKind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    criteria = {"abuse_or_neglect": {"finding": "met", "reason": "Injuries non-accidental"}}
    (tmp_path / "criteria.json").write_bytes(orjson.dumps(criteria))
    assert kind.example, f"{kind.command} has no example"
    words = shlex.split(kind.example)
    assert words[:2] == ["caseledger", kind.command]
    root = typer.main.get_command(app)
    command = root.commands[kind.command]  # type: ignore[attr-defined]
    with command.make_context(kind.command, words[2:]) as ctx:
        given = dict(ctx.params)
    case = given.pop("case")
    given.pop("as_json")
    role = given.pop("role")
    fields = {field_for(name): value for name, value in given.items() if value not in (None, [])}
    assert fields or kind.command == "complete-review"
    with pytest.raises(Validated):
        record_entry(_no_store, kind.name, case, role=role, **fields)


def test_the_help_shows_the_example(cli: Any) -> None:
    for kind in KINDS:
        shown = cli([kind.command, "--help"], env={"COLUMNS": "400"}).stdout
        assert " ".join(kind.example.split()[:3]) in " ".join(shown.split()), kind.command
