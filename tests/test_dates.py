"""The tests do not depend on today's date (issue 14 item 7).

``CASELEDGER_TEST_TODAY=YYYY-MM-DD`` moves the process clock for a whole run
(``tests/conftest.py``, with ``time-machine``); ``docs/testing.md`` says how to run the
whole suite so.  Here, cheaply enough for every CI run, a representative subset (the
clock, status and scenario tests, the calendar, and a pinned module) runs in a child
pytest at a date long past the scenario and at one before it, on both stores.  The
other tests check that the moved clock, the pinned day and the real-clock marker do
what the conftest says.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FIXED_TODAY, TEST_TODAY, moved_today_instant

ROOT = Path(__file__).resolve().parents[1]


def real_now(folder: Path) -> datetime:
    """The real time, whatever the process clock says: the kernel stamps a new file
    with it."""
    stamp = folder / "now"
    stamp.touch()
    return datetime.fromtimestamp(stamp.stat().st_mtime, UTC)


#: Test files that build their dates relative to today, or use ``--on``, or pin today:
#: run whole at other dates.  Chosen for the date logic they reach (working days and
#: bank holidays, every statutory clock, ``status`` now and ``--on``) at a small cost.
SUBSET = [
    "tests/test_dates.py",
    "tests/test_status_clocks.py",
    "tests/test_calendar.py",
    "tests/test_answers.py",
    "tests/test_quality.py",
]

#: Far after the scenario and after the end of the bank-holiday tables people type by
#: hand; and before the scenario's first entry (its data is then "in the future").
OTHER_DATES = ["2040-01-01", "2026-01-15"]

#: The dates whose run covers PostgreSQL too; the others run on SQLite only (the dates are
#: the process's, and the server's clock cannot be moved: one run on both stores shows a
#: PostgreSQL query takes no "today" of its own; a second would double the cost for that).
BOTH_STORES = {"2040-01-01"}


@pytest.mark.parametrize("day", OTHER_DATES)
def test_the_subset_passes_on_another_date(day: str) -> None:
    """The subset, in a child pytest with the clock at ``day``, passes whole (and its
    header says the clock was moved, so a broken hook cannot pass silently); on both
    stores for the dates of ``BOTH_STORES``, on SQLite for the others."""
    if TEST_TODAY:
        pytest.skip("already a run at a moved date: not again inside it")
    env = {**os.environ, "CASELEDGER_TEST_TODAY": day}
    if day not in BOTH_STORES:
        env.pop("CASELEDGER_TEST_POSTGRES", None)
        env.pop("CASELEDGER_REQUIRE_POSTGRES", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-x", *SUBSET],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"CASELEDGER_TEST_TODAY={day}: the clock reads {day}" in done.stdout
    assert " passed" in done.stdout.splitlines()[-1]


def test_the_session_clock_is_the_day_asked_for(tmp_path: Path) -> None:
    """In a moved run the process clock reads the day asked for (noon UTC, ticking);
    in a normal run, the real date."""
    now = datetime.now(UTC)
    if TEST_TODAY:
        assert now.date() == date.fromisoformat(TEST_TODAY[:10])
        assert date.today() == now.date()
        assert 0 <= (now - moved_today_instant(TEST_TODAY)).total_seconds() < 3600 * 6
    else:
        assert abs((now - real_now(tmp_path)).total_seconds()) < 5


def test_the_moved_clock_ticks() -> None:
    """Time goes on in a moved run (timeouts and elapsed times still work)."""
    first = datetime.now(UTC)
    time.sleep(0.02)
    assert datetime.now(UTC) > first


@pytest.mark.usefixtures("fixed_today")
def test_fixed_today_pins_the_day_whatever_the_session() -> None:
    """``fixed_today`` puts the clock on FIXED_TODAY, after every fixed date the tests
    record, even inside a moved run."""
    now = datetime.now(UTC)
    assert now.date() == FIXED_TODAY.date()
    assert 0 <= (now - FIXED_TODAY).total_seconds() < 3600


@pytest.mark.real_clock
def test_a_real_clock_test_runs_at_the_real_date(tmp_path: Path) -> None:
    """A ``real_clock`` test (PostgreSQL dates its writers' entries by the server's
    clock) sees the real time even in a moved run."""
    assert abs((datetime.now(UTC) - real_now(tmp_path)).total_seconds()) < 5


def test_test_today_takes_a_date_or_a_date_and_time() -> None:
    """A date means noon UTC that day; a date-time is taken as written, UTC without
    an offset."""
    assert moved_today_instant("2040-01-01") == datetime(2040, 1, 1, 12, tzinfo=UTC)
    assert moved_today_instant("2026-11-30T23:30") == datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    moment = moved_today_instant("2027-03-31T09:00+01:00")
    assert moment.astimezone(UTC) == datetime(2027, 3, 31, 8, tzinfo=UTC)


# --- occurred_at against the clock and the incident, parsed once ------------------------

OFFSETS = st.sampled_from(["+00:00", "+01:00", "-05:00", "+14:00", "-12:00", "+05:30"])


@settings(max_examples=400, deadline=None)
@given(
    day=st.dates(min_value=date(2019, 1, 1), max_value=date(2027, 12, 31)),
    minutes=st.one_of(st.none(), st.integers(0, 24 * 60 - 1)),
    offset=OFFSETS,
    incident=st.dates(min_value=date(2019, 1, 1), max_value=date(2027, 12, 31)),
    now=st.datetimes(
        min_value=datetime(2019, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
)
def test_occurred_at_is_refused_exactly_when_in_the_future_or_before_the_incident(
    day: date, minutes: int | None, offset: str, incident: date, now: datetime
) -> None:
    """The check reads the stored ``occurred_at`` once: the same refusals as reading it
    for the clock and again for its London day (``occurred_day``)."""
    from datetime import timedelta

    from ledger.catalogue.terms import LONDON, occurred_day
    from ledger.domain.invariants import check_occurred_at
    from ledger.errors import InputError

    text = (
        day.isoformat()
        if minutes is None
        else f"{day.isoformat()}T{minutes // 60:02d}:{minutes % 60:02d}:00{offset}"
    )
    if len(text) == 10:
        future = date.fromisoformat(text) > now.astimezone(LONDON).date()
    else:
        future = datetime.fromisoformat(text) > now + timedelta(minutes=5)
    expected = "future" if future else "before" if occurred_day(text) < incident else None
    try:
        check_occurred_at(text, incident.isoformat(), now)
        refused = None
    except InputError as exc:
        refused = "future" if "future" in str(exc) else "before"
    assert refused == expected
