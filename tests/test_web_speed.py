"""The faster readings the web desk and clocks pages use (issue 17 part 6) give the same
answers as the full ones, never timed here (``python -m bench.web`` times them).

* ``status`` of the open cases read in the index's query (``open_only``: the closed
  cases' rows, areas and clock facts are not read) equals every case's ``status`` with
  the closed ones dropped afterwards, and each open case folded;
* ``clock_table`` of one regime (only that regime's clock facts read) equals every
  case's clocks filtered by regime afterwards;
* both on SQLite and PostgreSQL, and for a reader of an SQLite store that may only be
  read, whose index lags behind (the entries beyond it folded in memory: a case closed
  and one reopened to new entries in the tail);
* the pages of ``status``, ``due`` and ``clock_table`` (``page``, ``per_page``), put end
  to end, are the whole answer in its order, and the clocks' counts are every page's;
* the register's fold kept by its last position (``register_state``) follows what
  another process appends: enrolling, re-enrolling and removing a reader between two
  facade calls of one long-lived ledger changes what the second call answers, on both
  stores, and on PostgreSQL each database role reads its own.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import api as ledger_api
from ledger.application import register as register_module
from ledger.errors import UsageError
from projections import api
from projections.queries import cases as queries
from projections.queries.cases import arrange_statuses
from tests.conftest import FixedClock, open_ledger
from tests.test_clocks import _random_cases, record
from tests.test_visibility import CASE, OTHER, POLICE, scoped_store  # noqa: F401
from tests.test_web_forms import People

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
    assert_pages_agree(led, per_page=4)


def assert_pages_agree(led: Any, per_page: int) -> None:
    """The pages of ``status``, ``due`` and ``clock_table``, end to end, are the whole
    answers (as read from this store, whatever its kind)."""
    for ask, rows_of in (
        (lambda **k: api.status(led, sort="urgency", on=ON, **k), lambda r: r.rows),
        (lambda **k: api.due(led, on=ON, **k), lambda r: r.deadlines),
        (lambda **k: api.clock_table(led, on=ON, **k), lambda r: r.rows),
    ):
        whole = list(rows_of(ask()))
        paged, _ = pages(
            lambda n, k, ask=ask, rows_of=rows_of: (lambda r: (rows_of(r), r.paging))(
                ask(page=n, per_page=k)
            ),
            per_page,
        )
        assert paged == whole and len(whole) > per_page


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


def test_kept_clock_facts_follow_what_is_recorded_since(store_url: str, clock: FixedClock) -> None:
    """A server's ledger stays open and keeps every case's clock facts by the index's
    position: a case recorded by another writer between two questions is in the next
    answer, which equals a newly opened ledger's; asked again with nothing recorded, the
    kept answer is the same."""
    events = _random_cases(37, 30)
    later = sorted({e["case"] for e in events})[-1]
    clock.now = datetime(2026, 8, 31, 12, tzinfo=UTC)
    record(store_url, clock, [e for e in events if e["case"] != later])
    server = open_ledger(store_url, clock)
    before = api.clock_table(server, on=ON).rows
    assert before and later not in {s.case for s in before}
    assert api.clock_table(server, on=ON).rows == before  # kept: the same answer
    record(store_url, clock, [e for e in events if e["case"] == later])  # another writer
    after = api.clock_table(server, on=ON).rows
    fresh = open_ledger(store_url, clock)
    assert after == api.clock_table(fresh, on=ON).rows
    assert later in {s.case for s in after}
    fresh.close()
    server.close()


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


def pages(ask: Any, per_page: int) -> tuple[list[Any], list[Any]]:
    """Every page of ``ask(page, per_page)`` (a paged report's rows and its paging) from
    the first to the last, end to end; and the paging of each page."""
    rows: list[Any] = []
    seen: list[Any] = []
    page: int | None = 1
    while page is not None:
        got, paging = ask(page, per_page)
        assert paging.page == page and len(got) <= per_page
        assert paging.first == (len(rows) + 1 if got else 0)
        rows.extend(got)
        seen.append(paging)
        page = paging.next_page
    assert len(rows) == seen[-1].total and len(seen) == seen[-1].pages
    return rows, seen


@pytest.fixture(scope="module")
def paged_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store of 40 random cases, a third of them closed (recorded once)."""
    url = str(tmp_path_factory.mktemp("paged") / "ledger.db")
    events = _random_cases(37, 40)
    clock = FixedClock(datetime(2026, 8, 31, 12, tzinfo=UTC))
    record(url, clock, [*events, *closures(events, 3)])
    return url


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(per_page=st.integers(1, 60), regime=st.sampled_from([None, *REGIMES]))
def test_the_pages_end_to_end_are_the_whole_answer(
    paged_store: str, per_page: int, regime: str | None
) -> None:
    led = open_ledger(paged_store, FixedClock(NOW))
    status = api.status(led, sort="urgency", on=ON)
    rows, _ = pages(
        lambda n, k: (lambda r: (r.rows, r.paging))(
            api.status(led, sort="urgency", on=ON, page=n, per_page=k)
        ),
        per_page,
    )
    assert rows == list(status.rows) and len(rows) > 1
    due = api.due(led, on=ON)
    deadlines, _ = pages(
        lambda n, k: (lambda r: (r.deadlines, r.paging))(api.due(led, on=ON, page=n, per_page=k)),
        per_page,
    )
    assert deadlines == list(due.deadlines)
    table = api.clock_table(led, regime=regime, on=ON)
    clocks, seen = pages(
        lambda n, k: (lambda r: (r.rows, r.paging))(
            api.clock_table(led, regime=regime, on=ON, page=n, per_page=k)
        ),
        per_page,
    )
    assert clocks == list(table.rows)
    every = api.clock_table(led, regime=regime, on=ON, page=seen[-1].pages, per_page=per_page)
    assert every.counts() == table.counts()  # the chart's counts are every page's
    counted: dict[str, dict[str, int]] = {}
    for state in table.rows:  # in the order first met, as the chart lists them
        by_status = counted.setdefault(state.clock, {})
        by_status[state.status] = by_status.get(state.status, 0) + 1
    assert table.counts() == list(counted.items())
    past = api.clock_table(led, regime=regime, on=ON, page=seen[-1].pages + 1, per_page=per_page)
    assert past.rows == () and past.paging is not None and past.paging.next_page is None
    assert past.paging.previous_page == seen[-1].pages
    led.close()


@pytest.mark.parametrize(
    ("asked", "field"),
    [
        ({"page": 0}, "page"),
        ({"page": -2}, "page"),
        ({"page": True}, "page"),
        ({"page": "2"}, "page"),
        ({"page": 1, "per_page": 0}, "per_page"),
        ({"page": 1, "per_page": 100_000}, "per_page"),
    ],
)
def test_a_bad_page_is_named_before_the_store_is_opened(asked: dict[str, Any], field: str) -> None:
    def never() -> Any:
        raise AssertionError("the store was opened")

    for ask in (api.status, api.due, api.clock_table):
        with pytest.raises(UsageError) as refused:
            ask(never, **asked)
        assert refused.value.field == field


OTHER_PROCESS = """
import sys
from ledger import api
led = api.open_store(sys.argv[1])
name, roles, agency = sys.argv[2], sys.argv[3], sys.argv[4] or None
if roles:
    api.add_user(led, name, role=roles.split(","), agency=agency)
else:
    api.remove_user(led, name, reason="Left the partnership.")
led.close()
"""


def in_another_process(url: str, name: str, roles: str = "", agency: str = "") -> None:
    """Enrol ``name`` with ``roles`` (removed: no roles) in a process of its own."""
    subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, url, name, roles, agency],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize("most_roles", [256, 1])
def test_the_kept_register_follows_another_processs_appends(
    scoped_store: tuple[str, People],  # noqa: F811
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    most_roles: int,
) -> None:
    """A server's ledger stays open; between its facade calls another process changes
    the police user's enrolment, and the next call answers by the register as it then
    stands (a kept fold of the register before would answer the police wrongly).  With
    room for one role's fold only, each other role starts again, and answers the same."""
    monkeypatch.setattr(register_module, "MOST_KEPT_ROLES", most_roles)
    store_url, people = scoped_store
    server = open_ledger(people.server_url, clock)  # on PostgreSQL: a login of no grants
    police = people.police

    def refs() -> set[str]:
        with ledger_api.acting_as(server, police):
            return {row["case"] for row in api.status(server, include_closed=True).rows}

    assert refs() == {CASE}  # enrolled as an agency: their own case only
    in_another_process(store_url, police, "inspector")
    assert refs() == {CASE, OTHER}  # an inspector reads every case
    in_another_process(store_url, police, "agency", POLICE)
    assert refs() == {CASE}
    with ledger_api.acting_as(server, people.inspector):
        assert {row["case"] for row in api.status(server, include_closed=True).rows} == {
            CASE,
            OTHER,
        }
    in_another_process(store_url, police)  # removed: not narrowed by the policy any more
    with ledger_api.acting_as(server, police):
        assert police not in server.register_state().users
    assert police not in open_ledger(store_url, clock).register_state().users
    if store_url.startswith("postgresql://"):
        # the server's own login may not read the register: each call asks the database
        # as the role it acts for, so it is refused, never answered from the fold the
        # police's or the inspector's role read
        with pytest.raises(Exception, match="permission denied"):
            server.register_state()


def test_a_kept_register_is_a_copy_each_call(sqlite_url: str, clock: FixedClock) -> None:
    """Changing the state one call returned changes nothing the next call returns."""
    led = open_ledger(sqlite_url, clock)
    led.record_lines(
        [b'{"type":"CaseReferred","case":"RR-2026-001","occurred_at":"2026-08-03",'
         b'"regime":"wt2023","subject":"Child A","incident_date":"2026-08-01",'
         b'"aware_date":"2026-08-03","harm":"serious-harm","abuse_or_neglect":"suspected",'
         b'"looked_after":false,"home_area":"Northshire","referrer":"Northshire Police",'
         b'"route":"statutory","summary":"A referral."}'],
        led.recorder_for(),
    )  # fmt: skip
    first = led.register_state()
    before = dict(first.users)
    first.users.clear()
    first.erasures.append({"case": "RR-2026-001"})
    again = led.register_state()
    assert again.users == before and again.erasures == []
