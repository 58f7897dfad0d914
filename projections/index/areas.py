"""Every case's area responsible, from the cross-case index's milestone rows: what
``status`` over every case carries as ``area`` (``cli.md``: on a multi-area store every
case-level object carries ``area``).

The area responsible is the referral's ``home_area``, then each
``ResponsibilityTransferred``'s ``to_area`` in timeline order, as the fold has it
(:func:`projections.fold.facets.areas_of`).  The case rows do not keep it, so it is read
from the ``CaseReferred`` milestones (each case's entry 1, by key) and the
``ResponsibilityTransferred`` ones (by type).
"""

from __future__ import annotations

from projections.fold.case_view import timeline_key
from projections.index.case_index import CaseIndex
from projections.index.rows import Milestone

__all__ = ["indexed_areas"]


def indexed_areas(
    index: CaseIndex, *, catch_up: bool = False, open_only: bool = False
) -> dict[str, str]:
    """Every indexed case's (with ``open_only``, every case not closed) area responsible,
    by reference."""
    transfers: dict[str, list[Milestone]] = {}
    out: dict[str, str] = {}
    if catch_up:
        index.catch_up()
    # The referral is each case's entry 1: found by key, not through the type index
    # (at 10,000 cases, 28 ms of the 1M-row table read at random).
    out.update(index.reads.select_home_areas(open_only))
    transferred = ("ResponsibilityTransferred",)
    for row in index.milestones(None, transferred, catch_up=False, open_only=open_only):
        transfers.setdefault(row.case, []).append(row)
    for case, rows in transfers.items():
        rows.sort(key=lambda m: timeline_key(m.occurred_at, m.seq))
        out[case] = str(rows[-1].facts.get("to_area") or out.get(case, ""))
    return out
