"""Every command of the CLI does its work through one function of the Python API
(``ledger.api`` for writing, ``projections.api`` for asking), with the same options: the CLI
only parses, calls and renders, so another front end (a web view, a digest) can do all it
does (issue 14, "Done when")."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import click
import pytest
import typer.main
from typer.core import TyperGroup

from cli.main import app

#: Options that only choose how an answer is shown, never what is done or asked.
RENDERING = frozenset({"as_json", "as_csv", "tour"})

FACADES = ("ledger.api", "projections.api")

#: The one command that is no question or record: ``serve`` runs the web view, whose every
#: page calls the facades (``cli/web/pages.py``; the import-linter contract "The web view
#: holds no logic" keeps it to them).  Held to the same checks, against its own function.
PRESENTATION: Final[Mapping[str, str]] = {"serve": "cli.web.server.serve"}


def commands() -> Iterator[tuple[str, click.Command]]:
    """Every leaf command of ``caseledger``, as typed (``users add``)."""

    def walk(group: TyperGroup, prefix: tuple[str, ...]) -> Iterator[tuple[str, click.Command]]:
        for name, command in sorted(group.commands.items()):
            if isinstance(command, TyperGroup):
                yield from walk(command, (*prefix, name))
            else:
                yield " ".join((*prefix, name)), command

    root = typer.main.get_command(app)
    # typer >= 0.22 carries its own click: its groups are no click.Group, all are TyperGroup.
    assert isinstance(root, TyperGroup)
    return walk(root, ())


def registry() -> dict[str, Callable[..., Any]]:
    """The commands the two facades say they serve, and with what."""
    served: dict[str, Callable[..., Any]] = {}
    for name in FACADES:
        table: Mapping[str, Callable[..., Any]] = importlib.import_module(name).CLI_COMMANDS
        overlap = served.keys() & table.keys()
        assert not overlap, f"served by both facades: {sorted(overlap)}"
        served.update(table)
    for command, path in PRESENTATION.items():
        module, _, function = path.rpartition(".")
        served[command] = getattr(importlib.import_module(module), function)
    return served


ALL = sorted(commands())


def test_the_cli_has_commands_to_check() -> None:
    names = [name for name, _ in ALL]
    assert {"record", "status", "why", "verify", "export", "users add"} <= set(names)


def test_every_served_command_exists() -> None:
    assert set(registry()) <= {name for name, _ in ALL}


@pytest.mark.parametrize(("name", "command"), ALL, ids=[name for name, _ in ALL])
def test_each_command_is_served_by_a_facade_function(name: str, command: click.Command) -> None:
    served = registry()
    assert name in served, f"`caseledger {name}` calls no function of {' or '.join(FACADES)}"
    function = served[name]
    presented = f"{function.__module__}.{function.__name__}" == PRESENTATION.get(name)
    assert (
        presented
        or function.__module__ in FACADES
        or function.__module__.startswith(("ledger.", "projections."))
    ), function
    parameters = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    options = [p.name for p in command.params if p.name and p.name not in RENDERING]
    missing = [o for o in options if o not in parameters and not takes_any]
    assert not missing, f"`caseledger {name}` has options {missing} that {function.__name__} lacks"
    callback = command.callback
    assert callback is not None
    source = inspect.getsource(inspect.unwrap(callback))
    assert f"{function.__name__}(" in source, (
        f"`caseledger {name}` does not call {function.__module__}.{function.__name__}"
    )
