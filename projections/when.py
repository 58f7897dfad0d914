"""Reading ``--as-of`` and ``--on`` (``shared/contract/cli.md``, "Times on the command line").

Both options take ``YYYY-MM-DD`` (the *end* of that day, Europe/London, so that everything
of that day counts) or an ISO 8601 date and time, with an offset or in Europe/London local
time, seconds and fractions allowed.  Both default to now.  Every query command uses these
functions, so the rule lives in one place::

    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
    >>> parse_as_of("2026-03-06", now).isoformat()
    '2026-03-06T23:59:59.999999+00:00'
    >>> parse_on("2026-07-01T10:30", now).isoformat()
    '2026-07-01T10:30:00+01:00'
    >>> parse_on(None, now) == now
    True

Bad input raises :class:`ledger.errors.UsageError` naming the option (exit code 2).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Final

from ledger.catalogue import LONDON, check_moment
from ledger.errors import UsageError

__all__ = [
    "LONDON",
    "end_of_day",
    "format_instant",
    "on_day",
    "parse_as_of",
    "parse_moment",
    "parse_on",
]

_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_END_OF_DAY: Final = time(23, 59, 59, 999999)


def end_of_day(day: date) -> datetime:
    """The last microsecond of a day in Europe/London (an aware datetime)."""
    return datetime.combine(day, _END_OF_DAY, LONDON)


def parse_moment(text: str, option: str) -> datetime:
    """Parse one ``--as-of``/``--on`` value into an aware datetime.

    ``YYYY-MM-DD`` is the end of that day in Europe/London; a date and time without an
    offset is Europe/London local time; ``Z`` and ``+HH:MM`` offsets are honoured.
    """
    value = text.strip()
    if _DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise UsageError(f"{text!r} is not a real date ({exc})", field=option) from None
        return _in_range(end_of_day(day), text, option)
    if _DATETIME.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise UsageError(
                f"{text!r} is not a real date and time ({exc})", field=option
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=LONDON)
        return _in_range(moment, text, option)
    raise UsageError(
        f"{text!r} is neither a date (YYYY-MM-DD, meaning the end of that day in "
        "Europe/London) nor an ISO 8601 date and time (e.g. 2026-03-06T14:30, "
        "2026-03-06T14:30:00.5+00:00)",
        field=option,
    )


def _in_range(moment: datetime, text: str, option: str) -> datetime:
    """The moment, if inside the ledger's dates with a real offset
    (:func:`ledger.catalogue.check_moment`): year 1 or 9999, or an offset of +23:59,
    would overflow the date arithmetic of every query."""
    try:
        return check_moment(moment)
    except ValueError as exc:
        raise UsageError(f"{text!r}: {exc}", field=option) from None


def parse_as_of(text: str | None, now: datetime) -> datetime:
    """``--as-of T``: the knowledge time.  ``None`` means ``now`` (which must be aware)."""
    if text is None or not text.strip():
        return _aware(now)
    return parse_moment(text, "--as-of")


def parse_on(text: str | None, now: datetime) -> datetime:
    """``--on D``: the world time.  ``None`` means ``now`` (which must be aware)."""
    if text is None or not text.strip():
        return _aware(now)
    return parse_moment(text, "--on")


def on_day(moment: datetime) -> date:
    """The Europe/London calendar day of an instant (clocks count whole days)."""
    return _aware(moment).astimezone(LONDON).date()


def format_instant(moment: datetime) -> str:
    """The ledger's ``recorded_at`` form: UTC, microseconds, ``Z``.

    Strings in this form order like the instants they name, so "recorded up to T" is
    ``record["recorded_at"] <= format_instant(T)``.
    """
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the query time must be an aware datetime")
    return moment
