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


def test_the_command_list_does_not_depend_on_the_order_of_imports() -> None:
    """A program (or a test) that imports a command module before ``cli.main`` gets the
    same ``--help`` and reference: found when the reference went stale after the fuzz
    test imported ``cli.commands.demo`` first."""
    import subprocess
    import sys

    script = (
        "import cli.commands.demo, cli.commands.tracker, cli.main\n"
        "from cli.reference import REFERENCE, pages\n"
        "stale = [n for n, t in pages().items() if (REFERENCE / n).read_text('utf-8') != t]\n"
        "print(stale)\n"
        "raise SystemExit(1 if stale else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
