"""PostgreSQL writers append without a table lock, and whoever follows the log loses
nothing: readers read only the settled prefix (``caseledger_settled_position`` in
ledger/data/pgauthority.sql, ``docs/architecture.md``).

Real PostgreSQL only (the settled position is the database's lock table): writers on
different cases commit at once, out of position order, while a tailing reader catches
up the cross-case index, reads the log and takes Merkle roots.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from ledger.domain.case import case_id
from ledger.integrity.merkle import verify_consistency
from tests.conftest import FixedClock, open_ledger
from tests.test_index import assert_index_matches_fold
from tests.test_read_side import referral, reply, request

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

WAIT = 20.0
"""Seconds a thread may take where it must finish (far above what it needs)."""


def record(led: Any, *lines: dict[str, Any]) -> None:
    led.record_lines([orjson.dumps(x) for x in lines], led.recorder_for())


def positions(led: Any) -> list[tuple[int, str, int]]:
    """``(position, case, seq)`` of every entry of the log, in position order."""
    return [(r["position"], r["case"], r["seq"]) for r in led.iter_records(0)]


def events_tree(led: Any) -> dict[str, Any]:
    """The events tree's size and root, as a checkpoint signs them."""
    from ledger.checkpoints.checkpoint import scan_store

    return dict(scan_store(led).heads()["events"])


def consistent(led: Any, old: dict[str, Any]) -> bool:
    """Whether the store's events tree extends ``old`` (an RFC 9162 consistency proof,
    as ``verify --since`` checks a checkpoint)."""
    from ledger.checkpoints.checkpoint import scan_store

    scan = scan_store(led, [{"events": old}])
    now = scan.heads()["events"]
    proof = scan.proof("events", int(old["size"]))
    return proof is not None and verify_consistency(
        int(old["size"]), int(now["size"]), old["root"], now["root"], proof
    )


@pytest.fixture
def url(pg_url: str) -> str:
    return pg_url


def _connect(url: str) -> psycopg.Connection[Any]:
    base, _, _schema = url.partition("?schema=")
    return psycopg.connect(base)


def test_writers_of_different_cases_lose_nothing_to_a_tailing_reader(
    url: str, clock: FixedClock
) -> None:
    from projections.index.case_index import CaseIndex

    writers, entries = 4, 12
    setup = open_ledger(url, clock)
    record(setup, referral("SET-2026-1"))  # the store, its policy and first enrolment
    setup.close()
    done = threading.Event()
    errors: list[BaseException] = []
    observed: list[int] = []  # every position the reader read, in the order it read them
    trees: list[dict[str, Any]] = []  # events trees taken while the writers ran

    def write(n: int) -> None:
        led = open_ledger(url, clock)
        try:
            case = f"CW-2026-{n}"
            record(led, referral(case))
            for k in range(entries):
                if k % 2:
                    record(led, reply(case, "Northshire Police", "2026-05-06"))
                else:
                    record(led, request(case, "Northshire Police", "2026-05-05"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            led.close()

    def tail() -> None:
        led = open_ledger(url, clock)
        index = CaseIndex(led, batch_size=5)
        try:
            last = 0
            while True:
                finished = done.is_set()  # read before the log: its last pass sees all
                index.catch_up()
                for r in led.iter_records(after=last):
                    observed.append(int(r["position"]))
                    last = int(r["position"])
                if len(trees) < 3 and observed:
                    trees.append(events_tree(led))
                if finished:
                    return
        except BaseException as exc:
            errors.append(exc)
        finally:
            led.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    reader = threading.Thread(target=tail)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    reader.join(timeout=120)
    assert not reader.is_alive() and not any(t.is_alive() for t in threads)
    assert errors == []

    led = open_ledger(url, clock)
    final = positions(led)
    # every committed entry once, each case's in seq order (positions rise with seq)
    assert len(final) == 1 + writers * (1 + entries) == led.count_events()
    for n in range(writers):
        seqs = [seq for _, case, seq in final if case == f"CW-2026-{n}"]
        assert seqs == list(range(1, entries + 2))
    # what the reader read, in its order, is the final log's positions: never one below
    # a position it had read already, none skipped
    assert observed == [p for p, _, _ in final]
    # each tree taken mid-run is a prefix of the final one
    assert trees
    for tree in trees:
        assert consistent(led, tree)
    # the index holds every entry exactly once, as the fold of each case says
    index = CaseIndex(led)
    index.catch_up()
    assert index.position() == final[-1][0]
    assert index.backend.count_milestones() == len(final)
    cases = ["SET-2026-1", *(f"CW-2026-{n}" for n in range(writers))]
    assert_index_matches_fold(led, index, cases)


@pytest.fixture
def blocker(url: str) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    """A connection of the store's owner, to hold a writer's transaction open: it
    inserts, uncommitted, the provenance row a writer will need (the same case and
    seq), so the writer's own provenance insert waits on it after its entry took its
    position.  Rolled back at the end whatever happened."""
    conn = _connect(url)
    schema = url.partition("?schema=")[2]
    try:
        yield conn, schema
    finally:
        conn.rollback()
        conn.close()


def test_an_entry_committed_late_with_a_lower_position_is_not_skipped(
    url: str, clock: FixedClock, blocker: tuple[psycopg.Connection[Any], str]
) -> None:
    from projections.index.case_index import CaseIndex

    conn, schema = blocker
    led = open_ledger(url, clock)
    record(led, referral("LATE-2026-1"), referral("LATE-2026-2"))
    index = CaseIndex(led)
    index.catch_up()
    tree_before = events_tree(led)
    # opened first: opening applies the store's functions and triggers, which waits for
    # the blocker's lock on the provenance table
    a_led, b_led = open_ledger(url, clock), open_ledger(url, clock)
    # A's next entry (LATE-2026-1#2) will wait, after taking its position, on this row
    conn.execute(
        SQL(
            "INSERT INTO {}.caseledger_provenance (originator_id, seq, case_ref, "
            "notification_id, type, actor, role, prev_hash, hash, recorded_at, regime) "
            "VALUES (%s, 2, 'LATE-2026-1', -1, 'x', 'x', 'x', 'x', 'x', now(), 'x')"
        ).format(Identifier(schema)),
        (case_id("LATE-2026-1"),),
    )
    outcome: dict[str, Any] = {}

    def write_a() -> None:
        try:
            record(a_led, request("LATE-2026-1", "Northshire Police", "2026-05-05"))
        except BaseException as exc:
            outcome["a"] = exc

    a = threading.Thread(target=write_a)
    a.start()
    held = _wait_for_position(conn, schema, count=3)  # A's entry has its position n
    assert held is not None, "A never took a position"
    # B, another case, commits while A is open: no table lock orders them
    b = threading.Thread(
        target=lambda: record(b_led, request("LATE-2026-2", "Northshire Police", "2026-05-05"))
    )
    b.start()
    b.join(timeout=10)
    b_committed = not b.is_alive()
    seen: dict[str, Any] = {}

    def read() -> None:
        try:
            index.catch_up()
            seen["positions"] = [r["position"] for r in led.iter_records(0)]
            seen["tree"] = events_tree(led)
        except BaseException as exc:
            seen["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(timeout=WAIT)
    # the reader neither waited for A nor passed A's position: it read up to A's bound
    assert not reader.is_alive(), "the reader waited for an open writer"
    assert "error" not in seen
    held_back = dict(seen)
    conn.rollback()  # A goes on and commits
    a.join(timeout=WAIT)
    b.join(timeout=WAIT)
    assert "a" not in outcome and not a.is_alive()
    assert b_committed, "B waited for A: the writers are serialised"
    assert held_back["positions"] == [p for p, _, _ in positions(led)][:2], (
        "the reader passed an open transaction's position"
    )
    assert held_back["tree"]["size"] == 2
    seen.clear()
    read()
    assert "error" not in seen
    # the index, the log the reader read and its tree now hold A's entry (n) and B's (n+1)
    final = positions(led)
    assert [(c, s) for _, c, s in final[-2:]] == [("LATE-2026-1", 2), ("LATE-2026-2", 2)]
    assert seen["positions"] == [p for p, _, _ in final]
    assert seen["tree"]["size"] == 4
    assert consistent(led, tree_before) and consistent(led, held_back["tree"])
    assert consistent(led, seen["tree"])
    assert index.position() == final[-1][0]
    assert index.backend.count_milestones() == 4
    assert_index_matches_fold(led, index, ["LATE-2026-1", "LATE-2026-2"])


def _wait_for_position(conn: psycopg.Connection[Any], schema: str, count: int) -> int | None:
    """The events sequence's last value once it reaches ``count`` (a position handed out,
    committed or not), or None after :data:`WAIT` seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        with psycopg.connect(conn.info.dsn, autocommit=True) as other:
            row = other.execute(
                SQL("SELECT last_value FROM {}.caseledger_events_notification_id_seq").format(
                    Identifier(schema)
                )
            ).fetchone()
        if row is not None and int(row[0]) >= count:
            return int(row[0])
        time.sleep(0.05)
    return None


def test_the_settled_position_waits_only_for_writers_of_the_log(
    url: str, clock: FixedClock, blocker: tuple[psycopg.Connection[Any], str]
) -> None:
    """An open transaction that appends nothing (here: one that only read the log) does
    not hold the settled position back, and the position is every id handed out."""
    conn, schema = blocker
    led = open_ledger(url, clock)
    record(led, referral("SET-2026-2"), request("SET-2026-2", "Northshire Police", "2026-05-05"))
    conn.execute(SQL("SELECT count(*) FROM {}.caseledger_events").format(Identifier(schema)))
    with _connect(url) as reader:
        reader.autocommit = True
        row = reader.execute(
            SQL("SELECT {}.caseledger_settled_position()").format(Identifier(schema))
        ).fetchone()
    assert row is not None and row[0] == led.count_events() == 2


def _settled(url: str, schema: str) -> int:
    with _connect(url) as reader:
        reader.autocommit = True
        row = reader.execute(
            SQL("SELECT {}.caseledger_settled_position()").format(Identifier(schema))
        ).fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def _held_writer(
    url: str, clock: FixedClock, conn: psycopg.Connection[Any], schema: str, case: str
) -> Iterator[int]:
    """A writer of ``case``'s second entry held open after it took its position (the
    blocker's uncommitted provenance row of that seq stops it): yields the sequence's
    value it saw first (its bound L); committed when the block ends."""
    led = open_ledger(url, clock)
    before = _last_value(conn, schema)
    conn.execute(
        SQL(
            "INSERT INTO {}.caseledger_provenance (originator_id, seq, case_ref, "
            "notification_id, type, actor, role, prev_hash, hash, recorded_at, regime) "
            "VALUES (%s, 2, %s, -1, 'x', 'x', 'x', 'x', 'x', now(), 'x')"
        ).format(Identifier(schema)),
        (case_id(case), case),
    )
    failed: list[BaseException] = []

    def write() -> None:
        try:
            record(led, request(case, "Northshire Police", "2026-05-05"))
        except BaseException as exc:
            failed.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    assert _wait_for_position(conn, schema, count=before + 1) is not None
    try:
        yield before
    finally:
        conn.rollback()
        writer.join(timeout=WAIT)
        led.close()
    assert not failed and not writer.is_alive()


def _last_value(conn: psycopg.Connection[Any], schema: str) -> int:
    with psycopg.connect(conn.info.dsn, autocommit=True) as other:
        row = other.execute(
            SQL("SELECT last_value FROM {}.caseledger_events_notification_id_seq").format(
                Identifier(schema)
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("start", [2**31 - 2, 2**32 - 2, 2**33 + 5])
def test_an_open_writers_bound_is_said_exactly_across_32_bit_boundaries(
    url: str, clock: FixedClock, blocker: tuple[psycopg.Connection[Any], str], start: int
) -> None:
    """The writer says its bound in two 32-bit halves (its low half a negative int4 past
    2**31): the settled position is that bound exactly while it is open, with an entry
    committed above it, and every position once it commits."""
    conn, schema = blocker
    led = open_ledger(url, clock)
    record(led, referral("BIG-2026-1"), referral("BIG-2026-2"))
    with psycopg.connect(conn.info.dsn, autocommit=True) as owner:
        owner.execute(
            SQL("SELECT setval(%s, %s)"),
            (f"{schema}.caseledger_events_notification_id_seq", start),
        )
    with _held_writer(url, clock, conn, schema, "BIG-2026-1") as bound:
        assert bound == start
        record(led, request("BIG-2026-2", "Northshire Police", "2026-05-05"))  # start + 2
        assert _last_value(conn, schema) == start + 2
        assert _settled(url, schema) == start
        assert [(c, s) for _, c, s in positions(led)] == [("BIG-2026-1", 1), ("BIG-2026-2", 1)]
    assert _settled(url, schema) == start + 2
    final = positions(led)
    assert [p for p, _, _ in final[-2:]] == [start + 1, start + 2]


def test_locks_a_user_takes_under_the_bound_keys_never_raise_the_settled_position(
    url: str, clock: FixedClock, blocker: tuple[psycopg.Connection[Any], str]
) -> None:
    """Anyone may take advisory locks: a transaction holding the schema's two keys with
    the largest bound there is cannot move the settled position past an open writer
    (the append takes its own), and one holding a low bound only holds readers back."""
    conn, schema = blocker
    led = open_ledger(url, clock)
    record(led, referral("KEY-2026-1"), referral("KEY-2026-2"))
    keys = conn.execute(SQL("SELECT * FROM {}.caseledger_settle_keys()").format(Identifier(schema)))
    hi, lo = keys.fetchone() or (0, 0)
    with _held_writer(url, clock, conn, schema, "KEY-2026-1") as bound:
        record(led, request("KEY-2026-2", "Northshire Police", "2026-05-05"))
        with psycopg.connect(conn.info.dsn) as forger:
            forger.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", (hi, 2**31 - 1))
            forger.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", (lo, -1))
            assert _settled(url, schema) == bound
            forger.rollback()
    assert _settled(url, schema) == 4
    with psycopg.connect(conn.info.dsn) as laggard:
        laggard.execute("SELECT pg_advisory_xact_lock_shared(%s, 0)", (hi,))
        laggard.execute("SELECT pg_advisory_xact_lock_shared(%s, 1)", (lo,))
        assert _settled(url, schema) == 1
        laggard.rollback()
    assert _settled(url, schema) == 4
