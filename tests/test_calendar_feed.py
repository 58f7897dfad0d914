"""The calendar feed (issue 15 item 3): every open deadline as an iCalendar event,
parsed back with ``icalendar``: one VEVENT per open deadline with a UID that stays the
same from run to run, an alarm the working day before, SEQUENCE raised when the due day
moves, and a cancelled event once the deadline is met.

The store is ``tests/desk_store.py``'s, asked about Monday 23 February 2026."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar, Event

from ledger.errors import UsageError
from projections import api
from projections.assess.calendar import Calendar as WorkingDays
from tests.conftest import FixedClock, open_ledger, person
from tests.desk_store import ON, personal_screen, record, record_desk

NOTIFIED_051 = {
    "type": "IncidentNotified",
    "case": "RR-2026-051",
    "occurred_at": ON,
    "recipients": ["national-panel", "ofsted"],
}


@pytest.fixture
def desk_store(store_url: str, clock: FixedClock) -> str:
    record_desk(store_url, clock)
    return store_url


def events(path: Path) -> dict[str, Event]:
    """The VEVENTs of the file, by UID (a UID written twice fails)."""
    parsed = Calendar.from_ical(path.read_bytes())
    found: dict[str, Event] = {}
    for event in parsed.walk("VEVENT"):
        uid = str(event["uid"])
        assert uid not in found, f"UID {uid} twice"
        found[uid] = event
    return found


def by_summary(found: dict[str, Event]) -> dict[str, Event]:
    return {str(e["summary"]): e for e in found.values()}


def alarm_day(event: Event) -> datetime:
    """When the event's alarm goes off (relative to the all-day start's midnight)."""
    (alarm,) = event.walk("VALARM")
    start = event.decoded("dtstart")
    trigger = alarm.decoded("trigger")
    assert isinstance(trigger, timedelta)
    return datetime(start.year, start.month, start.day) + trigger


def test_one_event_per_open_deadline(desk_store: str, tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "deadlines.ics"
    result = cli(["--store", desk_store, "calendar", "--out", str(out), "--on", ON, "--json"])
    assert result.exit_code == 0, result.stderr
    body = result.json()
    assert list(body)[:3] == ["events", "cancelled", "file"]
    assert body["file"] == str(out) and body["cancelled"] == []
    deadlines = api.due(open_ledger(desk_store), on=ON).deadlines
    found = events(out)
    assert len(found) == len(deadlines) == len(body["events"]) == 6
    assert {e["uid"] for e in body["events"]} == set(found)
    summaries = by_summary(found)
    assert set(summaries) == {
        "RR-2026-004: rapid review due",
        "RR-2026-004: reply due from Northshire Education (request R6)",
        "RR-2026-050: notification due",
        "RR-2026-050: reply due from Westmoor Police (request R2)",
        "RR-2026-051: notification due",
        "RR-2026-052: rapid review due",
    }
    working = WorkingDays("england-and-wales")
    for deadline in deadlines:
        (event,) = [e for e in found.values() if e["x-caseledger-case"] == deadline.case and (
            str(e["x-caseledger-id"]) in (deadline.clock, deadline.request_id))]  # fmt: skip
        assert event.decoded("dtstart") == deadline.due  # an all-day event on the due day
        assert event.decoded("dtend") == deadline.due + timedelta(days=1)
        assert str(event["status"]) == "CONFIRMED" and int(event["sequence"]) == 0
        before = working.add_working_days(deadline.due, -1)
        assert alarm_day(event) == datetime(before.year, before.month, before.day, 9)
        assert deadline.case in str(event["description"])
    # A Monday's alarm goes off on the Friday before; a Friday's on the Thursday.
    assert alarm_day(summaries["RR-2026-052: rapid review due"]) == datetime(2026, 3, 6, 9)
    assert alarm_day(summaries["RR-2026-004: rapid review due"]) == datetime(2026, 3, 5, 9)
    description = str(summaries["RR-2026-004: rapid review due"]["description"])
    assert "Rapid review decides whether to hold a local review." in description
    assert "counted in working days" in description and "RR-2026-004#2" in description
    screen = personal_screen()
    text = out.read_text()
    for event in found.values():
        for name in ("summary", "description"):
            assert screen.hit(str(event[name])) is None
    assert screen.hit(text.replace("\r\n ", "")) is None


def test_a_met_deadline_is_cancelled_and_the_rest_stay_as_they_were(
    desk_store: str, tmp_path: Path, clock: FixedClock, cli: Any
) -> None:
    out = tmp_path / "deadlines.ics"
    args = ["--store", desk_store, "calendar", "--out", str(out), "--on", ON, "--json"]
    assert cli(args).exit_code == 0
    first = out.read_bytes()
    assert cli(args).exit_code == 0
    assert out.read_bytes() == first  # nothing changed: the same file, byte for byte
    before = events(out)

    record(desk_store, clock, NOTIFIED_051)  # meets RR-2026-051's notification clock
    again = cli(args)
    assert again.exit_code == 0, again.stderr
    after = events(out)
    # The same UIDs (a re-import updates, never duplicates), and the clock the
    # notification started.
    (started,) = set(after) - set(before)
    assert str(after[started]["summary"]) == "RR-2026-051: rapid review due"
    assert set(before) <= set(after)
    (met,) = [uid for uid, e in after.items() if str(e["status"]) == "CANCELLED"]
    assert str(after[met]["summary"]) == "RR-2026-051: notification due"
    assert int(after[met]["sequence"]) == 1 and not after[met].walk("VALARM")
    assert [c["uid"] for c in again.json()["cancelled"]] == [met]
    assert {e["uid"] for e in again.json()["events"]} == set(after) - {met}
    for uid, event in after.items():
        if uid not in (met, started):
            assert event.to_ical() == before[uid].to_ical()

    third = cli(args)  # still cancelled, not cancelled again
    assert third.exit_code == 0
    assert int(events(out)[met]["sequence"]) == 1
    assert [c["uid"] for c in third.json()["cancelled"]] == [met]


def test_a_moved_due_day_raises_sequence_and_last_modified(
    desk_store: str, tmp_path: Path, clock: FixedClock
) -> None:
    out = tmp_path / "deadlines.ics"
    first = api.calendar(open_ledger(desk_store, clock), out_path=out, on=ON)
    clock.advance(hours=2)
    record(
        desk_store,
        clock,
        {
            "type": "EntryCorrected",
            "case": "RR-2026-051",
            "occurred_at": ON,
            "corrects": "RR-2026-051#1",
            "changes": {"aware_date": "2026-02-19"},
            "reason": "The local authority learned of it a day later.",
        },
    )
    clock.advance(hours=1)
    second = api.calendar(open_ledger(desk_store, clock), out_path=out, on=ON)
    old = {e.uid: e for e in first.events}
    new = {e.uid: e for e in second.events}
    assert set(old) == set(new)
    (moved,) = [uid for uid in new if new[uid].due != old[uid].due]
    assert (old[moved].due, new[moved].due) == (date(2026, 2, 25), date(2026, 2, 26))
    event = events(out)[moved]
    assert int(event["sequence"]) == 1
    assert event.decoded("last-modified") == clock.now.replace(microsecond=0)
    assert event.decoded("dtstart") == date(2026, 2, 26)
    unchanged = [uid for uid in new if uid != moved]
    for uid in unchanged:
        assert new[uid].sequence == 0 and new[uid].last_modified == old[uid].last_modified
    assert second.cancelled == ()


def test_a_closed_case_cancels_its_events(
    desk_store: str, tmp_path: Path, clock: FixedClock
) -> None:
    out = tmp_path / "deadlines.ics"
    api.calendar(open_ledger(desk_store, clock), out_path=out, on=ON)
    record(
        desk_store,
        clock,
        {"type": "CaseClosed", "case": "RR-2026-050", "occurred_at": ON, "reason": "Merged."},
    )
    feed = api.calendar(open_ledger(desk_store, clock), out_path=out, on=ON)
    assert sorted(e.summary for e in feed.cancelled) == [
        "RR-2026-050: notification due",
        "RR-2026-050: reply due from Westmoor Police (request R2)",
    ]
    assert all(e.case != "RR-2026-050" for e in feed.events)
    assert feed.to_json()["cancelled"][0]["status"] == "cancelled"


def test_a_file_not_written_here_is_never_replaced(
    sqlite_url: str, clock: FixedClock, tmp_path: Path, cli: Any
) -> None:
    record_desk(sqlite_url, clock)
    tmp_path = tmp_path / "calendars"  # the store's own files are elsewhere
    tmp_path.mkdir()
    theirs = tmp_path / "personal.ics"
    other = Calendar()
    other.add("prodid", "-//Another calendar//EN")
    other.add("version", "2.0")
    for content in (b"my notes, not a calendar\n", other.to_ical()):
        theirs.write_bytes(content)
        result = cli(["--store", sqlite_url, "calendar", "--out", str(theirs), "--on", ON])
        assert result.exit_code == 2 and "field `--out`" in result.stderr, result.stderr
        assert "not a calendar written by caseledger" in result.stderr
        assert theirs.read_bytes() == content
    folder = tmp_path / "a-folder.ics"
    folder.mkdir()
    with pytest.raises(UsageError) as refused:
        api.calendar(open_ledger(sqlite_url), out_path=folder, on=ON)
    assert refused.value.field == "out_path"
    missing = cli(
        ["--store", sqlite_url, "calendar", "--out", str(tmp_path / "no" / "f.ics"), "--on", ON]
    )
    assert missing.exit_code == 2 and "field `--out`" in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder.ics", "personal.ics"]


def test_the_file_is_replaced_whole(sqlite_url: str, clock: FixedClock, tmp_path: Path) -> None:
    """Written beside the file and renamed over it: no partial file is ever left, and
    the old one is gone only once the new one is complete."""
    record_desk(sqlite_url, clock)
    (tmp_path / "calendars").mkdir()
    out = tmp_path / "calendars" / "deadlines.ics"
    api.calendar(open_ledger(sqlite_url, clock), out_path=out, on=ON)
    inode = out.stat().st_ino
    record(sqlite_url, clock, NOTIFIED_051)
    api.calendar(open_ledger(sqlite_url, clock), out_path=out, on=ON)
    assert out.stat().st_ino != inode  # a new file, renamed into place
    assert [p.name for p in out.parent.iterdir()] == ["deadlines.ics"]
    assert Calendar.from_ical(out.read_bytes())["prodid"] == "-//caseledger//desk deadlines//EN"


def test_the_uid_is_the_stores_not_the_files(
    sqlite_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """Two files of one store share UIDs (a calendar imports either); another store's
    deadlines of the same cases do not."""
    record_desk(sqlite_url, clock)
    led = open_ledger(sqlite_url, clock)
    one = api.calendar(led, out_path=tmp_path / "a.ics", on=ON)
    two = api.calendar(led, out_path=tmp_path / "b.ics", on="2026-02-24")
    assert {e.uid for e in one.events} & {e.uid for e in two.events}
    other_store = str(tmp_path / "other.db")
    clock.advance(seconds=1)
    record_desk(other_store, clock)
    three = api.calendar(open_ledger(other_store, clock), out_path=tmp_path / "c.ics", on=ON)
    assert not {e.uid for e in one.events} & {e.uid for e in three.events}


def test_a_reader_gets_the_same_feed_and_digest(
    desk_store: str, tmp_path: Path, clock: FixedClock
) -> None:
    """A user who may only read (on PostgreSQL a login role with the reader's grants)
    writes the same events and the same digest; where the database keeps the personal
    values from them, the screen is said not to have been made."""
    owner = api.calendar(open_ledger(desk_store, clock), out_path=tmp_path / "o.ics", on=ON)
    reader = person(desk_store, "desk.reader", "reader").ledger(clock)
    theirs = api.calendar(reader, out_path=tmp_path / "r.ics", on=ON)
    assert [e.uid for e in theirs.events] == [e.uid for e in owner.events]
    assert [e.summary for e in theirs.events] == [e.summary for e in owner.events]
    digest = api.digest(reader, on=ON)
    assert digest.subject == api.digest(open_ledger(desk_store, clock), on=ON).subject
    # SQLite: the file's permissions are the boundary, the values are read and looked
    # for; PostgreSQL: the database gives a reader no personal value to look for.
    on_postgres = desk_store.startswith("postgresql://")
    assert digest.personal_checked is theirs.personal_checked is (not on_postgres)
    assert digest.to_json()["personal_data_checked"] is (not on_postgres)
