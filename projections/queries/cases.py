"""``status``, ``timeline`` and ``why`` as the CLI prints them, under :mod:`projections.api`.

Every function takes the ledger and optional ``as_of`` / ``on`` times (aware datetimes;
:mod:`projections.fold.when` parses the command-line forms).  ``None`` means "now": nothing
recorded is excluded, and ``now`` is what the answer reports.  One case is always
answered by folding its records, so it is exactly current; every case at once
(:func:`statuses`) is answered from the cross-case index unless a time is given, in which
case each case is folded (the index holds the present only).  A user who may only read the index
(SELECT only, or an SQLite file opened read-only) answers from it as well: what was
recorded beyond its tracked position is folded in memory, and nothing is written.

A case that does not exist, or that was not yet in the record as of T / had not been
referred on D, is a usage error (exit code 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledger.catalogue.terms import CRITERIA, occurred_instant
from ledger.errors import UsageError
from projections.fold.case_view import (
    STAGES,
    CaseView,
    Entry,
    fold,
    is_overdue,
    status_payload,
    urgency,
)
from projections.fold.when import format_instant
from projections.fold.why import WhyAnswer, why_of

if TYPE_CHECKING:
    from ledger.application import CaseLedger
    from projections.index.case_index import CaseIndex

__all__ = [
    "STATUS_SORTS",
    "TIMELINE_FIELDS",
    "arrange_statuses",
    "case_view",
    "check_filters",
    "is_overdue",
    "status",
    "status_of",
    "statuses",
    "timeline",
    "timeline_entries",
    "timeline_rows",
    "why",
]

#: The columns of ``timeline`` (``cli.md``'s keys first).
TIMELINE_FIELDS = (
    "ref",
    "type",
    "occurred_at",
    "recorded_at",
    "actor",
    "corrected",
    "role",
    "corrected_by",
    "original_occurred_at",
)


def _now(ledger: CaseLedger, now: datetime | None) -> datetime:
    return now if now is not None else ledger.clock()


def case_view(
    ledger: CaseLedger,
    case: str,
    as_of: datetime | None = None,
    on: datetime | None = None,
) -> CaseView:
    """The folded view of one case; :class:`UsageError` if there is none."""
    records = ledger.case_records(case)
    if not records:
        raise UsageError(
            f"case {case} is unknown: no CaseReferred has been recorded for it in this store",
            field="case",
        )
    view = fold(records, as_of_time=as_of, on_time=on)
    if view is None:
        when = []
        if as_of is not None:
            when.append(f"as of {format_instant(as_of)}")
        if on is not None:
            when.append(f"on {format_instant(on)}")
        raise UsageError(
            f"case {case} was not yet referred {' and '.join(when)}: its CaseReferred was "
            f"recorded at {records[0]['recorded_at']} and occurred {records[0]['occurred_at']}",
            field="case",
        )
    return view


def status_of(view: CaseView, on: datetime) -> dict[str, Any]:
    """The ``status`` answer of a folded case, with its overdue clocks and next deadline."""
    # lazy: the clocks and their bank-holiday calendars cost ~35 ms at start-up, which
    # `why` and `timeline` (one case, a new process each time) do not need.
    from projections.assess.clocks import case_clocks, requests_on, summary_of

    clocks = summary_of(case_clocks(view, on))
    answer = status_payload(
        case=view.case,
        regime=view.regime,
        subject=view.subject,
        stage=view.stage,
        decision=view.decision.summary() if view.decision is not None else None,
        open_requests=requests_on([r.as_dict() for r in view.open_requests], view.regime, on),
        overdue=clocks.overdue,
        next_deadline=clocks.next_deadline,
        entries=len(view.entries),
        last_recorded_at=view.last_recorded_at,
    )
    answer["area"] = view.area
    return answer


def status(
    ledger: CaseLedger,
    case: str,
    as_of: datetime | None = None,
    on: datetime | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``caseledger status CASE``."""
    view = case_view(ledger, case, as_of, on)
    return status_of(view, on or _now(ledger, now))


def check_filters(stage: str | None, regime: str | None) -> None:
    """``stage`` and ``regime`` must name a stage / regime."""
    if stage is not None and stage not in STAGES:
        raise UsageError(
            f"{stage!r} is not a stage; the stages are {', '.join(STAGES)}", field="stage"
        )
    if regime is not None and regime not in CRITERIA:
        raise UsageError(
            f"{regime!r} is not a regime; the regimes are {', '.join(CRITERIA)}",
            field="regime",
        )


def statuses(
    ledger: CaseLedger,
    as_of: datetime | None = None,
    on: datetime | None = None,
    *,
    stage: str | None = None,
    regime: str | None = None,
    now: datetime | None = None,
    index: CaseIndex | None = None,
    open_only: bool = False,
) -> list[dict[str, Any]]:
    """``caseledger status`` (every case, by reference): from the index, caught up first;
    with ``as_of`` or ``on``, by folding each case (cases not yet referred then are left
    out).  ``open_only`` leaves the closed cases out (from the index: in its query, so
    their rows are neither read nor unsealed)."""
    check_filters(stage, regime)
    moment = on or _now(ledger, now)
    if as_of is None and on is None:
        # lazy: the index and the clocks cost ~55 ms at start-up, which `why` and
        # `timeline` (one case, a new process each time) would pay for nothing.
        from projections.assess.clocks import requests_on
        from projections.index.areas import indexed_areas
        from projections.index.case_index import CaseIndex
        from projections.index.records import indexed_statuses

        # A user who may only read the index answers from it too: the entries beyond
        # its tracked position are folded in memory, and nothing is written.
        if index is None:
            index = CaseIndex(ledger)
        answers = indexed_statuses(index, moment, stage, regime, open_only=open_only)
        areas = indexed_areas(index, open_only=open_only) if answers else {}
        for answer in answers:
            answer["open_requests"] = requests_on(answer["open_requests"], answer["regime"], moment)
            answer["area"] = areas.get(answer["case"], "")
        return answers
    out = []
    for ref in sorted(ledger.case_refs()):
        view = fold(ledger.case_records(ref), as_of_time=as_of, on_time=on)
        if view is None:
            continue
        if open_only and view.stage == "closed":
            continue
        if (stage is None or view.stage == stage) and (regime is None or view.regime == regime):
            out.append(status_of(view, moment))
    return out


#: How ``status`` orders every case: by urgency (the default) or by case reference.
STATUS_SORTS = ("urgency", "ref")


def arrange_statuses(
    rows: Sequence[dict[str, Any]],
    *,
    sort: str = "urgency",
    include_closed: bool = False,
    stage: str | None = None,
) -> list[dict[str, Any]]:
    """Every case's ``status`` rows as the list shows them: closed cases left out (unless
    ``include_closed``, or the ``stage`` asked for is ``closed``), ordered by ``sort``:
    ``urgency`` (overdue first, then the soonest next deadline, then the rest) or
    ``ref`` (by case reference)."""
    if sort not in STATUS_SORTS:
        raise UsageError(
            f"{sort!r} is not an order; the orders are {', '.join(STATUS_SORTS)}", field="sort"
        )
    kept = [r for r in rows if include_closed or stage == "closed" or r["stage"] != "closed"]
    if sort == "ref":
        return sorted(kept, key=lambda r: r["case"])
    return sorted(kept, key=urgency)


def timeline_rows(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """``timeline`` rows of entries (already in timeline order)."""
    rows = []
    for e in entries:
        original = e.original.get("occurred_at") if e.original is not None else None
        rows.append(
            {
                "ref": e.ref,
                "type": e.type,
                "occurred_at": e.occurred_at,
                "recorded_at": e.recorded_at,
                "actor": e.actor,
                "corrected": e.corrected,
                "role": e.role,
                "corrected_by": list(e.corrected_by),
                "original_occurred_at": original if original != e.occurred_at else None,
            }
        )
    return rows


def timeline(
    ledger: CaseLedger,
    case: str,
    as_of: datetime | None = None,
    on: datetime | None = None,
) -> list[dict[str, Any]]:
    """``caseledger timeline CASE``: every entry in ``occurred_at`` order, corrections
    applied.

    With ``on`` (world time D) only entries that occurred up to D are listed, and that
    holds for the corrections too: a correction made after D still applies to the entry
    it corrects (it is knowledge about it), but is not itself listed as an entry of D's
    world.
    """
    return timeline_rows(timeline_entries(case_view(ledger, case, as_of, on), on))


def timeline_entries(view: CaseView, on: datetime | None = None) -> tuple[Entry, ...]:
    """The entries ``timeline`` lists, in ``occurred_at`` order: with ``on`` (world time
    D) only those that occurred up to D, corrections included (see :func:`timeline`)."""
    entries = view.timeline()
    if on is None:
        return entries
    return tuple(e for e in entries if occurred_instant(e.occurred_at) <= on)


def why(
    ledger: CaseLedger,
    case: str,
    as_of: datetime | None = None,
    on: datetime | None = None,
    *,
    now: datetime | None = None,
) -> WhyAnswer:
    """``caseledger why CASE``: the decision in force as the record stood at ``as_of``."""
    view = case_view(ledger, case, as_of, on)
    moment = _now(ledger, now)
    return why_of(view, as_of or moment, on or moment)
