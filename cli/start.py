"""The ``caseledger`` console command, started lazily: import only what this run needs.

:mod:`cli.main` imports every command module, and typer builds every command (about 50)
before it reads the arguments: about half of a cold start.  Here the command's name is
read from the arguments first, and only its module is imported (``caseledger why ...``
imports :mod:`cli.commands.queries`, not the exporter's or the tracker's commands).
``caseledger`` and ``caseledger --help`` need only the names and one-line helps of the
commands: those come from :data:`cli.command_index.COMMANDS`, a table generated from the
real commands by ``python -m cli.reference`` (and checked by ``--check``), so the help is
the same text without importing a command.  Anything else (an unknown name, a root option
other than ``--store`` and ``--help``, shell completion, ``demo`` whose tour runs other
commands) imports every command, as :mod:`cli.main` does, so typer gives its usual answer.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer.core
import typer.main

from cli.command_index import COMMANDS, IndexedCommand
from cli.common import app, hoist_store, run

RUNS_OTHERS: frozenset[str] = frozenset({"cli.commands.demo"})
"""Command modules whose commands run other commands in-process (the demo's tour runs
``status``, ``due``, ``export``...): every command is imported for them."""

COMPLETING: str = "_CASELEDGER_COMPLETE"
"""Set by the shell when it asks for completions (click's protocol): every command then."""


def wanted_module(args: list[str]) -> str | None:
    """The one command module these arguments need, ``""`` for the root help alone, or
    ``None`` for all of them (completion, an unknown name, another root option)."""
    if COMPLETING in os.environ:
        return None
    rest = hoist_store(args)
    while rest and (rest[0] == "--store" or rest[0].startswith("--store=")):
        rest = rest[2:] if rest[0] == "--store" else rest[1:]
    if not rest or rest[0] in ("-h", "--help"):
        return ""
    entry = next((c for c in COMMANDS if c.name == rest[0]), None)
    return None if entry is None or entry.module in RUNS_OTHERS else entry.module


def listed(entry: IndexedCommand) -> typer.core.TyperCommand:
    """A command as the root help lists it (name, help, panel), built from the index
    without importing its module; never run (the root help exits first)."""
    command = typer.core.TyperCommand(
        entry.name,
        help=entry.help,
        short_help=entry.short_help,
        hidden=entry.hidden,
        deprecated=entry.deprecated,
    )
    if entry.panel is not None:
        command.rich_help_panel = entry.panel
    return command


def root_group() -> Any:
    """The root group with every command listed from the index, none imported."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    for entry in COMMANDS:
        group.add_command(listed(entry))
    return group


def main(argv: list[str] | None = None) -> None:
    """The console entry point: :func:`cli.common.run` after importing what is needed."""
    args = sys.argv[1:] if argv is None else list(argv)
    module = wanted_module(args)
    if module == "":
        run(args, group=root_group())
        return
    importlib.import_module("cli.main" if module is None else module)
    run(args)


if __name__ == "__main__":
    main()
