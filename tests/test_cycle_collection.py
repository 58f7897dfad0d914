"""The questions over every case run with Python's cyclic collector paused, and leave it
as they found it (``ledger.collection``; the figures are in ``docs/performance.md``,
"Clock facts in the index").

The collector's passes are what the pause saves, so the tests count them: with its
threshold at one, every container object made starts one.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ledger.collection import cycles_collected_after, without_cycle_collection
from projections import api
from tests.conftest import open_ledger


@pytest.fixture
def passes() -> Iterator[list[int]]:
    """The generations of the collector's passes started while the test runs, the
    collector set to start one at every object made (restored after)."""
    started: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(info["generation"])

    threshold = gc.get_threshold()
    gc.callbacks.append(count)
    gc.set_threshold(1)
    try:
        yield started
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(count)


QUESTIONS: dict[str, Callable[[Any], Any]] = {
    "status --all": lambda led: api.status(led, include_closed=True),
    "clocks": lambda led: api.clocks(led),
    "delays": lambda led: api.delays(led, from_type="IncidentNotified", to_type="DecisionMade"),
}


@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_a_question_over_every_case_and_its_json_start_no_collection(
    scenario_store: str, passes: list[int], question: str
) -> None:
    led = open_ledger(scenario_store)
    try:
        QUESTIONS[question](led)  # the index caught up and the modules imported first
        passes.clear()
        answer = QUESTIONS[question](led)
        rows = answer.to_json()
        # Only at the pause's edges (the question and its JSON each make a few objects
        # just before the pause begins and after it ends); unpaused, 244 to 1,347.
        assert len(passes) <= 12, f"{question} ran {len(passes)} collections"
        assert rows  # the scenario's case is answered
        assert gc.isenabled()
        [{"made": n} for n in range(10)]  # the same threshold outside: passes start
        assert passes
    finally:
        led.close()


def test_the_pause_leaves_the_collector_as_it_was() -> None:
    assert gc.isenabled()
    with without_cycle_collection():
        assert not gc.isenabled()
        with without_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still holds it
    assert gc.isenabled()
    gc.disable()
    try:
        with without_cycle_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: still off
    finally:
        gc.enable()


def test_a_failure_inside_the_pause_turns_the_collector_back_on() -> None:
    @cycles_collected_after
    def fails() -> None:
        assert not gc.isenabled()
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        fails()
    assert gc.isenabled()


class _Node:
    """A container the collector tracks, which can be made part of a cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _in_generation(objects: list[_Node], generation: int) -> int:
    """How many of ``objects`` the collector holds in ``generation`` (by identity)."""
    held = {id(o) for o in gc.get_objects(generation=generation)}
    return sum(id(o) in held for o in objects)


def test_what_the_pause_keeps_goes_to_the_oldest_generation_not_the_next_pass() -> None:
    # Left in the youngest generation, the first pass after the pause walked every object
    # the answer holds (48 ms of a clocks question over 10,000 cases).
    made = 5_000

    @cycles_collected_after
    def answer() -> list[_Node]:
        return [_Node() for _ in range(made)]

    kept = answer()
    assert _in_generation(kept, 0) == 0
    assert _in_generation(kept, 2) == made


def test_a_cycle_made_in_the_pause_is_still_collected_at_a_full_pass() -> None:
    @cycles_collected_after
    def leaves_a_cycle() -> weakref.ref[_Node]:
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        return weakref.ref(first)

    gone = leaves_a_cycle()
    assert gone() is not None  # a cycle: reference counting alone cannot free it
    gc.collect()
    assert gone() is None


def test_objects_frozen_by_someone_else_stay_frozen() -> None:
    # A server may freeze its start-up before forking; the pause must not undo that.
    frozen = _Node()
    gc.freeze()
    try:
        assert id(frozen) not in {id(o) for o in gc.get_objects()}  # frozen: in no generation
        with without_cycle_collection():
            _Node()
        assert gc.get_freeze_count() > 0
        assert id(frozen) not in {id(o) for o in gc.get_objects()}  # still frozen
    finally:
        gc.unfreeze()
