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


#: Where a module lived before the subpackages of issue 14 (and before the index was split
#: into modules), so the same benchmark measures an older commit checked out beside this one.
FORMER: dict[str, str] = {
    "projections.index.records": "projections.index.case_index",
    "projections.index.case_index": "projections.index",
    "projections.queries.cases": "projections.queries",
    "projections.queries.delays": "projections.delays",
    "projections.export.bundle": "projections.export",
    "projections.export.verify": "projections.bundle_verify",
    "ledger.importing.tracker": "projections.tracker",
    "ledger.catalogue.models": "ledger.catalogue",
}


def find(module: str, name: str) -> Any:
    """``module.name`` (or where an older commit kept it), or :class:`Unavailable` saying why
    not."""
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        if module not in FORMER:
            raise Unavailable(f"{module} does not import: {exc}") from None
        return find(FORMER[module], name)
    try:
        return getattr(found, name)
    except AttributeError:
        raise Unavailable(f"{module}.{name} does not exist yet") from None


def case_index() -> Any:
    """``projections.index.case_index.CaseIndex`` (``reindex`` and the index's catch-up)."""
    return find("projections.index.case_index", "CaseIndex")


def why() -> Any:
    """``projections.queries.cases.why`` (``caseledger why CASE``)."""
    return find("projections.queries.cases", "why")


def statuses() -> Any:
    """``projections.queries.cases.statuses`` (``caseledger status``: every case, by index)."""
    return find("projections.queries.cases", "statuses")


def delays() -> Any:
    """``projections.queries.delays.indexed_intervals`` (``caseledger delays``, from the index)."""
    return find("projections.queries.delays", "indexed_intervals")


def clocks() -> Any:
    """``projections.index.records.all_clocks`` (``caseledger clocks``, every case)."""
    return find("projections.index.records", "all_clocks")


def export() -> Any:
    """``projections.export.bundle.export_bundle`` (its verify: ``bundle_verify.verify_bundle``)."""
    find("projections.export.verify", "verify_bundle")
    return find("projections.export.bundle", "export_bundle")


def cli_command(name: str) -> None:
    """Raise :class:`Unavailable` unless ``caseledger NAME`` is a registered command."""
    import typer.main

    app = find("cli.main", "app")
    group: Any = typer.main.get_command(app)
    if name not in getattr(group, "commands", {}):
        raise Unavailable(f"the command `caseledger {name}` does not exist yet")
