"""Every case's area for ``status --all`` on SQLite, read through the referrals' own index
(``case_referral_areas``: each case's entry 1, by reference, with its ``home_area``), and
the same answers from a store whose writer has not yet made it (read by the index by type
and sorted, as before).  The figures are in ``docs/performance.md`` ("Clock facts in the
index", Session 11)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from projections.index.case_index import CaseIndex
from tests.conftest import FixedClock, open_ledger
from tests.test_clocks import Cli, record, referral

pytestmark = pytest.mark.usefixtures("fixed_today")

AREAS = ("Northshire", "Southmoor", "Eastvale", "West Riding")


def referrals(count: int) -> list[dict[str, Any]]:
    """``count`` cases in an order that is not their references' (so an answer in order
    is sorted, not the recording's), each in one of :data:`AREAS`."""
    out = []
    for n in reversed(range(count)):
        case = referral(f"AR-{n:03d}", f"2026-0{1 + n % 8}-1{n % 10}")
        case["home_area"] = AREAS[n % len(AREAS)]
        out.append(case)
    return out


def _referrals_index(path: str) -> bool:
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'case_referral_areas'"
        ).fetchall()
    return bool(found)


def test_every_case_s_area_comes_through_the_referrals_index_in_reference_order(
    sqlite_url: str, clock: FixedClock, cli: Cli
) -> None:
    record(sqlite_url, clock, referrals(30))
    led = open_ledger(sqlite_url, clock)
    index = CaseIndex(led)  # a writer opens the index: its tables and indexes made
    assert _referrals_index(sqlite_url)
    index.catch_up()
    areas = index.reads.select_home_areas()
    expected = sorted((f"AR-{n:03d}", AREAS[n % len(AREAS)]) for n in range(30))
    assert areas == expected
    with sqlite3.connect(sqlite_url) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT case_ref FROM case_milestones INDEXED BY "
            "case_referral_areas WHERE type = 'CaseReferred' AND seq = 1 ORDER BY case_ref"
        ).fetchall()
    assert "USE TEMP B-TREE" not in str(plan)  # walked in order: nothing left to sort
    before = cli(["--store", sqlite_url, "status", "--all", "--json"]).json()
    assert {row["case"]: row["area"] for row in before} == dict(expected)

    # A store whose writer has not opened it since the index was added, read by a user
    # who may only read it (who cannot make the index): the same answers.
    led.close()
    with sqlite3.connect(sqlite_url) as conn:
        conn.execute("DROP INDEX case_referral_areas")
    read_only = f"file:{sqlite_url}?mode=ro"
    reader = open_ledger(read_only, clock)
    assert CaseIndex(reader).reads.select_home_areas() == expected
    reader.close()
    after = cli(["--store", read_only, "status", "--all", "--json"]).json()
    assert not _referrals_index(sqlite_url)
    assert after == before


def test_the_referrals_index_is_made_for_an_earlier_store_at_its_writer_s_next_open(
    sqlite_url: str, clock: FixedClock
) -> None:
    record(sqlite_url, clock, referrals(5))
    led = open_ledger(sqlite_url, clock)
    CaseIndex(led).catch_up()
    led.close()
    with sqlite3.connect(sqlite_url) as conn:
        conn.execute("DROP INDEX case_referral_areas")
    record(sqlite_url, clock, referrals(6)[:1])  # the newest case, AR-005
    assert not _referrals_index(sqlite_url)  # recording alone does not open the index
    led = open_ledger(sqlite_url, clock)
    index = CaseIndex(led)
    assert _referrals_index(sqlite_url)
    index.catch_up()
    assert [case for case, _ in index.reads.select_home_areas()] == [
        f"AR-{n:03d}" for n in range(6)
    ]
