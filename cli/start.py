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

A plain ``why`` (``caseledger why CASE --json``) does not import typer at all: the fast
path (:mod:`cli.fast_path`) parses it from a table generated from the real command, and
leaves every other form, and every error, to typer.

Every help and every usage error is drawn by ``typer.rich_utils``, which imports
``rich.markdown`` (with ``markdown_it``) and ``rich.traceback`` (with ``rich.pretty``) at
its top although it uses them only for Markdown help (the app's markup is rich, not
Markdown) and for pretty tracebacks (turned off): about a third of a cold ``--help``.
:func:`defer_typer_extras` lets it import stand-ins that import the real class on first
use, so both are loaded only if ever used.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from cli.arguments import hoisted
from cli.command_index import COMMANDS, IndexedCommand
from cli.fast_path import run_fast

if TYPE_CHECKING:  # importlib.abc imports importlib.resources: ~8 ms for two base classes
    from importlib.abc import Loader, MetaPathFinder

    import typer.core

RUNS_OTHERS: frozenset[str] = frozenset({"cli.commands.demo"})
"""Command modules whose commands run other commands in-process (the demo's tour runs
``status``, ``due``, ``export``...): every command is imported for them."""

COMPLETING: str = "_CASELEDGER_COMPLETE"
"""Set by the shell when it asks for completions (click's protocol): every command then."""


DEFERRED: dict[str, str] = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}
"""The modules ``typer.rich_utils`` imports one class each of at its top, and uses only
for Markdown help and pretty tracebacks: given stand-ins while it is imported."""


class _Deferred(type):
    """The class of a stand-in for a class of a module not imported yet: calling it, or
    reading any attribute it lacks (``Traceback.from_exception``), imports the module and
    answers as the real class does; ``Markdown | Text`` in an annotation still works."""

    _module: str

    def real(cls) -> Any:
        """The class it stands in for (its module imported now, if not yet)."""
        return getattr(importlib.import_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(cls.real(), name)


class _WithStandIns:
    """``typer.rich_utils``'s own loader, run with stand-ins in ``sys.modules`` for the
    modules of :data:`DEFERRED` not imported yet; they are taken out again afterwards,
    so a later ``import rich.markdown`` imports the real module.  (A loader by its
    methods, as the import system asks: not a subclass of ``importlib.abc.Loader``.)"""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        stand_ins: dict[str, ModuleType] = {}
        for name, attribute in DEFERRED.items():
            if name not in sys.modules:
                stand_in = ModuleType(name, "A stand-in until first use (cli.start).")
                setattr(stand_in, attribute, _Deferred(attribute, (), {"_module": name}))
                stand_ins[name] = sys.modules[name] = stand_in
        try:
            self.loader.exec_module(module)
        finally:
            for name, stand_in in stand_ins.items():
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]


class _TyperExtrasFinder:
    """Finds ``typer.rich_utils`` as the path finder does, with :class:`_WithStandIns`
    around its loader; every other module is left to the other finders (a meta path
    finder by its method, as :class:`_WithStandIns` is a loader)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "typer.rich_utils":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = cast("Loader", _WithStandIns(spec.loader))
        return spec


def defer_typer_extras() -> None:
    """Import ``typer.rich_utils`` (when typer first draws a help or an error) without
    ``rich.markdown`` and ``rich.traceback`` until they are used; once per process."""
    if "typer.rich_utils" in sys.modules:
        return
    if not any(isinstance(f, _TyperExtrasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, cast("MetaPathFinder", _TyperExtrasFinder()))


def wanted_module(args: list[str]) -> str | None:
    """The one command module these arguments need, ``""`` for the root help alone, or
    ``None`` for all of them (completion, an unknown name, another root option)."""
    if COMPLETING in os.environ:
        return None
    front, rest = hoisted(args)
    rest = front + rest
    while rest and (rest[0] == "--store" or rest[0].startswith("--store=")):
        rest = rest[2:] if rest[0] == "--store" else rest[1:]
    if not rest or rest[0] in ("-h", "--help"):
        return ""
    entry = next((c for c in COMMANDS if c.name == rest[0]), None)
    return None if entry is None or entry.module in RUNS_OTHERS else entry.module


def listed(entry: IndexedCommand) -> typer.core.TyperCommand:
    """A command as the root help lists it (name, help, panel), built from the index
    without importing its module; never run (the root help exits first)."""
    # lazy: typer and its vendored click cost ~55 ms at start-up, which the fast path skips
    import typer.core

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
    # lazy: typer and the app cost ~55 ms at start-up, which the fast path skips
    import typer.core
    import typer.main

    # lazy: the app's callback and options (typer's, ~55 ms), which the fast path skips
    from cli.common import app

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    for entry in COMMANDS:
        group.add_command(listed(entry))
    return group


def main(argv: list[str] | None = None) -> None:
    """The console entry point: :func:`cli.common.run` after importing what is needed."""
    args = sys.argv[1:] if argv is None else list(argv)
    if run_fast(args):
        return
    defer_typer_extras()
    # lazy: typer and the app cost ~55 ms at start-up, which the fast path skips
    from cli.common import run

    module = wanted_module(args)
    if module == "":
        run(args, group=root_group())
        return
    importlib.import_module("cli.main" if module is None else module)
    run(args)


if __name__ == "__main__":
    main()
