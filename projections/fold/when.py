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

Bad input raises :class:`ledger.errors.UsageError` naming the parameter (``as_of``, ``on``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Final

from ledger.catalogue.terms import LONDON, read_moment
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

_END_OF_DAY: Final = time(23, 59, 59, 999999)


def end_of_day(day: date) -> datetime:
    """The last microsecond of a day in Europe/London (an aware datetime)."""
    return datetime.combine(day, _END_OF_DAY, LONDON)


def parse_moment(text: str, field: str, *, upper: bool = True) -> datetime:
    """Parse one time (``as_of``, ``on``, an export's ``occurred_from``/``occurred_to``:
    ``field`` names it in a refusal) into an aware datetime, by
    :func:`ledger.catalogue.models.read_moment`: the grammar of ``cli.md`` and of
    ``occurred_at``, one function for every command.

    ``YYYY-MM-DD`` is the end of that day in Europe/London (its start when ``upper`` is
    false, for the lower bound of a period); a date and time without an offset is
    Europe/London local time; ``Z`` and ``+HH:MM`` offsets are honoured.
    """
    try:
        moment = read_moment(text)
    except ValueError as exc:
        raise UsageError(f"{text!r}: {exc}", field=field) from None
    if isinstance(moment, datetime):
        return moment
    return end_of_day(moment) if upper else datetime.combine(moment, time.min, LONDON)


def parse_as_of(text: str | None, now: datetime) -> datetime:
    """``--as-of T``: the knowledge time.  ``None`` means ``now`` (which must be aware)."""
    if text is None or not text.strip():
        return _aware(now)
    return parse_moment(text, "as_of")


def parse_on(text: str | None, now: datetime) -> datetime:
    """``--on D``: the world time.  ``None`` means ``now`` (which must be aware)."""
    if text is None or not text.strip():
        return _aware(now)
    return parse_moment(text, "on")


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
