"""Pausing Python's cyclic garbage collector around work that makes many small objects
and no reference cycles: a batch of entries recorded or indexed, or an answer over every
case (``status --all``, ``clocks``, ``delays``).

Reference counting frees those objects as before; only the cyclic collector waits.  Its
passes are triggered by the number of objects made, and each of the older generations'
passes walks every object the process holds (the imported modules, the rule packs, the
rows read so far): over every case of a 10,000-case store they were a third to two
fifths of a query's time, and about a fifth of a large ``record``.

What the block made and kept (the answer) is handed to the oldest generation when the
block ends: left in the youngest, the first pass after the pause walked all of it (48 and
31 ms of the 420 of a ``clocks`` over 10,000 cases, its states and then its rows), though
none of it is garbage.  The oldest generation is walked only at full passes, which still
collect any cycle among those objects.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

__all__ = ["cycles_collected_after", "without_cycle_collection"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """Run the block with the cyclic collector paused, and leave it as it was (on, unless
    an outer block paused it): a cycle made meanwhile is collected at a later pass."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            _keep_as_old()
            gc.enable()


def _keep_as_old() -> None:
    """Move every object the collector tracks into its oldest generation, at once (two
    list splices, whatever their number): freezing moves them all to the permanent
    generation, unfreezing moves that into the oldest.  Skipped when something else keeps
    objects frozen (a server that froze its start-up before forking), which unfreezing
    would undo."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def cycles_collected_after(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """``function`` run :func:`without_cycle_collection`."""

    @wraps(function)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with without_cycle_collection():
            return function(*args, **kwargs)

    return paused
