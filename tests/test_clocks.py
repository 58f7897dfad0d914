"""``caseledger clocks``: the statutory clocks through the real CLI, on both stores.

Every expected date here is worked out by hand from ``shared/domain.md`` ("Timescales")
and the England and Wales bank holidays; the scenario figures are those of
``shared/scenarios/README.md`` for RR-2026-004.  The helpers that build cases are shared
with ``test_delays.py`` and ``test_quality.py``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.catalogue import models as catalogue
from projections.assess.calendar import Calendar
from projections.assess.clocks import ClockState, clock_states, deadline_of, next_deadline
from projections.assess.rules import rule_pack
from tests.conftest import CliResult, FixedClock, enrol_decision_makers, open_ledger

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

CASE = "RR-2026-004"
Cli = Callable[..., CliResult]

# --- building cases -------------------------------------------------------------------

CRITERIA = catalogue.CRITERIA  # every criterion of each regime
NATIONAL = {"wt2015": "ofsted", "wt2018": "national-panel", "wt2023": "national-panel"}


def referral(
    case: str,
    aware: str,
    regime: str = "wt2023",
    *,
    incident: str | None = None,
    other_areas: list[str] | None = None,
) -> dict[str, Any]:
    """A CaseReferred whose local authority became aware on ``aware``."""
    event: dict[str, Any] = {
        "type": "CaseReferred",
        "case": case,
        "occurred_at": aware,
        "regime": regime,
        "subject": "Child K",
        "incident_date": incident or aware,
        "aware_date": aware,
        "harm": "serious-harm",
        "abuse_or_neglect": "suspected",
        "home_area": "Northshire",
        "referrer": "Northshire Police",
        "route": "statutory",
        "summary": "Fictional test case.",
    }
    if other_areas:
        event["other_areas"] = other_areas
    if regime != "wt2023":  # the test dates are 2025-26: an earlier regime is transitional
        event["transitional"] = True
    return event


def notified(case: str, day: str, regime: str = "wt2023") -> dict[str, Any]:
    """The serious incident notification to the regime's national body (and DfE)."""
    return {
        "type": "IncidentNotified",
        "case": case,
        "occurred_at": day,
        "recipients": [NATIONAL[regime], "dfe"],
    }


def decided(
    case: str, day: str, outcome: str = "review", regime: str = "wt2023", **extra: Any
) -> dict[str, Any]:
    """A DecisionMade with a finding on every criterion of the regime."""
    event: dict[str, Any] = {
        "type": "DecisionMade",
        "case": case,
        "occurred_at": day,
        "outcome": outcome,
        "decided_by": ["Northshire County Council", "Northshire ICB", "Northshire Police"],
        "criteria": {
            name: {"finding": "met" if name == "abuse_or_neglect" else "not-met", "reason": "r"}
            for name in CRITERIA[regime]
        },
        "rationale": "Decided on the criteria.",
        **extra,
    }
    if outcome in ("review", "other-review"):
        event.setdefault("nature", "Systems review.")
    return event


def delayed(
    case: str,
    day: str,
    *,
    reason: str = "Police investigation means agencies cannot yet share records.",
    expected_by: str = "2026-04-30",
    approved_by: str = "Northshire ICB (lead partner)",
) -> dict[str, Any]:
    """An approved DecisionDelayed."""
    return {
        "type": "DecisionDelayed",
        "case": case,
        "occurred_at": day,
        "reason": reason,
        "expected_by": expected_by,
        "approved_by": approved_by,
    }


def event(kind: str, case: str, day: str, **fields: Any) -> dict[str, Any]:
    """Any other entry."""
    return {"type": kind, "case": case, "occurred_at": day, **fields}


def record(url: str, clock: FixedClock, events: Iterable[dict[str, Any]]) -> list[str]:
    """Record entries through the ledger (at the fixed clock's time); their refs."""
    led = open_ledger(url, clock)
    try:
        events = list(events)
        enrol_decision_makers(led, events)
        receipts = led.record_lines([orjson.dumps(e) for e in events], led.recorder_for())
    finally:
        led.close()
    return [r.ref for r in receipts]


def record_as_it_happened(url: str, events: Iterable[dict[str, Any]]) -> list[str]:
    """Record entries one by one, each at 17:00 (London) on the day it happened (never
    earlier than the one before), as a business unit keeping the record up to date does;
    their refs.  ``recorded_at`` matters: a delay counts only if recorded in time."""
    from datetime import datetime, time

    from ledger.catalogue.models import LONDON, occurred_day

    moment = datetime(2000, 1, 1, tzinfo=LONDON)
    clock = FixedClock(moment)
    led = open_ledger(url, clock)
    refs = []
    try:
        events = list(events)
        enrol_decision_makers(led, events)
        for item in events:
            at = datetime.combine(occurred_day(item["occurred_at"]), time(17, 0), LONDON)
            clock.now = max(clock.now + timedelta(seconds=1), at)
            (receipt,) = led.record_lines([orjson.dumps(item)], led.recorder_for())
            refs.append(receipt.ref)
    finally:
        led.close()
    return refs


def ok(cli: Cli, url: str, *args: str) -> Any:
    """Run the CLI with ``--json``, expect exit 0, return the parsed output."""
    result = cli(["--store", url, *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return result.json()


def by_clock(rows: list[dict[str, Any]], case: str | None = None) -> dict[str, dict[str, Any]]:
    return {r["clock"]: r for r in rows if case is None or r["case"] == case}


def d(text: str) -> date:
    return date.fromisoformat(text)


CONTRACT_KEYS = ("case", "clock", "started", "due", "ended", "status", "justified")

SCENARIO_CLOCKS = {
    "notification": ("2026-02-09", "2026-02-16", "2026-02-13", "met"),
    "rapid_review": ("2026-02-13", "2026-03-06", "2026-03-06", "met"),
    "review_completion": ("2026-03-06", "2026-09-06", "2026-08-28", "met"),
}  # no final report is recorded as sent, so the scenario has no final-report clock


# --- the scenario -----------------------------------------------------------------------


@pytest.mark.parametrize("on", ["2026-08-29", "2026-09-01", "2027-06-30"])
def test_scenario_clocks_after_publication(scenario_store: str, cli: Cli, on: str) -> None:
    for args in (["clocks", CASE], ["clocks"]):  # one case (fold) and every case (index)
        rows = ok(cli, scenario_store, *args, "--on", on)
        assert [r["clock"] for r in rows] == list(SCENARIO_CLOCKS)
        for row in rows:
            assert tuple(row)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS
            started, due, ended, status = SCENARIO_CLOCKS[row["clock"]]
            assert (row["case"], row["started"], row["due"], row["ended"], row["status"]) == (
                CASE,
                started,
                due,
                ended,
                status,
            )
            assert row["justified"] is False
            assert row["delay"] is None
        refs = by_clock(rows)
        assert refs["notification"]["start_ref"] == f"{CASE}#1"
        assert refs["notification"]["end_ref"] == f"{CASE}#2"
        # Ended when sent (the decision communicated to the panel, #20), decided #19.
        assert refs["rapid_review"]["end_ref"] == f"{CASE}#20"
        assert refs["rapid_review"]["marks"] == {"decided": "2026-03-06"}
        assert refs["rapid_review"]["mark_refs"] == {"decided": f"{CASE}#19"}
        assert refs["review_completion"]["end_ref"] == f"{CASE}#22"


def test_scenario_on_5_march_the_rapid_review_runs(scenario_store: str, cli: Cli) -> None:
    for args in (["clocks", CASE], ["clocks"]):
        rows = ok(cli, scenario_store, *args, "--on", "2026-03-05")
        clocks = by_clock(rows)
        # The review-completion clock has not started: it is not reported at all.
        assert list(clocks) == ["notification", "rapid_review"]
        assert clocks["notification"]["status"] == "met"
        rapid = clocks["rapid_review"]
        assert (rapid["started"], rapid["due"], rapid["ended"], rapid["status"]) == (
            "2026-02-13",
            "2026-03-06",
            None,
            "running",
        )
        assert rapid["days_left"] == 1
        assert rapid["justified"] is False
    # --all shows it, explicitly not started.
    rows = ok(cli, scenario_store, "clocks", CASE, "--on", "2026-03-05", "--all")
    completion = by_clock(rows)["review_completion"]
    assert completion["status"] == "not-started"
    assert completion["started"] is None and completion["due"] is None


def test_scenario_before_the_notification(scenario_store: str, cli: Cli) -> None:
    rows = ok(cli, scenario_store, "clocks", CASE, "--on", "2026-02-11")
    assert [(r["clock"], r["status"], r["due"]) for r in rows] == [
        ("notification", "running", "2026-02-16")
    ]
    # A date and time for --on works the same way.
    rows = ok(cli, scenario_store, "clocks", "--on", "2026-02-12T23:59")
    assert [(r["clock"], r["status"]) for r in rows] == [("notification", "running")]


def test_scenario_people_view(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "clocks", CASE, "--on", "2026-03-05"])
    assert result.exit_code == 0, result.stderr
    # Clocks in words for people (the rule pack's labels); --json keeps the names.
    assert "rapid review" in result.stdout and "running" in result.stdout
    assert "rapid_review" not in result.stdout
    assert "Not started yet: review completion" in result.stdout
    every = cli(["--store", scenario_store, "clocks", "--on", "2026-09-01"])
    assert every.exit_code == 0, every.stderr
    assert "1 case: 3 met" in every.stdout


def test_as_of_before_the_decision_was_recorded(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    from tests.conftest import scenario_lines

    lines = [orjson.loads(x) for x in scenario_lines()]
    clock.now = clock.now.replace(year=2026, month=3, day=5, hour=12)
    record(store_url, clock, lines[:18])
    clock.now = clock.now.replace(month=9, day=1)
    record(store_url, clock, lines[18:])
    for args in (["clocks", CASE], ["clocks"]):
        # As the record stood on 5 March, on 10 March: the rapid review was overdue.
        rows = ok(cli, store_url, *args, "--as-of", "2026-03-05", "--on", "2026-03-10")
        rapid = by_clock(rows)["rapid_review"]
        assert (rapid["status"], rapid["ended"], rapid["days_over"]) == ("overdue", None, 4)
        assert rapid["justified"] is False
        # As it stands now, it was met.
        rows = ok(cli, store_url, *args, "--on", "2026-03-10")
        assert by_clock(rows)["rapid_review"]["status"] == "met"


def test_unknown_case_and_bad_options_exit_2(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "clocks", "RR-1999-001"])
    assert result.exit_code == 2 and "RR-1999-001" in result.stderr
    result = cli(["--store", scenario_store, "clocks", "--on", "5 March"])
    assert result.exit_code == 2 and "--on" in result.stderr
    result = cli(["--store", scenario_store, "clocks", "--status", "late-ish"])
    assert result.exit_code == 2 and "running" in result.stderr


def test_status_filter(scenario_store: str, cli: Cli) -> None:
    rows = ok(cli, scenario_store, "clocks", "--on", "2026-03-05", "--status", "running")
    assert [r["clock"] for r in rows] == ["rapid_review"]


# --- late, overdue and justified ------------------------------------------------------


def _late_case(case: str, with_delay: bool) -> list[dict[str, Any]]:
    # Aware Mon 2 Feb 2026, notified Wed 4 Feb: the rapid review is due 15 working days
    # later, Wed 25 Feb.  Decided and sent Fri 13 Mar 2026: 16 calendar days late.
    events = [referral(case, "2026-02-02"), notified(case, "2026-02-04")]
    if with_delay:
        events.append(delayed(case, "2026-02-20"))
    events.append(decided(case, "2026-03-13"))
    events.append(event("RapidReviewSent", case, "2026-03-13", to=["national-panel"]))
    return events


def test_a_late_decision_with_an_approved_delay_is_justified(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    record_as_it_happened(store_url, _late_case("LATE-1", with_delay=True))
    record_as_it_happened(store_url, _late_case("LATE-2", with_delay=False))
    for args in (["clocks", "LATE-1"], ["clocks"]):
        rows = ok(cli, store_url, *args, "--on", "2026-04-01")
        rapid = by_clock(rows, "LATE-1")["rapid_review"]
        assert (rapid["started"], rapid["due"], rapid["ended"]) == (
            "2026-02-04",
            "2026-02-25",
            "2026-03-13",
        )
        assert rapid["status"] == "late"
        assert rapid["justified"] is True
        assert rapid["days_over"] == 16
        assert rapid["delay"]["reason"].startswith("Police investigation")
        assert rapid["delay"]["approved_by"] == "Northshire ICB (lead partner)"
        assert rapid["delay"]["expected_by"] == "2026-04-30"
        assert rapid["delay"]["ref"] == "LATE-1#3"
        assert rapid["beyond_expected"] is False
    rows = ok(cli, store_url, "clocks", "LATE-2", "--on", "2026-04-01")
    rapid = by_clock(rows)["rapid_review"]
    assert (rapid["status"], rapid["justified"], rapid["delay"]) == ("late", False, None)
    people = cli(["--store", store_url, "clocks", "LATE-1", "--on", "2026-04-01"])
    assert "Police investigation" in people.stdout and "late" in people.stdout


def test_an_overdue_decision_measured_to_on(store_url: str, clock: FixedClock, cli: Cli) -> None:
    case = "OVERDUE-1"
    record_as_it_happened(store_url, _late_case(case, with_delay=True)[:3])  # no decision yet
    # Before the delay was approved (20 Feb), on Thu 26 Feb: overdue, not justified.
    rows = ok(cli, store_url, "clocks", case, "--on", "2026-02-19")
    assert by_clock(rows)["rapid_review"]["status"] == "running"
    assert by_clock(rows)["rapid_review"]["days_left"] == 6
    rows = ok(cli, store_url, "clocks", case, "--on", "2026-02-26")
    rapid = by_clock(rows)["rapid_review"]
    assert (rapid["status"], rapid["days_over"], rapid["justified"]) == ("overdue", 1, True)
    # Past the delay's expected date it is still justified, and says so.
    rows = ok(cli, store_url, "clocks", case, "--on", "2026-05-04")
    rapid = by_clock(rows)["rapid_review"]
    assert (rapid["status"], rapid["justified"], rapid["beyond_expected"]) == (
        "overdue",
        True,
        True,
    )
    assert rapid["days_over"] == (d("2026-05-04") - d("2026-02-25")).days


def test_a_delay_after_the_decision_does_not_justify_it(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    case = "LATE-3"
    events = [*_late_case(case, with_delay=False), delayed(case, "2026-03-20")]
    record(store_url, clock, events)
    rapid = by_clock(ok(cli, store_url, "clocks", case, "--on", "2026-04-01"))["rapid_review"]
    assert (rapid["status"], rapid["justified"]) == ("late", False)


def test_a_delay_on_a_clock_not_listed_as_justifiable_does_not_count(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    # Aware Mon 2 Feb, notified Tue 10 Feb (6 working days: due Mon 9 Feb), a delay
    # recorded on 5 Feb: the notification clock cannot be justified by a DecisionDelayed.
    case = "LATE-4"
    events = [
        referral(case, "2026-02-02"),
        delayed(case, "2026-02-05"),
        notified(case, "2026-02-10"),
    ]
    record(store_url, clock, events)
    rows = by_clock(ok(cli, store_url, "clocks", case, "--on", "2026-02-12"))
    assert rows["notification"]["due"] == "2026-02-09"
    assert (rows["notification"]["status"], rows["notification"]["justified"]) == ("late", False)
    assert rows["rapid_review"]["status"] == "running"


# --- wt2015 -------------------------------------------------------------------------


def test_wt2015_scr_decision_and_no_scr_explanation(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    # Aware Thu 29 Jan 2026; notified to Ofsted Sat 31 Jan (day 2 of 5 working days: due
    # Thu 5 Feb).  SCR decision: 1 calendar month from 31 Jan, clamped to Sat 28 Feb.
    # Decided no-review on Tue 10 Mar: late.  No-SCR explanation: 14 calendar days from
    # 10 Mar is 24 Mar; communicated to the national panel on Fri 20 Mar: met.
    case = "SCR-2026-001"
    events = [
        referral(case, "2026-01-29", "wt2015"),
        notified(case, "2026-01-31", "wt2015"),
        decided(case, "2026-03-10", "no-review", "wt2015"),
        event("DecisionCommunicated", case, "2026-03-20", to=["national-panel", "ofsted"]),
    ]
    record(store_url, clock, events)
    for args in (["clocks", case], ["clocks"]):
        rows = by_clock(ok(cli, store_url, *args, "--on", "2026-04-01"))
        assert list(rows) == ["notification", "scr_decision", "no_scr_explanation"]
        assert (rows["notification"]["due"], rows["notification"]["status"]) == (
            "2026-02-05",
            "met",
        )
        scr = rows["scr_decision"]
        assert (scr["started"], scr["due"], scr["ended"], scr["status"]) == (
            "2026-01-31",
            "2026-02-28",
            "2026-03-10",
            "late",
        )
        assert (scr["justified"], scr["unit"], scr["limit"], scr["note"]) == (
            False,
            "calendar_months",
            1,
            "normally",
        )
        explained = rows["no_scr_explanation"]
        assert (explained["started"], explained["due"], explained["ended"]) == (
            "2026-03-10",
            "2026-03-24",
            "2026-03-20",
        )
        assert explained["status"] == "met"
    # On 25 March, before the communication was made in a case that never made it:
    rows = by_clock(ok(cli, store_url, "clocks", case, "--on", "2026-03-19"))
    assert rows["no_scr_explanation"]["status"] == "running"


def test_wt2015_no_scr_explanation_overdue_and_review_completion(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    # A no-review decision on Sun 20 Dec 2026... is in the future of the fixed clock, so
    # use 2025: decided no-review Sat 20 Dec 2025, 14 days: due Sat 3 Jan 2026; on
    # 5 Jan 2026 nothing was communicated: overdue by 2 days.  Revisited to review on
    # 31 Mar 2026: the review-completion clock starts then, 6 months: due 30 Sep 2026.
    case = "SCR-2025-009"
    events = [
        referral(case, "2025-11-24", "wt2015"),
        notified(case, "2025-11-25", "wt2015"),
        decided(case, "2025-12-20", "no-review", "wt2015"),
        decided(case, "2026-03-31", "review", "wt2015"),
    ]
    record(store_url, clock, events)
    rows = by_clock(ok(cli, store_url, "clocks", case, "--on", "2026-01-05"))
    assert (rows["no_scr_explanation"]["due"], rows["no_scr_explanation"]["status"]) == (
        "2026-01-03",
        "overdue",
    )
    assert rows["no_scr_explanation"]["days_over"] == 2
    assert "review_completion" not in rows
    rows = by_clock(ok(cli, store_url, "clocks", case, "--on", "2026-08-31"))
    # The revisit does not restart the decision clock the first decision ended.
    assert (rows["scr_decision"]["ended"], rows["scr_decision"]["status"]) == (
        "2025-12-20",
        "met",
    )
    completion = rows["review_completion"]
    assert (completion["started"], completion["due"], completion["status"]) == (
        "2026-03-31",
        "2026-09-30",
        "running",
    )


# --- bank holidays, end to end ------------------------------------------------------


def test_notification_over_easter_2026(store_url: str, clock: FixedClock, cli: Cli) -> None:
    # Aware Thu 2 Apr 2026; Good Friday 3 Apr and Easter Monday 6 Apr are bank holidays:
    # 5 working days are 7, 8, 9, 10, 13 April, so due Mon 13 Apr; notified that day: met.
    case = "RR-2026-010"
    record(store_url, clock, [referral(case, "2026-04-02"), notified(case, "2026-04-13")])
    rows = by_clock(ok(cli, store_url, "clocks", "--on", "2026-04-14"))
    assert (rows["notification"]["due"], rows["notification"]["status"]) == (
        "2026-04-13",
        "met",
    )
    # The rapid review from Mon 13 Apr: 15 working days with the early May bank holiday
    # (Mon 4 May) is Tue 5 May.
    assert rows["rapid_review"]["due"] == "2026-05-05"


# --- corrections ----------------------------------------------------------------------


def test_a_correction_moves_the_clock_and_as_of_shows_the_original(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    case = "RR-2026-020"
    clock.now = clock.now.replace(month=3, day=20)
    record(store_url, clock, [referral(case, "2026-03-02"), notified(case, "2026-03-11")])
    # Notified Wed 11 Mar, 7 working days after Mon 2 Mar: late.
    clock.now = clock.now.replace(month=4, day=1)
    correction = event(
        "EntryCorrected",
        case,
        "2026-04-01",
        corrects=f"{case}#2",
        changes={"occurred_at": "2026-03-06"},
        reason="The notification was sent on 6 March; the date was mistyped.",
    )
    record(store_url, clock, [correction])
    for args in (["clocks", case], ["clocks"]):
        now_rows = by_clock(ok(cli, store_url, *args, "--on", "2026-03-20"))
        assert (now_rows["notification"]["ended"], now_rows["notification"]["status"]) == (
            "2026-03-06",
            "met",
        )
        assert now_rows["rapid_review"]["started"] == "2026-03-06"
        before = by_clock(ok(cli, store_url, *args, "--on", "2026-03-20", "--as-of", "2026-03-25"))
        assert (before["notification"]["ended"], before["notification"]["status"]) == (
            "2026-03-11",
            "late",
        )
        assert before["rapid_review"]["started"] == "2026-03-11"


# --- the status hooks ---------------------------------------------------------------


def test_overdue_clocks_and_next_deadline_for_status(store_url: str, clock: FixedClock) -> None:
    from datetime import datetime

    from projections.assess.clocks import overdue_clocks
    from projections.fold.when import LONDON
    from projections.queries.cases import case_view

    record(store_url, clock, _late_case("HOOK-1", with_delay=False)[:2])
    led = open_ledger(store_url, clock)
    try:
        records = led.case_records("HOOK-1")
        on = datetime(2026, 2, 20, 12, tzinfo=LONDON)
        view = case_view(led, "HOOK-1", None, on)
        assert overdue_clocks(view, on) == []
        assert overdue_clocks(records, on) == []
        expected = {
            "clock": "rapid_review",
            "title": "Rapid review decides whether to hold a local review",
            "due": "2026-02-25",
            "days_left": 5,
            "started": "2026-02-04",
        }
        assert next_deadline(view, on) == expected
        assert next_deadline(records, on) == expected
        later = datetime(2026, 3, 2, tzinfo=LONDON)
        assert overdue_clocks(records, later) == ["rapid_review"]
        assert overdue_clocks(case_view(led, "HOOK-1", None, later), later) == ["rapid_review"]
        assert next_deadline(records, later) is None
    finally:
        led.close()


# --- properties -----------------------------------------------------------------------

DAYS = st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31))
PACK = rule_pack("wt2023")
EW = Calendar()


def _one(records: list[dict[str, Any]], on: date, name: str) -> ClockState:
    states = clock_states("P-1", "wt2023", records, on, include_not_started=True)
    return next(s for s in states if s.clock == name)


@settings(max_examples=200, deadline=None)
@given(
    aware=DAYS,
    to_notify=st.integers(0, 40),
    to_decide=st.one_of(st.none(), st.integers(0, 60)),
    to_delay=st.one_of(st.none(), st.integers(0, 60)),
    to_on=st.integers(0, 120),
)
def test_status_follows_due_and_end(
    aware: date,
    to_notify: int,
    to_decide: int | None,
    to_delay: int | None,
    to_on: int,
) -> None:
    notified_day = aware + timedelta(days=to_notify)
    records: list[dict[str, Any]] = [
        {"type": "CaseReferred", "case": "P-1", "seq": 1, "occurred_at": aware.isoformat(),
         "aware_date": aware.isoformat(), "regime": "wt2023"},
        {"type": "IncidentNotified", "case": "P-1", "seq": 2,
         "occurred_at": notified_day.isoformat(), "recipients": ["national-panel"]},
    ]  # fmt: skip
    if to_delay is not None:
        records.append(
            {"type": "DecisionDelayed", "case": "P-1", "seq": 3,
             "occurred_at": (notified_day + timedelta(days=to_delay)).isoformat(),
             "reason": "r", "approved_by": "p", "expected_by": "2031-01-01"}
        )  # fmt: skip
    if to_decide is not None:
        records.append(
            {"type": "DecisionMade", "case": "P-1", "seq": 4, "outcome": "no-review",
             "occurred_at": (notified_day + timedelta(days=to_decide)).isoformat()}
        )  # fmt: skip
    on = aware + timedelta(days=to_on)
    for name in ("notification", "rapid_review"):
        s = _one(records, on, name)
        rule = PACK.clock(name)
        if s.status == "not-started":
            assert s.started is None and name == "rapid_review" and notified_day > on
            continue
        assert s.started is not None and s.due is not None
        assert s.started <= on
        assert s.due == rule.due(s.started, EW)
        assert EW.working_days_between(s.started, s.due) == rule.limit
        if s.ended is not None:
            assert s.started <= s.ended <= on
            assert (s.status == "met") == (s.ended <= s.due)
            assert (s.status == "late") == (s.ended > s.due)
        else:
            assert (s.status == "running") == (on <= s.due)
            assert (s.status == "overdue") == (on > s.due)
        assert s.justified == (s.status in ("late", "overdue") and s.delay is not None)
        if name == "notification":
            assert s.delay is None  # not justifiable
        if s.justified:
            assert s.delay is not None
            last = s.ended if s.ended is not None else on
            assert s.delay.occurred_on <= last
        assert s.as_dict()["justified"] is s.justified


@settings(max_examples=100, deadline=None)
@given(
    aware=DAYS,
    first=st.integers(0, 30),
    second=st.integers(0, 30),
    outcome=st.sampled_from(["review", "no-review", "other-review"]),
)
def test_a_revisited_decision_never_restarts_the_decision_clock(
    aware: date, first: int, second: int, outcome: str
) -> None:
    notified_day = aware + timedelta(days=1)
    first_day = notified_day + timedelta(days=first)
    second_day = first_day + timedelta(days=second)
    base: list[dict[str, Any]] = [
        {"type": "CaseReferred", "case": "P-1", "seq": 1, "occurred_at": aware.isoformat(),
         "aware_date": aware.isoformat()},
        {"type": "IncidentNotified", "case": "P-1", "seq": 2,
         "occurred_at": notified_day.isoformat(), "recipients": ["national-panel"]},
        {"type": "DecisionMade", "case": "P-1", "seq": 3, "outcome": outcome,
         "occurred_at": first_day.isoformat()},
        {"type": "RapidReviewSent", "case": "P-1", "seq": 4, "to": ["national-panel"],
         "occurred_at": first_day.isoformat()},
    ]  # fmt: skip
    revisit = {"type": "DecisionMade", "case": "P-1", "seq": 5, "outcome": "review",
               "occurred_at": second_day.isoformat()}  # fmt: skip
    resent = {"type": "RapidReviewSent", "case": "P-1", "seq": 6, "to": ["national-panel"],
              "occurred_at": second_day.isoformat()}  # fmt: skip
    on = second_day + timedelta(days=400)
    once = _one(base, on, "rapid_review")
    twice = _one([*base, revisit, resent], on, "rapid_review")
    assert once.ended == twice.ended == first_day
    assert once.status == twice.status
    assert once.marks[0].day == twice.marks[0].day == first_day  # decided, beside sent
    completion = _one([*base, revisit], on, "review_completion")
    assert completion.started == (first_day if outcome == "review" else second_day)


def test_next_deadline_is_the_soonest_running_clock() -> None:
    records: list[dict[str, Any]] = [
        {"type": "CaseReferred", "case": "P-1", "seq": 1, "occurred_at": "2026-02-02",
         "aware_date": "2026-02-02"},
    ]  # fmt: skip
    states = clock_states("P-1", "wt2023", records, d("2026-02-03"))
    assert deadline_of(states) == {
        "clock": "notification",
        "title": "Serious incident notified to the national panel",
        "due": "2026-02-09",
        "days_left": 6,
        "started": "2026-02-02",
    }
    assert deadline_of(clock_states("P-1", "wt2023", records, d("2026-02-10"))) is None


TIMES = st.sampled_from(["", "T00:30:00+00:00", "T09:00:00+00:00", "T23:30:00+00:00", "T16:00"])


@settings(max_examples=200, deadline=None)
@given(
    entries=st.lists(
        st.tuples(
            st.sampled_from(["IncidentNotified", "DecisionMade", "ContextRecorded"]),
            st.dates(min_value=date(2026, 3, 26), max_value=date(2026, 4, 3)),
            TIMES,
            st.sampled_from(["review", "no-review"]),
        ),
        max_size=8,
    ),
    after=st.one_of(st.none(), st.dates(min_value=date(2026, 3, 26), max_value=date(2026, 4, 3))),
)
def test_the_sorted_timeline_finds_what_first_match_finds(
    entries: list[tuple[str, date, str, str]], after: date | None
) -> None:
    # Days around the start of BST (29 March 2026), times with and without offsets.
    from ledger.catalogue.models import normalise_occurred_at
    from projections.assess.clocks import first_on, timeline_of
    from projections.assess.rules import EventMatch, first_match
    from projections.fold.when import end_of_day

    records = [
        {"type": kind, "case": "P", "seq": i + 1, "outcome": outcome,
         "recipients": ["national-panel"],
         "occurred_at": normalise_occurred_at(day.isoformat() + time)}
        for i, (kind, day, time, outcome) in enumerate(entries)
    ]  # fmt: skip
    timeline = timeline_of(records, end_of_day(date(2026, 12, 31)))
    for wanted in (PACK.clock("rapid_review").end, PACK.clock("review_completion").start,
                   EventMatch("IncidentNotified"), EventMatch("ContextRecorded")):  # fmt: skip
        expected = first_match(wanted, records, on_or_after=after)
        found = first_on(wanted, timeline, after)
        assert (found[0] if found is not None else None) is expected


# --- the samples in docs/clocks.md and docs/quality.md run --------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs"
SAMPLE = re.compile(r"```console\n\$ caseledger ([^\n]+)\n```\s*```json\n(.*?)\n```", re.S)


def _contains(expected: Any, actual: Any, where: str) -> None:
    """``actual`` has everything ``expected`` shows (objects may carry more keys)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            _contains(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _contains(e, a, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("doc", ["clocks.md", "quality.md"])
def test_the_doc_samples_run(doc: str, scenario_store: str, cli: Cli) -> None:
    samples = SAMPLE.findall((DOCS / doc).read_text(encoding="utf-8"))
    assert len(samples) >= 2
    for command, shown in samples:
        args = shlex.split(command)
        result = cli(["--store", scenario_store, *args])
        assert result.exit_code == 0, (command, result.stderr)
        _contains(json.loads(shown), result.json(), command)


def test_rules_command(cli: Cli, tmp_path: Path) -> None:
    url = str(tmp_path / "empty.db")
    text = cli(["--store", url, "rules"]).stdout
    for line in (
        "scr_decision: from the first IncidentNotified to ofsted to the first DecisionMade, "
        "1 calendar month (normally), lateness justifiable by DecisionDelayed, met at its "
        "start if a DecisionMade came before it (decided-before-notification) — "
        "Working Together 2015, chapter 4",
        "no_scr_explanation: from the first DecisionMade with outcome no-review to the first "
        "DecisionCommunicated to national-panel, 14 calendar days",
    ):
        assert line in text
    rows = ok(cli, url, "rules", "wt2015")
    assert [(r["clock"], r["limit"], r["unit"]) for r in rows] == [
        ("notification", 5, "working_days"),
        ("scr_decision", 1, "calendar_months"),
        ("no_scr_explanation", 14, "calendar_days"),
        ("review_completion", 6, "calendar_months"),
    ]
    bad = cli(["--store", url, "rules", "wt2099"])
    assert bad.exit_code == 2 and "wt2015" in bad.stderr


# --- every case from the index agrees with folding each case -----------------------------


def _random_cases(seed: int, count: int) -> list[dict[str, Any]]:
    """Cases under every regime with random dates, delays, revisits and communications."""
    import random

    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(count):
        case = f"RND-{n:03d}"
        regime = rng.choice(["wt2015", "wt2018", "wt2023"])
        aware = date(2025, 9, 1) + timedelta(days=rng.randrange(200))
        day = aware + timedelta(days=rng.randrange(0, 12))
        events += [referral(case, aware.isoformat(), regime)]
        if rng.random() < 0.9:
            events.append(notified(case, day.isoformat(), regime))
        if rng.random() < 0.3:
            events.append(delayed(case, (day + timedelta(days=rng.randrange(5, 30))).isoformat()))
        if rng.random() < 0.8:
            decided_on = day + timedelta(days=rng.randrange(5, 45))
            outcome = rng.choice(["review", "no-review"])
            events.append(decided(case, decided_on.isoformat(), outcome, regime))
            if rng.random() < 0.6:
                sent = decided_on + timedelta(days=rng.randrange(0, 30))
                events.append(event("DecisionCommunicated", case, sent.isoformat(),
                                    to=["national-panel"]))  # fmt: skip
            if rng.random() < 0.3:
                again = decided_on + timedelta(days=rng.randrange(1, 40))
                events.append(decided(case, again.isoformat(), "review", regime))
            if outcome == "review" and rng.random() < 0.5:
                kind = "ReviewCompleted" if regime == "wt2015" else "ReportPublished"
                done = (decided_on + timedelta(days=rng.randrange(100, 220))).isoformat()
                extra = {} if kind == "ReviewCompleted" else {"location": "https://example.org/r"}
                events.append(event(kind, case, min(done, "2026-08-31"), **extra))
    return events


def test_every_case_from_the_index_equals_each_case_folded(
    store_url: str, clock: FixedClock
) -> None:
    from datetime import datetime

    from projections.assess.clocks import case_clocks, summary_of
    from projections.fold.when import LONDON, end_of_day
    from projections.index.records import all_clocks, summaries_by_case
    from projections.queries.cases import case_view
    from projections.queries.delays import indexed_intervals, view_interval

    events = _random_cases(4, 40)
    clock.now = datetime(2026, 8, 31, 12, tzinfo=LONDON)
    record(store_url, clock, events)
    # Correct a few notification dates a day later (recorded at the end of the run).
    clock.now = datetime(2026, 9, 1, 12, tzinfo=LONDON)
    corrections = [
        event("EntryCorrected", e["case"], "2026-09-01", corrects=f"{e['case']}#2",
              changes={"occurred_at": (d(e["occurred_at"]) + timedelta(days=2)).isoformat()},
              reason="Date mistyped.")
        for e in events[1:40:7] if e["type"] == "IncidentNotified"
    ]  # fmt: skip
    assert corrections
    record(store_url, clock, corrections)
    led = open_ledger(store_url, clock)
    try:
        refs = sorted({e["case"] for e in events})
        for on_day_, as_of in (
            (date(2025, 11, 1), None),
            (date(2026, 1, 15), None),
            (date(2026, 9, 1), None),
            (date(2026, 9, 1), datetime(2026, 8, 31, 23, tzinfo=LONDON)),
        ):
            on = end_of_day(on_day_)
            every = [s.as_dict() for s in all_clocks(led, on, as_of=as_of)]
            folded = []
            summaries = {}
            intervals = []
            for ref in refs:
                try:
                    view = case_view(led, ref, as_of, on)
                except Exception:
                    continue
                states = case_clocks(view, on)
                folded += [s.as_dict() for s in states]
                if states:
                    summaries[ref] = summary_of(states)
                found = view_interval(view, "IncidentNotified", "DecisionMade", on)
                if found is not None:
                    intervals.append(found)
            assert every == folded, (on_day_, as_of)
            assert summaries_by_case(led, on, as_of=as_of) == summaries
            for ref in refs[:5]:
                one = summaries_by_case(led, on, as_of=as_of, case=ref)
                assert one == ({ref: summaries[ref]} if ref in summaries else {})
            assert (
                indexed_intervals(led, "IncidentNotified", "DecisionMade", on, as_of=as_of)
                == intervals
            )
    finally:
        led.close()
