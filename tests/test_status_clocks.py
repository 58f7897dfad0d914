"""``status`` reports the overdue statutory clocks and the next deadline, the same from
the cross-case index (every case) as from a fold (one case, or --on), on both stores."""

from __future__ import annotations

from typing import Any

import orjson

from tests.conftest import scenario_lines


def test_status_shows_overdue_clocks_and_next_deadline(store_url: str, cli: Any) -> None:
    referral = orjson.loads(scenario_lines()[0])
    # Aware Monday 2 November 2026; nobody notified: 5 working days -> due Monday 9th.
    referral.update(
        case="RR-2026-777",
        occurred_at="2026-11-02",
        incident_date="2026-11-01",
        aware_date="2026-11-02",
    )
    assert cli(["--store", store_url, "record", "-"], stdin=orjson.dumps(referral)).exit_code == 0
    base = ["--store", store_url, "status"]

    every = {r["case"]: r for r in cli([*base, "--json"]).json()}  # from the index
    one = cli([*base, "RR-2026-777", "--json"]).json()  # one case
    assert every["RR-2026-777"]["overdue"] == one["overdue"] == ["notification"]

    before = cli([*base, "RR-2026-777", "--on", "2026-11-03", "--json"]).json()
    assert before["overdue"] == []
    assert before["next_deadline"]["clock"] == "notification"
    assert before["next_deadline"]["due"] == "2026-11-09"
    every_before = {r["case"]: r for r in cli([*base, "--on", "2026-11-03", "--json"]).json()}
    assert every_before["RR-2026-777"]["next_deadline"] == before["next_deadline"]
