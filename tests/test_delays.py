"""``caseledger delays``: intervals between entry types through the real CLI, both stores.

Expected day counts are worked out by hand (England and Wales bank holidays); the
scenario's are those of ``shared/scenarios/README.md``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.catalogue.models import EVENT_TYPES
from projections.assess.calendar import Calendar
from projections.queries.delays import (
    CSV_COLUMNS,
    Interval,
    filter_over,
    interval_between,
    nearest_rank,
    summarise,
)
from tests.conftest import CliResult, FixedClock, open_ledger, scenario_lines
from tests.test_clocks import decided, event, notified, ok, record, referral

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

CASE = "RR-2026-004"
Cli = Callable[..., CliResult]
CONTRACT_KEYS = ("case", "from_ref", "to_ref", "from", "to", "calendar_days", "working_days")


def delays(cli: Cli, url: str, *args: str) -> list[dict[str, Any]]:
    rows = ok(cli, url, "delays", *args)
    assert isinstance(rows, list)
    for row in rows:
        assert tuple(row)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS
    return rows


# --- the scenario -----------------------------------------------------------------------


@pytest.mark.parametrize("scope", [[], ["--case", CASE]])
def test_scenario_delays(scenario_store: str, cli: Cli, scope: list[str]) -> None:
    rows = delays(cli, scenario_store, "--from", "IncidentNotified", "--to", "DecisionMade", *scope)
    assert [{k: r[k] for k in CONTRACT_KEYS} for r in rows] == [
        {
            "case": CASE,
            "from_ref": f"{CASE}#2",
            "to_ref": f"{CASE}#19",
            "from": "2026-02-13",
            "to": "2026-03-06",
            "calendar_days": 21,
            "working_days": 15,
        }
    ]
    rows = delays(cli, scenario_store, "--from", "CaseReferred", "--to", "IncidentNotified", *scope)
    assert [(r["calendar_days"], r["working_days"]) for r in rows] == [(4, 4)]
    assert (rows[0]["from"], rows[0]["to"]) == ("2026-02-09", "2026-02-13")


def test_scenario_still_waiting_counts_to_on(scenario_store: str, cli: Cli) -> None:
    # Decided Fri 6 Mar 2026; on Fri 1 May nothing published: 56 calendar days; working
    # days: 8 weeks (40) less Good Friday (3 Apr) and Easter Monday (6 Apr) = 38.
    for scope in ([], ["--case", CASE]):
        rows = delays(
            cli,
            scenario_store,
            "--from",
            "DecisionMade",
            "--to",
            "ReportPublished",
            "--on",
            "2026-05-01",
            *scope,
        )
        assert len(rows) == 1
        row = rows[0]
        assert (row["to_ref"], row["to"]) == (None, None)
        assert (row["calendar_days"], row["working_days"]) == (56, 38)
        assert (row["waiting"], row["measured_to"]) == (True, "2026-05-01")


def test_scenario_before_the_from_entry_lists_nothing(scenario_store: str, cli: Cli) -> None:
    rows = delays(
        cli, scenario_store, "--from", "DecisionMade", "--to", "ReportPublished", "--on",
        "2026-03-05",
    )  # fmt: skip
    assert rows == []


def test_scenario_csv_and_people_view(scenario_store: str, cli: Cli) -> None:
    result = cli(
        ["--store", scenario_store, "delays", "--from", "IncidentNotified", "--to",
         "DecisionMade", "--csv"]
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [
        list(CSV_COLUMNS),
        [CASE, f"{CASE}#2", f"{CASE}#19", "2026-02-13", "2026-03-06", "21", "15"],
    ]
    waiting = cli(
        ["--store", scenario_store, "delays", "--from", "DecisionMade", "--to",
         "ReportPublished", "--on", "2026-05-01", "--csv"]
    )  # fmt: skip
    assert list(csv.reader(io.StringIO(waiting.stdout)))[1] == [
        CASE, f"{CASE}#19", "", "2026-03-06", "", "56", "38"
    ]  # fmt: skip
    people = cli(
        ["--store", scenario_store, "delays", "--from", "IncidentNotified", "--to",
         "DecisionMade"]
    )  # fmt: skip
    assert people.exit_code == 0, people.stderr
    assert "median 15" in people.stdout and "90th percentile 15" in people.stdout
    assert "maximum 15" in people.stdout


def test_unknown_types_exit_2_with_the_list(scenario_store: str, cli: Cli) -> None:
    for args in (
        ["--from", "IncidentNotifed", "--to", "DecisionMade"],
        ["--from", "IncidentNotified", "--to", "Decision"],
    ):
        result = cli(["--store", scenario_store, "delays", *args, "--json"])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert "is not an event type" in result.stderr
        for kind in EVENT_TYPES:
            assert kind in result.stderr
    hint = cli(["--store", scenario_store, "delays", "--from", "decisionmade", "--to", "X"])
    assert hint.exit_code == 2 and "did you mean DecisionMade" in hint.stderr
    both = cli(
        ["--store", scenario_store, "delays", "--from", "CaseReferred", "--to",
         "DecisionMade", "--json", "--csv"]
    )  # fmt: skip
    assert both.exit_code == 2
    negative = cli(
        ["--store", scenario_store, "delays", "--from", "CaseReferred", "--to",
         "DecisionMade", "--over", "-1"]
    )  # fmt: skip
    assert negative.exit_code == 2
    missing = cli(["--store", scenario_store, "delays", "--from", "CaseReferred"])
    assert missing.exit_code == 2


def test_unknown_case_exits_2(scenario_store: str, cli: Cli) -> None:
    result = cli(
        ["--store", scenario_store, "delays", "--from", "CaseReferred", "--to",
         "DecisionMade", "--case", "NOPE-1"]
    )  # fmt: skip
    assert result.exit_code == 2 and "NOPE-1" in result.stderr


# --- several cases, --over, waiting ----------------------------------------------------


def _cases() -> list[dict[str, Any]]:
    """Three cases notified on different days; decided 10, 15 and 20 working days later,
    and one not decided yet."""
    events: list[dict[str, Any]] = []
    # A: notified Mon 9 Mar 2026, decided Mon 23 Mar: 14 calendar, 10 working days.
    events += [referral("A-1", "2026-03-06"), notified("A-1", "2026-03-09")]
    events += [decided("A-1", "2026-03-23")]
    # B: notified Mon 30 Mar 2026, decided Wed 22 Apr: 23 calendar days; working days
    # 17 weekdays less Good Friday and Easter Monday = 15.
    events += [referral("B-1", "2026-03-27"), notified("B-1", "2026-03-30")]
    events += [decided("B-1", "2026-04-22")]
    # C: notified Tue 19 May 2026, decided Wed 17 Jun: 29 calendar days; 21 weekdays less
    # the spring bank holiday (Mon 25 May) = 20 working days.
    events += [referral("C-1", "2026-05-18"), notified("C-1", "2026-05-19")]
    events += [decided("C-1", "2026-06-17")]
    # D: notified Mon 3 Aug 2026, not decided by 1 Sep: 29 calendar days; 21 weekdays
    # less the summer bank holiday (Mon 31 Aug) = 20 working days.
    events += [referral("D-1", "2026-07-31"), notified("D-1", "2026-08-03")]
    # E: referred, never notified: no interval.
    events += [referral("E-1", "2026-08-20")]
    return events


def test_several_cases_over_and_waiting(store_url: str, clock: FixedClock, cli: Cli) -> None:
    record(store_url, clock, _cases())
    args = ("--from", "IncidentNotified", "--to", "DecisionMade", "--on", "2026-09-01")
    rows = delays(cli, store_url, *args)
    assert [(r["case"], r["calendar_days"], r["working_days"], r["to"]) for r in rows] == [
        ("A-1", 14, 10, "2026-03-23"),
        ("B-1", 23, 15, "2026-04-22"),
        ("C-1", 29, 20, "2026-06-17"),
        ("D-1", 29, 20, None),
    ]
    over = delays(cli, store_url, *args, "--over", "15")
    assert [r["case"] for r in over] == ["C-1", "D-1"]
    assert [r["case"] for r in delays(cli, store_url, *args, "--over", "14")] == [
        "B-1",
        "C-1",
        "D-1",
    ]
    assert delays(cli, store_url, *args, "--over", "20") == []
    one = delays(cli, store_url, *args, "--case", "B-1", "--over", "10")
    assert [r["case"] for r in one] == ["B-1"]
    assert delays(cli, store_url, *args, "--case", "A-1", "--over", "10") == []
    assert delays(cli, store_url, *args, "--case", "E-1") == []
    people = cli(["--store", store_url, "delays", *args])
    assert people.exit_code == 0, people.stderr
    text = people.stdout
    # Completed: 10, 15, 20 working days (median 15, nearest-rank p90 20, max 20).
    assert "3 completed: working days median 15, 90th percentile 20, maximum 20" in text
    assert "1 still waiting" in text and "D-1 (20 working days)" in text
    # As the record stood before C-1's decision was recorded, nothing changes here: all
    # were recorded at once.  On 1 June, C-1 is still waiting (9 working days).
    june = delays(cli, store_url, "--from", "IncidentNotified", "--to", "DecisionMade",
                  "--on", "2026-06-01")  # fmt: skip
    assert [(r["case"], r["to"], r["working_days"]) for r in june] == [
        ("A-1", "2026-03-23", 10),
        ("B-1", "2026-04-22", 15),
        ("C-1", None, 8),
    ]


def test_same_type_measures_to_the_next_one(store_url: str, clock: FixedClock, cli: Cli) -> None:
    # Decided no-review Mon 2 Mar 2026, revisited Mon 16 Mar: 14 calendar, 10 working days.
    events = [
        referral("R-1", "2026-02-02"),
        notified("R-1", "2026-02-03"),
        decided("R-1", "2026-03-02", "no-review"),
        decided("R-1", "2026-03-16", "review"),
    ]
    record(store_url, clock, events)
    rows = delays(cli, store_url, "--from", "DecisionMade", "--to", "DecisionMade")
    assert [(r["from_ref"], r["to_ref"], r["calendar_days"], r["working_days"]) for r in rows] == [
        ("R-1#3", "R-1#4", 14, 10)
    ]


def test_to_before_from_is_not_counted(store_url: str, clock: FixedClock, cli: Cli) -> None:
    # A context entry recorded before the notification, and one after it.
    events = [
        referral("S-1", "2026-02-02"),
        event("ContextRecorded", "S-1", "2026-02-02", topic="other", summary="s"),
        notified("S-1", "2026-02-04"),
        event("ContextRecorded", "S-1", "2026-02-06", topic="other", summary="s"),
    ]
    record(store_url, clock, events)
    rows = delays(cli, store_url, "--from", "IncidentNotified", "--to", "ContextRecorded")
    assert [(r["to_ref"], r["working_days"]) for r in rows] == [("S-1#4", 2)]


def test_a_correction_and_as_of(store_url: str, clock: FixedClock, cli: Cli) -> None:
    clock.now = clock.now.replace(month=3, day=20)
    record(store_url, clock, [referral("T-1", "2026-03-02"), notified("T-1", "2026-03-11")])
    clock.now = clock.now.replace(month=4, day=1)
    correction = event(
        "EntryCorrected",
        "T-1",
        "2026-04-01",
        corrects="T-1#2",
        changes={"occurred_at": "2026-03-06"},
        reason="Mistyped date.",
    )
    record(store_url, clock, [correction])
    args = ("--from", "CaseReferred", "--to", "IncidentNotified")
    for scope in ((), ("--case", "T-1")):
        assert [r["working_days"] for r in delays(cli, store_url, *args, *scope)] == [4]
        before = delays(cli, store_url, *args, *scope, "--as-of", "2026-03-25")
        assert [(r["to"], r["working_days"]) for r in before] == [("2026-03-11", 7)]
        earlier = delays(cli, store_url, *args, *scope, "--as-of", "2026-03-19")
        assert earlier == []


# --- properties -------------------------------------------------------------------------

EW = Calendar()
DAYS = st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31))


@settings(max_examples=200, deadline=None)
@given(start=DAYS, gap=st.one_of(st.none(), st.integers(0, 400)), to_on=st.integers(0, 400))
def test_interval_counts(start: date, gap: int | None, to_on: int) -> None:
    records: list[dict[str, Any]] = [
        {"type": "IncidentNotified", "case": "P", "seq": 1, "occurred_at": start.isoformat()}
    ]
    if gap is not None:
        records.append(
            {
                "type": "DecisionMade",
                "case": "P",
                "seq": 2,
                "occurred_at": (start + timedelta(days=gap)).isoformat(),
            }
        )
    on = start + timedelta(days=to_on)
    found = interval_between("P", records, "IncidentNotified", "DecisionMade", on, EW)
    assert found is not None
    assert found.start == start
    happened = gap is not None and gap <= to_on
    assert found.waiting is not happened
    end = start + timedelta(days=gap) if happened and gap is not None else on
    assert found.measured_to == end
    assert found.calendar_days == (end - start).days
    assert found.working_days == EW.working_days_between(start, end)
    assert 0 <= found.working_days <= found.calendar_days
    assert (found.to_ref is None) is found.waiting
    assert filter_over([found], found.working_days) == []
    assert filter_over([found], found.working_days - 1) == [found]
    assert filter_over([found], None) == [found]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=1, max_size=50))
def test_summary_figures(values: list[int]) -> None:
    intervals = [
        Interval("C", "A", "B", "C#1", date(2026, 1, 1), "C#2", date(2026, 1, 2), date(2026, 1, 2),
                 v, v)
        for v in values
    ]  # fmt: skip
    s = summarise(intervals)
    ordered = sorted(values)
    assert s.count == len(values) and s.waiting == 0
    assert s.max_working_days == ordered[-1]
    assert s.p90_working_days in values
    p90 = nearest_rank(values, 90)
    assert p90 is not None
    assert sum(v <= p90 for v in values) >= 0.9 * len(values)
    assert sum(v < p90 for v in values) < 0.9 * len(values)
    assert s.median_working_days is not None
    assert ordered[0] <= s.median_working_days <= ordered[-1]


def test_summary_of_nothing_and_of_waiting_only() -> None:
    assert summarise([]).count == 0 and summarise([]).max_working_days is None
    waiting = Interval("C", "A", "B", "C#1", date(2026, 1, 1), None, None, date(2026, 1, 5), 4, 2)
    s = summarise([waiting])
    assert (s.count, s.waiting, s.median_working_days) == (0, 1, None)
    assert orjson.loads(orjson.dumps(s.as_dict()))["waiting"] == 1


TIMES_OF_DAY = ("", "T00:30:00+00:00", "T09:15:00+01:00", "T23:30:00+00:00", "T12:00:00Z")
KINDS = ("IncidentNotified", "DecisionMade", "ContextRecorded")


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            st.sampled_from(KINDS),
            st.dates(min_value=date(2026, 3, 20), max_value=date(2026, 4, 10)),
            st.sampled_from(TIMES_OF_DAY),
        ),
        max_size=14,
    ),
    from_type=st.sampled_from(KINDS),
    to_type=st.sampled_from(KINDS),
    on=st.dates(min_value=date(2026, 3, 20), max_value=date(2026, 4, 15)),
)
def test_intervals_from_times_equal_each_case_measured_from_its_records(
    entries: list[tuple[str, str, date, str]], from_type: str, to_type: str, on: date
) -> None:
    # Days around the start of BST (29 March 2026); times with and without offsets.
    from ledger.catalogue.models import normalise_occurred_at
    from projections.queries.delays import case_interval, intervals_from_times

    regimes = {"A": "wt2023", "B": "wt2015", "C": "wt2018"}
    records: dict[str, list[dict[str, Any]]] = {case: [] for case in regimes}
    for case, kind, day, time in entries:
        seq = len(records[case]) + 2  # seq 1 is the referral
        occurred = normalise_occurred_at(day.isoformat() + time)
        records[case].append({"type": kind, "case": case, "seq": seq, "occurred_at": occurred})
    times = [
        (r["case"], r["seq"], r["type"], r["occurred_at"]) for c in records.values() for r in c
    ]
    expected = [
        found
        for case in sorted(records)
        if (found := case_interval(case, regimes[case], records[case], from_type, to_type, on))
        is not None
    ]
    assert intervals_from_times(regimes, reversed(times), from_type, to_type, on) == expected


@settings(max_examples=300, deadline=None)
@given(
    spans=st.lists(st.tuples(DAYS, st.integers(-30, 3_000)), min_size=1, max_size=20),
    nation=st.sampled_from(["england-and-wales", "scotland", "northern-ireland"]),
)
def test_working_days_of_many_intervals_equal_the_calendars_count(
    spans: list[tuple[date, int]], nation: str
) -> None:
    # intervals_from_times counts every case's working days by bisecting each year's
    # bank holidays (found once): the same count as the calendar's, over years of them.
    from projections.queries.delays import _WorkingDays

    calendar = Calendar(nation)
    counter = _WorkingDays(calendar)
    for start, length in spans:
        end = start + timedelta(days=length)
        assert counter.between(start, end) == calendar.working_days_between(start, end)


def test_an_earlier_store_s_index_by_type_is_replaced_by_the_covering_one(
    sqlite_url: str, cli: Cli
) -> None:
    """An SQLite store whose index was made with the index by (type, occurred_day) alone
    gets the covering one at its next query, the old one dropped, and the same answers."""
    import sqlite3

    led = open_ledger(sqlite_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.close()
    path = scenario_store = sqlite_url
    before = delays(cli, scenario_store, "--from", "IncidentNotified", "--to", "DecisionMade")

    def indexes() -> set[str]:
        with sqlite3.connect(path) as conn:
            return {
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='index' "
                    "AND tbl_name='case_milestones' AND name LIKE 'case_milestones_type%'"
                )
            }

    assert indexes() == {"case_milestones_type_times"}
    with sqlite3.connect(path) as conn:  # the layout of an earlier store
        conn.execute("DROP INDEX case_milestones_type_times")
        conn.execute("CREATE INDEX case_milestones_type ON case_milestones (type, occurred_day)")
    after = delays(cli, scenario_store, "--from", "IncidentNotified", "--to", "DecisionMade")
    assert indexes() == {"case_milestones_type_times"}
    assert after == before != []
    with sqlite3.connect(path) as conn:
        (plan,) = conn.execute(
            "EXPLAIN QUERY PLAN SELECT case_ref, seq, type, occurred_at FROM case_milestones "
            "WHERE type IN ('IncidentNotified', 'DecisionMade')"
        ).fetchall()
    assert "COVERING INDEX case_milestones_type_times" in plan[-1]
