"""``status`` reports the overdue statutory clocks and the next deadline, the same from
the cross-case index (every case) as from a fold (one case, or --on), on both stores."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import holidays
import orjson

from tests.conftest import scenario_lines


def quiet_monday_weeks_ago() -> date:
    """A Monday at least four weeks before today with no English bank holiday in the
    fortnight from it, so five working days from it end on the next Monday: the test
    is built relative to today, and passes on any date."""
    monday = date.today() - timedelta(days=28)
    monday -= timedelta(days=monday.weekday())
    while True:
        fortnight = [monday + timedelta(days=n) for n in range(15)]
        bank = holidays.country_holidays("GB", subdiv="ENG", years={d.year for d in fortnight})
        if not any(d in bank for d in fortnight):
            return monday
        monday -= timedelta(days=7)


def test_status_shows_overdue_clocks_and_next_deadline(store_url: str, cli: Any) -> None:
    referral = orjson.loads(scenario_lines()[0])
    # Aware on a Monday weeks ago; nobody notified: 5 working days -> due the next Monday.
    aware = quiet_monday_weeks_ago()
    referral.update(
        case="RR-2026-777",
        occurred_at=aware.isoformat(),
        incident_date=(aware - timedelta(days=1)).isoformat(),
        aware_date=aware.isoformat(),
    )
    assert cli(["--store", store_url, "record", "-"], stdin=orjson.dumps(referral)).exit_code == 0
    base = ["--store", store_url, "status"]

    every = {r["case"]: r for r in cli([*base, "--json"]).json()}  # from the index
    one = cli([*base, "RR-2026-777", "--json"]).json()  # one case
    assert every["RR-2026-777"]["overdue"] == one["overdue"] == ["notification"]

    before = cli(
        [*base, "RR-2026-777", "--on", (aware + timedelta(days=1)).isoformat(), "--json"]
    ).json()
    assert before["overdue"] == []
    assert before["next_deadline"]["clock"] == "notification"
    assert before["next_deadline"]["due"] == (aware + timedelta(days=7)).isoformat()
    every_before = {
        r["case"]: r
        for r in cli([*base, "--on", (aware + timedelta(days=1)).isoformat(), "--json"]).json()
    }
    assert every_before["RR-2026-777"]["next_deadline"] == before["next_deadline"]
