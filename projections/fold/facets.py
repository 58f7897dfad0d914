"""The facets of a case the second wave added to its view: its practice themes, the
learning it recorded, its lead partners' delegations and the areas it involves, each read
from its entries with corrections applied (:mod:`projections.fold.case_view` folds them
into :class:`~projections.fold.case_view.CaseView`).  Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Protocol

from ledger.catalogue.terms import occurred_instant

__all__ = [
    "THEME_TYPES",
    "Delegation",
    "EntryLike",
    "Learning",
    "areas_of",
    "delegations_of",
    "learning_of",
    "themes_of",
]


class EntryLike(Protocol):
    """What these functions read of an entry (:class:`projections.fold.case_view.Entry`)."""

    @property
    def type(self) -> str: ...

    @property
    def seq(self) -> int: ...

    @property
    def occurred_at(self) -> str: ...

    @property
    def ref(self) -> str: ...

    def get(self, name: str, default: Any = None) -> Any: ...


@dataclass(frozen=True)
class Learning:
    """A ``LearningRecorded`` entry, corrections applied: what a review found."""

    ref: str
    occurred_at: str
    summary: str
    recommendations: tuple[str, ...]
    themes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{ref, summary, recommendations}`` as ``related`` prints it."""
        return {
            "ref": self.ref,
            "summary": self.summary,
            "recommendations": list(self.recommendations),
        }


@dataclass(frozen=True)
class Delegation:
    """A ``PartnersDelegated`` entry, corrections applied: a lead partner's delegate,
    in force from ``from_day`` to ``to_day`` (inclusive; None: open-ended)."""

    ref: str
    partner: str
    delegate: str
    from_day: date
    to_day: date | None

    def in_force(self, day: date) -> bool:
        """Whether the delegation is in force on ``day`` (from <= day <= to)."""
        return self.from_day <= day and (self.to_day is None or day <= self.to_day)

    def as_dict(self) -> dict[str, Any]:
        """``{partner, delegate, from, to, ref}`` (the wire names)."""
        return {
            "partner": self.partner,
            "delegate": self.delegate,
            "from": self.from_day.isoformat(),
            "to": self.to_day.isoformat() if self.to_day is not None else None,
            "ref": self.ref,
        }


def learning_of(entries: Iterable[EntryLike]) -> tuple[Learning, ...]:
    """The ``LearningRecorded`` entries, in the order given."""
    return tuple(
        Learning(
            ref=e.ref,
            occurred_at=e.occurred_at,
            summary=str(e.get("summary", "")),
            recommendations=tuple(str(r) for r in e.get("recommendations") or ()),
            themes=tuple(str(t) for t in e.get("themes") or ()),
        )
        for e in entries
        if e.type == "LearningRecorded"
    )


def delegations_of(entries: Iterable[EntryLike]) -> tuple[Delegation, ...]:
    """The ``PartnersDelegated`` entries, in the order given."""
    return tuple(
        Delegation(
            ref=e.ref,
            partner=str(e.get("partner", "")),
            delegate=str(e.get("delegate", "")),
            from_day=date.fromisoformat(str(e.get("from"))),
            to_day=date.fromisoformat(str(e.get("to"))) if e.get("to") else None,
        )
        for e in entries
        if e.type == "PartnersDelegated"
    )


#: The entry types that carry practice themes (``themes`` field).
THEME_TYPES: Final[tuple[str, ...]] = ("ThemesRecorded", "LearningRecorded")


def themes_of(entries: Iterable[EntryLike | Mapping[str, Any]]) -> tuple[str, ...]:
    """The themes of a case's entries (or records, as the index keeps them) of
    :data:`THEME_TYPES`, each once, in the order given."""
    out: dict[str, None] = {}
    for e in entries:
        if e.get("type") in THEME_TYPES:
            for theme in e.get("themes") or ():
                out.setdefault(str(theme), None)
    return tuple(out)


def areas_of(entries: Sequence[EntryLike]) -> tuple[str, tuple[str, ...]]:
    """The area responsible and every area involved, from a case's entries (the first
    the referral): see :attr:`projections.fold.case_view.CaseView.area` and ``areas``."""
    referral = entries[0]
    home = str(referral.get("home_area") or "")
    involved: dict[str, None] = {}
    for name in (home, referral.get("incident_area"), *(referral.get("other_areas") or ())):
        if name:
            involved.setdefault(str(name), None)
    responsible = home
    transfers = sorted(
        (e for e in entries if e.type == "ResponsibilityTransferred"),
        key=lambda e: (occurred_instant(e.occurred_at), e.seq),
    )
    for e in transfers:
        responsible = str(e.get("to_area"))
        involved.setdefault(responsible, None)
    return responsible, tuple(involved)
