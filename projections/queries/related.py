"""``caseledger related CASE``: the earlier cases that share practice themes with a case,
with the learning they recorded, as the record stood at T about the world on D.

"Earlier" is referred before it (:func:`projections.fold.related.referral_key`). The case
asked about is folded (exactly current); every other case is read from the cross-case
index, whose ``ThemesRecorded`` and ``LearningRecorded`` milestone facts carry ``themes``
(corrections applied), so a store of tens of thousands of cases is answered from the
index's rows; only the related cases are folded, to read their learning's summaries and
recommendations, which the index does not copy.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ledger.catalogue.terms import occurred_instant
from projections.fold.case_view import THEME_TYPES, CaseView, fold, themes_of
from projections.fold.related import Candidate, RelatedCase, rank_related, referral_key
from projections.index.case_index import CaseIndex
from projections.index.records import indexed_case_records

if TYPE_CHECKING:
    from ledger.application import CaseLedger

__all__ = ["candidates", "related_to"]


def candidates(
    ledger: CaseLedger,
    *,
    as_of: datetime | None = None,
    on: datetime | None = None,
    index: CaseIndex | None = None,
) -> list[Candidate]:
    """Every case's referral time and themes, from the index (caught up first): entries
    recorded up to ``as_of`` and occurred up to ``on``."""
    out = []
    for item in indexed_case_records(ledger, THEME_TYPES, as_of=as_of, index=index):
        records = item.records
        if on is not None:
            records = [r for r in records if occurred_instant(str(r["occurred_at"])) <= on]
        referral = next((r for r in records if r["type"] == "CaseReferred"), None)
        if referral is None:
            continue
        out.append(Candidate(item.case, referral_key(referral), themes_of(records)))
    return out


def related_to(
    ledger: CaseLedger,
    view: CaseView,
    *,
    as_of: datetime | None = None,
    on: datetime | None = None,
    index: CaseIndex | None = None,
) -> list[RelatedCase]:
    """The earlier cases sharing at least one theme with the folded case ``view`` (most
    shared themes first, then the most recently referred), each with the shared themes
    and the learning it recorded; none when ``view`` has no themes."""
    if not view.themes:
        return []
    ranked = rank_related(
        view.case,
        view.themes,
        referral_key(view.referral.body),
        candidates(ledger, as_of=as_of, on=on, index=index),
    )
    out = []
    for candidate, shared in ranked:
        theirs = fold(ledger.case_records(candidate.case), as_of_time=as_of, on_time=on)
        if theirs is None:
            continue
        out.append(
            RelatedCase(
                case=candidate.case,
                themes=shared,
                learning=theirs.learning,
                aware_date=candidate.referred[0],
            )
        )
    return out
