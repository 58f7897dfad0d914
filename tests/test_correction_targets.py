"""``verify`` names a stored correction whose target the ledger could not have accepted:
the read side applies a correction by its target's number alone, so one naming another
case (or a later entry, or a correction) that someone with write access to the store put
there behind the ledger's checks would change an entry while naming another.
"""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from ledger.domain.case import case_id
from ledger.integrity.canonical import canonical_json, event_hash
from tests.conftest import open_ledger, scenario_lines

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

CASE = "RR-2026-004"


def _stored_correction(last: dict[str, Any], corrects: str) -> dict[str, Any]:
    body = {
        "type": "EntryCorrected",
        "case": CASE,
        "occurred_at": last["occurred_at"],
        "corrects": corrects,
        "changes": {"summary": "changed"},
        "reason": "behind the checks",
        "seq": last["seq"] + 1,
        "prev_hash": last["hash"],
        "actor": last["actor"],
        "role": last["role"],
        "recorded_at": last["recorded_at"],
        "command_id": "00000000-0000-4000-8000-000000000000",
    }
    body["hash"] = event_hash(body)
    return body


@pytest.mark.parametrize("target", ["other-case", "itself", "later", "fine"])
def test_verify_names_a_correction_of_another_case_or_a_later_entry(
    sqlite_url: str, target: str
) -> None:
    led = open_ledger(sqlite_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    last = led.case_records(CASE)[-1]
    seq = last["seq"] + 1
    corrects = {
        "other-case": "RR-2026-077#2",
        "itself": f"{CASE}#{seq}",
        "later": f"{CASE}#{seq + 1}",
        "fine": f"{CASE}#2",
    }[target]
    body = _stored_correction({k: v for k, v in last.items() if k != "position"}, corrects)
    # as a tool with write access to the file would store it, past every check
    led.recorder.insert_events(
        [StoredEvent(case_id(CASE), seq, "EntryCorrected", canonical_json(body))]
    )
    result = open_ledger(sqlite_url).verify()
    if target == "fine":
        assert result.ok, result
        return
    assert not result.ok and result.first_bad == f"{CASE}#{seq}"
    assert "a correction must name an earlier entry" in result.reason
