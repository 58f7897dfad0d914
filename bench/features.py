"""The project's features the runner measures, found at run time.

Each function returns the callable to time, or raises :class:`Unavailable` with the
reason when the feature is not built (its module or function does not import), so the
figure is printed as null with that reason instead of failing the run.
"""

from __future__ import annotations

import importlib
from typing import Any


class Unavailable(Exception):
    """A feature the figure needs is not built yet."""


class Skipped(Exception):
    """A figure that cannot be measured at this size (e.g. too few cases)."""


def find(module: str, name: str) -> Any:
    """``module.name``, or :class:`Unavailable` saying why not."""
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"{module} does not import: {exc}") from None
    try:
        return getattr(found, name)
    except AttributeError:
        raise Unavailable(f"{module}.{name} does not exist yet") from None


def case_index() -> Any:
    """``projections.index.CaseIndex`` (``reindex`` and the index's catch-up)."""
    return find("projections.index", "CaseIndex")


def why() -> Any:
    """``projections.queries.why`` (``caseledger why CASE``)."""
    return find("projections.queries", "why")


def statuses() -> Any:
    """``projections.queries.statuses`` (``caseledger status``: every case, from the index)."""
    return find("projections.queries", "statuses")


def delays() -> Any:
    """``projections.delays.indexed_intervals`` (``caseledger delays``, from the index)."""
    return find("projections.delays", "indexed_intervals")


def clocks() -> Any:
    """``projections.index.all_clocks`` (``caseledger clocks``: every case, from the index)."""
    return find("projections.index", "all_clocks")


def export() -> Any:
    """``projections.export.export_bundle`` (its verify: ``bundle_verify.verify_bundle``)."""
    find("projections.bundle_verify", "verify_bundle")
    return find("projections.export", "export_bundle")


def cli_command(name: str) -> None:
    """Raise :class:`Unavailable` unless ``caseledger NAME`` is a registered command."""
    import typer.main

    app = find("cli.main", "app")
    group: Any = typer.main.get_command(app)
    if name not in getattr(group, "commands", {}):
        raise Unavailable(f"the command `caseledger {name}` does not exist yet")
