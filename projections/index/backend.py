"""What the index needs from a store (:class:`IndexReads`, :class:`IndexBackend`), met by
the SQLite and PostgreSQL recorders (:mod:`projections.index.sqlite`,
:mod:`projections.index.postgres`) and by :class:`EmptyIndex`, which stands in for a store
whose index tables were never created and that this user may not create.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from eventsourcing.persistence import PersistenceError

from projections.index.rows import (
    ClockHead,
    IndexRow,
    IndexSnapshot,
    Milestone,
    StatusRow,
    StoredClocks,
)
from projections.index.sealing import Opener

__all__ = ["EmptyIndex", "IndexBackend", "IndexReads"]


class IndexReads(Protocol):
    """What answering from the index reads: the stored tables, or the stored tables with
    the tail folded in memory (:class:`~projections.index.overlay.TailOverlay`).

    ``open_only`` keeps only the cases whose ``case_index`` stage is not ``closed``: a
    closed case has no deadline and the lists of open cases leave it out, so the pages
    that show only open cases do not read (or unseal) the closed ones' rows; ``regime``
    in :meth:`select_clock_facts` keeps one regime's cases (the clocks page's filter).
    :meth:`select_home_areas` is each case's ``home_area`` from its ``CaseReferred``
    milestone (its entry 1), by case, found by key rather than through the ``type``
    index, and read in SQL from the facts where they are in clear (decoding every
    referral's facts to read one field was a third of ``status --all``)."""

    opener: Opener | None

    def tracked_position(self) -> int: ...

    def load_case_milestones(self, cases: Sequence[str]) -> dict[str, list[Milestone]]: ...

    def count_milestones(self) -> int: ...

    def count_cases(self) -> int: ...

    def select_rows(
        self, stage: str | None, regime: str | None, case: str | None
    ) -> list[IndexRow]: ...

    def select_milestones(
        self, case: str | None, types: Sequence[str] | None, open_only: bool = False
    ) -> list[Milestone]: ...

    def select_home_areas(self, open_only: bool = False) -> list[tuple[str, str]]: ...

    def select_clock_facts(
        self, case: str | None, open_only: bool = False, regime: str | None = None
    ) -> list[StoredClocks]: ...

    def stale_clock_cases(
        self, fingerprint: str, case: str | None, open_only: bool = False
    ) -> list[str]: ...

    def select_times(self, types: Sequence[str]) -> list[tuple[str, int, str, str]]: ...

    def select_regimes(self) -> dict[str, str]: ...

    def select_status_rows(
        self, stage: str | None, regime: str | None, open_only: bool = False
    ) -> list[StatusRow]: ...

    def load_clock_inputs(
        self, cases: Sequence[str] | None, types: Sequence[str]
    ) -> tuple[list[ClockHead], list[Milestone]]: ...


class IndexBackend(IndexReads, Protocol):
    """What the index needs from a store: its tables and one-transaction batch writes.

    ``changed`` rows are ``(occurred_at, occurred_day, facts, case_ref, seq)`` of
    corrected milestones; ``facts`` and the rows' JSON columns arrive sealed.
    :meth:`may_keep` says, from the grants and before any write, whether this user may
    write the tables; :meth:`indexed_refs` lists every case with a row in any of them.
    """

    def create_table(self) -> None: ...

    def load_milestone_rows(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Milestone]: ...

    def write_batch(
        self,
        start: int,
        end: int,
        new: Sequence[Sequence[Any]],
        changed: Sequence[Sequence[Any]],
        rows: Sequence[Sequence[Any]],
    ) -> bool: ...

    def reset(self) -> None: ...

    def write_clock_facts(self, rows: Sequence[Sequence[Any]]) -> None: ...

    def tables_exist(self) -> bool: ...

    def may_keep(self) -> bool: ...

    def may_create(self) -> bool: ...

    def indexed_refs(self) -> list[str]: ...

    def check_snapshot(self, cases: Sequence[str]) -> IndexSnapshot: ...


class EmptyIndex:
    """An index with nothing in it, for a store whose index tables were never created
    and that this user may not create: every query folds the whole log in memory."""

    def __init__(self, opener: Opener | None) -> None:
        self.opener = opener

    def create_table(self) -> None:
        """Nothing to create (the user may not)."""

    def tracked_position(self) -> int:
        return 0

    def load_case_milestones(self, cases: Sequence[str]) -> dict[str, list[Milestone]]:
        return {}

    def load_milestone_rows(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Milestone]:
        return {}

    def count_milestones(self) -> int:
        return 0

    def count_cases(self) -> int:
        return 0

    def write_batch(
        self,
        start: int,
        end: int,
        new: Sequence[Sequence[Any]],
        changed: Sequence[Sequence[Any]],
        rows: Sequence[Sequence[Any]],
    ) -> bool:
        raise PersistenceError("this store has no index tables to write")

    def reset(self) -> None:
        raise PersistenceError("this store has no index tables to reset")

    def select_rows(
        self, stage: str | None, regime: str | None, case: str | None
    ) -> list[IndexRow]:
        return []

    def select_milestones(
        self, case: str | None, types: Sequence[str] | None, open_only: bool = False
    ) -> list[Milestone]:
        return []

    def select_home_areas(self, open_only: bool = False) -> list[tuple[str, str]]:
        return []

    def select_clock_facts(
        self, case: str | None, open_only: bool = False, regime: str | None = None
    ) -> list[StoredClocks]:
        return []

    def stale_clock_cases(
        self, fingerprint: str, case: str | None, open_only: bool = False
    ) -> list[str]:
        return []

    def select_times(self, types: Sequence[str]) -> list[tuple[str, int, str, str]]:
        return []

    def select_regimes(self) -> dict[str, str]:
        return {}

    def select_status_rows(
        self, stage: str | None, regime: str | None, open_only: bool = False
    ) -> list[StatusRow]:
        return []

    def load_clock_inputs(
        self, cases: Sequence[str] | None, types: Sequence[str]
    ) -> tuple[list[ClockHead], list[Milestone]]:
        return [], []

    def write_clock_facts(self, rows: Sequence[Sequence[Any]]) -> None:
        raise PersistenceError("this store has no index tables to write")

    def tables_exist(self) -> bool:
        return False

    def may_keep(self) -> bool:
        return False

    def may_create(self) -> bool:
        return False

    def indexed_refs(self) -> list[str]:
        return []

    def check_snapshot(self, cases: Sequence[str]) -> IndexSnapshot:
        return IndexSnapshot(0, {}, {}, {})
