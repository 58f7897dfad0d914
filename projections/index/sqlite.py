"""The cross-case index on SQLite: the library's ``SQLiteTrackingRecorder`` plus the index's
tables (:mod:`projections.index.rows`), in the store's own file.

A batch is written in one ``BEGIN IMMEDIATE`` transaction that checks the tracked position,
appends the new milestone rows, updates the corrected ones, replaces the touched case rows
and moves the tracking position.  ``facts`` and ``open_requests`` are JSON text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlparse

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteTrackingRecorder

from projections.index.rows import (
    INDEX_COLUMNS,
    INDEX_NAME,
    MILESTONE_COLUMNS,
    STATUS_COLUMNS,
    ClockHead,
    IndexRow,
    IndexSnapshot,
    Milestone,
    StatusRow,
    StoredClocks,
    clock_row,
    home_area,
)
from projections.index.sealing import Opener, json_column
from projections.index.sqlite_bulk import BulkFold, BulkReads
from projections.index.sqlite_bulk import chunks as _chunks

__all__ = ["BulkFold", "BulkReads", "IndexSQLiteRecorder", "sqlite_read_only"]


_MILESTONES_SQL: Final = (
    "INSERT INTO case_milestones SELECT index_entry(e.rowid, e.originator_id, e.topic, "
    "e.state), index_column(e.rowid, 1), e.topic, index_column(e.rowid, 2), "
    "index_column(e.rowid, 3), index_column(e.rowid, 4), e.rowid, index_column(e.rowid, 5), "
    "0, index_column(e.rowid, 6) FROM stored_events e "
    "WHERE e.rowid > ? AND e.rowid <= ? ORDER BY e.rowid"
)
"""The milestone rows of the entries at some positions, written by SQLite as it reads the
stored entries: each entry is parsed once, by a Python function (``index_entry``, which
also folds it), and its other columns are taken from what that call kept
(``index_column``: SQLite computes a row's columns in order, the first first; each
call names its row, and the fold refuses a position out of order or a column of another
row, so a change of SQLite's evaluation order fails the rebuild instead of writing it).  Taking
them out with six ``->>`` parsed the entry's JSON six more times (SQLite 3.40 has no
JSONB), and folding afterwards read the rows back."""


def sqlite_read_only(db_name: str) -> bool:
    """Whether an SQLite store named by ``db_name`` (a path or a ``file:`` URI) may only
    be read here: opened ``mode=ro`` or ``immutable=1``, or a file (or folder, where
    SQLite writes its journal) this process may not write.  Decided before any write,
    so a reader never tries one."""
    path = db_name
    if db_name.startswith("file:"):
        parts = urlparse(db_name)
        query = parse_qs(parts.query)
        if query.get("mode", [""])[-1] == "ro":
            return True
        if query.get("immutable", ["0"])[-1].lower() in ("1", "true", "yes", "on"):
            return True
        path = unquote(parts.path)
    folder = os.path.dirname(os.path.abspath(path))
    return not (os.access(path, os.W_OK) and os.access(folder, os.W_OK))


_SQLITE_INDEX_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "entries": "INTEGER NOT NULL",
        "decisions": "INTEGER NOT NULL",
        "open_request_count": "INTEGER NOT NULL",
        "last_position": "INTEGER NOT NULL",
        "case_ref": "TEXT PRIMARY KEY",
    }
)


#: A referral's area as the referrals' index keeps it: NULL for sealed facts, never an error.
_AREA: Final = "CASE WHEN json_valid(facts) THEN json_extract(facts, '$.home_area') END"


class IndexSQLiteRecorder(SQLiteTrackingRecorder):
    """The library's SQLite tracking recorder plus the index's two tables."""

    opener: Opener | None = None

    def construct_create_table_statements(self) -> list[str]:
        statements: list[str] = super().construct_create_table_statements()
        columns = ", ".join(f"{c} {_SQLITE_INDEX_TYPES.get(c, 'TEXT')}" for c in INDEX_COLUMNS)
        statements += [
            f"CREATE TABLE IF NOT EXISTS case_index ({columns}) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS case_index_stage ON case_index (stage, regime)",
            "CREATE INDEX IF NOT EXISTS case_index_regime ON case_index (regime)",
            # Rows go in by position (the rowid), so inserting is an append; a case's
            # entries are found through the unique (case_ref, seq) index.
            "CREATE TABLE IF NOT EXISTS case_milestones ("
            "case_ref TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, "
            "occurred_at TEXT NOT NULL, occurred_day TEXT NOT NULL, "
            "recorded_at TEXT NOT NULL, position INTEGER PRIMARY KEY, actor TEXT NOT NULL, "
            "corrected INTEGER NOT NULL, facts TEXT NOT NULL)",
            "CREATE UNIQUE INDEX IF NOT EXISTS case_milestones_case "
            "ON case_milestones (case_ref, seq)",
            # By type and day, covering what ``delays`` reads (case, seq, occurred_at):
            # 20,000 rows at 1M entries in one range, not one look-up each in the table;
            # it replaces the index by (type, occurred_day) alone of earlier stores.
            "CREATE INDEX IF NOT EXISTS case_milestones_type_times "
            "ON case_milestones (type, occurred_day, case_ref, seq, occurred_at)",
            "DROP INDEX IF EXISTS case_milestones_type",
            # Each case's referral (entry 1) by reference with its area, for every case's
            # status: 9,724 rows in order, not a sort of the referrals found by type.
            "CREATE INDEX IF NOT EXISTS case_referral_areas ON case_milestones "
            f"(case_ref, {_AREA}) WHERE type = 'CaseReferred' AND seq = 1",
            # Each case's clock facts (projections.index.clock_facts), labelled with the
            # case_index position they were derived at.
            "CREATE TABLE IF NOT EXISTS case_clocks ("
            "case_ref TEXT PRIMARY KEY, last_position INTEGER NOT NULL, "
            "last_recorded_at TEXT NOT NULL, rules TEXT NOT NULL, until TEXT, "
            "spans TEXT NOT NULL, delays TEXT) WITHOUT ROWID",
        ]
        return statements

    def create_table(self) -> None:
        # Tables made by an earlier layout of the index are dropped, to be rebuilt.
        with self.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA table_info(case_milestones)")
            columns = {row[1]: row[5] for row in c.fetchall()}
            c.execute("PRAGMA table_info(case_index)")
            old_index = "state" in {row[1] for row in c.fetchall()}
        if (columns and columns.get("position") != 1) or old_index:
            with self.datastore.transaction(commit=True) as c:
                c.execute("DROP TABLE IF EXISTS case_milestones")
                c.execute("DROP TABLE IF EXISTS case_index")
                c.execute("DELETE FROM tracking WHERE application_name=?", (INDEX_NAME,))
        super().create_table()

    def tracked_position(self) -> int:
        return int(self.max_tracking_id(INDEX_NAME) or 0)

    def load_case_milestones(self, cases: Sequence[str]) -> dict[str, list[Milestone]]:
        out: dict[str, list[Milestone]] = {}
        columns = ", ".join(MILESTONE_COLUMNS)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            for chunk in _chunks(cases, 500):
                marks = ",".join("?" * len(chunk))
                c.execute(
                    f"SELECT {columns} FROM case_milestones WHERE case_ref IN ({marks}) "
                    "ORDER BY case_ref, seq",
                    tuple(chunk),
                )
                for row in c.fetchall():
                    milestone = Milestone.from_values(row, self.opener)
                    out.setdefault(milestone.case, []).append(milestone)
        return out

    def load_milestone_rows(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Milestone]:
        out: dict[tuple[str, int], Milestone] = {}
        columns = ", ".join(MILESTONE_COLUMNS)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            for case, seq in keys:
                c.execute(
                    f"SELECT {columns} FROM case_milestones WHERE case_ref=? AND seq=?",
                    (case, seq),
                )
                row = c.fetchone()
                if row is not None:
                    out[(case, seq)] = Milestone.from_values(row, self.opener)
        return out

    def count_milestones(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT COUNT(*) FROM case_milestones")
            return int(c.fetchone()[0])

    def count_cases(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT COUNT(*) FROM case_index")
            return int(c.fetchone()[0])

    def write_batch(
        self,
        start: int,
        end: int,
        new: Sequence[Sequence[Any]],
        changed: Sequence[Sequence[Any]],
        rows: Sequence[Sequence[Any]],
    ) -> bool:
        with self.datastore.get_connection(commit=True) as conn:
            c = conn.cursor()
            try:
                c.execute("BEGIN IMMEDIATE")
                c.execute(self.select_max_tracking_id_statement, (INDEX_NAME,))
                current = c.fetchone()[0] or 0
                if current != start:
                    conn.rollback()
                    return False
                marks = ",".join("?" * len(MILESTONE_COLUMNS))
                c.executemany(f"INSERT INTO case_milestones VALUES ({marks})", new)
                self._write_batch(c, changed, rows, end)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                c.sqlite_cursor.close()
        return True

    def _write_batch(self, c: Any, changed: Any, rows: Any, end: int) -> None:
        """A batch's corrected milestones, its case rows and the position it reached,
        inside the batch's transaction (the catch-up's and the rebuild in SQL's)."""
        c.executemany(
            "UPDATE case_milestones SET occurred_at=?, occurred_day=?, corrected=1, "
            "facts=? WHERE case_ref=? AND seq=?",
            changed,
        )
        marks = ",".join("?" * len(INDEX_COLUMNS))
        c.executemany(f"INSERT OR REPLACE INTO case_index VALUES ({marks})", rows)
        self._insert_tracking(c, Tracking(INDEX_NAME, end))

    def last_position(self) -> int:
        """The store's last position (the notification log's highest id)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT max(rowid) FROM stored_events")
            return int(c.fetchone()[0] or 0)

    def bulk_batch(self, start: int, end: int, fold: BulkFold) -> int | None:
        """Index the entries at positions ``start < p <= end`` in one ``BEGIN IMMEDIATE``
        transaction, their milestone rows made by SQLite as ``fold`` parses and folds
        each stored entry (only for a store in clear: the caller checks), then the
        corrected rows and case rows ``fold`` ends with; how many entries, or None
        (nothing written) when the tracked position is no longer ``start``."""
        with self.datastore.get_connection(commit=True) as conn:
            raw = conn._sqlite_conn
            # Not deterministic: SQLite must call them for every row, in column order.
            raw.create_function("index_entry", 4, fold.entry)
            raw.create_function("index_column", 2, fold.column)
            c = conn.cursor()
            try:
                c.execute("BEGIN IMMEDIATE")
                c.execute(self.select_max_tracking_id_statement, (INDEX_NAME,))
                current = c.fetchone()[0] or 0
                if current != start:
                    conn.rollback()
                    return None
                c.sqlite_cursor.row_factory = None  # plain tuples: faster
                originators: list[str] = []
                if fold.needs_originators:
                    c.execute(
                        "SELECT DISTINCT originator_id FROM stored_events "
                        "WHERE rowid > ? AND rowid <= ?",
                        (start, end),
                    )
                    originators = [row[0] for row in c.fetchall()]
                reads = BulkReads(c, self.opener)
                fold.begin(originators, reads)
                try:
                    c.execute(_MILESTONES_SQL, (start, end))
                except Exception:
                    if fold.error is not None:
                        raise fold.error from None
                    raise
                c.execute("SELECT changes()")
                count = int(c.fetchone()[0])
                changed, rows = fold.end(reads)
                self._write_batch(c, changed, rows, end)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                c.sqlite_cursor.close()
                raw.create_function("index_entry", 4, None)
                raw.create_function("index_column", 2, None)
        return count

    def reset(self) -> None:
        with self.datastore.get_connection(commit=True) as conn:
            c = conn.cursor()
            try:
                c.execute("BEGIN IMMEDIATE")
                c.execute("DELETE FROM case_milestones")
                c.execute("DELETE FROM case_index")
                c.execute("DELETE FROM case_clocks")
                c.execute("DELETE FROM tracking WHERE application_name=?", (INDEX_NAME,))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                c.sqlite_cursor.close()

    def select_rows(
        self, stage: str | None, regime: str | None, case: str | None
    ) -> list[IndexRow]:
        where, params = _filters(stage=stage, regime=regime, case_ref=case, mark="?")
        columns = ", ".join(INDEX_COLUMNS)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(f"SELECT {columns} FROM case_index{where} ORDER BY case_ref", params)
            return [IndexRow.from_values(row, self.opener) for row in c.fetchall()]

    def select_milestones(
        self, case: str | None, types: Sequence[str] | None, open_only: bool = False
    ) -> list[Milestone]:
        clauses: list[str] = [_OPEN_CASES] if open_only else []
        params: list[Any] = []
        if case is not None:
            clauses.append("case_ref=?")
            params.append(case)
        if types:
            clauses.append(f"type IN ({','.join('?' * len(types))})")
            params.extend(types)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                f"SELECT {', '.join(MILESTONE_COLUMNS)} FROM case_milestones{where} "
                "ORDER BY case_ref, seq",
                params,
            )
            return [Milestone.from_values(row, self.opener) for row in c.fetchall()]

    def select_home_areas(self, open_only: bool = False) -> list[tuple[str, str]]:
        # In clear SQLite reads the one field; sealed, the facts are opened here.  The
        # open cases: walked, each one's entry 1 found by key (CROSS JOIN, +type); every
        # case: the referrals' own index, in order (a store whose writer has not opened it
        # since it was added: by the type index, then sorted).
        facts = "json_extract(m.facts, '$.home_area')" if self.opener is None else "m.facts"
        query = (
            f"SELECT m.case_ref, {facts} FROM case_index i CROSS JOIN case_milestones m ON "
            "m.case_ref = i.case_ref AND m.seq = 1 AND +m.type = 'CaseReferred' "
            "WHERE i.stage <> 'closed' ORDER BY m.case_ref"
            if open_only
            else f"SELECT m.case_ref, {facts} FROM case_milestones m "
            "WHERE m.type = 'CaseReferred' AND m.seq = 1 ORDER BY m.case_ref"
        )
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            if self.opener is None and not open_only:
                c.execute("SELECT 1 FROM sqlite_master WHERE name = 'case_referral_areas'")
                if c.fetchall():
                    query = (
                        f"SELECT case_ref, {_AREA} FROM case_milestones INDEXED BY "
                        "case_referral_areas WHERE type = 'CaseReferred' AND seq = 1 "
                        "ORDER BY case_ref"
                    )
            c.execute(query)
            rows = c.fetchall()
        if self.opener is None:
            return [(case, str(area or "")) for case, area in rows]
        return [(case, home_area(json_column(value, self.opener))) for case, value in rows]

    def select_times(self, types: Sequence[str]) -> list[tuple[str, int, str, str]]:
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                "SELECT case_ref, seq, type, occurred_at FROM case_milestones "
                f"WHERE type IN ({','.join('?' * len(types))})",
                tuple(types),
            )
            return c.fetchall()  # type: ignore[no-any-return]  # seq: an INTEGER column

    def select_regimes(self) -> dict[str, str]:
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute("SELECT case_ref, regime FROM case_index")
            return dict(c.fetchall())

    def stale_clock_cases(
        self, fingerprint: str, case: str | None, open_only: bool = False
    ) -> list[str]:
        only = " AND i.case_ref=?" if case is not None else ""
        if open_only:
            only += " AND i.stage <> 'closed'"
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                "SELECT i.case_ref FROM case_index i LEFT JOIN case_clocks k "
                "ON k.case_ref = i.case_ref WHERE (k.case_ref IS NULL "
                f"OR k.last_position <> i.last_position OR k.rules <> ?){only}",
                (fingerprint, case) if case is not None else (fingerprint,),
            )
            return [row[0] for row in c.fetchall()]

    def select_status_rows(
        self, stage: str | None, regime: str | None, open_only: bool = False
    ) -> list[StatusRow]:
        where, params = _filters(stage=stage, regime=regime, mark="?")
        where = where.replace("stage=", "i.stage=").replace("regime=", "i.regime=")
        if open_only:
            where += " AND i.stage <> 'closed'" if where else " WHERE i.stage <> 'closed'"
        columns = ", ".join(f"i.{c}" for c in STATUS_COLUMNS)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                f"SELECT {columns}, k.last_position, k.rules, k.until, k.spans "
                f"FROM case_index i LEFT JOIN case_clocks k ON k.case_ref = i.case_ref{where} "
                "ORDER BY i.case_ref",
                params,
            )
            return list(map(StatusRow._make, c.fetchall()))

    def select_clock_facts(
        self, case: str | None, open_only: bool = False, regime: str | None = None
    ) -> list[StoredClocks]:
        clauses = (
            (["i.case_ref=?"] if case is not None else [])
            + (["i.stage <> 'closed'"] if open_only else [])
            + (["i.regime=?"] if regime is not None else [])
        )
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        params = tuple(v for v in (case, regime) if v is not None)
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                "SELECT i.case_ref, i.regime, i.last_position, i.last_recorded_at, "
                "k.last_position, k.rules, k.until, k.spans, k.delays FROM case_index i "
                f"LEFT JOIN case_clocks k ON k.case_ref = i.case_ref{where} ORDER BY i.case_ref",
                params,
            )
            return [StoredClocks.from_values(row, self.opener) for row in c.fetchall()]

    def load_clock_inputs(
        self, cases: Sequence[str] | None, types: Sequence[str]
    ) -> tuple[list[ClockHead], list[Milestone]]:
        heads: list[ClockHead] = []
        milestones: list[Milestone] = []
        columns = ", ".join(MILESTONE_COLUMNS)
        kinds = ",".join("?" * len(types))
        chunks: Iterable[Sequence[str] | None] = [None] if cases is None else _chunks(cases, 500)
        # One read transaction: a snapshot, so the labels match the milestones.
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            for chunk in chunks:
                marks = "" if chunk is None else ",".join("?" * len(chunk))
                where = "" if chunk is None else f" WHERE case_ref IN ({marks})"
                params = tuple(chunk or ())
                c.execute(
                    f"SELECT case_ref, regime, last_position, last_recorded_at FROM case_index"
                    f"{where}",
                    params,
                )
                heads.extend(ClockHead(r[0], r[1], int(r[2]), r[3]) for r in c.fetchall())
                and_cases = "" if chunk is None else where.replace(" WHERE ", " AND ")
                c.execute(
                    f"SELECT {columns} FROM case_milestones WHERE type IN ({kinds}){and_cases}",
                    (*types, *params),
                )
                milestones.extend(Milestone.from_values(r, self.opener) for r in c.fetchall())
        return heads, milestones

    def write_clock_facts(self, rows: Sequence[Sequence[Any]]) -> None:
        with self.datastore.transaction(commit=True) as c:
            # Never replace facts derived at a later position (another process's).
            c.executemany(
                "INSERT INTO case_clocks VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (case_ref) "
                "DO UPDATE SET last_position=excluded.last_position, "
                "last_recorded_at=excluded.last_recorded_at, rules=excluded.rules, "
                "until=excluded.until, spans=excluded.spans, delays=excluded.delays "
                "WHERE excluded.last_position >= case_clocks.last_position",
                rows,
            )

    def tables_exist(self) -> bool:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name IN "
                "('case_index', 'case_milestones', 'case_clocks', 'tracking')"
            )
            return int(c.fetchone()[0]) == 4

    def may_keep(self) -> bool:
        return not sqlite_read_only(self.datastore.pool.db_name)

    def may_create(self) -> bool:
        return self.may_keep()

    def indexed_refs(self) -> list[str]:
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(
                "SELECT case_ref FROM case_index UNION SELECT case_ref FROM case_milestones "
                "UNION SELECT case_ref FROM case_clocks"
            )
            return sorted(row[0] for row in c.fetchall())

    def check_snapshot(self, cases: Sequence[str]) -> IndexSnapshot:
        rows: dict[str, Sequence[Any]] = {}
        milestones: dict[str, list[Milestone]] = {}
        clocks: dict[str, Sequence[Any]] = {}
        marks = ",".join("?" * len(cases))
        params = tuple(cases)
        # One read transaction: the rows and the tracked position of one moment.
        with self.datastore.transaction(commit=False) as c:
            c.sqlite_cursor.row_factory = None  # plain tuples: faster
            c.execute(self.select_max_tracking_id_statement, (INDEX_NAME,))
            position = int(c.fetchone()[0] or 0)
            c.execute(
                f"SELECT {', '.join(INDEX_COLUMNS)} FROM case_index WHERE case_ref IN ({marks})",
                params,
            )
            for row in c.fetchall():
                rows[row[0]] = tuple(row)
            c.execute(
                f"SELECT {', '.join(MILESTONE_COLUMNS)} FROM case_milestones "
                f"WHERE case_ref IN ({marks}) ORDER BY case_ref, seq",
                params,
            )
            for row in c.fetchall():
                milestones.setdefault(row[0], []).append(Milestone.from_values(row, self.opener))
            c.execute(
                "SELECT case_ref, last_position, last_recorded_at, rules, until, spans, delays "
                f"FROM case_clocks WHERE case_ref IN ({marks})",
                params,
            )
            for row in c.fetchall():
                clocks[row[0]] = clock_row(row, self.opener)
        return IndexSnapshot(position, rows, milestones, clocks)


#: The milestones of the cases not closed (``open_only``), by their ``case_index`` stage.
_OPEN_CASES = "case_ref IN (SELECT case_ref FROM case_index WHERE stage <> 'closed')"


def _filters(mark: str, **values: str | None) -> tuple[str, list[str]]:
    clauses = [f"{name}={mark}" for name, value in values.items() if value is not None]
    params = [value for value in values.values() if value is not None]
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params
