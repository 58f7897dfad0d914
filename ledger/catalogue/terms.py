"""The catalogue's terms without its pydantic models: the time zone of the record, the
grammar of ``occurred_at`` and of every time option, the dates the ledger works with, the
statutory criteria and factors of each regime, the roles, and an entry's reference.

The read side needs only these to fold and answer a case (``why``, ``status``): kept
apart from :mod:`ledger.catalogue.fields` (which builds pydantic's field types on them
and re-exports them, as :mod:`ledger.catalogue.models` does) so that a cold read does not
import pydantic for them (issue 18).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "ALL_CRITERIA",
    "CRITERIA",
    "EARLIEST_DATE",
    "FACTORS",
    "LATEST_DATE",
    "LONDON",
    "MAX_UTC_OFFSET",
    "MOMENT_FORMS",
    "ROLES",
    "check_date",
    "check_moment",
    "normalise_occurred_at",
    "occurred_day",
    "occurred_instant",
    "parse_ref",
    "read_moment",
]

LONDON = ZoneInfo("Europe/London")

# --- the statutory criteria and factors of each regime -------------------------

CRITERIA: dict[str, tuple[str, ...]] = {
    "wt2015": ("abuse_or_neglect", "child_died", "seriously_harmed", "agency_concern"),
    "wt2018": (
        "abuse_or_neglect",
        "child_died",
        "seriously_harmed",
        "improvements_needed",
        "recurring_themes",
        "multi_agency_concern",
        "panel_view",
    ),
}
CRITERIA["wt2023"] = CRITERIA["wt2018"]
ALL_CRITERIA = tuple(dict.fromkeys(CRITERIA["wt2015"] + CRITERIA["wt2018"]))
FACTORS = (
    "learning",
    "previous_learning",
    "resources",
    "practitioners",
    "family",
    "other_reviews",
    "media",
    "public_trust",
)

#: The roles a user may be enrolled with (``users add --role``).
ROLES = (
    "business-unit",
    "chair",
    "safeguarding-partner",
    "panel-member",
    "agency",
    "peer",
    "reviewer",
    "inspector",
    "admin",
)

# --- moments ----------------------------------------------------------------------

_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: A date and time as ``cli.md`` writes it: ASCII digits, minutes, optional seconds and
#: up to six fraction digits, optional ``Z`` or ``+HH:MM`` offset.  Nothing else that
#: :meth:`datetime.fromisoformat` would read (week or ordinal dates, basic format, seven
#: fraction digits, trailing digits, other scripts' digits) is a time people meant.
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
MOMENT_FORMS = (
    "a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM, seconds and up to six "
    "fraction digits allowed; Europe/London unless an offset such as Z or +01:00 is given)"
)
EARLIEST_DATE = date(1900, 1, 1)
"""The earliest date any date field, ``occurred_at`` or query time may name."""
LATEST_DATE = date(2199, 12, 31)
"""The latest such date: the bank-holiday calendars are built year by year up to it."""
MAX_UTC_OFFSET = timedelta(hours=14)
"""No time zone is further than this from UTC (Kiribati, +14:00)."""


def check_date(value: date) -> date:
    """A date inside the range the ledger works with."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(
            f"{value.isoformat()} is outside the dates the ledger works with "
            f"({EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()})"
        )
    return value


def check_moment(moment: datetime) -> datetime:
    """An instant inside the ledger's dates, with a real UTC offset; raises ValueError.

    Shared by ``occurred_at`` and every time option of the CLI, so that no extreme year
    or offset reaches date arithmetic (where it would overflow).
    """
    offset = moment.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        minutes = int(offset.total_seconds()) // 60
        shown = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        raise ValueError(
            f"the offset {shown} is not a real time zone's (offsets run from -12:00 to +14:00)"
        )
    check_date(moment.date())
    return moment


def read_moment(text: str) -> date | datetime:
    """Read a date or a date and time as people write them: the one grammar of
    ``occurred_at`` and of every time option on the command line (``--as-of``, ``--on``,
    ``export --from/--to``), so that none accepts what another refuses.

    A bare date comes back as a :class:`date`; a date and time as an aware datetime
    (Europe/London when no offset is given).  Raises ValueError saying why: not one of
    :data:`MOMENT_FORMS`, not a real date or time, or outside :func:`check_moment`.
    """
    value = text.strip()
    if _DATE_ONLY.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value} is not a real date ({exc})") from None
        return check_date(day)
    if not _DATE_TIME.fullmatch(value):
        raise ValueError(f"must be {MOMENT_FORMS}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value} is not a real date and time ({exc})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return check_moment(moment)


def normalise_occurred_at(value: Any) -> Any:
    """Parse an ``occurred_at`` value (:func:`read_moment`), keeping day precision for a
    bare date.

    A datetime without an offset is Europe/London local time; the stored form always
    carries an offset so that it means one instant.
    """
    if not isinstance(value, str):
        return value
    return _normalised_moment(value)


@lru_cache(maxsize=4096)
def _normalised_moment(text: str) -> str:
    """:func:`normalise_occurred_at` of a string, kept: a record's lines repeat their
    days and times (73% of the bench's 100,000 lines are repeats), and reading one (two
    patterns, the parse, the offset checked, the London offset found to print it) costs
    more than the look-up.  A text that is refused raises each time (nothing is kept)."""
    return read_moment(text).isoformat()


def occurred_day(occurred_at: str) -> date:
    """The calendar day (Europe/London) of a stored ``occurred_at`` value."""
    if len(occurred_at) == 10:
        return date.fromisoformat(occurred_at)
    return datetime.fromisoformat(occurred_at).astimezone(LONDON).date()


def occurred_instant(occurred_at: str) -> datetime:
    """The instant of a stored ``occurred_at``; a bare date means the start of that day."""
    if len(occurred_at) == 10:
        return datetime.combine(date.fromisoformat(occurred_at), datetime.min.time(), LONDON)
    return datetime.fromisoformat(occurred_at)


def parse_ref(ref: str) -> tuple[str, int]:
    """Split ``CASE#seq`` into the case reference and the sequence number."""
    case_ref, _, seq = ref.rpartition("#")
    return case_ref, int(seq)
