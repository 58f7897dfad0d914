"""Related cases, as values: an earlier case that shares practice themes with another, and
the learning it recorded (``caseledger related``; QM2 question 8 reads them).

Pure: :func:`referral_key` orders cases by when they were referred, :func:`rank_related`
picks and orders the related ones from what the index keeps of every case. Reading the
store is :mod:`projections.queries.related`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.catalogue.terms import occurred_instant
from projections.fold.case_view import Learning

__all__ = ["Candidate", "RelatedCase", "rank_related", "referral_key"]


def referral_key(referral: Mapping[str, Any]) -> tuple[str, datetime]:
    """When a case was referred, for "earlier than": its ``aware_date``, then its
    referral's ``occurred_at`` (``shared/domain.md``: the local authority became aware)."""
    return str(referral.get("aware_date") or ""), occurred_instant(str(referral["occurred_at"]))


@dataclass(frozen=True)
class Candidate:
    """What the index keeps of one case for ``related``: when it was referred and its
    themes (corrections applied)."""

    case: str
    referred: tuple[str, datetime]
    themes: tuple[str, ...]


@dataclass(frozen=True)
class RelatedCase:
    """An earlier case sharing themes with the case asked about."""

    case: str
    themes: tuple[str, ...]
    """The shared themes, in the order the case asked about recorded them."""
    learning: tuple[Learning, ...]
    """The learning the earlier case recorded, in record order."""
    aware_date: str

    def learning_by(self, limit: datetime) -> tuple[Learning, ...]:
        """The learning that had happened by ``limit`` (on its ``occurred_at``)."""
        return tuple(item for item in self.learning if occurred_instant(item.occurred_at) <= limit)

    def as_dict(self) -> dict[str, Any]:
        """``{case, themes, learning}`` (``cli.md``), then ``aware_date``."""
        return {
            "case": self.case,
            "themes": list(self.themes),
            "learning": [item.as_dict() for item in self.learning],
            "aware_date": self.aware_date,
        }


def rank_related(
    case: str,
    themes: Sequence[str],
    referred: tuple[str, datetime],
    candidates: Iterable[Candidate],
) -> list[tuple[Candidate, tuple[str, ...]]]:
    """The candidates referred before ``referred`` that share at least one of ``themes``,
    each with the shared themes: most shared themes first, then the most recently
    referred, then by reference."""
    wanted = list(dict.fromkeys(themes))
    found: list[tuple[Candidate, tuple[str, ...]]] = []
    for candidate in candidates:
        if candidate.case == case or not candidate.referred < referred:
            continue
        theirs = set(candidate.themes)
        shared = tuple(t for t in wanted if t in theirs)
        if shared:
            found.append((candidate, shared))
    found.sort(key=lambda pair: pair[0].case)
    found.sort(key=lambda pair: pair[0].referred, reverse=True)
    found.sort(key=lambda pair: len(pair[1]), reverse=True)
    return found
