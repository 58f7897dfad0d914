"""The cross-case index cannot be trusted blindly, and readers never write it.

On both stores: ``caseledger verify`` compares the index with the fold of the verified
events and names the case whose rows were changed by direct SQL (a stage, a decision,
a deleted milestone row, a forged clock-facts row, a moved tracking position); an index
that is only behind the log still verifies.  A user who may only read (a PostgreSQL role
with USAGE and SELECT, or an SQLite file opened ``mode=ro``) runs every query command and
gets the owner's answers, folding what the index has not applied yet in memory, and
writes nothing; the indexer role (INSERT, UPDATE, DELETE on the index's tables only)
keeps the index with ``reindex --catch-up``.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.store.postgres import role_grants
from tests.conftest import CliResult, FixedClock, open_ledger, scenario_lines
from tests.test_read_side import decision, referral, reply, request

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]
CASE = "RR-2026-004"
OTHER = "SCR-2026-501"
LATE = "SCR-2026-502"


def record(url: str, clock: FixedClock, *lines: dict[str, Any]) -> None:
    led = open_ledger(url, clock)
    clock.advance(minutes=1)
    led.record_lines([orjson.dumps(x) for x in lines], led.recorder_for())
    led.close()


def build(url: str, clock: FixedClock, cli: Cli) -> None:
    """The scenario and a second case, indexed (by the owner's ``status``)."""
    led = open_ledger(url, clock)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.close()
    record(
        url,
        clock,
        referral(OTHER, regime="wt2018"),
        request(OTHER, "Northshire Police", "2026-05-05"),
        decision(OTHER, "review", "2026-05-10", regime="wt2018"),
    )
    assert cli(["--store", url, "status", "--json"]).exit_code == 0


@contextmanager
def owner_sql(url: str) -> Iterator[Any]:
    """A connection as the store's owner, in the store's schema (a direct SQL user)."""
    if url.startswith("postgresql://"):
        import psycopg

        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            yield conn
    else:
        conn = sqlite3.connect(url)
        try:
            yield conn
            conn.commit()
        finally:
            conn.close()


def tracking_table(url: str) -> str:
    return "case_index_tracking" if url.startswith("postgresql://") else "tracking"


def verify(cli: Cli, url: str) -> tuple[int, dict[str, Any]]:
    result = cli(["--store", url, "verify", "--json"])
    assert "Traceback" not in result.stderr
    return result.exit_code, result.json()


def assert_fails_at(cli: Cli, url: str, case: str, *words: str) -> dict[str, Any]:
    code, payload = verify(cli, url)
    assert code == 1, payload
    assert payload["ok"] is False
    assert payload["first_bad"] == case, payload
    for word in words:
        assert word in payload["reason"], payload["reason"]
    return payload


# --- verify checks the index ------------------------------------------------------------


def test_an_honest_index_verifies_with_its_digest(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    from projections.queries.index_trust import check_index, index_digest

    build(store_url, clock, cli)
    code, payload = verify(cli, store_url)
    assert code == 0, payload
    index = payload["index"]
    assert index["ok"] and index["checked"] and index["cases"] == 2 and index["behind"] == 0
    led = open_ledger(store_url, clock)
    assert index["digest"] == index_digest(led) == check_index(led).digest
    assert len(index["digest"]) == 64


def test_an_index_behind_the_log_is_not_a_failure(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    build(store_url, clock, cli)
    record(store_url, clock, referral(LATE), reply(OTHER, "Northshire Police", "2026-05-06"))
    code, payload = verify(cli, store_url)
    assert code == 0, payload
    assert payload["index"]["behind"] == 2
    assert payload["first_bad"] is None


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("UPDATE case_index SET stage = 'closed' WHERE case_ref = '{case}'", ("case_index.stage",)),
        (
            "UPDATE case_index SET decision_outcome = 'no-review' WHERE case_ref = '{case}'",
            ("case_index.decision_outcome", "'no-review'", "'review'"),
        ),
        (
            "DELETE FROM case_milestones WHERE case_ref = '{case}' AND seq = 3",
            ("case_milestones has no row for {case}#3",),
        ),
        (
            "UPDATE case_milestones SET occurred_at = '2026-01-01' "
            "WHERE case_ref = '{case}' AND seq = 2",
            ("case_milestones {case}#2: occurred_at",),
        ),
        ("DELETE FROM case_index WHERE case_ref = '{case}'", ("case_index has no row",)),
    ],
    ids=["stage", "decision", "deleted-milestone", "moved-milestone", "deleted-row"],
)
def test_a_direct_change_of_the_index_fails_verify_naming_the_case(
    store_url: str, clock: FixedClock, cli: Cli, statement: str, words: tuple[str, ...]
) -> None:
    build(store_url, clock, cli)
    assert verify(cli, store_url)[0] == 0
    with owner_sql(store_url) as conn:
        conn.execute(statement.format(case=CASE))
    assert_fails_at(cli, store_url, CASE, *(w.format(case=CASE) for w in words))


def test_a_forged_clock_facts_row_fails_verify(store_url: str, clock: FixedClock, cli: Cli) -> None:
    build(store_url, clock, cli)
    assert cli(["--store", store_url, "clocks", "--json"]).exit_code == 0  # facts kept
    with owner_sql(store_url) as conn:
        rows = list(conn.execute(f"SELECT spans FROM case_clocks WHERE case_ref = '{CASE}'"))
        assert rows and rows[0][0].startswith("notification,")
        # Every clock met the day it started: nothing overdue, whatever happened.
        spans = ";".join(
            ",".join([*p.split(",")[:3], p.split(",")[1], p.split(",")[2]])
            for p in rows[0][0].split(";")
        )
        conn.execute(f"UPDATE case_clocks SET spans = '{spans}' WHERE case_ref = '{CASE}'")
    assert_fails_at(cli, store_url, CASE, "case_clocks.spans")


def test_a_stale_clock_facts_row_is_not_a_failure(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    build(store_url, clock, cli)
    assert cli(["--store", store_url, "clocks", "--json"]).exit_code == 0
    with owner_sql(store_url) as conn:
        # Labelled with another position: queries never read it (they derive again).
        conn.execute(
            f"UPDATE case_clocks SET last_position = 1, spans = 'forged' WHERE case_ref = '{CASE}'"
        )
    code, payload = verify(cli, store_url)
    assert code == 0, payload
    assert payload["index"]["stale_clock_facts"] == 1


def test_a_tracking_position_moved_back_fails_naming_the_case(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    build(store_url, clock, cli)
    table = tracking_table(store_url)
    with owner_sql(store_url) as conn:
        # Back by one: OTHER's last entry is no longer "applied", but its rows hold it.
        conn.execute(
            f"UPDATE {table} SET notification_id = notification_id - 1 "
            "WHERE application_name = 'case_index'"
        )
    assert_fails_at(cli, store_url, OTHER, "case_index.", "position 24")


def test_a_tracking_position_moved_on_fails_naming_the_case(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    build(store_url, clock, cli)
    record(store_url, clock, referral(LATE))  # not applied yet: honest, behind
    assert verify(cli, store_url)[0] == 0
    led = open_ledger(store_url, clock)
    last = led.count_events()
    led.close()
    table = tracking_table(store_url)
    with owner_sql(store_url) as conn:
        # The index now claims to have applied LATE's referral, which it has not:
        # readers would skip it.
        conn.execute(
            f"UPDATE {table} SET notification_id = {last} WHERE application_name = 'case_index'"
        )
    assert_fails_at(cli, store_url, LATE, "case_index has no row")
    with owner_sql(store_url) as conn:
        conn.execute(
            f"UPDATE {table} SET notification_id = {last + 50} "
            "WHERE application_name = 'case_index'"
        )
    # Beyond the log: every case may agree, but the position is not an entry's.
    payload = verify(cli, store_url)[1]
    assert payload["first_bad"] in (LATE, "case_index_tracking")


def test_a_forged_row_for_a_case_not_in_the_log_fails(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    build(store_url, clock, cli)
    with owner_sql(store_url) as conn:
        conn.execute(
            "INSERT INTO case_milestones SELECT 'SCR-2026-999', seq, type, occurred_at, "
            "occurred_day, recorded_at, position + 100000, actor, corrected, facts "
            f"FROM case_milestones WHERE case_ref = '{OTHER}' AND seq = 1"
        )
    assert_fails_at(cli, store_url, "SCR-2026-999", "case_milestones has rows")


# --- readers never write ----------------------------------------------------------------

QUERIES: list[list[str]] = [
    ["status", "--json"],
    ["status", "--stage", "decided", "--json"],
    ["status", CASE, "--json"],
    ["timeline", CASE, "--json"],
    ["why", CASE, "--json"],
    ["clocks", "--json"],
    ["clocks", CASE, "--json"],
    ["delays", "--from", "CaseReferred", "--to", "DecisionMade", "--json"],
    ["due", "--json"],
    ["due", "--on", "2026-05-06", "--json"],
    ["quality", CASE, "--json"],
    ["rules", "--json"],
    ["users", "list", "--json"],
    ["verify", "--json"],
]


def _comparable(args: list[str], result: CliResult) -> Any:
    assert result.exit_code == 0, (args, result.stderr)
    assert "Traceback" not in result.stderr and "permission denied" not in result.stderr
    value = result.json()
    if args[0] == "why":  # answered "now": the moment differs by the time between runs
        value = {k: v for k, v in value.items() if k not in ("as_of", "on")}
    if args[0] == "verify":  # the owner's index has caught up since: compare verdicts
        value = {k: v for k, v in value.items() if k not in ("store", "index")}
        value["index_ok"] = result.json()["index"]["ok"]
    return value


def _answers(cli: Cli, url: str, tmp: Path) -> dict[str, Any]:
    answers = {" ".join(a): _comparable(a, cli(["--store", url, *a])) for a in QUERIES}
    out = tmp / f"export-{uuid.uuid4().hex[:6]}"
    exported = cli(["--store", url, "export", "--out", str(out), "--json"])
    assert exported.exit_code == 0, exported.stderr
    answers["export"] = (
        exported.json()["events"],
        (out / "events.jsonl").read_bytes(),
    )
    return answers


def _tail(url: str, clock: FixedClock) -> None:
    """Entries the index has not applied yet (recorded after the owner's last query)."""
    record(
        url,
        clock,
        referral(LATE, regime="wt2015"),
        request(LATE, "Northshire Police", "2026-05-05"),
        reply(OTHER, "Northshire Police", "2026-05-06"),
        decision(LATE, "no-review", "2026-05-12", regime="wt2015"),
    )
    record(
        url,
        clock,
        {
            "type": "EntryCorrected",
            "case": OTHER,
            "corrects": f"{OTHER}#3",
            "changes": {"outcome": "no-review"},
            "reason": "The decision was recorded with the wrong outcome.",
        },
    )


def _index_state(url: str) -> tuple[Any, ...]:
    with owner_sql(url) as conn:
        tracked = list(
            conn.execute(
                f"SELECT notification_id FROM {tracking_table(url)} "
                "WHERE application_name = 'case_index'"
            )
        )
        counts = tuple(
            next(iter(conn.execute(f"SELECT COUNT(*) FROM {t}")))[0]
            for t in ("case_index", "case_milestones", "case_clocks")
        )
        clocks = list(conn.execute("SELECT case_ref, last_position FROM case_clocks ORDER BY 1"))
    return tuple(tracked), counts, tuple(tuple(r) for r in clocks)


@contextmanager
def pg_role(url: str, kind: str) -> Iterator[str]:
    """A login role with exactly the grants of ``docs/security.md`` for ``kind``
    (``ledger.store.postgres.role_grants``), dropped afterwards; yields its store URL."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    base, _, schema = url.partition("?schema=")
    role = f"r_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(role)))
        for grant in role_grants(schema, role, kind):
            conn.execute(grant.encode())
    try:
        yield url.replace("postgresql://postgres@", f"postgresql://{role}@")
    finally:
        from tests.conftest import _OPENED

        while _OPENED:
            _OPENED.pop().close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            conn.execute(SQL("DROP OWNED BY {}").format(Identifier(role)))
            conn.execute(SQL("DROP ROLE {}").format(Identifier(role)))


def test_a_postgres_reader_answers_every_query_and_writes_nothing(
    pg_url: str, clock: FixedClock, cli: Cli, tmp_path: Path
) -> None:
    from projections.index.case_index import CaseIndex

    build(pg_url, clock, cli)
    _tail(pg_url, clock)
    before = _index_state(pg_url)
    with pg_role(pg_url, "reader") as reader:
        led = open_ledger(reader, clock)
        index = CaseIndex(led)
        assert index.keeps is False  # decided from the grants, before any write
        led.close()
        read = _answers(cli, reader, tmp_path)
        assert _index_state(pg_url) == before  # nothing written, the tail folded in memory
        refused = cli(["--store", reader, "reindex", "--catch-up"])
        assert refused.exit_code == 4 and "Traceback" not in refused.stderr
        assert "Who keeps the index" in refused.stderr
    owner = _answers(cli, pg_url, tmp_path)
    assert _index_state(pg_url) != before  # the owner's queries caught the index up
    assert read == owner


def test_a_read_only_sqlite_file_answers_every_query_and_writes_nothing(
    sqlite_url: str, clock: FixedClock, cli: Cli, tmp_path: Path
) -> None:
    from projections.index.case_index import CaseIndex

    build(sqlite_url, clock, cli)
    _tail(sqlite_url, clock)
    before = _index_state(sqlite_url)
    reader = f"file:{sqlite_url}?mode=ro"
    led = open_ledger(reader, clock)
    assert CaseIndex(led).keeps is False
    led.close()
    read = _answers(cli, reader, tmp_path)
    assert _index_state(sqlite_url) == before
    assert cli(["--store", reader, "reindex"]).exit_code == 4
    owner = _answers(cli, sqlite_url, tmp_path)
    assert _index_state(sqlite_url) != before
    assert read == owner


def test_a_reader_of_a_store_never_indexed_folds_everything(
    store_url: str, clock: FixedClock, cli: Cli, tmp_path: Path
) -> None:
    led = open_ledger(store_url, clock)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.close()
    _tail_cases = (referral(OTHER, regime="wt2018"), decision(OTHER, "review", "2026-05-10"))
    record(store_url, clock, *_tail_cases)
    if store_url.startswith("postgresql://"):
        with pg_role(store_url, "reader") as reader:
            status = cli(["--store", reader, "status", "--json"])
            clocks = cli(["--store", reader, "clocks", "--json"])
    else:
        reader = f"file:{store_url}?mode=ro"
        status = cli(["--store", reader, "status", "--json"])
        clocks = cli(["--store", reader, "clocks", "--json"])
    assert status.exit_code == 0, status.stderr
    assert clocks.exit_code == 0, clocks.stderr
    with owner_sql(store_url) as conn:  # the reader created no table
        tables = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_name = 'case_index'"
            if store_url.startswith("postgresql://")
            else "SELECT name FROM sqlite_master WHERE name = 'case_index'"
        )
        assert list(conn.execute(tables)) == []
    assert status.json() == cli(["--store", store_url, "status", "--json"]).json()
    assert clocks.json() == cli(["--store", store_url, "clocks", "--json"]).json()


def test_the_indexer_role_keeps_the_index(pg_url: str, clock: FixedClock, cli: Cli) -> None:
    build(pg_url, clock, cli)
    _tail(pg_url, clock)
    with pg_role(pg_url, "indexer") as indexer:
        caught = cli(["--store", indexer, "reindex", "--catch-up", "--json"])
        assert caught.exit_code == 0, caught.stderr
        assert caught.json()["entries"] == 5
        led = open_ledger(pg_url, clock)
        assert caught.json()["position"] == led.count_events()
        led.close()
        code, payload = verify(cli, indexer)
        assert code == 0 and payload["index"]["behind"] == 0, payload
        rebuilt = cli(["--store", indexer, "reindex", "--json"])  # DELETE, not TRUNCATE
        assert rebuilt.exit_code == 0, rebuilt.stderr
        assert verify(cli, indexer)[0] == 0
        # The indexer may write the index and nothing else.
        led = open_ledger(indexer, clock)
        from projections.index.case_index import CaseIndex

        assert CaseIndex(led).keeps is True
        led.close()


def test_the_read_path_swallows_no_refused_write() -> None:
    """A reader's write attempt could only go unnoticed if an error were caught: the
    read path catches no PersistenceError (the one left retries creating the tables,
    reached only by a user who may create them), so with SELECT only, exit code 0 means
    no write was attempted."""
    root = Path(__file__).resolve().parents[1]
    index_modules = sorted((root / "projections/index").glob("*.py"))
    caught = {
        name: (root / name).read_text().count("except PersistenceError")
        for name in (
            *(f"projections/index/{path.name}" for path in index_modules),
            "projections/queries/cases.py",
            "projections/assess/clocks.py",
            "projections/queries/delays.py",
            "projections/queries/index_trust.py",
            "projections/api.py",
            "cli/commands/queries.py",
        )
    }
    assert caught == {name: int(name == "projections/index/case_index.py") for name in caught}


def test_an_encrypted_index_is_checked_opened_and_its_values_never_printed(
    store_url: str, clock: FixedClock, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64
    import os

    from projections.index.case_index import CaseIndex
    from projections.queries.index_trust import index_digest

    key = tmp_path / "store.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("CASELEDGER_KEY_FILE", str(key))
    build(store_url, clock, cli)
    code, payload = verify(cli, store_url)
    assert code == 0, payload
    led = open_ledger(store_url, clock)
    digest = index_digest(led)
    assert payload["index"]["digest"] == digest
    CaseIndex(led).rebuild()  # sealed again with fresh nonces: the same rows
    assert index_digest(led) == digest
    led.close()
    with owner_sql(store_url) as conn:
        # Another case's sealed subject, copied in: valid ciphertext, the wrong child.
        conn.execute(
            "UPDATE case_index SET subject = (SELECT subject FROM case_index "
            f"WHERE case_ref = '{OTHER}') WHERE case_ref = '{CASE}'"
        )
    failed = assert_fails_at(cli, store_url, CASE, "case_index.subject", "a different value")
    assert "Child K" not in failed["reason"]


def test_for_random_histories_a_reader_answers_like_the_fold_and_verify_passes(
    store_url: str, clock: FixedClock
) -> None:
    """Random histories (backdating, corrections), with the index caught up by its keeper
    only now and then: a reader's in-memory tail gives every case's row and milestones
    as a fold of its records, and ``check_index`` passes, counting what is behind."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from projections.index.case_index import CaseIndex
    from projections.queries.index_trust import check_index
    from tests.test_index import assert_index_matches_fold, record_lines
    from tests.test_read_side import History

    owner = open_ledger(store_url, clock)
    keeper = CaseIndex(owner)
    counter = iter(range(1_000_000))
    roles = pg_role(store_url, "reader") if store_url.startswith("postgresql") else None
    reader_url = roles.__enter__() if roles is not None else f"file:{store_url}?mode=ro"
    try:
        record_lines(owner, referral("SCR-2026-600"))
        keeper.catch_up()  # the tables exist: the reader reads them
        reader = open_ledger(reader_url, clock)
        seen: list[str] = ["SCR-2026-600"]

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(data=st.data())
        def check(data: Any) -> None:
            history = History(data, f"T{next(counter)}")
            for _ in range(data.draw(st.integers(1, 6))):
                record_lines(owner, *history.command())
                clock.advance(seconds=data.draw(st.integers(1, 5000)))
                if data.draw(st.booleans()):
                    keeper.catch_up()
            seen.extend(history.cases)
            index = CaseIndex(reader)
            assert index.keeps is False
            index.catch_up()
            assert index.position() == max(r["position"] for r in owner.iter_records())
            assert_index_matches_fold(reader, index, seen)
            result = check_index(owner)
            assert result.ok, result
            assert result.behind == sum(
                1 for _ in owner.iter_records(after=keeper.backend.tracked_position())
            )

        check()
    finally:
        if roles is not None:
            roles.__exit__(None, None, None)
