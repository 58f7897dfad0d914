"""The generated references in docs/reference/ match the code (regenerate with
``python -m cli.reference``), and every command's --help carries an example."""

from __future__ import annotations

import typer.main

from cli.main import app
from cli.reference import REFERENCE, _help, command_paths, pages


def test_reference_pages_are_current() -> None:
    for name, text in pages().items():
        committed = (REFERENCE / name).read_text(encoding="utf-8")
        assert committed == text, f"docs/reference/{name} is stale: run python -m cli.reference"


def test_every_command_has_an_example() -> None:
    root = typer.main.get_command(app)
    missing = []
    for path in command_paths():
        command = root
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            continue  # a group (users, keys): its commands carry the examples
        if "Example" not in _help(path):
            missing.append(" ".join(path))
    assert not missing, f"commands without an example in --help: {missing}"
