"""The calendar feed: every open deadline as an iCalendar event (RFC 5545).

A business manager imports the file, or subscribes to it, in the calendar they already
use.  Each open deadline of the ``due`` list is one all-day event on its due day:

- **a stable UID** derived from the store's identity (the hash of its first register
  entry, the same after a move or a restore), the case and the clock's name or the
  request's id, never from the date, so that importing the file again updates the event
  instead of adding another;
- **SEQUENCE and LAST-MODIFIED** carried over from the previous file at the same path:
  SEQUENCE goes up when the due day moves (or the event is cancelled or comes back),
  LAST-MODIFIED whenever what the event says changes; an unchanged deadline is written
  byte for byte as before;
- **an alarm** at 09:00 on the working day before the due day, in the working-day
  calendar of the case's regime (:mod:`projections.assess.calendar`);
- **cancelled events** (``STATUS:CANCELLED``) for the deadlines of the previous file that
  are no longer open (met since the last run, or the case closed), so that a calendar
  that imported them removes them; a cancelled event stays in the feed for
  :data:`KEEP_CANCELLED_DAYS` days after its day.

The file is replaced atomically (written beside it, then renamed over it), so a calendar
reading it never sees half of one.  A file at the path that is not a feed written here is
never replaced.  No personal value is written: each event's words are screened as the
digest's are.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from icalendar import Alarm, Calendar, Event

from ledger.errors import UsageError
from projections.assess.rules import REGIMES, rule_pack
from projections.desk.digest import PersonalValueInDigest, short_day
from projections.export.personal_check import read_personal_values
from projections.queries.desk import Deadline

__all__ = [
    "KEEP_CANCELLED_DAYS",
    "PRODID",
    "CalendarFeed",
    "FeedEvent",
    "deadline_uid",
    "write_feed",
]

#: Names the feeds this module writes; a file without it at the path is not replaced.
PRODID: Final = "-//caseledger//desk deadlines//EN"
#: How long a cancelled event stays in the feed after its day.
KEEP_CANCELLED_DAYS: Final = 30
#: Namespace of the events' UIDs: ``uuid5(UID_NAMESPACE, store, case, clock or request)``.
UID_NAMESPACE: Final = uuid.UUID("0c6f2a4e-8d1b-4f7e-a5a3-ca1e0da7e000")
#: The hour of the working day before the due day at which the alarm goes off.
ALARM_HOUR: Final = 9


def deadline_uid(store_id: str, deadline: Deadline) -> str:
    """The event's UID: the same deadline of the same store has the same one always."""
    what = deadline.clock if deadline.kind == "clock" else deadline.request_id
    name = "\n".join((store_id, deadline.case, deadline.kind, str(what)))
    return f"{uuid.uuid5(UID_NAMESPACE, name)}@caseledger"


@dataclass(frozen=True)
class FeedEvent:
    """One event of the feed, as written."""

    uid: str
    case: str
    kind: str
    what: str
    due: date
    summary: str
    description: str
    alarm: date | None
    """The day its alarm goes off (None for a cancelled event)."""
    sequence: int
    last_modified: datetime
    cancelled: bool = False
    clock: str | None = None
    request_id: str | None = None

    @property
    def content(self) -> str:
        """A digest of what the event says, to tell whether it changed since the last run."""
        said = "\n".join(
            (self.due.isoformat(), self.summary, self.description, str(self.alarm), self.status)
        )
        return hashlib.sha256(said.encode()).hexdigest()[:32]

    @property
    def status(self) -> str:
        """``CONFIRMED``, or ``CANCELLED`` once the deadline is no longer open."""
        return "CANCELLED" if self.cancelled else "CONFIRMED"

    def as_dict(self) -> dict[str, Any]:
        """One event of ``calendar --json``."""
        return {
            "uid": self.uid,
            "case": self.case,
            "kind": self.kind,
            "what": self.what,
            "clock": self.clock,
            "request_id": self.request_id,
            "due": self.due.isoformat(),
            "summary": self.summary,
            "alarm": None if self.alarm is None else self.alarm.isoformat(),
            "sequence": self.sequence,
            "status": self.status.lower(),
        }

    def component(self) -> Event:
        """The VEVENT."""
        event = Event()
        event.add("uid", self.uid)
        event.add("dtstamp", self.last_modified)
        event.add("last-modified", self.last_modified)
        event.add("sequence", self.sequence)
        event.add("dtstart", self.due)
        event.add("dtend", self.due + timedelta(days=1))
        event.add("summary", self.summary)
        event.add("description", self.description)
        event.add("status", self.status)
        event.add("transp", "TRANSPARENT")
        event.add("categories", ["caseledger", _CATEGORY[self.kind]])
        event.add("x-caseledger-case", self.case)
        event.add("x-caseledger-kind", self.kind)
        event.add("x-caseledger-what", self.what)
        event.add(
            "x-caseledger-id", (self.clock if self.kind == "clock" else self.request_id) or ""
        )
        event.add("x-caseledger-content", self.content)
        if self.alarm is not None:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", f"Due the next working day: {self.summary}")
            # Relative to the all-day start (midnight where the calendar is): 09:00 there.
            days = (self.due - self.alarm).days
            alarm.add("trigger", timedelta(days=-days, hours=ALARM_HOUR))
            event.add_component(alarm)
        return event


_CATEGORY: Final = {"clock": "statutory clock", "reply": "agency reply"}
_NATIONS: Final = {
    "england-and-wales": "England and Wales",
    "scotland": "Scotland",
    "northern-ireland": "Northern Ireland",
}


@dataclass(frozen=True)
class CalendarFeed:
    """What ``calendar`` wrote: the open deadlines' events and the cancelled ones."""

    file: Path
    events: tuple[FeedEvent, ...]
    cancelled: tuple[FeedEvent, ...]
    day: date
    personal_checked: bool

    def to_json(self) -> dict[str, Any]:
        """``calendar --json``: cli.md's ``events``, ``cancelled`` and ``file``."""
        return {
            "events": [e.as_dict() for e in self.events],
            "cancelled": [e.as_dict() for e in self.cancelled],
            "file": str(self.file),
            "on": self.day.isoformat(),
            "personal_data_checked": self.personal_checked,
        }


def _summary(deadline: Deadline) -> str:
    """``RR-2026-004: rapid review due``; a reply says from whom."""
    if deadline.kind == "reply":
        return f"{deadline.case}: reply due from {deadline.agency} (request {deadline.request_id})"
    return f"{deadline.case}: {deadline.what} due"


def _description(deadline: Deadline) -> str:
    """The details, in words that stay true from day to day (no days left)."""
    due = f"Due {short_day(deadline.due)}, counted in "
    if deadline.unit == "working-days":
        nation = _NATIONS.get(deadline.calendar.nation, deadline.calendar.nation)
        due += f"working days (without the bank holidays of {nation})."
    else:
        due += "calendar days."
    if deadline.kind == "reply":
        lines = [
            f"The reply of {deadline.agency} to request {deadline.request_id} "
            f"({deadline.ref}) in case {deadline.case}.",
            due,
        ]
    else:
        regime = rule_pack(deadline.regime).title if deadline.regime in REGIMES else ""
        lines = [
            f"{deadline.title or deadline.what}.",
            f"Case {deadline.case}: the {deadline.what} clock, started by {deadline.ref}"
            + (f", under {regime}." if regime else "."),
            due,
        ]
        if deadline.justified:
            lines.append("A delay is approved.")
    lines.append(f"caseledger due --case {deadline.case} shows where it stands.")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Previous:
    """An event of the previous file, as far as the next run needs it."""

    event: FeedEvent
    content: str


def _text(component: Any, name: str) -> str:
    value = component.get(name)
    return "" if value is None else str(value)


def _read_previous(path: Path) -> dict[str, _Previous]:
    """The events of the feed at ``path`` (none when there is no file); a file that is
    not a feed written here is refused, never replaced."""
    if not path.exists():
        return {}
    refuse = "is not a calendar written by caseledger, so it is not replaced; choose a new file"
    if not path.is_file():
        raise UsageError(f"{path} {refuse}", field="out_path")
    try:
        found = Calendar.from_ical(path.read_bytes())
    except (ValueError, UnicodeDecodeError, OSError):
        raise UsageError(f"{path} {refuse}", field="out_path") from None
    if not isinstance(found, Calendar) or _text(found, "prodid") != PRODID:
        raise UsageError(f"{path} {refuse}", field="out_path")
    previous: dict[str, _Previous] = {}
    for component in found.walk("VEVENT"):
        try:
            due = component.decoded("dtstart")
            modified = component.decoded("last-modified")
            sequence = int(component.get("sequence", 0))
        except (KeyError, ValueError, TypeError):
            continue  # an event not written here (or damaged): the next file leaves it out
        kind = _text(component, "x-caseledger-kind")
        ident = _text(component, "x-caseledger-id") or None
        event = FeedEvent(
            uid=_text(component, "uid"),
            case=_text(component, "x-caseledger-case"),
            kind=kind,
            what=_text(component, "x-caseledger-what"),
            due=due if not isinstance(due, datetime) else due.date(),
            summary=_text(component, "summary"),
            description=_text(component, "description"),
            alarm=None,
            sequence=sequence,
            last_modified=modified if isinstance(modified, datetime) else datetime.now(UTC),
            cancelled=_text(component, "status").upper() == "CANCELLED",
            clock=ident if kind == "clock" else None,
            request_id=ident if kind == "reply" else None,
        )
        previous[event.uid] = _Previous(event, _text(component, "x-caseledger-content"))
    return previous


def _open_event(deadline: Deadline, uid: str, before: _Previous | None, now: datetime) -> FeedEvent:
    """The event of an open deadline, its SEQUENCE and LAST-MODIFIED carried over."""
    fresh = FeedEvent(
        uid=uid,
        case=deadline.case,
        kind=deadline.kind,
        what=deadline.what,
        due=deadline.due,
        summary=_summary(deadline),
        description=_description(deadline),
        alarm=deadline.calendar.add_working_days(deadline.due, -1),
        sequence=0,
        last_modified=now,
        clock=deadline.clock,
        request_id=deadline.request_id,
    )
    if before is None:
        return fresh
    old = before.event
    if before.content == fresh.content and not old.cancelled:
        return _with(fresh, sequence=old.sequence, last_modified=old.last_modified)
    moved = old.due != fresh.due or old.cancelled
    return _with(fresh, sequence=old.sequence + (1 if moved else 0), last_modified=now)


def _with(event: FeedEvent, **changes: Any) -> FeedEvent:
    values = {name: getattr(event, name) for name in FeedEvent.__dataclass_fields__}
    return FeedEvent(**{**values, **changes})


def _cancelled(before: _Previous, now: datetime, day: date) -> FeedEvent | None:
    """The event of a deadline no longer open: cancelled now, or kept as cancelled until
    :data:`KEEP_CANCELLED_DAYS` after its day."""
    old = before.event
    if old.cancelled:
        if old.due < day - timedelta(days=KEEP_CANCELLED_DAYS):
            return None
        return _with(old, alarm=None)
    return _with(old, alarm=None, cancelled=True, sequence=old.sequence + 1, last_modified=now)


def _calendar(events: Iterable[FeedEvent]) -> Calendar:
    feed = Calendar()
    feed.add("prodid", PRODID)
    feed.add("version", "2.0")
    feed.add("calscale", "GREGORIAN")
    feed.add("method", "PUBLISH")
    feed.add("x-wr-calname", "caseledger deadlines")
    feed.add("x-wr-caldesc", "Statutory clocks and agency replies due in the open cases")
    feed.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    feed.add("x-published-ttl", "PT1H")
    for event in sorted(events, key=_order):
        feed.add_component(event.component())
    return feed


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` and rename it over ``path`` (atomic on one disk)."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"the folder {folder} does not exist", field="out_path")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _screen(ledger: Any, events: Iterable[FeedEvent]) -> bool:
    """Refuse an event whose words hold a personal value of its case; whether the check
    was made (as the digest's)."""
    chosen = list(events)
    check = read_personal_values(ledger, sorted({e.case for e in chosen}))
    if not check.made:
        return False
    for event in chosen:
        for text in (event.summary, event.description):
            found = check.everywhere.hit(text)
            if found is not None:
                raise PersonalValueInDigest(
                    f"the calendar event of {event.case} ({event.what}) would hold {found}; "
                    "nothing was written. The entry was recorded before the ledger refused "
                    "personal values in the hashed record, or written around it: ask the "
                    "store's operator."
                )
    return True


def write_feed(
    ledger: Any,
    deadlines: Iterable[Deadline],
    out_path: Path | str,
    *,
    store_id: str,
    day: date,
    now: datetime,
) -> CalendarFeed:
    """Write the feed of ``deadlines`` (the open ones on ``day``) to ``out_path``,
    carrying SEQUENCE and LAST-MODIFIED over from the feed already there (see the
    module); ``now`` is what LAST-MODIFIED says of a change."""
    path = Path(out_path)
    stamp = now.astimezone(UTC).replace(microsecond=0)
    previous = _read_previous(path)
    events: dict[str, FeedEvent] = {}
    for deadline in deadlines:
        uid = deadline_uid(store_id, deadline)
        events[uid] = _open_event(deadline, uid, previous.get(uid), stamp)
    cancelled = [
        event
        for uid, before in previous.items()
        if uid not in events and (event := _cancelled(before, stamp, day)) is not None
    ]
    checked = _screen(ledger, events.values())
    _replace(path, _calendar([*events.values(), *cancelled]).to_ical())
    return CalendarFeed(
        path,
        tuple(sorted(events.values(), key=_order)),
        tuple(sorted(cancelled, key=_order)),
        day,
        checked,
    )


def _order(event: FeedEvent) -> tuple[date, str, str]:
    """Events by day, then case, then UID: the same order in every run."""
    return event.due, event.case, event.uid
