"""``reindex`` on a clear SQLite store (``CaseIndex._rebuild_in_sql``): each stored entry is
parsed once by a Python function SQLite calls, which folds it and gives its milestone
columns; a failure there is raised as itself, and a case whose summary was dropped from
the cache is always loaded again before it is folded further."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import FixedClock, open_ledger
from tests.test_index import (
    Boom,
    assert_index_matches_fold,
    record_lines,
    several_cases,
    stored_index,
)
from tests.test_read_side import decision, referral, reply, request

pytestmark = pytest.mark.usefixtures("fixed_today")


@pytest.fixture
def ledger(sqlite_url: str, clock: FixedClock) -> Iterator[Any]:
    led = open_ledger(sqlite_url, clock)
    yield led
    led.close()


def test_a_failure_while_sqlite_makes_the_rows_is_raised_as_itself_and_keeps_the_spans_before(
    ledger: Any, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite reports only that a function failed; the rebuild raises what the fold
    raised, and what it committed (the spans before) is consistent with the fold."""
    from projections.index import case_index as module
    from projections.index.case_index import CaseIndex

    cases = several_cases(ledger, clock)
    total = ledger.count_events()
    real = module.facts_of
    calls = {"n": 0}

    def flaky(record: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 12:  # in the second span of 7
            raise Boom("the fold failed part-way")
        return real(record)

    monkeypatch.setattr(module, "BULK_SPAN", 7)
    monkeypatch.setattr(module, "facts_of", flaky)
    index = CaseIndex(ledger)
    with pytest.raises(Boom):
        index.rebuild()
    assert index.position() == 7
    assert index.backend.count_milestones() == 7
    assert_index_matches_fold(ledger, index, cases, upto=7)

    monkeypatch.setattr(module, "facts_of", real)
    fresh = CaseIndex(ledger)
    assert fresh.rebuild() == total
    assert fresh.position() == total
    assert_index_matches_fold(ledger, fresh, cases)


def test_a_case_met_again_under_another_originator_id_is_loaded_before_it_is_folded(
    ledger: Any, clock: FixedClock, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A span loads the dropped summaries of the cases it meets by their stored
    ``originator_id`` alone; an entry of a case stored under another id (a store written
    otherwise) is not found that way, so the span is done again with the case loaded:
    the tables equal the per-entry fold's (which reads the log in order, whatever the
    ids), never a case row folded from half its entries."""
    import sqlite3

    from projections.index import case_index as module
    from projections.index.case_index import CaseIndex

    first, second = "SCR-2026-301", "SCR-2026-302"
    record_lines(ledger, referral(first), request(first, "Northshire Police", "2026-05-05"))
    clock.advance(minutes=1)
    record_lines(ledger, referral(second), request(second, "Westmoor ICB", "2026-05-05"))
    clock.advance(minutes=1)
    record_lines(
        ledger,
        reply(first, "Northshire Police", "2026-05-06"),
        decision(first, "review", "2026-05-10"),
    )
    with sqlite3.connect(sqlite_url) as raw:
        # The first case's last two entries, stored under an id of their own.
        raw.execute("UPDATE stored_events SET originator_id=? WHERE rowid > 4", (uuid.uuid4().hex,))
    monkeypatch.setattr(module, "BULK_SPAN", 2)
    monkeypatch.setattr(module, "CACHE_LIMIT", 1)
    in_python = CaseIndex(ledger)
    in_python.rebuild_in_sql = False
    in_python.rebuild()
    expected = stored_index(in_python)

    in_sql = CaseIndex(ledger)
    spans = {"n": 0}
    bulk_batch = in_sql.backend.bulk_batch

    def counted(*args: Any) -> Any:
        spans["n"] += 1
        return bulk_batch(*args)

    monkeypatch.setattr(in_sql.backend, "bulk_batch", counted)
    assert in_sql.rebuild() == 6
    assert spans["n"] == 4  # three spans, the last done twice
    assert stored_index(in_sql) == expected
    assert in_sql.row(first, catch_up=False).entries == 4


def test_the_fold_sqlite_calls_refuses_entries_out_of_order_and_columns_of_another_row(
    ledger: Any, clock: FixedClock
) -> None:
    """The rebuild in SQL relies on SQLite handing the entries over in position order and
    computing a row's columns after its first: the fold checks both, so a change in how
    SQLite evaluates the statement fails the rebuild instead of writing wrong rows."""
    from projections.index.case_index import CaseIndex, _Met, _SpanFold

    several_cases(ledger, clock)
    entries = list(ledger.ledger_recorder.iter_states(0))[:2]
    fold = _SpanFold(CaseIndex(ledger), 0, _Met())
    (first, first_state), (second, second_state) = entries
    origin = str(uuid.uuid4())
    fold.entry(second, origin, "CaseReferred", second_state)
    assert fold.column(second, 1) == orjson.loads(second_state)["seq"]
    with pytest.raises(RuntimeError, match="columns"):
        fold.column(first, 1)
    with pytest.raises(RuntimeError, match="after"):
        fold.entry(first, origin, "CaseReferred", first_state)
