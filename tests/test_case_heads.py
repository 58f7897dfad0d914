"""Each case's head (the state its next entry is checked against: a head row written in
the write's own transaction on SQLite, and the state a process kept after its own
write on either store) stays the chain's: after every write, when another writer wins a
race, after a write rolled back, and when the head row in the user's own file is forged
(the row is then set aside and the case loaded from its chain, never trusted)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.application import Recorder
from ledger.application import writes as writes_module
from ledger.application.reading import SNAPSHOT_FIELDS, LedgerReads
from ledger.domain.case import case_id
from ledger.errors import ConflictError, InputError
from tests.conftest import open_ledger, scenario_lines
from tests.test_record_replay import StepClock

CASE = "RR-2026-004"
CLOSE = {"type": "CaseClosed", "case": CASE, "occurred_at": "2026-08-30", "reason": "Done."}


def note(summary: str) -> bytes:
    line = {"type": "ContextRecorded", "case": CASE, "topic": "other", "summary": summary}
    return orjson.dumps(line)


def ledger_at(url: str) -> Any:
    clock = StepClock()
    clock.now = datetime.fromisoformat("2026-11-30T09:00:00+00:00")
    return open_ledger(url, clock)


def writer(led: Any, url: str) -> Recorder:
    actor = led.identity() if url.startswith("postgresql") else "heads.recorder"
    return Recorder(actor, "business-unit")


def folded(led: Any) -> dict[str, Any]:
    """The case as its chain gives it (snapshot and replay, no head)."""
    case = LedgerReads._load_case(led, CASE)
    return {name: getattr(case, name) for name in SNAPSHOT_FIELDS} | {"version": case.version}


def at_head(led: Any) -> dict[str, Any] | None:
    case = led._case_at_head(CASE)
    if case is None:
        return None
    return {name: getattr(case, name) for name in SNAPSHOT_FIELDS} | {"version": case.version}


def on_sqlite(url: str, value: Any) -> Any:
    """What only an SQLite store has (a head row), None on PostgreSQL."""
    return None if url.startswith("postgresql") else value


def head_row(path: Path) -> tuple[int, dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT version, state FROM case_heads WHERE originator_id=?", (case_id(CASE).hex,)
        ).fetchone()
    return int(row[0]), orjson.loads(row[1])


def assert_chained(led: Any) -> None:
    """Every entry follows the one before it, and the store verifies."""
    records = led.case_records(CASE)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    for before, after in itertools.pairwise(records):
        assert after["prev_hash"] == before["hash"]
    assert led.verify().ok


def test_the_head_is_the_chain_after_every_write(store_url: str) -> None:
    led = ledger_at(store_url)
    who = writer(led, store_url)
    lines = scenario_lines()
    led.record_lines(lines[:10], who)
    assert at_head(led) == folded(led)
    led.record_lines(lines[10:], who)
    assert at_head(led) == folded(led)
    fresh = ledger_at(store_url)  # another process: no state kept, the head row (SQLite)
    assert at_head(fresh) == on_sqlite(store_url, folded(led))
    if not store_url.startswith("postgresql"):
        version, state = head_row(Path(store_url))
        assert version == len(lines)
        assert {**state, "version": version} == folded(led)


def test_a_lost_race_leaves_every_head_on_the_chain(store_url: str) -> None:
    """A writer whose state was kept loses a race to another (who records just before
    its commit): its retry, its next write and the other's next write each follow the
    entry before them; the heads are the chain's."""
    led = ledger_at(store_url)
    who = writer(led, store_url)
    led.record_lines(scenario_lines()[:5], who)
    other = ledger_at(store_url)
    other.record_lines([note("The other writer's first.")], who)  # other keeps its state
    raced: list[int] = []

    def progress(what: str, done: int, total: int | None) -> None:
        if what == "saving" and done == 0 and not raced:
            raced.append(len(other.record_lines([note("Meanwhile.")], who)))

    receipts = led.record_lines([note("Mine, retried.")], who, progress=progress)
    assert raced == [1] and [r.ref for r in receipts] == [f"{CASE}#8"]
    assert at_head(led) == folded(led)
    assert other._kept_case(case_id(CASE)) is None  # what it kept is behind the chain
    assert at_head(other) == on_sqlite(store_url, folded(led))  # the head row, if any
    other.record_lines([note("The other writer's next.")], who)
    led.record_lines([note("Mine, next.")], who)
    assert [r["summary"] for r in led.case_records(CASE)[5:]] == [
        "The other writer's first.",
        "Meanwhile.",
        "Mine, retried.",
        "The other writer's next.",
        "Mine, next.",
    ]
    assert_chained(led)
    assert at_head(led) == folded(led)


def test_a_rolled_back_write_leaves_the_heads_as_they_were(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that loses every race rolls back: neither its kept state nor (SQLite) a
    head row of it remains; the next write follows the winner's last entry."""
    monkeypatch.setattr(writes_module, "MAX_ATTEMPTS", 2)
    led = ledger_at(store_url)
    who = writer(led, store_url)
    led.record_lines(scenario_lines()[:5], who)
    other = ledger_at(store_url)

    def progress(what: str, done: int, total: int | None) -> None:
        if what == "saving" and done == 0:
            other.record_lines([note("The winner's.")], who)

    with pytest.raises(ConflictError):
        led.record_lines([note("Rolled back.")], who, progress=progress)
    assert len(led.case_records(CASE)) == 7  # the winner's two, none of the loser's
    assert led._kept_case(case_id(CASE)) is None  # what it kept is behind the chain
    assert at_head(led) == on_sqlite(store_url, folded(led))  # the winner's head row
    assert at_head(other) == folded(led)
    if not store_url.startswith("postgresql"):
        assert {**head_row(Path(store_url))[1], "version": 7} == folded(led)
    led.record_lines([note("After.")], who)
    assert [r["summary"] for r in led.case_records(CASE)[5:]] == [
        "The winner's.",
        "The winner's.",
        "After.",
    ]
    assert_chained(led)


def _forge(path: Path, change: Callable[[int, dict[str, Any]], tuple[int, Any]]) -> None:
    version, state = head_row(path)
    new_version, new_state = change(version, state)
    raw = new_state if isinstance(new_state, bytes) else orjson.dumps(new_state)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE case_heads SET version=?, state=? WHERE originator_id=?",
            (new_version, raw, case_id(CASE).hex),
        )


def _stale(records: list[dict[str, Any]]) -> Callable[[int, dict[str, Any]], tuple[int, Any]]:
    """The head as it stood one entry earlier: a write trusting it would fork the chain."""

    def change(version: int, state: dict[str, Any]) -> tuple[int, Any]:
        before = records[-2]
        types = state["types"][:-1]
        return version - 1, {
            **state,
            "types": types,
            "head_hash": before["hash"],
            "last_recorded_at": before["recorded_at"],
        }

    return change


FORGERIES: dict[str, Callable[[list[dict[str, Any]]], Callable[..., tuple[int, Any]]]] = {
    "stale": _stale,
    "ahead": lambda records: lambda v, s: (v + 3, {**s, "types": s["types"] + ["X"] * 3}),
    "hash": lambda records: lambda v, s: (v, {**s, "head_hash": "0" * 64}),
    "recorded_at": lambda records: (
        lambda v, s: (
            v,
            {**s, "last_recorded_at": "2026-11-30T09:00:00.000000Z"},
        )
    ),
    "reopened": lambda records: lambda v, s: (v, {**s, "closed": False}),
    "regime": lambda records: lambda v, s: (v, {**s, "regime": "lcspr"}),
    "incident": lambda records: lambda v, s: (v, {**s, "incident_date": "2026-01-01"}),
    "case": lambda records: lambda v, s: (v, {**s, "ref": "RR-2026-999"}),
    "types": lambda records: lambda v, s: (v, {**s, "types": ["ContextRecorded"] * v}),
    "keys": lambda records: lambda v, s: (v, {**s, "admin": True}),
    "garbage": lambda records: lambda v, s: (v, b"\x00not json"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_head_row_is_set_aside_for_the_chain(sqlite_url: str, forgery: str) -> None:
    """The head row is in the user's file: one changed to say anything the chain does
    not (an earlier or later entry, another hash or time, the case reopened, another
    regime, incident date, case or types, keys of its own, bytes that are no state) is
    never used; the case is loaded from its chain, a closed case still refuses the
    entry in the same words, and the next write follows the true last entry (and
    writes the head row right again)."""
    led = ledger_at(sqlite_url)
    who = writer(led, sqlite_url)
    led.record_lines([*scenario_lines(), orjson.dumps(CLOSE)], who)
    records = led.case_records(CASE)
    truth = folded(led)
    _forge(Path(sqlite_url), FORGERIES[forgery](records))
    fresh = ledger_at(sqlite_url)  # another process: only the head row to go on
    assert at_head(fresh) is None
    with pytest.raises(InputError, match=f"case {CASE} is closed; only corrections"):
        fresh.record_lines([note("After the closing.")], who)
    correction = {
        "type": "EntryCorrected",
        "case": CASE,
        "corrects": f"{CASE}#7",
        "changes": {"summary": "Corrected after the closing."},
        "reason": "A typing error.",
    }
    [receipt] = fresh.record_lines([orjson.dumps(correction)], who)
    assert receipt.ref == f"{CASE}#{len(records) + 1}"
    stored = fresh.case_records(CASE)[-1]
    assert stored["prev_hash"] == records[-1]["hash"]
    assert_chained(fresh)
    assert folded(fresh)["version"] == truth["version"] + 1
    assert {**head_row(Path(sqlite_url))[1], "version": len(records) + 1} == folded(fresh)
    assert at_head(ledger_at(sqlite_url)) == folded(fresh)


def test_a_store_without_head_rows_opens_read_only_and_gains_them(sqlite_url: str) -> None:
    """A store made before head rows (no table for them) opens read-only as before, and
    its next write creates the table and the case's row with the entry."""
    led = ledger_at(sqlite_url)
    who = writer(led, sqlite_url)
    led.record_lines(scenario_lines()[:5], who)
    led.close()
    with sqlite3.connect(sqlite_url) as conn:
        conn.execute("DROP TABLE case_heads")
    reader = open_ledger(f"file:{sqlite_url}?mode=ro")
    assert len(reader.case_records(CASE)) == 5
    assert reader._case_at_head(CASE) is None
    writer_ledger = ledger_at(sqlite_url)
    writer_ledger.record_lines([note("The first write since.")], who)
    assert head_row(Path(sqlite_url))[0] == 6
    assert at_head(ledger_at(sqlite_url)) == folded(writer_ledger)
    assert_chained(writer_ledger)


def test_a_new_case_is_known_new_from_the_read_of_its_head(sqlite_url: str) -> None:
    """On SQLite the read of a case's head also says when no entry of it is stored, so a
    new case's referral is checked without reading its snapshots and entries; a case
    whose entries are stored without a head row is loaded from its chain, never taken
    for a new one (its next entry follows its last)."""
    led = ledger_at(sqlite_url)
    who = writer(led, sqlite_url)
    led.record_lines(scenario_lines()[:5], who)
    assert led._case_at_head("RR-2026-999") is False  # none of its entries is stored
    assert at_head(led) == folded(led)
    led.close()
    with sqlite3.connect(sqlite_url) as conn:
        conn.execute("DELETE FROM case_heads WHERE originator_id=?", (case_id(CASE).hex,))
    again = ledger_at(sqlite_url)
    assert again._case_at_head(CASE) is None
    again.record_lines([note("Written after the head row went.")], who)
    records = again.case_records(CASE)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert head_row(Path(sqlite_url))[0] == 6
    assert_chained(again)
