"""What the index's rebuild in SQL on SQLite (:meth:`IndexSQLiteRecorder.bulk_batch
<projections.index.sqlite.IndexSQLiteRecorder.bulk_batch>`) folds with: the fold's
protocol (:class:`BulkFold`) and the reads it makes inside the span's transaction
(:class:`BulkReads`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from projections.index.rows import MILESTONE_COLUMNS, Milestone
from projections.index.sealing import Opener

__all__ = ["BulkFold", "BulkReads", "chunks"]


class BulkReads:
    """Reads of the index's milestone rows inside a :meth:`IndexSQLiteRecorder.bulk_batch`
    transaction (so they see its new rows)."""

    def __init__(self, cursor: Any, opener: Opener | None) -> None:
        self._cursor = cursor
        self._opener = opener

    def rows(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Milestone]:
        """The milestone rows of some ``(case, seq)`` keys (those that exist)."""
        out: dict[tuple[str, int], Milestone] = {}
        columns = ", ".join(MILESTONE_COLUMNS)
        c = self._cursor
        for case, seq in keys:
            c.execute(
                f"SELECT {columns} FROM case_milestones WHERE case_ref=? AND seq=?", (case, seq)
            )
            row = c.fetchone()
            if row is not None:
                out[(case, seq)] = Milestone.from_values(row, self._opener)
        return out

    def cases(self, cases: Sequence[str], upto: int) -> dict[str, list[Milestone]]:
        """The milestone rows of some cases at positions up to ``upto``, by case then seq."""
        out: dict[str, list[Milestone]] = {}
        columns = ", ".join(MILESTONE_COLUMNS)
        c = self._cursor
        for chunk in chunks(cases, 500):
            marks = ",".join("?" * len(chunk))
            c.execute(
                f"SELECT {columns} FROM case_milestones WHERE case_ref IN ({marks}) "
                "AND position <= ? ORDER BY case_ref, seq",
                (*chunk, upto),
            )
            for row in c.fetchall():
                milestone = Milestone.from_values(row, self._opener)
                out.setdefault(milestone.case, []).append(milestone)
        return out


class BulkFold(Protocol):
    """What :meth:`IndexSQLiteRecorder.bulk_batch` folds a span's entries with, inside its
    transaction, while SQLite writes their milestone rows: each entry is parsed once, by
    :meth:`entry`, which folds it and keeps its row's columns for :meth:`column`."""

    def begin(self, originators: Sequence[str], reads: BulkReads) -> None:
        """Before the span's rows are made: the span's distinct ``originator_id``s (only
        when :attr:`needs_originators`), and the transaction's reads."""

    @property
    def needs_originators(self) -> bool:
        """Whether :meth:`begin` needs the span's originators (some cases' summaries may
        have to be loaded again)."""

    def entry(self, position: int, originator: str, topic: str, state: bytes) -> str:
        """Called by SQLite for each stored entry of the span, in position order: fold it
        and return its ``case_ref`` (the row's other columns by :meth:`column`)."""

    def column(self, position: int, i: int) -> Any:
        """Column ``i`` of the row of the entry :meth:`entry` was last called with (at
        ``position``: refused for another): 1 seq, 2 occurred_at, 3 occurred_day, 4
        recorded_at, 5 actor, 6 facts (JSON text)."""

    def end(self, reads: BulkReads) -> tuple[Sequence[Sequence[Any]], Sequence[Sequence[Any]]]:
        """After the rows are made: the corrected milestone rows to update (as
        :meth:`IndexSQLiteRecorder.write_batch`'s ``changed``) and the touched cases'
        ``case_index`` rows."""

    @property
    def error(self) -> BaseException | None:
        """What :meth:`entry` raised, if it did (SQLite reports only that a function
        failed): raised again in its place."""


def chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    """``items`` in slices of ``size`` (SQLite's limit on a statement's parameters)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
