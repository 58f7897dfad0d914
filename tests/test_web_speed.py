"""The faster readings the web desk and clocks pages use (issue 17 part 6) give the same
answers as the full ones, never timed here (``python -m bench.web`` times them).

* ``status`` of the open cases read in the index's query (``open_only``: the closed
  cases' rows, areas and clock facts are not read) equals every case's ``status`` with
  the closed ones dropped afterwards, and each open case folded;
* ``clock_table`` of one regime (only that regime's clock facts read) equals every
  case's clocks filtered by regime afterwards;
* both on SQLite and PostgreSQL, and for a reader of an SQLite store that may only be
  read, whose index lags behind (the entries beyond it folded in memory: a case closed
  and one reopened to new entries in the tail).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from projections import api
from projections.queries import cases as queries
from projections.queries.cases import arrange_statuses
from tests.conftest import FixedClock, open_ledger
from tests.test_clocks import _random_cases, record

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

NOW = datetime(2026, 9, 2, 12, tzinfo=UTC)
ON = NOW.date().isoformat()
REGIMES = ("wt2015", "wt2018", "wt2023")


def closures(events: list[dict[str, Any]], every: int) -> list[dict[str, Any]]:
    """A ``CaseClosed`` for every ``every``-th case of ``events``, after its last entry."""
    last: dict[str, date] = {}
    for e in events:
        day = date.fromisoformat(str(e["occurred_at"])[:10])
        last[e["case"]] = max(day, last.get(e["case"], day))
    return [
        {
            "type": "CaseClosed",
            "case": case,
            "occurred_at": (day + timedelta(days=1)).isoformat(),
            "reason": "Work complete.",
        }
        for n, (case, day) in enumerate(sorted(last.items()))
        if n % every == 0
    ]


def folded_open(led: Any) -> list[dict[str, Any]]:
    """``status`` of each case folded, the closed ones left out, in urgency order."""
    rows = [queries.status(led, case, now=NOW) for case in sorted(led.case_refs())]
    return arrange_statuses(rows)


def assert_fast_readings_agree(led: Any) -> None:
    """Open-only ``status`` and one regime's ``clock_table`` equal the full readings."""
    full = queries.statuses(led, now=NOW)
    fast = queries.statuses(led, now=NOW, open_only=True)
    assert any(r["stage"] == "closed" for r in full)
    assert all(r["stage"] != "closed" for r in fast)
    assert arrange_statuses(fast) == arrange_statuses(full) == folded_open(led)
    every = api.clocks(led, on=ON).shown
    for regime in REGIMES:
        table = api.clock_table(led, regime=regime, on=ON)
        assert table.rows == tuple(s for s in every if s.regime == regime)
        assert table.rows, regime
        for status in ("met", "overdue"):
            only = api.clock_table(led, regime=regime, on=ON, status=[status])
            assert only.rows == tuple(s for s in table.rows if s.status == status)


def test_open_only_and_one_regime_answer_as_every_case_does(
    store_url: str, clock: FixedClock
) -> None:
    events = _random_cases(23, 36)
    clock.now = datetime(2026, 8, 31, 12, tzinfo=UTC)
    record(store_url, clock, [*events, *closures(events, 3)])
    led = open_ledger(store_url, clock)
    assert_fast_readings_agree(led)
    led.close()


def test_a_reader_whose_index_lags_behind_agrees(sqlite_url: str, clock: FixedClock) -> None:
    events = _random_cases(29, 24)
    clock.now = datetime(2026, 8, 31, 12, tzinfo=UTC)
    record(sqlite_url, clock, [*events, *closures(events, 4)])
    owner = open_ledger(sqlite_url, clock)
    queries.statuses(owner, now=NOW)  # the index caught up and its clock facts kept
    owner.close()
    # The tail the reader folds in memory: an open case closed, another one's entry.
    cases = sorted({e["case"] for e in events})
    clock.now = datetime(2026, 9, 1, 12, tzinfo=UTC)
    record(
        sqlite_url,
        clock,
        [
            {"type": "CaseClosed", "case": cases[1], "occurred_at": "2026-09-01",
             "reason": "Merged with another case."},
            {"type": "ContextRecorded", "case": cases[2], "occurred_at": "2026-09-01",
             "topic": "other", "summary": "More context."},
        ],
    )  # fmt: skip
    reader = open_ledger(f"file:{sqlite_url}?mode=ro", clock)
    assert_fast_readings_agree(reader)
    fast = queries.statuses(reader, now=NOW, open_only=True)
    assert cases[1] not in {r["case"] for r in fast}
    assert cases[2] in {r["case"] for r in fast}
    reader.close()


def test_kept_clock_states_follow_a_local_rules_file(
    sqlite_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """The clock states kept between questions are never the answer under other rules:
    with a local file that shortens wt2023's notification clock, every case's clocks
    (asked after the shipped packs' answer was kept) equal each case folded with it."""
    events = _random_cases(31, 30)
    clock.now = datetime(2026, 8, 31, 12, tzinfo=UTC)
    record(sqlite_url, clock, events)
    led = open_ledger(sqlite_url, clock)
    rules = tmp_path / "local-rules.toml"
    rules.write_text(LOCAL_NOTIFICATION, encoding="utf-8")
    shipped = api.clock_table(led, regime="wt2023", on=ON).rows  # kept
    local = api.clocks(led, on=ON, rules=rules).shown
    folded = tuple(
        s
        for case in sorted(led.case_refs())
        for s in api.clocks(led, case, on=ON, rules=rules).shown
    )
    assert local == folded
    ours = tuple(s for s in local if s.regime == "wt2023")
    assert [s.due for s in ours if s.clock == "notification"] != [
        s.due for s in shipped if s.clock == "notification"
    ]
    assert api.clock_table(led, regime="wt2023", on=ON).rows == shipped  # the shipped again
    led.close()


#: A local rules file: wt2023's notification clock in 1 working day, not 5.
LOCAL_NOTIFICATION = """
[[clocks]]
regime = "wt2023"
name = "notification"
title = "Serious incident notified to the national panel"
label = "notification"
start = { event = "CaseReferred", field = "aware_date" }
end = { event = "IncidentNotified", where = { field = "recipients", contains = "national-panel" } }
limit = 1
unit = "working_days"
source = "A local procedure (check)"
effective_from = 2000-01-01
"""
