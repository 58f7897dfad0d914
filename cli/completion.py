"""What a shell offers at the tab key (``caseledger --install-completion`` installs it):
case references, entry types, clock names and statuses, stages and regimes.

Each function here is an option's or argument's ``autocompletion=``: given what is typed
so far, the values that fit.  The vocabularies come from the catalogue and the rule packs;
the case references from the store's cross-case index, read as it stands in one query
(:func:`projections.api.case_refs`).  A completion never fails and never writes: a store
that is not there (or not reachable, or encrypted without its key) offers nothing, and
nothing is created, caught up or printed but the values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import typer

__all__ = [
    "complete_case",
    "complete_clock_name",
    "complete_clock_status",
    "complete_entry_type",
    "complete_regime",
    "complete_stage",
    "completing",
    "fitting",
]


def fitting(values: Iterable[str], incomplete: str) -> list[str]:
    """The values that start with what is typed so far (in any letter case)."""
    start = incomplete.casefold()
    return [value for value in values if value.casefold().startswith(start)]


def completing(choices: Iterable[str]) -> Callable[[str], list[str]]:
    """An ``autocompletion=`` offering a fixed vocabulary (an entry field's ``Literal``)."""
    values = tuple(choices)

    def complete(incomplete: str) -> list[str]:
        return fitting(values, incomplete)

    return complete


def _store_of(ctx: typer.Context) -> str | None:
    """The store being completed against: ``--store`` where typed (before or after the
    command), else ``CASELEDGER_STORE``, else the default (None)."""
    root = ctx.find_root()
    given = root.params.get("store")
    if isinstance(given, str) and given:
        return given
    # typed after the command, it is left among the words the groups did not take
    words: list[str] = []
    here: Any = ctx
    while here is not None:
        words = [*here.args, *words]
        here = here.parent
    for i, word in enumerate(words):
        if word == "--store" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--store="):
            return word.partition("=")[2]
    return None


def complete_case(ctx: typer.Context, incomplete: str) -> list[str]:
    """The case references of the store's index that start with what is typed."""
    # lazy: the read-side API and the store's application cost ~150 ms at start-up,
    # which a command's --help does not need
    from ledger.application import open_store
    from projections import api

    try:
        ledger = open_store(_store_of(ctx), create=False)
    except Exception:  # any store that cannot be opened (or reached) offers nothing
        return []
    try:
        return list(api.case_refs(ledger, incomplete))
    except Exception:  # a completion must never print a traceback at the prompt
        return []
    finally:
        ledger.close()


def complete_entry_type(incomplete: str) -> list[tuple[str, str]]:
    """The catalogue's entry types (``--from``, ``--to``), each with its description."""
    # lazy: the catalogue (its pydantic models) costs ~60 ms at start-up
    from ledger.catalogue.registry import KINDS

    start = incomplete.casefold()
    return [
        (kind.name, kind.model.__doc__.splitlines()[0] if kind.model.__doc__ else kind.name)
        for kind in KINDS
        if kind.name.casefold().startswith(start)
    ]


def complete_clock_name(incomplete: str) -> list[str]:
    """The statutory clocks' names (``rapid_review``, ...)."""
    # lazy: the rule packs cost ~40 ms at start-up
    from projections.assess.rules import CLOCK_NAMES

    return fitting(CLOCK_NAMES, incomplete)


def complete_clock_status(incomplete: str) -> list[str]:
    """The statuses a clock can have (``clocks --status``)."""
    # lazy: the clocks' states (with the rule packs) cost ~40 ms at start-up
    from projections.assess.clock_states import STATUSES

    return fitting(STATUSES, incomplete)


def complete_stage(incomplete: str) -> list[str]:
    """The stages a case passes through (``status --stage``)."""
    # lazy: the fold of a case costs ~4 ms at start-up
    from projections.fold.case_view import STAGES

    return fitting(STAGES, incomplete)


def complete_regime(incomplete: str) -> list[str]:
    """The regimes with a rule pack (``status --regime``, ``rules``)."""
    # lazy: the rule packs cost ~40 ms at start-up
    from projections.assess.rules import REGIMES

    return fitting(REGIMES, incomplete)
