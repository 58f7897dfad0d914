"""The baseline of ``index_rebuild_*``: the index's fold written in SQL, on the same store,
on the ledger's own connection (so at its durability), into scratch tables of the same
shape as the index's.

What it does, in one transaction, from the stored entries:

* one row per entry (``bench_fold_milestones``, the columns and the two secondary indexes
  of ``case_milestones``): case, seq, type, ``occurred_at``, its day, ``recorded_at``,
  position, actor, and the ``facts`` (the entry's :data:`~projections.index.rows.FACT_FIELDS`)
  taken out of the stored JSON (SQLite: ``->>`` and ``json_each``; PostgreSQL: ``jsonb``);
* one row per case (``bench_fold_cases``) by ``GROUP BY``: entries, last time and position,
  regime and subject, the first time of each milestone type, the decision in force (the
  latest by time, then seq), how many decisions, requests less replies.

It is the part of the fold that order does not decide.  What it leaves out, and the index
does: corrections (patching the corrected rows and folding them into the case row), the
matching of replies to requests (a reply without a request id closes the earliest open
request to its agency), the national notification, the stage, comparing a bare date
with a time on the Europe/London timeline (the SQL compares text), the day of a time in
Europe/London on SQLite (it takes the first ten characters), and each case's clock facts.
So it is a lower bound of what the same answers cost in SQL.  The scratch tables are
dropped afterwards (untimed).
"""

from __future__ import annotations

import time
from typing import Any

from projections.index.rows import FACT_FIELDS, MILESTONE_TIMES

__all__ = ["sql_fold"]

_SCRATCH = ("bench_fold_milestones", "bench_fold_cases")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _case_columns(facts: str) -> str:
    """The ``GROUP BY`` columns of a case row (``facts`` reads a fact as text)."""
    firsts = ", ".join(
        f"min(CASE WHEN type={_quote(kind)} THEN occurred_at END)" for kind in MILESTONE_TIMES
    )
    return (
        "case_ref, count(*), max(recorded_at), max(position), "
        f"max(CASE WHEN type='CaseReferred' THEN {facts.format(name='regime')} END), "
        f"max(CASE WHEN type='CaseReferred' THEN {facts.format(name='subject')} END), "
        f"{firsts}, "
        "max(CASE WHEN type='DecisionMade' THEN occurred_at || '#' || seq END), "
        "sum(CASE WHEN type='DecisionMade' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN type='InformationRequested' THEN 1 "
        "WHEN type IN ('InformationReceived', 'InformationDeclined') THEN -1 ELSE 0 END)"
    )


_CASE_TABLE = (
    "case_ref TEXT PRIMARY KEY, entries INTEGER, last_recorded_at TEXT, last_position "
    "INTEGER, regime TEXT, subject TEXT, "
    + ", ".join(f"{column} TEXT" for column in MILESTONE_TIMES.values())
    + ", decision TEXT, decisions INTEGER, open_requests INTEGER"
)


def _sqlite(ledger: Any) -> tuple[float, float | None, int, int]:
    datastore = ledger.recorder.datastore
    with datastore.transaction(commit=True) as c:
        c.execute("DROP TABLE IF EXISTS bench_fold_milestones")
        c.execute("DROP TABLE IF EXISTS bench_fold_cases")
        c.execute(
            "CREATE TABLE bench_fold_milestones (case_ref TEXT NOT NULL, seq INTEGER NOT NULL, "
            "type TEXT NOT NULL, occurred_at TEXT NOT NULL, occurred_day TEXT NOT NULL, "
            "recorded_at TEXT NOT NULL, position INTEGER PRIMARY KEY, actor TEXT NOT NULL, "
            "corrected INTEGER NOT NULL, facts TEXT NOT NULL)"
        )
        c.execute(
            "CREATE UNIQUE INDEX bench_fold_milestones_case ON bench_fold_milestones "
            "(case_ref, seq)"
        )
        c.execute(
            "CREATE INDEX bench_fold_milestones_type ON bench_fold_milestones "
            "(type, occurred_day, case_ref, seq, occurred_at)"  # as the index's own
        )
        c.execute(  # and its referrals' index, so the writes compare at equal indexes
            "CREATE INDEX bench_fold_referral_areas ON bench_fold_milestones (case_ref, "
            "CASE WHEN json_valid(facts) THEN json_extract(facts, '$.home_area') END) "
            "WHERE type = 'CaseReferred' AND seq = 1"
        )
        c.execute(f"CREATE TABLE bench_fold_cases ({_CASE_TABLE}) WITHOUT ROWID")
        c.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bench_fold_fields (type TEXT, name TEXT, "
            "PRIMARY KEY (type, name)) WITHOUT ROWID"
        )
        c.execute("DELETE FROM bench_fold_fields")
        c.executemany(
            "INSERT INTO bench_fold_fields VALUES (?, ?)",
            [(kind, name) for kind, names in FACT_FIELDS.items() for name in names],
        )
    with datastore.get_connection(commit=True) as conn:
        c = conn.cursor()
        start, cpu = time.perf_counter(), time.process_time()
        c.execute("BEGIN IMMEDIATE")
        c.execute(
            "INSERT INTO bench_fold_milestones SELECT e.state ->> 'case', e.state ->> 'seq', "
            "e.topic, e.state ->> 'occurred_at', substr(e.state ->> 'occurred_at', 1, 10), "
            "e.state ->> 'recorded_at', e.rowid, coalesce(e.state ->> 'actor', ''), 0, "
            "coalesce((SELECT json_group_object(j.key, j.value) FROM json_each(e.state) j "
            "JOIN bench_fold_fields f ON f.type = e.topic AND f.name = j.key), '{}') "
            "FROM stored_events e ORDER BY e.rowid"
        )
        c.execute(
            "INSERT INTO bench_fold_cases SELECT "
            + _case_columns("facts ->> '{name}'")
            + " FROM bench_fold_milestones GROUP BY case_ref"
        )
        conn.commit()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        c.execute("SELECT count(*) FROM bench_fold_milestones")
        rows = int(c.fetchone()[0])
        c.execute("SELECT count(*) FROM bench_fold_cases")
        cases = int(c.fetchone()[0])
        c.sqlite_cursor.close()
    with datastore.transaction(commit=True) as c:
        c.execute("DROP TABLE bench_fold_milestones")
        c.execute("DROP TABLE bench_fold_cases")
    return seconds, cpu, rows, cases


def _postgres(ledger: Any) -> tuple[float, float | None, int, int]:
    from psycopg.sql import SQL, Identifier

    recorder = ledger.recorder
    datastore = recorder.datastore
    schema = Identifier(datastore.schema)
    milestones = SQL("{}.bench_fold_milestones").format(schema)
    cases_table = SQL("{}.bench_fold_cases").format(schema)
    events = SQL("{}.{}").format(schema, Identifier(recorder.events_table_name))
    fields = ", ".join(
        f"({_quote(kind)}, ARRAY[{', '.join(_quote(n) for n in names)}]::text[])"
        for kind, names in FACT_FIELDS.items()
    )
    with datastore.transaction(commit=True) as c:
        c.execute(SQL("DROP TABLE IF EXISTS {}, {}").format(milestones, cases_table))
        c.execute(
            SQL(
                "CREATE TABLE {} (case_ref text NOT NULL, seq integer NOT NULL, "
                "type text NOT NULL, occurred_at text NOT NULL, occurred_day date NOT NULL, "
                "recorded_at text NOT NULL, position bigint NOT NULL, actor text NOT NULL, "
                "corrected boolean NOT NULL, facts jsonb NOT NULL, PRIMARY KEY (case_ref, seq))"
            ).format(milestones)
        )
        c.execute(
            SQL("CREATE INDEX bench_fold_milestones_type ON {} (type, occurred_day)").format(
                milestones
            )
        )
        c.execute(SQL(f"CREATE TABLE {{}} ({_CASE_TABLE})").format(cases_table))
    start = time.perf_counter()
    with datastore.transaction(commit=True) as c:
        c.execute(
            SQL(
                f"WITH f (type, names) AS (VALUES {fields}) "
                "INSERT INTO {} SELECT s.j->>'case', (s.j->>'seq')::integer, e.topic, "
                "s.j->>'occurred_at', CASE WHEN length(s.j->>'occurred_at') = 10 "
                "THEN (s.j->>'occurred_at')::date ELSE ((s.j->>'occurred_at')::timestamptz "
                "AT TIME ZONE 'Europe/London')::date END, s.j->>'recorded_at', "
                "e.notification_id, coalesce(s.j->>'actor', ''), false, "
                "coalesce((SELECT jsonb_object_agg(k.key, k.value) FROM jsonb_each(s.j) k "
                "WHERE k.key = ANY(f.names)), jsonb_build_object()) "
                "FROM {} e CROSS JOIN LATERAL (SELECT convert_from(e.state, 'UTF8')::jsonb "
                "AS j) s LEFT JOIN f ON f.type = e.topic ORDER BY e.notification_id"
            ).format(milestones, events)
        )
        c.execute(
            SQL(
                "INSERT INTO {} SELECT "
                + _case_columns("facts->>'{name}'").replace("count(*)", "count(*)::integer")
                + " FROM {} GROUP BY case_ref"
            ).format(cases_table, milestones)
        )
    seconds = time.perf_counter() - start
    with datastore.transaction(commit=True) as c:
        c.execute(SQL("SELECT count(*) AS n FROM {}").format(milestones))
        rows = int(c.fetchone()["n"])
        c.execute(SQL("SELECT count(*) AS n FROM {}").format(cases_table))
        cases = int(c.fetchone()["n"])
        c.execute(SQL("DROP TABLE {}, {}").format(milestones, cases_table))
    return seconds, None, rows, cases


def sql_fold(ledger: Any) -> dict[str, Any]:
    """Run the fold in SQL once on ``ledger``'s store; its seconds, its CPU seconds (SQLite
    only: it runs in this process; PostgreSQL's run on the server) and row counts."""
    run = _postgres if ledger.location.kind == "postgres" else _sqlite
    seconds, cpu, rows, cases = run(ledger)
    return {"seconds": seconds, "cpu_seconds": cpu, "milestones": rows, "cases": cases}
