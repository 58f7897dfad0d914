"""Working days, calendar days and calendar months for the statutory clocks.

The clocks of ``shared/domain.md`` ("Timescales") count working days, calendar days or
calendar months from a start day, which is day 0.  Working days exclude Saturdays,
Sundays and the bank holidays of the nation concerned, taken from the maintained
``holidays`` package (never a hand-typed list), cached per year because building a
holiday table is slow and clocks are computed for tens of thousands of cases, and read
from a table generated from that package while it is the version installed
(:mod:`projections.assess.bank_holidays`: the package's import is most of a cold
``status``).
"""

from __future__ import annotations

import calendar as _stdlib_calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from projections.assess.bank_holidays import package_year, shipped_year

__all__ = [
    "NATIONS",
    "UNITS",
    "Calendar",
    "add_days",
    "add_months",
    "calendar_days_between",
    "due_date",
]

#: The bank-holiday divisions of GOV.UK, mapped to the ``holidays`` subdivision used.
#: England and Wales share one list on GOV.UK; Working Together is guidance for England,
#: so if the package ever gave Wales a day England lacks, "england-and-wales" follows
#: England (``tests/test_calendar.py`` checks that the two lists are still the same).
NATIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "england-and-wales": "ENG",
        "scotland": "SCT",
        "northern-ireland": "NIR",
    }
)

#: The units a clock's limit can be given in.
UNITS: Final[tuple[str, ...]] = ("working_days", "calendar_days", "calendar_months")

_ONE_DAY: Final = timedelta(days=1)


def _check_date(value: date, name: str) -> None:
    """Reject datetimes: a clock counts days, and the day of an instant needs a time zone."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(
            f"{name} must be a datetime.date, not {type(value).__name__} "
            "(take the Europe/London day of an occurred_at first)"
        )


@lru_cache(maxsize=1024)
def _year_holidays(subdiv: str, year: int) -> Mapping[date, str]:
    """The bank holidays of one ``holidays`` GB subdivision in one year, built once: from
    the table generated from the installed package where it answers, else the package."""
    days = shipped_year(subdiv, year) or package_year(subdiv, year)
    return MappingProxyType(dict(days))


@lru_cache(maxsize=1024)
def _year_days_off(subdiv: str, year: int) -> frozenset[date]:
    """The bank holidays of a year that fall Monday to Friday: the weekdays lost to them."""
    return frozenset(d for d in _year_holidays(subdiv, year) if d.weekday() < 5)


def _weekdays_after_up_to(start: date, end: date) -> int:
    """Monday-to-Friday days in (start, end], by arithmetic; 0 if end <= start."""
    if end <= start:
        return 0

    def weekdays_before(d: date) -> int:
        # Weekdays from a fixed Monday (ordinal 1 is Monday 1 January 0001) up to d, excl.
        weeks, rest = divmod(d.toordinal() - 1, 7)
        return weeks * 5 + min(rest, 5)

    return weekdays_before(end + _ONE_DAY) - weekdays_before(start + _ONE_DAY)


@dataclass(frozen=True, slots=True)
class Calendar:
    """The working-day calendar of one GOV.UK bank-holiday division.

    ``nation`` is ``"england-and-wales"`` (the default, for Working Together cases),
    ``"scotland"`` or ``"northern-ireland"``.
    """

    nation: str = "england-and-wales"

    def __post_init__(self) -> None:
        if self.nation not in NATIONS:
            raise ValueError(
                f"unknown nation {self.nation!r}; expected one of {', '.join(NATIONS)}"
            )

    @property
    def _subdiv(self) -> str:
        return NATIONS[self.nation]

    def is_working_day(self, d: date) -> bool:
        """Whether ``d`` is Monday to Friday and not a bank holiday of this nation."""
        _check_date(d, "d")
        return d.weekday() < 5 and d not in _year_days_off(self._subdiv, d.year)

    def add_working_days(self, start: date, n: int) -> date:
        """The day ``n`` working days after ``start`` (day 0), backwards if ``n`` < 0.

        The start need not be a working day; for ``n`` != 0 the result always is.  Five
        working days from a Monday with no holidays is the next Monday.
        """
        _check_date(start, "start")
        step = _ONE_DAY if n >= 0 else -_ONE_DAY
        remaining = abs(n)
        subdiv = self._subdiv
        day = start
        year = day.year
        days_off = _year_days_off(subdiv, year)
        while remaining:
            day += step
            if day.year != year:
                year = day.year
                days_off = _year_days_off(subdiv, year)
            if day.weekday() < 5 and day not in days_off:
                remaining -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days fall after ``start`` up to and including ``end``.

        0 if ``end`` <= ``start``.  It is the inverse of :meth:`add_working_days`:
        ``working_days_between(s, add_working_days(s, n)) == n`` for every n >= 0.
        Computed by arithmetic on weekdays, so long spans cost one lookup per year.
        """
        _check_date(start, "start")
        _check_date(end, "end")
        if end <= start:
            return 0
        count = _weekdays_after_up_to(start, end)
        for year in range(start.year, end.year + 1):
            count -= sum(1 for d in _year_days_off(self._subdiv, year) if start < d <= end)
        return count

    def holidays_between(self, start: date, end: date) -> list[tuple[date, str]]:
        """The bank holidays that cost a working day after ``start`` up to ``end``.

        Only holidays on Monday to Friday are listed (a Saturday Boxing Day is not, its
        substitute Monday is), so that the list explains exactly the working days
        :meth:`working_days_between` left out, in date order with the package's names.
        """
        _check_date(start, "start")
        _check_date(end, "end")
        found: list[tuple[date, str]] = []
        for year in range(start.year, end.year + 1):
            names = _year_holidays(self._subdiv, year)
            found.extend(
                (d, names[d])
                for d in sorted(_year_days_off(self._subdiv, year))
                if start < d <= end
            )
        return found


def add_days(start: date, n: int) -> date:
    """The day ``n`` calendar days after ``start`` (day 0); backwards if ``n`` < 0."""
    _check_date(start, "start")
    return start + timedelta(days=n)


def add_months(start: date, n: int) -> date:
    """The same day number ``n`` calendar months on, clamped to a shorter month's end.

    31 January + 1 month is 28 February (29 in a leap year); 31 August + 6 months is the
    end of February.  The result is not moved off weekends or holidays: the domain's
    month limits are calendar months.
    """
    _check_date(start, "start")
    months = start.year * 12 + (start.month - 1) + n
    year, month0 = divmod(months, 12)
    month = month0 + 1
    last = _stdlib_calendar.monthrange(year, month)[1]
    return date(year, month, min(start.day, last))


def calendar_days_between(start: date, end: date) -> int:
    """How many calendar days fall after ``start`` up to and including ``end``.

    0 if ``end`` <= ``start``, like :meth:`Calendar.working_days_between`, so that the two
    counts of one interval can be shown side by side.
    """
    _check_date(start, "start")
    _check_date(end, "end")
    return max(0, (end - start).days)


def due_date(start: date, limit: int, unit: str, calendar: Calendar) -> date:
    """The last day on which a clock started on ``start`` (day 0) is still on time.

    ``unit`` is one of :data:`UNITS`; ``calendar`` matters only for working days.
    """
    if unit == "working_days":
        return calendar.add_working_days(start, limit)
    if unit == "calendar_days":
        return add_days(start, limit)
    if unit == "calendar_months":
        return add_months(start, limit)
    raise ValueError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
