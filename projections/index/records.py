"""Answers over every case read from the cross-case index: each case's records
(:func:`indexed_case_records`), their clocks (:func:`all_clocks`, :func:`summaries_by_case`)
and ``status`` of every case (:func:`indexed_statuses`).

They read the index's rows and clock facts (:mod:`projections.index.clock_facts`) and apply
the pure rules of :mod:`projections.assess.clocks`, which imports nothing from the index;
when an edited rule pack reads a field the index does not keep (:func:`index_covers`),
they fold the cases instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from projections.assess.clocks import (
    ClockState,
    ClockSummary,
    _match_fields,
    _on_moment,
    clock_event_types,
    clock_states,
    summary_of,
    view_records,
)
from projections.assess.rules import REGIMES, RulePack, all_rule_packs, rule_pack
from projections.fold.case_view import STAGES, fold
from projections.fold.when import format_instant, on_day
from projections.index.case_index import CaseIndex
from projections.index.clock_answers import rows_from_facts, states_from_facts
from projections.index.clock_facts import (
    CaseClockFacts,
    rules_fingerprint,
    summary_from_facts,
    summary_from_spans,
)
from projections.index.rows import FACT_FIELDS, Milestone, StatusRow, milestone_record

if TYPE_CHECKING:
    from ledger.application import CaseLedger

__all__ = [
    "CaseRecords",
    "EveryClock",
    "all_clocks",
    "every_clock",
    "folded_case_records",
    "index_covers",
    "indexed_case_records",
    "indexed_statuses",
    "summaries_by_case",
]


def index_covers(packs: Iterable[RulePack] | None = None) -> bool:
    """Whether the index's milestone facts carry every field the packs' rules read.

    A rule pack is data: if an edited pack reads a field the index does not copy,
    callers of :func:`indexed_case_records` must fold the cases instead.
    """
    chosen = list(packs) if packs is not None else list(all_rule_packs().values())
    needed = [("CaseReferred", "regime")]
    for pack in chosen:
        for rule in pack.clocks:
            needed.extend(_match_fields(rule))
    return all(name in FACT_FIELDS.get(kind, ()) for kind, name in needed)


@dataclass(frozen=True, slots=True)
class CaseRecords:
    """One case's records for a cross-case query: corrected, as of T when asked."""

    case: str
    regime: str
    records: Sequence[Mapping[str, Any]]


def indexed_case_records(
    ledger: CaseLedger,
    types: Sequence[str],
    *,
    as_of: datetime | None = None,
    case: str | None = None,
    cases: Sequence[str] | None = None,
    index: CaseIndex | None = None,
    catch_up: bool = True,
) -> Iterator[CaseRecords]:
    """Every case's (or one ``case``'s, or some ``cases``') records of ``types`` from the
    index's milestone rows, by reference.

    Milestone rows carry the *current* corrections.  As of a past T, a case with a
    correction recorded after T is folded from its stored records instead (corrections
    are rare, so this stays cheap), and rows recorded after T are left out.
    """
    chosen_index = index if index is not None else CaseIndex(ledger)
    # Corrections are already applied to the rows; their own rows matter only to tell,
    # as of a past T, which cases had a correction recorded after T.
    extra = ("EntryCorrected",) if as_of is not None else ()
    wanted = tuple(dict.fromkeys(("CaseReferred", *types, *extra)))
    if cases is not None and case is None:
        rows = chosen_index.milestones_of(cases, wanted, catch_up=catch_up)
    else:
        rows = chosen_index.milestones(case, wanted, catch_up=catch_up)
    limit = format_instant(as_of) if as_of is not None else None
    grouped: dict[str, list[Milestone]] = {}
    for row in rows:
        grouped.setdefault(row.case, []).append(row)
    for ref in sorted(grouped):
        milestones = grouped[ref]
        milestones.sort(key=lambda m: m.seq)  # record order breaks same-moment ties
        if limit is not None:
            if any(m.type == "EntryCorrected" and m.recorded_at > limit for m in milestones):
                view = fold(ledger.case_records(ref), as_of_time=as_of)
                if view is not None:
                    records = [r for r in view_records(view) if r.get("type") in wanted]
                    yield CaseRecords(ref, view.regime, records)
                continue
            milestones = [m for m in milestones if m.recorded_at <= limit]
        kept = [milestone_record(m) for m in milestones if m.type != "EntryCorrected"]
        referral = next((r for r in kept if r["type"] == "CaseReferred"), None)
        if referral is None:
            continue
        yield CaseRecords(ref, str(referral.get("regime", "")), kept)


def folded_case_records(
    ledger: CaseLedger, *, as_of: datetime | None = None, case: str | None = None
) -> Iterator[CaseRecords]:
    """Every case's records by folding each case (when the index cannot answer)."""
    refs = [case] if case is not None else sorted(ledger.case_refs())
    for ref in refs:
        view = fold(ledger.case_records(ref), as_of_time=as_of)
        if view is not None:
            yield CaseRecords(ref, view.regime, view_records(view))


def all_clocks(
    ledger: CaseLedger,
    on: date | datetime,
    *,
    as_of: datetime | None = None,
    include_not_started: bool = False,
    index: CaseIndex | None = None,
    case: str | None = None,
    open_only: bool = False,
    regime: str | None = None,
) -> list[ClockState]:
    """``clocks`` over every case (or one, ``case``; with ``open_only``, only the cases
    whose index row is not closed, as the desk asks; with ``regime``, only that regime's
    cases, as the clocks page asks), from the cross-case index: :func:`every_clock`'s
    states."""
    every = every_clock(
        ledger, on, as_of=as_of, index=index, case=case, open_only=open_only, regime=regime
    )
    return every.states(include_not_started)


@dataclass(frozen=True, slots=True)
class EveryClock:
    """Every case's clocks on ``day`` as read from the index, built when asked: as states
    (:meth:`states`) or as ``clocks --json`` rows (:meth:`rows`, without the states).

    ``held`` are the cases whose clock facts hold, each with the rule pack in use when
    they were read (so a local rules file applies however late they are built); ``other``
    are the states of every other case, computed when read.  Both by case reference;
    they never share a case."""

    held: tuple[tuple[CaseClockFacts, RulePack], ...]
    other: tuple[ClockState, ...]
    day: date

    def states(self, include_not_started: bool = False) -> list[ClockState]:
        """Every case's clock states, by reference, each case's in its pack's order."""
        out: list[ClockState] = []
        for facts, pack in self.held:
            out.extend(_states_of(facts, self.day, include_not_started, pack))
        if self.other:
            out.extend(s for s in self.other if include_not_started or s.status != "not-started")
            out.sort(key=lambda s: s.case)  # by reference, each case's clocks in pack order
        return out

    def rows(self, include_not_started: bool, wanted: Sequence[str]) -> list[dict[str, Any]]:
        """``[s.as_dict() for s in states(...)]`` of the states with a status in
        ``wanted`` (every status when empty), made without the states where the facts
        allow (:func:`projections.index.clock_answers.rows_from_facts`)."""
        keep = set(wanted)
        by_case: list[tuple[str, list[dict[str, Any]]]] = [
            (
                facts.case,
                rows_from_facts(
                    facts, self.day, pack, include_not_started=include_not_started, wanted=keep
                ),
            )
            for facts, pack in self.held
        ]
        if self.other:
            for state in self.other:
                if (include_not_started or state.status != "not-started") and (
                    not keep or state.status in keep
                ):
                    by_case.append((state.case, [state.as_dict()]))
            by_case.sort(key=lambda item: item[0])  # stable: each case's in pack order
        return [row for _, rows in by_case for row in rows]


def every_clock(
    ledger: CaseLedger,
    on: date | datetime,
    *,
    as_of: datetime | None = None,
    index: CaseIndex | None = None,
    case: str | None = None,
    open_only: bool = False,
    regime: str | None = None,
) -> EveryClock:
    """What :func:`all_clocks` answers from, read now (the options are its own).

    Each case's clocks come from its clock facts kept in the index
    (:mod:`projections.index.clock_facts`) when they hold for ``on`` and ``as_of``; the other
    cases (an entry dated after ``on``, or recorded after ``as_of``) are computed from
    their milestone rows.  Falls back to folding every case only if the rule packs read a
    field the index does not keep.
    """
    moment, day = _on_moment(on)
    if not index_covers():
        # (``open_only`` only spares reading: folded, the closed cases' clocks are kept,
        # and the callers that ask for it keep only the open cases they read.)
        folded = folded_case_records(ledger, as_of=as_of, case=case)
        chosen = (c for c in folded if regime is None or c.regime == regime)
        return EveryClock((), tuple(_clocks_of(chosen, on, True)), day)

    chosen_index = index if index is not None else CaseIndex(ledger)
    moment_text = format_instant(moment)
    as_of_text = format_instant(as_of) if as_of is not None else None
    facts = chosen_index.clock_facts(case, open_only=open_only, regime=regime)
    held: list[tuple[CaseClockFacts, RulePack]] = []
    left: list[str] = []
    for ref in sorted(facts):
        found = facts[ref]
        if found.regime not in REGIMES:
            continue  # no clocks: nothing to build
        if found.holds(moment_text, as_of_text):
            held.append((found, rule_pack(found.regime)))
        else:
            left.append(ref)
    other: list[ClockState] = []
    if left:
        computed = indexed_case_records(
            ledger,
            clock_event_types(),
            as_of=as_of,
            case=case,
            cases=None if len(left) > len(facts) // 4 else left,
            index=chosen_index,
            catch_up=False,
        )
        wanted = set(left)
        other = _clocks_of((c for c in computed if c.case in wanted), on, True)
    return EveryClock(tuple(held), tuple(other), day)


#: The most case-day answers :func:`_states_of` keeps (then it starts again): about two
#: days of every clock of the 10,000-case benchmark store, a few tens of megabytes.
_MOST_KEPT: Final = 40_000

_KEPT: dict[tuple[Any, ...], tuple[RulePack, tuple[ClockState, ...]]] = {}


def _states_of(
    facts: CaseClockFacts, day: date, include_not_started: bool, pack: RulePack
) -> list[ClockState]:
    """:func:`states_from_facts` judged by ``pack``, kept for the next question about the
    same case on the same day: the states depend only on the facts' stored form (regime,
    ``spans``, ``delays``), the day and the rule pack (checked by identity: a local rules
    file swaps the pack), so a page asked again (a web desk, the clocks page) does not
    build every state again.  States are immutable; each answer is a new list."""
    delays = orjson.dumps(facts.delays, option=orjson.OPT_SORT_KEYS) if facts.delays else None
    key = (facts.case, facts.regime, facts.spans, delays, day, include_not_started)
    kept = _KEPT.get(key)
    if kept is not None and kept[0] is pack:
        return list(kept[1])
    states = states_from_facts(facts, day, include_not_started=include_not_started, pack=pack)
    if len(_KEPT) >= _MOST_KEPT:
        _KEPT.clear()
    _KEPT[key] = (pack, tuple(states))
    return states


def _clocks_of(
    cases: Iterable[CaseRecords], on: date | datetime, include_not_started: bool
) -> list[ClockState]:
    out: list[ClockState] = []
    for item in cases:
        if item.regime not in REGIMES:
            continue
        out.extend(
            clock_states(
                item.case, item.regime, item.records, on, include_not_started=include_not_started
            )
        )
    return out


def summaries_by_case(
    ledger: CaseLedger,
    on: date | datetime,
    *,
    as_of: datetime | None = None,
    index: CaseIndex | None = None,
    case: str | None = None,
    open_only: bool = False,
) -> dict[str, ClockSummary]:
    """:class:`ClockSummary` of every case (or one, ``case``; ``open_only``: the cases not
    closed), from the index in one pass, for ``status`` over every case.  Cases with no
    started clock are absent."""
    grouped: dict[str, list[ClockState]] = {}
    for state in all_clocks(ledger, on, as_of=as_of, index=index, case=case, open_only=open_only):
        grouped.setdefault(state.case, []).append(state)
    return {case: summary_of(states) for case, states in grouped.items()}


def indexed_statuses(
    index: CaseIndex,
    on: datetime,
    stage: str | None = None,
    regime: str | None = None,
    *,
    open_only: bool = False,
) -> list[dict[str, Any]]:
    """``status`` of every case (filtered; with ``open_only`` the closed cases are not
    read), answered from ``index``, caught up first: each
    case's overdue clocks and next deadline come from the ``spans`` of its clock facts
    (:mod:`projections.index.clock_facts`), read with its row; a case whose facts do not
    hold for ``on`` (an entry dated after it) is computed from its milestones."""
    if stage is not None and stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    index.catch_up()
    covered = index_covers()
    fingerprint = rules_fingerprint()
    rows = index.reads.select_status_rows(stage, regime, open_only)
    # the clock facts the rows show stale (none kept, older than the case, other rules),
    # derived again and kept: the rows say which, so no query asks it first
    derived = (
        index.derive_clock_facts(
            r.case for r in rows if r.facts_position != r.last_position or r.rules != fingerprint
        )
        if covered
        else {}
    )
    day = on_day(on)
    moment = format_instant(on)
    answers: list[dict[str, Any] | None] = []
    opener = index.reads.opener
    left: dict[int, StatusRow] = {}
    for row in rows:
        summary = None
        if not covered:
            left[len(answers)] = row
            answers.append(None)
            continue
        if (
            row.facts_position == row.last_position
            and row.rules == fingerprint
            and row.spans is not None
            and (row.until is None or row.until <= moment)
        ):
            summary = summary_from_spans(row.regime, row.spans, day)
        else:
            found = derived.get(row.case)
            if found is None or found.position != row.last_position or not found.holds(moment):
                left[len(answers)] = row
                answers.append(None)
                continue
            summary = summary_from_facts(found, day)
        if summary is None:
            answers.append(row.status(opener))
        else:
            answers.append(row.status(opener, summary.overdue, summary.next_deadline))
    if left:
        if len(left) > len(answers) // 4:
            summaries = summaries_by_case(index.ledger, on, index=index, open_only=open_only)
        else:
            summaries = {}
            for row in left.values():
                summaries.update(summaries_by_case(index.ledger, on, index=index, case=row.case))
        for at, row in left.items():
            summary = summaries.get(row.case) or summary_of(())
            answers[at] = row.status(opener, summary.overdue, summary.next_deadline)
    return [answer for answer in answers if answer is not None]
