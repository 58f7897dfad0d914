"""The cross-case index on PostgreSQL: the library's ``PostgresTrackingRecorder`` plus the
index's tables (:mod:`projections.index.rows`), in the store's schema.

Imported only for ``postgresql://`` stores.  A batch is written in one transaction that
first takes a transaction-scoped advisory lock (one per schema), checks the tracked
position, copies the new milestone rows in (``COPY``), updates the corrected ones,
replaces the touched case rows and moves the tracking position.  ``facts`` and
``open_requests`` are ``jsonb``, so SQL can reach into them
(``facts->>'outcome'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Final

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composable, Identifier, Literal

from projections.index.rows import (
    INDEX_COLUMNS,
    INDEX_NAME,
    INDEX_TABLES,
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

__all__ = ["IndexPostgresRecorder"]

TRACKING_TABLE: Final = "case_index_tracking"

_PG_INDEX_TYPES: Final[dict[str, str]] = {
    "case_ref": "text PRIMARY KEY",
    "entries": "integer NOT NULL",
    "decisions": "integer NOT NULL",
    "open_request_count": "integer NOT NULL",
    "last_position": "bigint NOT NULL",
    "open_requests": "jsonb NOT NULL",
}


class _Stale(Exception):
    """Another process moved the tracked position: drop this batch."""


class IndexPostgresRecorder(PostgresTrackingRecorder):
    """The index's tables and batch writes on PostgreSQL."""

    opener: Opener | None = None

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
        schema = Identifier(self.datastore.schema)
        self._index = SQL("{}.{}").format(schema, Identifier("case_index"))
        self._milestones = SQL("{}.{}").format(schema, Identifier("case_milestones"))
        self._tracking = SQL("{}.{}").format(schema, Identifier(TRACKING_TABLE))
        self._clocks = SQL("{}.{}").format(schema, Identifier("case_clocks"))
        self._lock_key = f"{self.datastore.schema}.{INDEX_NAME}"
        columns = SQL(", ").join(
            SQL(f"{name} {_PG_INDEX_TYPES.get(name, 'text')}") for name in INDEX_COLUMNS
        )
        self.sql_create_statements.extend(
            [
                SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(self._index, columns),
                SQL("CREATE INDEX IF NOT EXISTS case_index_stage ON {} (stage, regime)").format(
                    self._index
                ),
                SQL("CREATE INDEX IF NOT EXISTS case_index_regime ON {} (regime)").format(
                    self._index
                ),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "case_ref text NOT NULL, seq integer NOT NULL, type text NOT NULL, "
                    "occurred_at text NOT NULL, occurred_day date NOT NULL, "
                    "recorded_at text NOT NULL, position bigint NOT NULL, "
                    "actor text NOT NULL, corrected boolean NOT NULL, facts jsonb NOT NULL, "
                    "PRIMARY KEY (case_ref, seq))"
                ).format(self._milestones),
                SQL(
                    "CREATE INDEX IF NOT EXISTS case_milestones_type ON {} (type, occurred_day)"
                ).format(self._milestones),
                # Each case's clock facts (projections.index.clock_facts), labelled with the
                # case_index position they were derived at.  Created last: its presence
                # tells create_table that every table is there.
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "case_ref text PRIMARY KEY, last_position bigint NOT NULL, "
                    "last_recorded_at text NOT NULL, rules text NOT NULL, until text, "
                    "spans text NOT NULL, delays jsonb)"
                ).format(self._clocks),
                # Row security as on the entries (ledger/data/pgauthority.sql): a reader
                # the policy narrows to their agency reads none of the index's rows.
                SQL("SELECT {}.caseledger_guard_reads()").format(schema),
                # Whoever may read the entries may read the index made after their
                # grants were given (GRANT ... ON ALL TABLES covers only tables that
                # exist): the same SELECT, given by the tables' owner as they are made.
                SQL(
                    "DO $grant$ DECLARE r text; BEGIN FOR r IN SELECT DISTINCT "
                    "a.grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) a "
                    "WHERE c.oid = to_regclass({events}) AND a.privilege_type = 'SELECT' "
                    "AND a.grantee <> 0 AND a.grantee <> c.relowner LOOP EXECUTE format("
                    "'GRANT SELECT ON %s, %s, %s, %s TO %s', {tables}, r); END LOOP; END $grant$"
                ).format(
                    events=Literal(f'"{self.datastore.schema}".caseledger_events'),
                    tables=SQL(", ").join(
                        Literal(SQL("{}.{}").format(schema, Identifier(t)).as_string(None))
                        for t in (*INDEX_TABLES, TRACKING_TABLE)
                    ),
                ),
            ]
        )
        self._copy_milestones = SQL("COPY {} ({}) FROM STDIN").format(
            self._milestones, SQL(", ").join(Identifier(c) for c in MILESTONE_COLUMNS)
        )
        self._copy_index = SQL("COPY {} ({}) FROM STDIN").format(
            self._index, SQL(", ").join(Identifier(c) for c in INDEX_COLUMNS)
        )
        self._insert_milestones = SQL("INSERT INTO {} ({}) VALUES ({})").format(
            self._milestones,
            SQL(", ").join(Identifier(c) for c in MILESTONE_COLUMNS),
            SQL(", ").join(SQL("%s::jsonb" if c == "facts" else "%s") for c in MILESTONE_COLUMNS),
        )
        self._insert_index = SQL("INSERT INTO {} ({}) VALUES ({})").format(
            self._index,
            SQL(", ").join(Identifier(c) for c in INDEX_COLUMNS),
            SQL(", ").join(
                SQL("%s::jsonb" if c == "open_requests" else "%s") for c in INDEX_COLUMNS
            ),
        )
        self._index_name = f'"{self.datastore.schema}".case_index'
        #: Whether row security applies to this user here (asked at the first batch).
        self._row_security: bool | None = None

    def _put_rows(
        self, curs: Any, copy_sql: Composable, insert_sql: Composable, rows: Sequence[Any]
    ) -> None:
        """Write new rows with ``COPY``, or with ``INSERT`` where row security applies to
        this user (PostgreSQL refuses ``COPY FROM`` then: the indexer role, who does not
        own the tables; ``caseledger_guard_reads`` in ledger/data/pgauthority.sql)."""
        if self._row_security is None:
            curs.execute("SELECT row_security_active(%s::regclass) AS on", (self._index_name,))
            found = curs.fetchone()
            self._row_security = bool(found and found["on"])
        if self._row_security:
            if rows:
                curs.executemany(insert_sql, rows)
            return
        with curs.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)

    def _lock(self, curs: Any) -> None:
        curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key,))

    def create_table(self) -> None:
        # Creating an index locks its table even when it exists, which can deadlock with a
        # batch being written: skip when the tables are there (asked of the catalogue, not
        # information_schema: 5 to 7 ms), else create them under the index's lock.
        schema = self.datastore.schema
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT to_regclass(%s) IS NOT NULL AS ready, EXISTS (SELECT 1 FROM "
                "pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'state' "
                "AND NOT attisdropped) AS old",
                (f'"{schema}".case_clocks', f'"{schema}".case_index'),
            )
            row = curs.fetchone()
        if row is not None and row["old"]:
            # An index made by an earlier layout of these tables: drop it, to be rebuilt.
            with self.datastore.transaction(commit=True) as c:
                self._lock(c)
                c.execute(SQL("DROP TABLE IF EXISTS {}, {}").format(self._milestones, self._index))
                c.execute(
                    SQL("DELETE FROM {} WHERE application_name=%s").format(self._tracking),
                    (INDEX_NAME,),
                )
        elif row is not None and row["ready"]:
            return
        super().create_table()

    def _create_table(self, curs: Any) -> None:
        self._lock(curs)
        super()._create_table(curs)

    def tracked_position(self) -> int:
        return int(self.max_tracking_id(INDEX_NAME) or 0)

    def load_case_milestones(self, cases: Sequence[str]) -> dict[str, list[Milestone]]:
        columns = SQL(", ").join(Identifier(c) for c in MILESTONE_COLUMNS)
        out: dict[str, list[Milestone]] = {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT {} FROM {} WHERE case_ref = ANY(%s) ORDER BY case_ref, seq").format(
                    columns, self._milestones
                ),
                (list(cases),),
            )
            for row in curs.fetchall():
                milestone = self._milestone(row)
                out.setdefault(milestone.case, []).append(milestone)
        return out

    def _milestone(self, row: Any) -> Milestone:
        values = [row[c] for c in MILESTONE_COLUMNS]
        values[4] = values[4].isoformat()
        return Milestone.from_values(values, self.opener)

    def load_milestone_rows(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Milestone]:
        columns = SQL(", ").join(Identifier(c) for c in MILESTONE_COLUMNS)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT {} FROM {} WHERE (case_ref, seq) IN "
                    "(SELECT * FROM unnest(%s::text[], %s::integer[]))"
                ).format(columns, self._milestones),
                ([k[0] for k in keys], [k[1] for k in keys]),
            )
            out = {}
            for row in curs.fetchall():
                milestone = self._milestone(row)
                out[(milestone.case, milestone.seq)] = milestone
            return out

    def count_milestones(self) -> int:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT COUNT(*) AS n FROM {}").format(self._milestones))
            row = curs.fetchone()
            return int(row["n"]) if row else 0

    def count_cases(self) -> int:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT COUNT(*) AS n FROM {}").format(self._index))
            row = curs.fetchone()
            return int(row["n"]) if row else 0

    def write_batch(
        self,
        start: int,
        end: int,
        new: Sequence[Sequence[Any]],
        changed: Sequence[Sequence[Any]],
        rows: Sequence[Sequence[Any]],
    ) -> bool:
        try:
            with self.datastore.transaction(commit=True) as curs:
                self._lock(curs)
                curs.execute(self.max_tracking_id_statement, (INDEX_NAME,))
                found = curs.fetchone()
                current = (found["max"] if found else None) or 0
                if current != start:
                    raise _Stale
                self._put_rows(curs, self._copy_milestones, self._insert_milestones, new)
                if changed:
                    curs.executemany(
                        SQL(
                            "UPDATE {} SET occurred_at=%s, occurred_day=%s, corrected=true, "
                            "facts=%s::jsonb WHERE case_ref=%s AND seq=%s"
                        ).format(self._milestones),
                        changed,
                    )
                curs.execute(
                    SQL("DELETE FROM {} WHERE case_ref = ANY(%s)").format(self._index),
                    ([row[0] for row in rows],),
                )
                self._put_rows(curs, self._copy_index, self._insert_index, rows)
                self._insert_tracking(curs, Tracking(INDEX_NAME, end))
        except _Stale:
            return False
        return True

    def _tables(self) -> list[str]:
        schema = self.datastore.schema.replace('"', '""')
        return [f'"{schema}"."{name}"' for name in (*INDEX_TABLES, TRACKING_TABLE)]

    def tables_exist(self) -> bool:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                "SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) AS t",
                (self._tables(),),
            )
            row = curs.fetchone()
            return bool(row and row[0])

    def may_keep(self) -> bool:
        # Each privilege asked separately: has_table_privilege with a list is true when
        # any one of them is held.
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                "SELECT bool_and(has_table_privilege(t, p)) FROM unnest(%s::text[]) AS t, "
                "unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p",
                (self._tables(),),
            )
            row = curs.fetchone()
            return bool(row and row[0])

    def may_create(self) -> bool:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                "SELECT has_schema_privilege(%s, 'CREATE') AND has_schema_privilege(%s, 'USAGE')",
                (self.datastore.schema, self.datastore.schema),
            )
            row = curs.fetchone()
            return bool(row and row[0])

    def _may_truncate(self) -> bool:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                "SELECT bool_and(has_table_privilege(t, 'TRUNCATE')) FROM unnest(%s::text[]) AS t",
                (self._tables()[:3],),
            )
            row = curs.fetchone()
            return bool(row and row[0])

    def indexed_refs(self) -> list[str]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                SQL(
                    "SELECT case_ref FROM {} UNION SELECT case_ref FROM {} "
                    "UNION SELECT case_ref FROM {}"
                ).format(self._index, self._milestones, self._clocks)
            )
            return sorted(row[0] for row in curs.fetchall())

    def check_snapshot(self, cases: Sequence[str]) -> IndexSnapshot:
        rows: dict[str, Sequence[Any]] = {}
        milestones: dict[str, list[Milestone]] = {}
        clocks: dict[str, Sequence[Any]] = {}
        refs = list(cases)
        index_columns = SQL(", ").join(Identifier(c) for c in INDEX_COLUMNS)
        # facts as text: decoded by orjson (faster than the driver's json for 100,000s).
        milestone_columns = SQL(", ").join(
            SQL("facts::text AS facts") if c == "facts" else Identifier(c)
            for c in MILESTONE_COLUMNS
        )
        # One snapshot: the rows and the tracked position of one moment.
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            curs.execute(self.max_tracking_id_statement, (INDEX_NAME,))
            found = curs.fetchone()
            position = int((found["max"] if found else None) or 0)
            curs.execute(
                SQL("SELECT {} FROM {} WHERE case_ref = ANY(%s)").format(
                    index_columns, self._index
                ),
                (refs,),
            )
            for row in curs.fetchall():
                rows[row["case_ref"]] = tuple(row[c] for c in INDEX_COLUMNS)
            curs.execute(
                SQL("SELECT {} FROM {} WHERE case_ref = ANY(%s) ORDER BY case_ref, seq").format(
                    milestone_columns, self._milestones
                ),
                (refs,),
            )
            for row in curs.fetchall():
                milestone = self._milestone(row)
                milestones.setdefault(milestone.case, []).append(milestone)
            curs.execute(
                SQL(
                    "SELECT case_ref, last_position, last_recorded_at, rules, until, spans, "
                    "delays FROM {} WHERE case_ref = ANY(%s)"
                ).format(self._clocks),
                (refs,),
            )
            for row in curs.fetchall():
                clocks[row["case_ref"]] = clock_row(
                    [
                        row[c]
                        for c in (
                            "case_ref",
                            "last_position",
                            "last_recorded_at",
                            "rules",
                            "until",
                            "spans",
                            "delays",
                        )
                    ],
                    self.opener,
                )
        return IndexSnapshot(position, rows, milestones, clocks)

    def reset(self) -> None:
        # TRUNCATE when this user may (the owner); DELETE otherwise (the indexer role
        # has INSERT, UPDATE and DELETE on the index's tables only).
        truncate = self._may_truncate()
        with self.datastore.transaction(commit=True) as curs:
            self._lock(curs)
            if truncate:
                curs.execute(
                    SQL("TRUNCATE {}, {}, {}").format(self._milestones, self._index, self._clocks)
                )
            else:
                for table in (self._milestones, self._index, self._clocks):
                    curs.execute(SQL("DELETE FROM {}").format(table))
            curs.execute(
                SQL("DELETE FROM {} WHERE application_name=%s").format(self._tracking),
                (INDEX_NAME,),
            )

    def select_rows(
        self, stage: str | None, regime: str | None, case: str | None
    ) -> list[IndexRow]:
        clauses: list[Composable] = []
        params: list[str] = []
        for name, value in (("stage", stage), ("regime", regime), ("case_ref", case)):
            if value is not None:
                clauses.append(SQL("{}=%s").format(Identifier(name)))
                params.append(value)
        where = SQL(" WHERE ") + SQL(" AND ").join(clauses) if clauses else SQL("")
        columns = SQL(", ").join(Identifier(c) for c in INDEX_COLUMNS)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT {} FROM {}{} ORDER BY case_ref").format(columns, self._index, where),
                params,
            )
            return [
                IndexRow.from_values([row[c] for c in INDEX_COLUMNS], self.opener)
                for row in curs.fetchall()
            ]

    def select_milestones(
        self, case: str | None, types: Sequence[str] | None, open_only: bool = False
    ) -> list[Milestone]:
        clauses: list[Composable] = []
        params: list[Any] = []
        if open_only:
            clauses.append(
                SQL("case_ref IN (SELECT case_ref FROM {} WHERE stage <> 'closed')").format(
                    self._index
                )
            )
        if case is not None:
            clauses.append(SQL("case_ref=%s"))
            params.append(case)
        if types:
            clauses.append(SQL("type = ANY(%s)"))
            params.append(list(types))
        where = SQL(" WHERE ") + SQL(" AND ").join(clauses) if clauses else SQL("")
        columns = SQL(", ").join(Identifier(c) for c in MILESTONE_COLUMNS)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT {} FROM {}{} ORDER BY case_ref, seq").format(
                    columns, self._milestones, where
                ),
                params,
            )
            return [self._milestone(row) for row in curs.fetchall()]

    def select_home_areas(self, open_only: bool = False) -> list[tuple[str, str]]:
        # In clear, the server reads the one field; sealed, the facts are opened here. Every
        # case: the referrals alone, entry 1, without a join to the index (half the query).
        facts = SQL("m.facts->>'home_area'") if self.opener is None else SQL("m.facts")
        opened = SQL("JOIN {} i ON i.case_ref = m.case_ref AND i.stage <> 'closed' ")
        query = SQL(
            "SELECT m.case_ref, {} FROM {} m {}WHERE m.type = 'CaseReferred' AND m.seq = 1"
        ).format(facts, self._milestones, opened.format(self._index) if open_only else SQL(""))
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(query)
            rows = sorted(curs.fetchall(), key=itemgetter(0))  # by reference (as above)
        if self.opener is None:
            return [(case, str(area or "")) for case, area in rows]
        return [(case, home_area(json_column(value, self.opener))) for case, value in rows]

    def select_times(self, types: Sequence[str]) -> list[tuple[str, int, str, str]]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                SQL("SELECT case_ref, seq, type, occurred_at FROM {} WHERE type = ANY(%s)").format(
                    self._milestones
                ),
                (list(types),),
            )
            return [(row[0], int(row[1]), row[2], row[3]) for row in curs.fetchall()]

    def select_regimes(self) -> dict[str, str]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(SQL("SELECT case_ref, regime FROM {}").format(self._index))
            return dict(curs.fetchall())

    def stale_clock_cases(
        self, fingerprint: str, case: str | None, open_only: bool = False
    ) -> list[str]:
        only: Composable = SQL(" AND i.case_ref=%s") if case is not None else SQL("")
        if open_only:
            only = only + SQL(" AND i.stage <> 'closed'")
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT i.case_ref FROM {} i LEFT JOIN {} k ON k.case_ref = i.case_ref "
                    "WHERE (k.case_ref IS NULL OR k.last_position <> i.last_position "
                    "OR k.rules <> %s){}"
                ).format(self._index, self._clocks, only),
                (fingerprint, case) if case is not None else (fingerprint,),
            )
            return [row["case_ref"] for row in curs.fetchall()]

    def select_status_rows(
        self, stage: str | None, regime: str | None, open_only: bool = False
    ) -> list[StatusRow]:
        clauses: list[Composable] = [SQL("i.stage <> 'closed'")] if open_only else []
        params: list[str] = []
        for name, value in (("stage", stage), ("regime", regime)):
            if value is not None:
                clauses.append(SQL("i.{}=%s").format(Identifier(name)))
                params.append(value)
        where = SQL(" WHERE ") + SQL(" AND ").join(clauses) if clauses else SQL("")
        columns = SQL(", ").join(SQL("i.{}").format(Identifier(c)) for c in STATUS_COLUMNS)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                SQL(
                    "SELECT {}, k.last_position, k.rules, k.until, k.spans "
                    "FROM {} i LEFT JOIN {} k ON k.case_ref = i.case_ref{}"
                ).format(columns, self._index, self._clocks, where),
                params,
            )
            # by reference as in SQLite (the server's sort, in workers, was half the query)
            return sorted(map(StatusRow._make, curs.fetchall()), key=itemgetter(0))

    def select_clock_facts(
        self, case: str | None, open_only: bool = False, regime: str | None = None
    ) -> list[StoredClocks]:
        clauses = (
            ([SQL("i.case_ref=%s")] if case is not None else [])
            + ([SQL("i.stage <> 'closed'")] if open_only else [])
            + ([SQL("i.regime=%s")] if regime is not None else [])
        )
        where = SQL(" WHERE ") + SQL(" AND ").join(clauses) if clauses else SQL("")
        params = tuple(v for v in (case, regime) if v is not None)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(
                SQL(
                    "SELECT i.case_ref, i.regime, i.last_position, i.last_recorded_at, "
                    "k.last_position, k.rules, k.until, k.spans, k.delays "
                    "FROM {} i LEFT JOIN {} k ON k.case_ref = i.case_ref{}"
                ).format(self._index, self._clocks, where),
                params,
            )
            opener = self.opener
            rows = sorted(curs.fetchall(), key=itemgetter(0))  # by reference (as above)
            return [StoredClocks.from_values(row, opener) for row in rows]

    def load_clock_inputs(
        self, cases: Sequence[str] | None, types: Sequence[str]
    ) -> tuple[list[ClockHead], list[Milestone]]:
        columns = SQL(", ").join(Identifier(c) for c in MILESTONE_COLUMNS)
        only = SQL(" AND case_ref = ANY(%s)") if cases is not None else SQL("")
        params: tuple[Any, ...] = (list(cases),) if cases is not None else ()
        # One snapshot for both reads, so the labels match the milestones.
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            curs.execute(
                SQL(
                    "SELECT case_ref, regime, last_position, last_recorded_at FROM {} WHERE true{}"
                ).format(self._index, only),
                params,
            )
            heads = [
                ClockHead(
                    r["case_ref"], r["regime"], int(r["last_position"]), r["last_recorded_at"]
                )
                for r in curs.fetchall()
            ]
            curs.execute(
                SQL("SELECT {} FROM {} WHERE type = ANY(%s){}").format(
                    columns, self._milestones, only
                ),
                (list(types), *params),
            )
            milestones = [self._milestone(row) for row in curs.fetchall()]
        return heads, milestones

    def write_clock_facts(self, rows: Sequence[Sequence[Any]]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            # Never replace facts derived at a later position (another process's).
            curs.execute(
                SQL(
                    "INSERT INTO {} AS k SELECT c, p, r, f, u, s, j::jsonb FROM unnest("
                    "%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], "
                    "%s::text[]) AS t (c, p, r, f, u, s, j) "
                    "ON CONFLICT (case_ref) DO UPDATE SET last_position=excluded.last_position, "
                    "last_recorded_at=excluded.last_recorded_at, rules=excluded.rules, "
                    "until=excluded.until, spans=excluded.spans, delays=excluded.delays "
                    "WHERE excluded.last_position >= k.last_position"
                ).format(self._clocks),
                [[row[i] for row in rows] for i in range(7)],
            )
