"""The CLI's two consoles (standard output and error), built with rich on first use.

Apart from :mod:`cli.common` (which re-exports them) because that module builds the typer
app: the fast path of a cold ``why`` (:mod:`cli.fast_path`) draws its panels through
these consoles without importing typer (issue 18).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console


class LazyConsole:
    """A rich console built on first use: importing rich costs ~40 ms at start-up, which a
    command that prints only JSON (``why --json``) or exits in typer does not need.
    Every attribute is the built console's; its width is fitted when it is built, as
    :func:`fit_consoles` fits a built one (``COLUMNS`` as it is then)."""

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_console", None)

    def built(self) -> Console:
        """The console (built now, if it was not yet)."""
        console: Console | None = object.__getattribute__(self, "_console")
        if console is None:
            from rich.console import Console

            console = Console(**object.__getattribute__(self, "_options"))
            # rich's width setter; None (typed int there) means "ask the terminal"
            console.width = cast(int, fitted_width())
            object.__setattr__(self, "_console", console)
        return console

    def is_built(self) -> bool:
        """Whether anything has used it yet."""
        return object.__getattribute__(self, "_console") is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.built(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.built(), name, value)

    # Special methods are looked up on the type, never through __getattr__: those of
    # rich's Console (its buffering context, which rich's live displays enter) by hand.
    def __enter__(self) -> Console:
        return self.built().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.built().__exit__(*exc)

    def __repr__(self) -> str:
        return repr(self.built())


out = cast("Console", LazyConsole(highlight=False, soft_wrap=True))
err = cast("Console", LazyConsole(stderr=True, highlight=False, soft_wrap=True))


def escape(markup: str) -> str:
    """``markup`` with rich's markup escaped (``rich.markup.escape``), rich imported on
    first use (see :class:`LazyConsole`)."""
    from rich.markup import escape as rich_escape

    return rich_escape(markup)


def fitted_width() -> int | None:
    """The consoles' width from ``COLUMNS`` as it is now, or None to ask the terminal."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def emit_csv(rows: Iterable[Sequence[Any]]) -> None:
    """Print CSV rows (the header first) for spreadsheets on standard output."""
    import csv  # lazy: only a CSV answer needs it

    csv.writer(sys.stdout, lineterminator="\n").writerows(rows)
    sys.stdout.flush()


def disclose_rules(local: Any, *, to_stderr: bool) -> None:
    """Say that clocks were judged with local rules (``local``: a
    :class:`projections.assess.rules.LocalRules`, or None for the shipped packs): on
    standard output under a table, on standard error beside JSON arrays and CSV, whose
    shape on standard output stays the contract's."""
    if local is None:
        return
    (err if to_stderr else out).print(escape(local.disclosure()))
