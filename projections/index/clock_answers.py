"""A case's clocks on a day from its clock facts: as states (:func:`states_from_facts`),
and as ``clocks --json`` gives them (:func:`rows_from_facts`), without the states.

``clocks`` over every case answers about 28,000 clocks at a 10,000-case store; most of
them (no delay, flag or lead day) are a rule's fixed values and a few days and
references, all of them already text in the facts' ``spans`` column.  Building a
:class:`~projections.assess.clock_states.ClockState` for each and then its dict cost
twice what building the dict alone does, so the JSON rows are made here from the text,
and every other clock (delays to judge, a lead day, not started) through its state as
before.  :func:`rows_from_facts` equals ``[s.as_dict() for s in states_from_facts(...)]``
key for key and in order (the property test in ``tests/test_clock_index.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import date
from typing import Any

from projections.assess.clock_states import ClockState, ClockStatus, plain_row
from projections.assess.rules import REGIMES, ClockRule, RulePack, rule_pack
from projections.index.clock_facts import (
    CaseClockFacts,
    _clock_facts,
    _marks_of,
    _plan,
    _spans,
    state_from_facts,
)

__all__ = ["rows_from_facts", "states_from_facts"]


def states_from_facts(
    facts: CaseClockFacts,
    on: date,
    *,
    include_not_started: bool = False,
    pack: RulePack | None = None,
) -> list[ClockState]:
    """Every clock of the case's regime on ``on``, in the order of its rule pack (``pack``,
    or the one in use), read from the stored form: the same answers as
    :func:`state_from_facts` of :attr:`clocks <CaseClockFacts.clocks>`."""
    if facts.regime not in REGIMES:
        return []
    states = []
    chosen = pack if pack is not None else rule_pack(facts.regime)
    for found in _clocks_on(facts, on, chosen, include_not_started):
        if isinstance(found, ClockState):
            states.append(found)
            continue
        rule, status, started, due, ended, start_ref, end_ref, marks = found
        states.append(
            ClockState(
                facts.case,
                facts.regime,
                rule,
                on,
                status,
                started,
                start_ref,
                due,
                ended,
                end_ref,
                marks=_marks_of(marks) if marks else (),
            )
        )
    return states


def rows_from_facts(
    facts: CaseClockFacts,
    on: date,
    pack: RulePack,
    *,
    include_not_started: bool = False,
    wanted: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The JSON of the case's clocks on ``on`` judged by ``pack`` (its regime's), in the
    pack's order: not-started ones only with ``include_not_started``, and only those with
    a status in ``wanted`` when it is given (as ``clocks --status`` asks)."""
    rows: list[dict[str, Any]] = []
    for found in _clocks_on(facts, on, pack, include_not_started):
        if wanted and (found.status if isinstance(found, ClockState) else found[1]) not in wanted:
            continue
        if isinstance(found, ClockState):
            rows.append(found.as_dict())
            continue
        rule, status, started, due, ended, start_ref, end_ref, marks = found
        parts = [item.split("=", 2) for item in marks.split("|")] if marks else ()
        rows.append(
            plain_row(
                rule, facts.regime, on, facts.case, status, started, due, ended, start_ref,
                end_ref, (), parts,
            )
        )  # fmt: skip
    return rows


#: A plain clock (no delay to judge, no flag, no lead day) as :func:`_clocks_on` finds it:
#: its rule, status, start, due and end days, start and end entries, and marks' text.
_Plain = tuple[ClockRule, ClockStatus, date, date, "date | None", str, "str | None", str]


def _clocks_on(
    facts: CaseClockFacts, on: date, pack: RulePack, not_started: bool
) -> Iterator[ClockState | _Plain]:
    """Each clock of the case's regime on ``on``, in the pack's order: its state when it
    needs its delays, flags or lead day judged, or has not started (only with
    ``not_started``), else what a plain clock's state or row is made of (the one walk of
    the spans both answers share)."""
    regime = facts.regime
    plan = _plan(pack)
    by_start = plan.by_start
    case = facts.case
    today = on.isoformat()
    spans = _spans(facts.spans)
    delays = facts.delays
    for name in plan.names:
        span = spans.get(name)
        if span is None or span[1] > today:
            if not_started:
                yield ClockState(case, regime, plan.current[name], on, "not-started")
            continue
        _, begun, start_ref, finished, end_ref, how, before, marks = span
        rule, started, due = by_start.get((name, begun)) or plan.started(name, begun)
        if rule is None:  # not reached: the facts keep only clocks a rule judges
            continue
        if due is None or how or before or (delays is not None and rule.name in delays):
            one = _clock_facts(span, delays.get(name, ()) if delays is not None else ())
            yield state_from_facts(case, regime, rule, one, on, pack.working_calendar())
            continue
        ended = date.fromisoformat(finished) if finished and finished <= today else None
        status: ClockStatus = (
            ("met" if ended <= due else "late")
            if ended is not None
            else ("running" if on <= due else "overdue")
        )
        ref = end_ref if ended is not None else None
        yield rule, status, started, due, ended, start_ref, ref, marks
