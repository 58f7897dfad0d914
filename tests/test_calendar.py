"""The working-day calendar and the date arithmetic of the statutory clocks.

Expected dates were worked out by hand (the working is in the comments), their weekdays
checked against GNU ``date``, and the holidays against the ``holidays`` package and the
GOV.UK bank-holiday list.  The start day of a clock is day 0.
"""

from __future__ import annotations

import calendar as stdlib_calendar
import time
from datetime import date, datetime, timedelta

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.assess.calendar import (
    NATIONS,
    UNITS,
    Calendar,
    _year_holidays,
    add_days,
    add_months,
    calendar_days_between,
    due_date,
)

EW = Calendar()
SCOTLAND = Calendar("scotland")
NORTHERN_IRELAND = Calendar("northern-ireland")

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)

# Years the property tests range over: the regimes' era with margin on both sides.
days = st.dates(min_value=date(1995, 1, 1), max_value=date(2060, 12, 31))
nations = st.sampled_from(sorted(NATIONS))


def d(text: str) -> date:
    return date.fromisoformat(text)


# --- the basics ---------------------------------------------------------------------


def test_default_nation_is_england_and_wales() -> None:
    assert Calendar().nation == "england-and-wales"
    assert set(NATIONS) == {"england-and-wales", "scotland", "northern-ireland"}


def test_unknown_nation_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown nation 'wales'"):
        Calendar("wales")


def test_calendar_is_frozen_and_hashable() -> None:
    with pytest.raises(AttributeError):
        EW.nation = "scotland"  # type: ignore[misc]
    assert {Calendar(), Calendar()} == {EW}


def test_five_working_days_from_a_plain_monday_is_the_next_monday() -> None:
    # Mon 2 Mar 2026, no holidays: Tue 3 (1) Wed 4 (2) Thu 5 (3) Fri 6 (4) Mon 9 (5).
    assert d("2026-03-02").weekday() == MON
    assert EW.add_working_days(d("2026-03-02"), 5) == d("2026-03-09")
    assert EW.working_days_between(d("2026-03-02"), d("2026-03-09")) == 5


def test_zero_working_days_is_the_start_even_on_a_weekend() -> None:
    assert EW.add_working_days(d("2026-03-07"), 0) == d("2026-03-07")  # a Saturday


def test_a_weekend_start_counts_from_the_next_working_day() -> None:
    # Sat 7 Mar 2026: Mon 9 is working day 1.
    assert EW.add_working_days(d("2026-03-07"), 1) == d("2026-03-09")


def test_negative_working_days_go_backwards() -> None:
    # Back from Tue 7 Apr 2026 over Easter: Thu 2 Apr is 1 back (Mon 6, Fri 3 are holidays).
    assert EW.add_working_days(d("2026-04-07"), -1) == d("2026-04-02")


def test_working_days_between_is_zero_when_end_is_not_after_start() -> None:
    assert EW.working_days_between(d("2026-03-09"), d("2026-03-09")) == 0
    assert EW.working_days_between(d("2026-03-09"), d("2026-03-02")) == 0


def test_datetimes_are_refused() -> None:
    moment = datetime(2026, 3, 2, 9, 30)
    with pytest.raises(TypeError, match="occurred_at"):
        EW.is_working_day(moment)
    with pytest.raises(TypeError):
        add_months(moment, 1)
    with pytest.raises(TypeError):
        EW.working_days_between(d("2026-03-02"), moment)


# --- the scenario's figures -------------------------------------------------------------


def test_scenario_notification_due() -> None:
    # Aware Mon 9 Feb 2026: Tue 10 (1) Wed 11 (2) Thu 12 (3) Fri 13 (4) Mon 16 (5).
    assert d("2026-02-09").weekday() == MON
    assert due_date(d("2026-02-09"), 5, "working_days", EW) == d("2026-02-16")


def test_scenario_rapid_review_due() -> None:
    # Notified Fri 13 Feb 2026, no holidays until Easter:
    # 16-20 Feb (1-5), 23-27 Feb (6-10), 2-6 Mar (11-15): Fri 6 Mar.
    assert d("2026-02-13").weekday() == FRI
    assert due_date(d("2026-02-13"), 15, "working_days", EW) == d("2026-03-06")


def test_scenario_review_completion_due() -> None:
    # 6 Mar 2026 + 6 calendar months = 6 Sep 2026 (a Sunday: month limits do not roll).
    assert due_date(d("2026-03-06"), 6, "calendar_months", EW) == d("2026-09-06")


def test_scenario_day_counts() -> None:
    # 13 Feb -> 6 Mar 2026: 15 working days (above); calendar: 15 days to 28 Feb + 6 = 21.
    assert EW.working_days_between(d("2026-02-13"), d("2026-03-06")) == 15
    assert calendar_days_between(d("2026-02-13"), d("2026-03-06")) == 21
    # 9 -> 13 Feb 2026: Tue 10, Wed 11, Thu 12, Fri 13 = 4 of each.
    assert EW.working_days_between(d("2026-02-09"), d("2026-02-13")) == 4
    assert calendar_days_between(d("2026-02-09"), d("2026-02-13")) == 4
    assert EW.holidays_between(d("2026-02-09"), d("2026-03-06")) == []


# --- clocks spanning bank holidays -------------------------------------------------------


def test_easter_2026_holidays_are_in_the_package() -> None:
    assert d("2026-04-03").weekday() == FRI and d("2026-04-06").weekday() == MON
    assert EW.holidays_between(d("2026-03-27"), d("2026-04-21")) == [
        (d("2026-04-03"), "Good Friday"),
        (d("2026-04-06"), "Easter Monday"),
    ]


def test_notification_spanning_easter_2026() -> None:
    # Aware Wed 1 Apr 2026: Thu 2 (1), Fri 3 Good Friday, Sat, Sun, Mon 6 Easter Monday,
    # Tue 7 (2) Wed 8 (3) Thu 9 (4) Fri 10 (5).
    assert d("2026-04-01").weekday() == WED
    assert EW.add_working_days(d("2026-04-01"), 5) == d("2026-04-10")
    assert EW.working_days_between(d("2026-04-01"), d("2026-04-10")) == 5
    assert calendar_days_between(d("2026-04-01"), d("2026-04-10")) == 9


def test_rapid_review_spanning_easter_2026() -> None:
    # Notified Fri 27 Mar 2026: Mon 30 (1) Tue 31 (2) Wed 1 (3) Thu 2 (4), [Fri 3, Sat, Sun,
    # Mon 6 off], Tue 7 (5) Wed 8 (6) Thu 9 (7) Fri 10 (8), Mon 13 - Fri 17 (9-13),
    # Mon 20 (14) Tue 21 (15).
    assert d("2026-03-27").weekday() == FRI
    assert EW.add_working_days(d("2026-03-27"), 15) == d("2026-04-21")


def test_easter_monday_is_a_working_day_in_scotland() -> None:
    assert not EW.is_working_day(d("2026-04-06"))
    assert SCOTLAND.is_working_day(d("2026-04-06"))
    assert not SCOTLAND.is_working_day(d("2026-04-03"))  # Good Friday is everywhere
    # Aware Wed 1 Apr 2026 in Scotland: Thu 2 (1), Fri 3 off, Mon 6 (2) Tue 7 (3) Wed 8 (4)
    # Thu 9 (5).
    assert SCOTLAND.add_working_days(d("2026-04-01"), 5) == d("2026-04-09")


def test_christmas_2026_with_boxing_day_substitute() -> None:
    # 25 Dec 2026 is a Friday, 26 Dec a Saturday, so Boxing Day moves to Mon 28 Dec.
    assert d("2026-12-25").weekday() == FRI and d("2026-12-28").weekday() == MON
    assert not EW.is_working_day(d("2026-12-28"))
    # Aware Wed 23 Dec 2026: Thu 24 (1), Fri 25 off, Sat, Sun, Mon 28 off, Tue 29 (2)
    # Wed 30 (3) Thu 31 (4), Fri 1 Jan 2027 New Year's Day off, Sat, Sun, Mon 4 Jan (5).
    assert EW.add_working_days(d("2026-12-23"), 5) == d("2027-01-04")
    assert EW.working_days_between(d("2026-12-23"), d("2027-01-04")) == 5
    # The Saturday Boxing Day cost no working day, so it is not listed; its substitute is.
    assert EW.holidays_between(d("2026-12-23"), d("2027-01-04")) == [
        (d("2026-12-25"), "Christmas Day"),
        (d("2026-12-28"), "Boxing Day (observed)"),
        (d("2027-01-01"), "New Year's Day"),
    ]


def test_christmas_2027_with_two_substitute_days() -> None:
    # 25 Dec 2027 is a Saturday and 26 Dec a Sunday: substitutes Mon 27 and Tue 28 Dec.
    assert d("2027-12-25").weekday() == SAT and d("2027-12-26").weekday() == SUN
    assert not EW.is_working_day(d("2027-12-27"))
    assert not EW.is_working_day(d("2027-12-28"))
    assert EW.is_working_day(d("2027-12-29"))
    # Aware Fri 24 Dec 2027: Sat, Sun, Mon 27 off, Tue 28 off, Wed 29 (1) Thu 30 (2)
    # Fri 31 (3), Sat 1 Jan 2028 New Year's Day so Mon 3 Jan off, Tue 4 (4) Wed 5 (5).
    assert d("2027-12-24").weekday() == FRI
    assert EW.add_working_days(d("2027-12-24"), 5) == d("2028-01-05")
    assert EW.working_days_between(d("2027-12-24"), d("2028-01-05")) == 5
    assert [h for h, _ in EW.holidays_between(d("2027-12-24"), d("2028-01-05"))] == [
        d("2027-12-27"),
        d("2027-12-28"),
        d("2028-01-03"),
    ]


def test_platinum_jubilee_2022() -> None:
    # Spring bank holiday moved from Mon 30 May to Thu 2 Jun 2022; Jubilee Fri 3 Jun 2022.
    assert d("2022-06-02").weekday() == THU and d("2022-06-03").weekday() == FRI
    assert EW.is_working_day(d("2022-05-30"))  # the usual last Monday of May was not off
    assert not EW.is_working_day(d("2022-06-02"))
    assert not EW.is_working_day(d("2022-06-03"))
    # Aware Tue 31 May 2022: Wed 1 Jun (1), Thu 2 off, Fri 3 off, Sat, Sun, Mon 6 (2)
    # Tue 7 (3) Wed 8 (4) Thu 9 (5).
    assert d("2022-05-31").weekday() == TUE
    assert EW.add_working_days(d("2022-05-31"), 5) == d("2022-06-09")
    assert [h for h, _ in EW.holidays_between(d("2022-05-27"), d("2022-06-09"))] == [
        d("2022-06-02"),
        d("2022-06-03"),
    ]


def test_state_funeral_2022() -> None:
    # The State Funeral of Queen Elizabeth II, Mon 19 Sep 2022, was a one-off bank holiday.
    # Aware Thu 15 Sep 2022: Fri 16 (1), Sat, Sun, Mon 19 off, Tue 20 (2) Wed 21 (3)
    # Thu 22 (4) Fri 23 (5).
    assert d("2022-09-19").weekday() == MON
    assert not EW.is_working_day(d("2022-09-19"))
    assert EW.add_working_days(d("2022-09-15"), 5) == d("2022-09-23")
    assert EW.working_days_between(d("2022-09-15"), d("2022-09-23")) == 5


def test_coronation_2023() -> None:
    # The Coronation, Mon 8 May 2023, one week after the May Day holiday (Mon 1 May).
    assert d("2023-05-08").weekday() == MON
    assert not EW.is_working_day(d("2023-05-08"))
    # Aware Fri 28 Apr 2023: Sat, Sun, Mon 1 May off, Tue 2 (1) Wed 3 (2) Thu 4 (3)
    # Fri 5 (4), Sat, Sun, Mon 8 off, Tue 9 (5).
    assert d("2023-04-28").weekday() == FRI
    assert EW.add_working_days(d("2023-04-28"), 5) == d("2023-05-09")
    # Rapid review from the same Friday: ... Tue 9 (5) Wed 10 (6) Thu 11 (7) Fri 12 (8),
    # Mon 15 - Fri 19 (9-13), Mon 22 (14) Tue 23 (15); the spring holiday (29 May) is after.
    assert EW.add_working_days(d("2023-04-28"), 15) == d("2023-05-23")
    assert EW.working_days_between(d("2023-04-28"), d("2023-05-23")) == 15


def test_notification_on_the_friday_before_a_bank_holiday_monday() -> None:
    # Aware Fri 22 May 2026, spring bank holiday Mon 25 May: Tue 26 (1) Wed 27 (2)
    # Thu 28 (3) Fri 29 (4), Sat, Sun, Mon 1 Jun (5).
    assert d("2026-05-22").weekday() == FRI and d("2026-05-25").weekday() == MON
    assert EW.holidays_between(d("2026-05-22"), d("2026-06-01")) == [
        (d("2026-05-25"), "Spring Bank Holiday")
    ]
    assert due_date(d("2026-05-22"), 5, "working_days", EW) == d("2026-06-01")


def test_nations_differ_where_they_should() -> None:
    # St Patrick's Day (Tue 17 Mar 2026) is off in Northern Ireland only; 2 Jan (Fri 2 Jan
    # 2026) and St Andrew's Day (Mon 30 Nov 2026) in Scotland only.
    assert not NORTHERN_IRELAND.is_working_day(d("2026-03-17"))
    assert EW.is_working_day(d("2026-03-17")) and SCOTLAND.is_working_day(d("2026-03-17"))
    assert not SCOTLAND.is_working_day(d("2026-01-02"))
    assert not SCOTLAND.is_working_day(d("2026-11-30"))
    assert EW.is_working_day(d("2026-01-02")) and EW.is_working_day(d("2026-11-30"))
    # Battle of the Boyne falls on Sun 12 Jul 2026: Northern Ireland has Mon 13 Jul off.
    assert not NORTHERN_IRELAND.is_working_day(d("2026-07-13"))


def test_england_and_wales_lists_are_still_the_same() -> None:
    # "england-and-wales" follows the package's England list; if Wales ever gained a day of
    # its own this test says so, and NATIONS needs a decision.
    years = range(1995, 2061)
    england = holidays.country_holidays("GB", subdiv="ENG", years=years)
    wales = holidays.country_holidays("GB", subdiv="WLS", years=years)
    assert dict(england) == dict(wales)


# --- month arithmetic ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-01-31", 1, "2026-02-28"),  # 2026 is not a leap year
        ("2028-01-31", 1, "2028-02-29"),  # 2028 is
        ("2025-08-31", 6, "2026-02-28"),  # Aug + 6 = Feb
        ("2027-08-31", 6, "2028-02-29"),
        ("2026-03-31", 6, "2026-09-30"),  # September has 30 days
        ("2026-03-06", 6, "2026-09-06"),  # no clamping needed
        ("2026-10-31", 4, "2027-02-28"),  # across a year end
        ("2028-02-29", 12, "2029-02-28"),
        ("2026-12-15", 1, "2027-01-15"),
        ("2026-03-31", -1, "2026-02-28"),  # backwards clamps the same way
        ("2026-01-15", -13, "2024-12-15"),
    ],
)
def test_add_months_clamps_to_the_month_end(start: str, months: int, expected: str) -> None:
    assert add_months(d(start), months) == d(expected)


def test_scr_decision_from_31_january() -> None:
    # wt2015's "1 calendar month" from a notification on Sat 31 Jan 2026 ends Sat 28 Feb.
    assert due_date(d("2026-01-31"), 1, "calendar_months", EW) == d("2026-02-28")
    assert due_date(d("2028-01-31"), 1, "calendar_months", EW) == d("2028-02-29")


def test_calendar_days() -> None:
    # 14 calendar days from Sun 20 Dec 2026 is Sun 3 Jan 2027 (11 days to 31 Dec + 3).
    assert due_date(d("2026-12-20"), 14, "calendar_days", EW) == d("2027-01-03")
    assert add_days(d("2026-12-20"), -20) == d("2026-11-30")
    assert calendar_days_between(d("2026-12-20"), d("2027-01-03")) == 14
    assert calendar_days_between(d("2027-01-03"), d("2026-12-20")) == 0


def test_due_date_rejects_an_unknown_unit() -> None:
    assert UNITS == ("working_days", "calendar_days", "calendar_months")
    with pytest.raises(ValueError, match="unknown unit 'weeks'"):
        due_date(d("2026-01-01"), 1, "weeks", EW)


# --- properties -----------------------------------------------------------------------------


def _raw_days_off(subdiv: str, start: date, end: date) -> set[date]:
    """The package's holidays, straight from it, as an oracle independent of the cache."""
    table = holidays.country_holidays("GB", subdiv=subdiv, years=range(start.year, end.year + 1))
    return set(table)


@given(start=days, n=st.integers(min_value=0, max_value=400), nation=nations)
def test_between_inverts_add(start: date, n: int, nation: str) -> None:
    cal = Calendar(nation)
    end = cal.add_working_days(start, n)
    assert cal.working_days_between(start, end) == n
    if n > 0:
        assert end > start
        assert cal.is_working_day(end)
        assert cal.working_days_between(start, end - timedelta(days=1)) == n - 1


@given(start=days, n=st.integers(min_value=-400, max_value=400), nation=nations)
def test_add_then_subtract_returns_to_a_working_start(start: date, n: int, nation: str) -> None:
    cal = Calendar(nation)
    if cal.is_working_day(start):
        assert cal.add_working_days(cal.add_working_days(start, n), -n) == start


@given(start=days, span=st.integers(min_value=-10, max_value=800), nation=nations)
def test_between_counts_like_a_day_by_day_walk(start: date, span: int, nation: str) -> None:
    # The arithmetic count agrees with walking every day and asking the package directly.
    cal = Calendar(nation)
    end = start + timedelta(days=span)
    off = _raw_days_off(NATIONS[nation], start, end)
    walked = sum(
        1
        for i in range(1, span + 1)
        if (day := start + timedelta(days=i)).weekday() < 5 and day not in off
    )
    assert cal.working_days_between(start, end) == walked
    listed = cal.holidays_between(start, end)
    assert [h for h, _ in listed] == sorted(h for h in off if start < h <= end and h.weekday() < 5)
    assert calendar_days_between(start, end) - walked == len(listed) + sum(
        1 for i in range(1, span + 1) if (start + timedelta(days=i)).weekday() >= 5
    )


@given(a=days, b=days, c=days)
def test_between_is_additive(a: date, b: date, c: date) -> None:
    a, b, c = sorted((a, b, c))
    assert EW.working_days_between(a, b) + EW.working_days_between(b, c) == (
        EW.working_days_between(a, c)
    )


@given(day=days, nation=nations)
def test_is_working_day_matches_the_package(day: date, nation: str) -> None:
    off = _raw_days_off(NATIONS[nation], day, day)
    assert Calendar(nation).is_working_day(day) == (day.weekday() < 5 and day not in off)


@given(start=days, n=st.integers(min_value=-240, max_value=240))
def test_add_months_keeps_the_day_or_clamps(start: date, n: int) -> None:
    result = add_months(start, n)
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == n
    last = stdlib_calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(start.day, last)
    if start.day <= 28:
        assert add_months(result, -n) == start


@given(start=days, n=st.integers(min_value=0, max_value=5000))
def test_calendar_days_invert_add_days(start: date, n: int) -> None:
    assert calendar_days_between(start, add_days(start, n)) == n


@given(start=days, limit=st.integers(min_value=0, max_value=60), unit=st.sampled_from(UNITS))
def test_due_date_is_never_before_the_start(start: date, limit: int, unit: str) -> None:
    due = due_date(start, limit, unit, EW)
    assert due >= start
    assert (due == start) == (limit == 0)


# --- speed ----------------------------------------------------------------------------------


def test_holiday_tables_are_built_once_per_year() -> None:
    EW.add_working_days(d("2031-12-20"), 15)
    before = _year_holidays.cache_info()
    for _ in range(100):
        EW.add_working_days(d("2031-12-20"), 15)
    after = _year_holidays.cache_info()
    assert after.misses == before.misses


def test_tens_of_thousands_of_clocks_are_quick() -> None:
    # 30,000 cases x (two working-day clocks + one month clock + two counts) in well under
    # the time a holiday table per call would take (about 0.5 ms each, i.e. 75 s).
    starts = [d("2019-01-01") + timedelta(days=i % 2900) for i in range(30_000)]
    began = time.perf_counter()
    for start in starts:
        notified = due_date(start, 5, "working_days", EW)
        decided = due_date(notified, 15, "working_days", EW)
        due_date(decided, 6, "calendar_months", EW)
        EW.working_days_between(start, decided)
        EW.working_days_between(start, start + timedelta(days=400))
    assert time.perf_counter() - began < 10


# --- the table generated from the package (issue 18: its import was most of a cold status)


def test_the_shipped_table_is_what_the_installed_package_gives() -> None:
    from projections.assess import bank_holidays

    assert bank_holidays.installed_version() == holidays.__version__
    assert bank_holidays.TABLE_MODULE.read_text(encoding="utf-8") == bank_holidays.table_source(), (
        "run python -m cli.reference"
    )
    for subdiv in bank_holidays.SUBDIVISIONS:
        for year in range(bank_holidays.FIRST_YEAR, bank_holidays.LAST_YEAR + 1):
            shipped = bank_holidays.shipped_year(subdiv, year)
            assert shipped == bank_holidays.package_year(subdiv, year), (subdiv, year)
    assert set(bank_holidays.SUBDIVISIONS) == set(NATIONS.values())


def test_another_version_of_the_package_answers_for_itself() -> None:
    from projections.assess import bank_holiday_table, bank_holidays

    assert bank_holidays.table_for(bank_holiday_table.HOLIDAYS_VERSION) is not None
    assert bank_holidays.table_for("0.0") is None
    assert bank_holidays.table_for(None) is None


@pytest.mark.parametrize("year", [1984, 2076, 2099])
def test_a_year_outside_the_table_comes_from_the_package(year: int) -> None:
    from projections.assess import bank_holidays

    assert bank_holidays.shipped_year("ENG", year) is None
    expected = dict(holidays.country_holidays("GB", subdiv="ENG", years=year))
    assert dict(_year_holidays("ENG", year)) == {k: str(v) for k, v in expected.items()}
    christmas = date(year, 12, 25)
    assert EW.is_working_day(christmas) is False
