"""``caseledger due``: every open deadline across the open cases (issue 15 item 1).

On the demo's cases (``ledger.importing.sample``), recorded into both stores with the
ledger clock on each entry's day as the demo records them, plus a case closed with an
overdue reply and an overdue clock.  Every ``--on`` is fixed; every expected figure (due
days, working days left or over) is computed here from the dates with the ``holidays``
package, not by the code under test.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import holidays
import orjson
import pytest

from ledger.catalogue.models import LONDON, occurred_day
from ledger.importing.sample import RECORDED_LATE, decision_makers, sample_lines
from projections import api
from tests.conftest import CliResult, FixedClock, open_ledger, person

Cli = Callable[..., CliResult]

OPEN_CASE = "RR-2026-031"  # the demo's open case
CLOSED_CASE = "RR-2026-040"  # closed on 2026-11-20 with a reply and a clock overdue
DEMO_DAY = "2026-12-01"

CLOSED_LINES = [
    {
        "type": "CaseReferred",
        "case": CLOSED_CASE,
        "occurred_at": "2026-11-02",
        "regime": "wt2023",
        "subject": "Child Q (RR-2026-040)",
        "incident_date": "2026-10-30",
        "aware_date": "2026-11-02",
        "harm": "serious-harm",
        "abuse_or_neglect": "suspected",
        "home_area": "Northshire",
        "referrer": "Northshire Police",
        "route": "statutory",
        "summary": "Referred, then transferred to the partnership where the child lives.",
    },
    {
        "type": "InformationRequested",
        "case": CLOSED_CASE,
        "occurred_at": "2026-11-03",
        "agency": "Northshire Police",
        "asked_for": "minimum-data",
        "due": "2026-11-10",
    },
    {
        "type": "CaseClosed",
        "case": CLOSED_CASE,
        "occurred_at": "2026-11-20",
        "reason": "Transferred to the partnership where the child lives.",
    },
]


# --- the expected figures, computed independently ---------------------------------------


def _days_off(year: int) -> set[date]:
    return set(holidays.country_holidays("GB", subdiv="ENG", years=[year, year + 1]))


def _is_working(day: date) -> bool:
    return day.weekday() < 5 and day not in _days_off(day.year)


def working_days_after(first: date, last: date) -> int:
    """Working days (England) after ``first`` up to and including ``last``."""
    count, day = 0, first
    while day < last:
        day += timedelta(days=1)
        count += _is_working(day)
    return count


def add_working_days(start: date, n: int) -> date:
    """The day ``n`` working days (England) after ``start``."""
    day = start
    while n:
        day += timedelta(days=1)
        n -= _is_working(day)
    return day


def expected_left(due: date, on: date) -> int:
    """Working days left to ``due`` on ``on``, negative for those over."""
    return working_days_after(on, due) if on <= due else -working_days_after(due, on)


# --- the store --------------------------------------------------------------------------


def _record_demo(url: str) -> None:
    """The demo's cases as ``record_sample`` records them (each entry on its day, a few
    late), by the store identity (PostgreSQL takes the actor from the session), then the
    closed case."""
    clock = FixedClock(datetime(2000, 1, 1, tzinfo=UTC))
    led = open_ledger(url, clock)
    for name, role in decision_makers():
        led.enrol(name, [role], led.recorder_for_action("users"))
    writer = led.recorder_for("business-unit")
    lines = [*sample_lines(), *((CLOSED_CASE, 0, orjson.dumps(x)) for x in CLOSED_LINES)]
    for case, number, line in lines:
        data = orjson.loads(line)
        late = RECORDED_LATE.get((case, number))
        day = occurred_day(late or data.get("occurred_at") or "2000-01-01")
        at = datetime.combine(day, time(17, 0), LONDON).astimezone(UTC)
        clock.now = max(clock.now + timedelta(seconds=1), at)
        led.record_lines([line], writer)
    led.close()


@pytest.fixture
def desk(store_url: str) -> str:
    """A store holding the demo's cases and a closed case."""
    _record_demo(store_url)
    return store_url


def _due(cli: Cli, url: str, *args: str) -> list[dict[str, object]]:
    result = cli(["--store", url, "due", *args, "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    listed: list[dict[str, object]] = result.json()
    return listed


# --- the tests --------------------------------------------------------------------------


def test_the_open_case_overdue_clock_and_reply_with_their_working_days(cli: Cli, desk: str) -> None:
    """On the demo's day: RR-2026-031's rapid review (15 working days from the
    notification on 2026-11-05) and Children's Social Care's reply (due 2026-11-12) are
    overdue, by the working days between the dates; nothing else is open (RR-2025-017
    sent its final report before publishing; RR-2026-004, the shared scenario, records
    none, so it has no final-report clock)."""
    on = date(2026, 12, 1)
    everything = _due(cli, desk, "--on", DEMO_DAY)
    assert [r for r in everything if r["case"] != OPEN_CASE] == []
    listed = [r for r in everything if r["case"] == OPEN_CASE]
    assert [row["kind"] for row in listed] == ["reply", "clock"]  # the older one first
    reply, clock = listed
    rapid_due = add_working_days(date(2026, 11, 5), 15)
    assert clock["clock"] == "rapid_review" and clock["what"] == "rapid review"
    assert clock["due"] == rapid_due.isoformat()
    assert clock["overdue"] is True and clock["justified"] is False
    assert clock["unit"] == "working-days"
    assert clock["left"] == expected_left(rapid_due, on) == -3
    assert reply["agency"] == reply["from"] == "Northshire Children's Social Care"
    assert reply["due"] == "2026-11-12" and reply["overdue"] is True
    assert reply["unit"] == "working-days" and reply["justified"] is False
    assert reply["left"] == expected_left(date(2026, 11, 12), on) == -13
    assert reply["request_id"] and str(reply["request_id"]) in str(reply["what"])
    # cli.md's keys first, in its order
    assert list(clock)[:9] == [
        "case",
        "kind",
        "what",
        "from",
        "due",
        "overdue",
        "left",
        "unit",
        "justified",
    ]


def test_within_keeps_what_is_due_within_n_working_days_and_every_overdue_one(
    cli: Cli, desk: str
) -> None:
    """On 2026-11-18 the rapid review is due in 6 working days and the reply is overdue:
    ``--within 5`` keeps the reply only, ``--within 6`` both; for every N the kept ones
    are exactly the overdue and those due by the day N working days on."""
    on = date(2026, 11, 18)
    every = _due(cli, desk, "--on", on.isoformat())
    rapid = next(r for r in every if r["clock"] == "rapid_review")
    assert rapid["left"] == working_days_after(on, date(2026, 11, 26)) == 6
    five = _due(cli, desk, "--on", on.isoformat(), "--within", "5")
    assert [r["clock"] for r in five if r["case"] == OPEN_CASE and r["kind"] == "clock"] == []
    assert any(r["case"] == OPEN_CASE and r["kind"] == "reply" and r["overdue"] for r in five)
    six = _due(cli, desk, "--on", on.isoformat(), "--within", "6")
    assert any(r["clock"] == "rapid_review" for r in six)
    for n in (0, 1, 5, 10, 30):
        limit = add_working_days(on, n)
        kept = _due(cli, desk, "--on", on.isoformat(), "--within", str(n))
        assert kept == [
            r for r in every if r["overdue"] or date.fromisoformat(str(r["due"])) <= limit
        ], n


def test_within_counts_over_a_bank_holiday_and_calendar_clocks_in_calendar_days(
    cli: Cli, desk: str
) -> None:
    """RR-2026-004's review (six calendar months from the decision on 2026-03-06, due
    2026-09-06) is listed in calendar days; from 2026-08-25 five working days end on
    2026-09-02 (the summer bank holiday on 31 August is not one), so ``--within 5``
    leaves it out and ``--within 8`` keeps it."""
    on = date(2026, 8, 25)
    every = _due(cli, desk, "--on", on.isoformat(), "--case", "RR-2026-004")
    (review,) = every
    assert review["clock"] == "review_completion" and review["what"] == "review completion"
    assert review["due"] == "2026-09-06" and review["unit"] == "calendar-days"
    assert review["left"] == (date(2026, 9, 6) - on).days == 12
    assert add_working_days(on, 5) == date(2026, 9, 2)
    assert _due(cli, desk, "--on", on.isoformat(), "--case", "RR-2026-004", "--within", "5") == []
    assert add_working_days(on, 8) >= date(2026, 9, 6)
    assert (
        _due(cli, desk, "--on", on.isoformat(), "--case", "RR-2026-004", "--within", "8") == every
    )


def test_an_approved_delay_justifies_an_overdue_clock(cli: Cli, desk: str) -> None:
    """SCR-2016-011's decision (one calendar month from the notification on 2016-10-07)
    is overdue on 2016-11-10, justified by the delay approved on 2016-11-01; the police's
    reply due 2016-10-21 is overdue by the working days since."""
    on = date(2016, 11, 10)
    listed = _due(cli, desk, "--on", on.isoformat())
    decision = next(r for r in listed if r["clock"] == "scr_decision")
    assert decision["due"] == "2016-11-07" and decision["overdue"] is True
    assert decision["justified"] is True and decision["unit"] == "calendar-days"
    assert decision["left"] == -(on - date(2016, 11, 7)).days
    police = next(r for r in listed if r["agency"] == "Eastborough Police")
    assert police["left"] == -working_days_after(date(2016, 10, 21), on)


def test_closed_cases_are_left_out(cli: Cli, desk: str) -> None:
    """RR-2026-040's overdue reply and notification clock are listed before it was closed,
    and not after (nor for the case alone)."""
    before = _due(cli, desk, "--on", "2026-11-19")
    mine = [r for r in before if r["case"] == CLOSED_CASE]
    assert {r["kind"] for r in mine} == {"clock", "reply"}
    notification = next(r for r in mine if r["kind"] == "clock")
    assert notification["clock"] == "notification"
    assert notification["due"] == add_working_days(date(2026, 11, 2), 5).isoformat()
    assert all(r["case"] != CLOSED_CASE for r in _due(cli, desk, "--on", "2026-11-24"))
    assert _due(cli, desk, "--on", "2026-11-24", "--case", CLOSED_CASE) == []


def test_kind_and_case_filter(cli: Cli, desk: str) -> None:
    """``--kind`` keeps one kind, ``--case`` one case; each is the matching part of the
    whole list, and one case (folded) answers as the index does."""
    on = "2026-11-19"
    every = _due(cli, desk, "--on", on)
    assert len({r["case"] for r in every}) >= 2
    for kind in ("clock", "reply"):
        only = _due(cli, desk, "--on", on, "--kind", kind)
        assert only and only == [r for r in every if r["kind"] == kind]
    for case in {str(r["case"]) for r in every}:
        assert _due(cli, desk, "--on", on, "--case", case) == [
            r for r in every if r["case"] == case
        ]
    assert _due(cli, desk, "--on", on, "--case", OPEN_CASE, "--kind", "reply") == [
        r for r in every if r["case"] == OPEN_CASE and r["kind"] == "reply"
    ]


def test_as_of_shows_the_record_as_it_stood(cli: Cli, desk: str) -> None:
    """As the record stood at the end of 2026-11-12 the police had not yet declined (it
    was recorded on 13 November): their request is still open then."""
    now = {r["agency"] for r in _due(cli, desk, "--on", DEMO_DAY, "--kind", "reply")}
    then = _due(cli, desk, "--on", DEMO_DAY, "--kind", "reply", "--as-of", "2026-11-12")
    assert now == {"Northshire Children's Social Care"}
    assert {r["agency"] for r in then} == {"Northshire Police", "Northshire Children's Social Care"}


def test_csv_has_the_json_rows(cli: Cli, desk: str) -> None:
    result = cli(["--store", desk, "due", "--on", "2026-11-19", "--csv"])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    listed = _due(cli, desk, "--on", "2026-11-19")
    assert len(rows) == len(listed) > 0
    for row, item in zip(rows, listed, strict=True):
        assert row["case"] == item["case"] and row["what"] == item["what"]
        assert row["from"] == (item["from"] or "")
        assert int(row["left"]) == item["left"] and row["unit"] == item["unit"]
        assert row["overdue"] == ("true" if item["overdue"] else "false")


def test_the_table_for_people(cli: Cli, desk: str) -> None:
    """At 80 columns: every case reference and due date whole, clock names in words, how
    far over in its unit."""
    result = cli(["--store", desk, "due", "--on", "2026-11-19"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    for item in _due(cli, desk, "--on", "2026-11-19"):
        assert str(item["case"]) in text and str(item["due"]) in text
    assert "rapid review" in text and "rapid_review" not in text
    assert re.search(r"\b\d+ working\b", text) and " over" in text and "…" not in text
    assert "not justified" in text
    quiet = cli(["--store", desk, "due", "--on", "2016-01-01", "--case", "SCR-2016-011"])
    assert quiet.exit_code == 2  # not yet referred then


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--within", "-1"], "--within"),
        (["--within", "soon"], "--within"),
        (["--within", "100000"], "--within"),
        (["--kind", "deadline"], "--kind"),
        (["--kind", "clocks"], "--kind"),
        (["--on", "yesterday-ish"], "--on"),
        (["--case", "RR-1999-001"], "--case"),
        (["--json", "--csv"], "--csv"),
    ],
)
def test_mistakes_exit_2_naming_the_option(
    cli: Cli, desk: str, args: list[str], option: str
) -> None:
    result = cli(["--store", desk, "due", *args])
    assert result.exit_code == 2, result.stdout + result.stderr
    assert option in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_facade(desk: str) -> None:
    """``projections.api.due`` returns a frozen ``DueList`` of ``Deadline``s whose
    ``to_json()`` is what ``--json`` prints."""
    led = open_ledger(desk)
    answer = api.due(led, on="2026-11-19", within=5, kind="reply")
    assert answer.within == 5 and answer.kind == "reply" and answer.day == date(2026, 11, 19)
    assert answer.deadlines and all(d.kind == "reply" for d in answer.deadlines)
    first = answer.deadlines[0]
    assert first.from_ == first.agency and first.clock is None
    with pytest.raises(AttributeError):
        first.left = 0  # type: ignore[misc]
    assert answer.to_json() == [d.as_dict() for d in answer.deadlines]
    assert answer.csv_rows()[0][:9] == [
        "case",
        "kind",
        "what",
        "from",
        "due",
        "overdue",
        "left",
        "unit",
        "justified",
    ]


def test_a_reader_sees_the_same_list_and_what_was_recorded_since(desk: str) -> None:
    """A user who may only read (on PostgreSQL, SELECT only) gets the same list from the
    index, with an entry recorded after the index last caught up folded in: a reply
    received leaves the list."""
    owner = open_ledger(desk)
    expected = api.due(owner, on=DEMO_DAY).to_json()
    reader = person(desk, "reader", "reader").ledger()
    assert api.due(reader, on=DEMO_DAY).to_json() == expected
    reply = {
        "type": "InformationReceived",
        "case": OPEN_CASE,
        "occurred_at": "2026-11-30",
        "agency": "Northshire Children's Social Care",
        "involved": True,
        "summary": "Known to the service since the birth.",
    }
    clock = FixedClock(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    writer = open_ledger(desk, clock)
    writer.record_lines([orjson.dumps(reply)], writer.recorder_for("business-unit"))
    after = api.due(reader, on=DEMO_DAY).to_json()
    assert [r["kind"] for r in after if r["case"] == OPEN_CASE] == ["clock"]
    assert len(after) == len(expected) - 1
    assert after == api.due(owner, on=DEMO_DAY).to_json()


# --- the pure part ----------------------------------------------------------------------


def test_the_pure_part_on_a_weekend_after_a_friday() -> None:
    """A reply due on Friday 2026-11-13 is not overdue on the Saturday (0 working days
    left) and is one working day over on the Monday, as ``status`` counts it; a
    working-day clock due that Friday is overdue on the Saturday (as ``clocks`` says)
    with no working day over yet; a met clock is no deadline."""
    from projections.assess.clock_states import ClockState, ClockStatus
    from projections.assess.rules import rule_pack
    from projections.queries.desk import clock_deadline, ordered, reply_deadline

    friday, saturday, monday = date(2026, 11, 13), date(2026, 11, 14), date(2026, 11, 16)
    request = {"agency": "Northshire ICB", "request_id": "R3", "due": friday.isoformat()}
    on_saturday = reply_deadline("RR-2026-031", "wt2023", request, saturday)
    on_monday = reply_deadline("RR-2026-031", "wt2023", request, monday)
    assert on_saturday is not None and on_monday is not None
    assert (on_saturday.overdue, on_saturday.left) == (False, 0)
    assert (on_monday.overdue, on_monday.left) == (True, -1)
    assert reply_deadline("RR-2026-031", "wt2023", {**request, "due": None}, monday) is None
    rule = rule_pack("wt2023").clock("rapid_review")

    def state(status: ClockStatus, on: date) -> ClockState:
        return ClockState(
            "RR-2026-031", "wt2023", rule, on, status, started=date(2026, 10, 23), due=friday
        )

    late = clock_deadline(state("overdue", saturday))
    assert late is not None and late.overdue and late.left == 0
    running = clock_deadline(state("running", date(2026, 11, 9)))
    assert running is not None and running.left == working_days_after(date(2026, 11, 9), friday)
    assert clock_deadline(state("met", monday)) is None
    assert ordered([running, on_monday]) == [on_monday, running]


def test_a_clock_says_who_must_act(cli: Cli, desk: str) -> None:
    """Issue 15 item 1, "from whom": a clock's `from` is who its rule pack says must act
    before it is due (the pack's `owner`), shown beside the clock in the table; a reply's
    is the agency (above)."""
    (clock,) = [
        r for r in _due(cli, desk, "--on", DEMO_DAY, "--kind", "clock") if r["case"] == OPEN_CASE
    ]
    assert clock["case"] == OPEN_CASE and clock["regime"] == "wt2023"
    assert clock["from"] == "the lead safeguarding partners"
    table = cli(
        ["--store", desk, "due", "--on", DEMO_DAY, "--kind", "clock"], env={"COLUMNS": "120"}
    )
    assert "rapid review, by the lead safeguarding partners" in " ".join(table.stdout.split())


def test_now_reads_the_replies_from_the_index_rows_with_the_same_answer(desk: str) -> None:
    """Without ``--on`` or ``--as-of`` the replies come from each case's index row (as
    ``status`` reads them) rather than from every request entry: the same deadlines as
    the entry-by-entry reading, for the owner and for a reader whose index lags behind."""
    from projections.queries.desk import open_deadlines

    moment = datetime.combine(date.fromisoformat(DEMO_DAY), time(23, 0), LONDON)
    owner = open_ledger(desk)
    assert open_deadlines(owner, moment, current=True) == open_deadlines(owner, moment)
    reader = person(desk, "reader", "reader").ledger()  # granted once the index exists
    assert open_deadlines(reader, moment, current=True) == open_deadlines(reader, moment)
    reply = {
        "type": "InformationReceived",
        "case": OPEN_CASE,
        "occurred_at": "2026-11-30",
        "agency": "Northshire Children's Social Care",
        "involved": True,
        "summary": "Known to the service since the birth.",
    }
    clock = FixedClock(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    writer = open_ledger(desk, clock)
    before = open_deadlines(reader, moment, current=True)
    writer.record_lines([orjson.dumps(reply)], writer.recorder_for("business-unit"))
    after = open_deadlines(reader, moment, current=True)
    assert after == open_deadlines(reader, moment)
    assert len([d for d in after if d.kind == "reply"]) == (
        len([d for d in before if d.kind == "reply"]) - 1
    )
