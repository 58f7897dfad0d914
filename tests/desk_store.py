"""A store whose desk, on Monday 23 February 2026 (:data:`ON`), has a deadline in every
group of the digest, for the digest's and the calendar feed's tests.

- RR-2026-004 (the shared scenario): its rapid review is due Friday 6 March (next week)
  and Northshire Education's reply (request R6) was due Friday 20 February (overdue);
- RR-2026-050: notification due 16 February, never made (overdue); a reply from Westmoor
  Police due Wednesday 25 February (a reply to chase);
- RR-2026-051: notification due Wednesday 25 February (this week);
- RR-2026-052: notified on time; its rapid review is due Monday 9 March (later).

Every case carries personal values (a name and a date of birth), so that a test can
check that none of them reaches a message or a calendar.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ledger.domain.personal_screen import Screen
from tests.conftest import FixedClock, open_ledger, scenario_lines

#: The day the desk is asked about: a Monday.
ON: Final = "2026-02-23"

#: The personal values recorded, by case (the scenario's as it records them).
PERSONAL: Final[dict[str, dict[str, str]]] = {
    "RR-2026-004": {"name": "Kai Example", "date_of_birth": "2025-08-14"},
    "RR-2026-050": {"name": "Maisie Quartermain", "date_of_birth": "2015-06-03"},
    "RR-2026-051": {"name": "Oliver Brackenbury", "date_of_birth": "2019-11-30"},
    "RR-2026-052": {"name": "Priya Eastwood-Hale", "date_of_birth": "2012-01-17"},
}


def referral(case: str, aware: str, letter: str) -> dict[str, Any]:
    """A wt2023 referral of ``case`` that the local authority learned of on ``aware``."""
    return {
        "type": "CaseReferred",
        "case": case,
        "occurred_at": aware,
        "regime": "wt2023",
        "subject": f"Child {letter} ({case})",
        "incident_date": "2026-02-06",
        "aware_date": aware,
        "harm": "serious-harm",
        "abuse_or_neglect": "suspected",
        "looked_after": False,
        "home_area": "Northshire",
        "referrer": "Northshire Police",
        "route": "statutory",
        "summary": "Infant admitted with injuries that need explaining.",
        "personal": PERSONAL[case],
    }


def desk_lines() -> list[bytes]:
    """The entries of the store, one JSON line each."""
    extra: list[dict[str, Any]] = [
        referral("RR-2026-050", "2026-02-09", "M"),
        {
            "type": "InformationRequested",
            "case": "RR-2026-050",
            "occurred_at": "2026-02-18",
            "agency": "Westmoor Police",
            "asked_for": "minimum-data",
            "due": "2026-02-25",
        },
        referral("RR-2026-051", "2026-02-18", "O"),
        referral("RR-2026-052", "2026-02-13", "P"),
        {
            "type": "IncidentNotified",
            "case": "RR-2026-052",
            "occurred_at": "2026-02-16",
            "recipients": ["national-panel", "ofsted"],
        },
    ]
    return scenario_lines() + [orjson.dumps(e) for e in extra]


def record_desk(store_url: str, clock: FixedClock) -> None:
    """Record :func:`desk_lines` in the store at the fixed clock's time."""
    led = open_ledger(store_url, clock)
    led.record_lines(desk_lines(), led.recorder_for())
    led.close()


def record(store_url: str, clock: FixedClock, *entries: dict[str, Any]) -> None:
    """Record more entries at the fixed clock's time."""
    led = open_ledger(store_url, clock)
    led.record_lines([orjson.dumps(e) for e in entries], led.recorder_for())
    led.close()


def personal_screen() -> Screen:
    """Every personal value recorded, as the export looks for them in what it wrote
    (:mod:`projections.export.personal_check`): names (also last word first) and dates
    of birth in every usual written form."""
    screen = Screen()
    for values in PERSONAL.values():
        for key, value in values.items():
            screen.add(key, value)
    return screen
