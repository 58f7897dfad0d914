"""The cross-case index on both stores: ``status`` with no case answers from it, it keeps
up with what was just recorded, ``reindex`` rebuilds it, it survives crashes part-way
through a catch-up (rows and tracking position move together), concurrent catch-ups
apply every entry exactly once, and for random histories it equals a fold of the
events, case by case.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.conftest import CliResult, FixedClock, open_ledger, scenario_lines
from tests.test_read_side import History, decision, query, referral, reply, request

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]
CASE = "RR-2026-004"
ON = datetime(2026, 12, 1, tzinfo=UTC)


class Boom(Exception):
    """A simulated crash."""


@pytest.fixture
def ledger(store_url: str, clock: FixedClock) -> Iterator[Any]:
    led = open_ledger(store_url, clock)
    yield led
    led.close()


def record_lines(led: Any, *lines: dict[str, Any]) -> None:
    led.record_lines([orjson.dumps(x) for x in lines], led.recorder_for())


def several_cases(led: Any, clock: FixedClock, count: int = 6) -> list[str]:
    """The scenario plus ``count`` small cases at different stages."""
    led.record_lines(scenario_lines(), led.recorder_for())
    refs = [CASE]
    for n in range(count):
        case = f"SCR-2026-2{n:02d}"
        regime = ("wt2015", "wt2018", "wt2023")[n % 3]
        clock.advance(minutes=1)
        lines = [referral(case, regime=regime), request(case, "Northshire Police", "2026-05-05")]
        if n % 2:
            lines.append(reply(case, "Northshire Police", "2026-05-06"))
        if n % 3 == 2:
            lines.append(decision(case, "review", "2026-05-10", regime=regime))
        record_lines(led, *lines)
        refs.append(case)
    return refs


def fold_status(led: Any, case: str, upto: int | None = None) -> dict[str, Any] | None:
    from projections.fold.case_view import fold
    from projections.queries.cases import status_of

    records = led.case_records(case)
    if upto is not None:
        records = [r for r in records if r["position"] <= upto]
    view = fold(records)
    return status_of(view, ON) if view is not None else None


def fold_milestones(led: Any, case: str, upto: int | None = None) -> list[tuple[Any, ...]]:
    """What ``case_milestones`` must hold for a case: its entries, corrections applied."""
    from projections.fold.case_view import fold
    from projections.index.summary import facts_of

    records = led.case_records(case)
    if upto is not None:
        records = [r for r in records if r["position"] <= upto]
    view = fold(records)
    if view is None:
        return []
    return [
        (e.seq, e.type, e.occurred_at, e.recorded_at, e.position, e.corrected, facts_of(e.body))
        for e in view.entries
    ]


def index_milestones(index: Any, case: str) -> list[tuple[Any, ...]]:
    return [
        (m.seq, m.type, m.occurred_at, m.recorded_at, m.position, m.corrected, dict(m.facts))
        for m in index.milestones(case, catch_up=False)
    ]


def without_clocks(status: dict[str, Any] | None) -> dict[str, Any] | None:
    """A status answer without the parts the clocks compute, nor ``area``, which the
    query adds from the milestones (``projections.index.records.indexed_areas``; the list's
    ``area`` equals the fold's: ``test_status_of_every_case_comes_from_the_index``)."""
    if status is None:
        return None
    return {k: v for k, v in status.items() if k not in ("overdue", "next_deadline", "area")}


def assert_index_matches_fold(
    led: Any, index: Any, cases: list[str], upto: int | None = None
) -> None:
    """Every case's indexed row and milestones equal a fold of its records (up to a
    position: what the index has applied)."""
    for case in cases:
        row = index.row(case, catch_up=False)
        expected = fold_status(led, case, upto)
        # The clocks' part of a status (overdue, next deadline) is computed from the
        # index's milestones by projections.assess.clocks; tests/test_clocks.py checks it equals
        # the folds.  Here: the row itself.
        got = without_clocks(row.status(ON)) if row is not None else None
        assert got == without_clocks(expected), case
        assert index_milestones(index, case) == fold_milestones(led, case, upto), case


# --- status from the index --------------------------------------------------------------


def test_status_of_every_case_comes_from_the_index(
    ledger: Any, clock: FixedClock, cli: Cli, store_url: str
) -> None:
    from projections.index.case_index import CaseIndex

    cases = several_cases(ledger, clock)
    rows = query(cli, store_url, "status", "--sort", "ref")
    assert [r["case"] for r in rows] == sorted(cases)
    for row in rows:
        assert row == query(cli, store_url, "status", row["case"])
        assert set(row) >= {"case", "regime", "stage", "decision", "open_requests", "overdue"}
    index = CaseIndex(ledger)
    assert index.position() == ledger.count_events()  # the CLI caught it up
    assert index.count_cases() == len(cases)


def test_status_filters(ledger: Any, clock: FixedClock, cli: Cli, store_url: str) -> None:
    several_cases(ledger, clock)
    decided = query(cli, store_url, "status", "--stage", "decided")
    assert [r["case"] for r in decided] == ["SCR-2026-202", "SCR-2026-205"]
    wt2015 = query(cli, store_url, "status", "--regime", "wt2015")
    assert [r["case"] for r in wt2015] == ["SCR-2026-200", "SCR-2026-203"]
    both = query(cli, store_url, "status", "--regime", "wt2023", "--stage", "decided")
    assert [r["case"] for r in both] == ["SCR-2026-202", "SCR-2026-205"]
    assert query(cli, store_url, "status", "--regime", "wt2018", "--stage", "decided") == []
    assert query(cli, store_url, "status", "--stage", "published") == query(
        cli, store_url, "status", "--regime", "wt2023", "--stage", "published"
    )


def test_status_reads_its_own_writes(store_url: str, cli: Cli) -> None:
    # a query creates no store (exit 4); the first recording command does
    assert cli(["--store", store_url, "status", "--json"]).exit_code == 4
    line = orjson.dumps(referral("SCR-2026-300"))
    assert cli(["--store", store_url, "record", "-"], stdin=line).exit_code == 0
    assert [r["case"] for r in query(cli, store_url, "status")] == ["SCR-2026-300"]
    line = orjson.dumps(request("SCR-2026-300", "Northshire ICB", "2026-05-05"))
    assert cli(["--store", store_url, "record", "-"], stdin=line).exit_code == 0
    (row,) = query(cli, store_url, "status")
    assert row["stage"] == "gathering-information"
    assert [r["agency"] for r in row["open_requests"]] == ["Northshire ICB"]


def test_reindex_rebuilds_the_same_index(
    ledger: Any, clock: FixedClock, cli: Cli, store_url: str
) -> None:
    from projections.index.case_index import CaseIndex

    cases = several_cases(ledger, clock)
    before = query(cli, store_url, "status")
    index = CaseIndex(ledger)
    milestones = [index_milestones(index, c) for c in cases]
    summary = query(cli, store_url, "reindex")
    assert summary["entries"] == ledger.count_events()
    assert summary["cases"] == len(cases)
    assert summary["position"] == index.position()
    assert query(cli, store_url, "status") == before
    assert [index_milestones(index, c) for c in cases] == milestones
    people = cli(["--store", store_url, "reindex"])
    assert people.exit_code == 0 and "indexed" in people.stdout


def test_milestones_carry_facts(scenario_store: str) -> None:
    from projections.index.case_index import CaseIndex

    led = open_ledger(scenario_store)
    try:
        index = CaseIndex(led)
        milestones = index.milestones(CASE)
        assert [m.seq for m in milestones] == list(range(1, 23))
        by_seq = {m.seq: m for m in milestones}
        assert by_seq[1].facts["aware_date"] == "2026-02-09"
        assert by_seq[1].facts["regime"] == "wt2023"
        assert by_seq[2].facts["recipients"] == ["national-panel", "ofsted", "dfe"]
        assert by_seq[6].facts["agency"] == "Northshire Education"
        assert by_seq[6].facts["due"] == "2026-02-20"
        assert by_seq[6].facts["request_id"]
        assert by_seq[19].facts["outcome"] == "review"
        assert by_seq[20].facts["to"] == ["national-panel", "ofsted"]
        assert by_seq[14].occurred_day == "2026-03-03"
        assert "summary" not in by_seq[9].facts
        decisions = index.milestones(types=["DecisionMade"])
        assert [m.ref for m in decisions] == [f"{CASE}#19"]
        row = index.row(CASE)
        assert row is not None
        assert row.notified_national_at == "2026-02-13"
        assert row.milestones["published_at"] == "2026-08-28"
        assert row.aware_date == "2026-02-09"
    finally:
        led.close()


def test_corrections_update_milestones_and_rows(ledger: Any, clock: FixedClock) -> None:
    from projections.index.case_index import CaseIndex

    case = "SCR-2026-310"
    index = CaseIndex(ledger)
    record_lines(
        ledger,
        referral(case),
        request(case, "Northshire Police", "2026-05-05"),
        decision(case, "review", "2026-05-10"),
    )
    index.catch_up()
    clock.advance(days=1)
    # One correction in a later batch (its target already indexed) ...
    record_lines(
        ledger,
        {
            "type": "EntryCorrected",
            "case": case,
            "corrects": f"{case}#3",
            "changes": {"occurred_at": "2026-05-12", "outcome": "no-review"},
            "reason": "Wrong date and outcome.",
        },
    )
    # ... and one in the same batch as its target.
    record_lines(
        ledger,
        request(case, "Northshire ICB", "2026-05-06"),
        {
            "type": "EntryCorrected",
            "case": case,
            "corrects": f"{case}#5",
            "changes": {"agency": "Northshire Education", "due": "2026-06-01"},
            "reason": "Wrong agency.",
        },
    )
    index.catch_up()
    row = index.row(case, catch_up=False)
    assert row is not None
    assert row.decision is not None and row.decision["outcome"] == "no-review"
    assert row.decision["occurred_at"] == "2026-05-12"
    assert [r["agency"] for r in row.open_requests] == ["Northshire Police", "Northshire Education"]
    assert_index_matches_fold(ledger, index, [case])
    corrected = {m.seq: m for m in index.milestones(case, catch_up=False)}
    assert corrected[3].corrected and corrected[3].facts["outcome"] == "no-review"
    assert corrected[5].corrected and corrected[5].facts["due"] == "2026-06-01"
    assert corrected[4].facts == {"corrects": f"{case}#3", "changed": ["occurred_at", "outcome"]}


# --- exactly once, crash-safe, concurrent ----------------------------------------------


def test_crash_part_way_leaves_index_and_tracking_consistent(
    ledger: Any, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections.index import summary as index_module
    from projections.index.case_index import CaseIndex

    cases = several_cases(ledger, clock)
    total = ledger.count_events()
    calls = {"n": 0}
    real = index_module.facts_of

    def flaky(record: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 12:  # in the second batch of 7
            raise Boom("the projection failed part-way")
        return real(record)

    monkeypatch.setattr(index_module, "facts_of", flaky)
    index = CaseIndex(ledger, batch_size=7)
    with pytest.raises(Boom):
        index.catch_up()
    assert index.position() == 7
    assert index.backend.count_milestones() == 7
    assert_index_matches_fold(ledger, index, cases, upto=7)

    monkeypatch.setattr(index_module, "facts_of", real)
    fresh = CaseIndex(ledger, batch_size=7)  # as after a restart
    assert fresh.catch_up() == total - 7
    assert fresh.position() == total
    assert fresh.backend.count_milestones() == total
    assert_index_matches_fold(ledger, fresh, cases)


def test_crash_inside_the_transaction_rolls_back_rows_and_tracking(
    ledger: Any, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections.index.case_index import CaseIndex

    cases = several_cases(ledger, clock)
    index = CaseIndex(ledger, batch_size=10)
    backend = index.backend
    real = backend._insert_tracking
    calls = {"n": 0}

    def crash_before_commit(cursor: Any, tracking: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # rows of the third batch are written, then this fails
            raise Boom("killed before commit")
        real(cursor, tracking)

    monkeypatch.setattr(backend, "_insert_tracking", crash_before_commit)
    with pytest.raises(Boom):
        index.catch_up()
    assert index.position() == 20
    assert backend.count_milestones() == 20
    assert_index_matches_fold(ledger, index, cases, upto=20)
    monkeypatch.setattr(backend, "_insert_tracking", real)
    index.catch_up()
    assert backend.count_milestones() == ledger.count_events()
    assert_index_matches_fold(ledger, index, cases)


def test_a_stale_batch_is_dropped(ledger: Any, clock: FixedClock) -> None:
    from projections.index.case_index import CaseIndex

    cases = several_cases(ledger, clock)
    slow, fast = CaseIndex(ledger), CaseIndex(ledger)
    records = list(ledger.iter_records(after=0))
    fast.catch_up()
    # Computed from position 0, but another process has moved on: nothing is written.
    assert slow._apply(0, records) is False
    assert slow.catch_up() == 0
    assert fast.backend.count_milestones() == ledger.count_events()
    assert_index_matches_fold(ledger, slow, cases)


def test_concurrent_catch_ups_apply_each_entry_once(store_url: str, clock: FixedClock) -> None:
    from projections.index.case_index import CaseIndex

    led = open_ledger(store_url, clock)
    cases = several_cases(led, clock, count=12)
    led.close()
    errors: list[BaseException] = []

    def worker() -> None:
        own = open_ledger(store_url, clock)
        try:
            CaseIndex(own, batch_size=3).catch_up()
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    led = open_ledger(store_url, clock)
    try:
        index = CaseIndex(led)
        assert index.position() == led.count_events()
        assert index.backend.count_milestones() == led.count_events()
        assert_index_matches_fold(led, index, cases)
    finally:
        led.close()


# --- the property: index == fold ----------------------------------------------------------


def interrupted_catch_up(index: Any, crash: str, crash_at: int) -> None:
    """Catch up, crashing at the ``crash_at``-th batch: before its transaction
    ("compute") or inside it, just before the commit ("commit")."""
    backend = index.backend
    real_write, real_track = backend.write_batch, backend._insert_tracking
    calls = {"n": 0}

    def write(*args: Any) -> Any:
        calls["n"] += 1
        if crash == "compute" and calls["n"] == crash_at:
            raise Boom
        return real_write(*args)

    def track(*args: Any) -> Any:
        if crash == "commit" and calls["n"] == crash_at:
            raise Boom
        return real_track(*args)

    backend.write_batch, backend._insert_tracking = write, track
    try:
        index.catch_up()
    except Boom:
        pass
    finally:
        backend.write_batch, backend._insert_tracking = real_write, real_track


def test_index_equals_fold_for_random_histories_and_interrupted_catch_ups(
    ledger: Any, clock: FixedClock, store_url: str
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from projections.index.case_index import CaseIndex

    counter = iter(range(1_000_000))
    holder: dict[str, Any] = {"index": CaseIndex(ledger)}
    examples = 40 if store_url.startswith("postgresql") else 80

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def check(data: Any) -> None:
        history = History(data, f"I{next(counter)}")
        for _ in range(data.draw(st.integers(1, 8))):
            record_lines(ledger, *history.command())
            clock.advance(seconds=data.draw(st.integers(1, 5000)))
            if not data.draw(st.booleans()):
                continue
            if data.draw(st.booleans()):  # as if the process restarted
                holder["index"] = CaseIndex(ledger)
            index = holder["index"]
            index.batch_size = data.draw(st.integers(1, 9))
            crash = data.draw(st.sampled_from(["none", "compute", "commit"]))
            interrupted_catch_up(index, crash, data.draw(st.integers(1, 3)))
            assert_index_matches_fold(ledger, index, list(history.cases), upto=index.position())
        index = holder["index"]
        index.catch_up()
        assert index.position() == max(r["position"] for r in ledger.iter_records())
        assert_index_matches_fold(ledger, index, list(history.cases))

    check()
    # Replaying the whole log again gives the identical index.
    index = holder["index"]
    cases = [row.case for row in index.cases()]
    before = [(index.row(c, catch_up=False), index_milestones(index, c)) for c in cases]
    index.rebuild()
    after = [(index.row(c, catch_up=False), index_milestones(index, c)) for c in cases]
    assert after == before


def test_status_of_many_cases_is_answered_without_folding(
    sqlite_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections.fold import case_view
    from projections.queries import cases as queries

    led = open_ledger(sqlite_url, clock)
    lines = []
    for n in range(300):
        case = f"BULK-{n:04d}"
        lines += [referral(case), request(case, "Northshire Police", "2026-05-05")]
    record_lines(led, *lines)

    def no_fold(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("status of every case must not fold")

    monkeypatch.setattr(queries, "fold", no_fold)
    monkeypatch.setattr(case_view, "fold", no_fold)
    rows = queries.statuses(led)
    assert len(rows) == 300
    assert all(r["stage"] == "gathering-information" for r in rows)
    led.close()


def raw_index_text(url: str) -> str:
    """Everything the index tables hold, as text, read around the ledger."""
    if url.startswith("postgresql"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base) as conn:
            parts = []
            for table in ("case_index", "case_milestones", "case_clocks"):
                query = SQL("SELECT t::text FROM {}.{} AS t").format(
                    Identifier(schema), Identifier(table)
                )
                parts += [row[0] for row in conn.execute(query)]
            return "\n".join(parts)
    import sqlite3

    with sqlite3.connect(url) as conn:
        return "\n".join(
            repr(row)
            for table in ("case_index", "case_milestones", "case_clocks")
            for row in conn.execute(f"SELECT * FROM {table}")
        )


def test_encrypted_store_keeps_the_index_sealed(
    store_url: str, cli: Cli, clock: FixedClock, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64
    import os

    from projections.index.case_index import CaseIndex

    key = tmp_path / "store.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("CASELEDGER_KEY_FILE", str(key))
    led = open_ledger(store_url, clock)
    try:
        assert led.encrypted
        led.record_lines(scenario_lines(), led.recorder_for())
        led.enrol(
            "Northshire ICB (lead partner)", ["safeguarding-partner"], led.recorder_for("admin")
        )
        record_lines(
            led,
            {
                "type": "EntryCorrected",
                "case": CASE,
                "corrects": f"{CASE}#6",
                "changes": {"agency": "Northshire Schools Service"},
                "reason": "Renamed.",
            },
            {
                "type": "DecisionDelayed",
                "case": CASE,
                "occurred_at": "2026-03-01",
                "reason": "Westmoor police ask agencies to wait.",
                "expected_by": "2026-03-20",
                "approved_by": "Northshire ICB (lead partner)",
            },
        )
        (row,) = query(cli, store_url, "status")
        assert row == query(cli, store_url, "status", CASE)
        assert row["subject"] == "Child K (RR-2026-004)"
        on = query(cli, store_url, "status", CASE, "--on", "2026-02-24")
        assert [r["agency"] for r in on["open_requests"]] == ["Northshire Schools Service"]
        index = CaseIndex(led)
        by_seq = {m.seq: m for m in index.milestones(CASE)}
        assert by_seq[6].facts["agency"] == "Northshire Schools Service"
        assert by_seq[6].corrected
        assert_index_matches_fold(led, index, [CASE])
        # The clock facts keep the delay (sealed) and give it back in clear.
        facts = index.clock_facts(CASE)[CASE]
        assert facts.delays is not None
        rapid = next(c for c in query(cli, store_url, "clocks") if c["clock"] == "rapid_review")
        # (Recorded after the decision, the delay is listed but does not justify it.)
        late = rapid["delays_recorded_late"]
        assert late and late[0]["approved_by"].startswith("Northshire ICB")
    finally:
        led.close()
    text = raw_index_text(store_url)
    assert "rapid_review" in text  # the clock facts are there, their delays sealed
    assert "RR-2026-004" in text  # references, stages and dates stay in clear
    for secret in ("Northshire", "Child K", "Westmoor", "A. Reviewer"):
        assert secret not in text


# --- the rebuild in SQL ---------------------------------------------------------------------


def stored_index(index: Any) -> tuple[Any, ...]:
    """Every row of the index's tables as stored (text as written), and the tracked
    position."""
    refs = index.backend.indexed_refs()
    snapshot = index.backend.check_snapshot(refs)
    return (
        snapshot.position,
        {case: tuple(row) for case, row in snapshot.rows.items()},
        {case: [m.values() for m in rows] for case, rows in snapshot.milestones.items()},
        dict(snapshot.clocks),
    )


def test_rebuild_in_sql_writes_the_same_index_as_the_fold_in_python(
    ledger: Any, clock: FixedClock, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``reindex`` on SQLite makes the milestone rows in SQL and folds only what the case
    rows need (``CaseIndex.rebuild_in_sql``): for random histories, with corrections,
    spans smaller than a case and summaries dropped between spans, the tables it writes
    are the ones the per-entry fold writes, byte for byte (on PostgreSQL both ways are
    the fold in Python: the test checks the rebuild is repeatable)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from projections.index import case_index as module
    from projections.index.case_index import CaseIndex

    counter = iter(range(1_000_000))

    @settings(
        max_examples=4 if store_url.startswith("postgresql") else 10,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def check(data: Any) -> None:
        history = History(data, f"Q{next(counter)}")
        for _ in range(data.draw(st.integers(1, 4))):
            record_lines(ledger, *history.command())
            clock.advance(seconds=data.draw(st.integers(1, 5000)))
        monkeypatch.setattr(module, "BULK_SPAN", data.draw(st.integers(1, 12)))
        monkeypatch.setattr(module, "CACHE_LIMIT", data.draw(st.integers(1, 4)))
        in_python = CaseIndex(ledger)
        in_python.rebuild_in_sql = False
        in_python.rebuild()
        expected = stored_index(in_python)
        in_sql = CaseIndex(ledger)
        assert in_sql.rebuild() == ledger.count_events()
        assert stored_index(in_sql) == expected
        assert_index_matches_fold(ledger, in_sql, list(history.cases))

    check()
