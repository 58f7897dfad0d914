"""The demo's sample: realistic fictional cases (shipped in ``ledger/data/demo/``),
recorded into a new SQLite store through the Python API.

The ledger clock is set as if each entry had been recorded on the day it happened,
except the few entries the demo's tour shows being recorded late (a backdated reply, a
correction), so every question the tour asks answers the same on any day.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from pathlib import Path

import orjson

from ledger.application import CaseLedger, Recorder
from ledger.catalogue.models import LONDON, occurred_day
from ledger.store.locations import parse_store

SAMPLE_FILES = ("scr-2016-011.jsonl", "rr-2025-017.jsonl", "rr-2026-004.jsonl", "rr-2026-031.jsonl")

#: Entries the business unit recorded later than they happened: (case, line) -> day.
RECORDED_LATE = {
    ("RR-2025-017", 16): "2025-03-31",  # education's reply arrived after the decision
    ("RR-2025-017", 21): "2025-04-28",  # the correction of its date
}


def sample_lines() -> list[tuple[str, int, bytes]]:
    """The sample entries in recording order: (case, line number, JSON line)."""
    lines = []
    folder = resources.files("ledger") / "data" / "demo"
    for name in SAMPLE_FILES:
        text = (folder / name).read_bytes()
        for number, line in enumerate((x for x in text.splitlines() if x.strip()), start=1):
            case = orjson.loads(line)["case"]
            lines.append((case, number, line))
    return lines


def decision_makers() -> list[tuple[str, str]]:
    """The decision-makers the sample names (``decided_by``, ``approved_by``), each with
    the role that decides and approves in its case's regime: ``(name, role)``."""
    regimes: dict[str, str] = {}
    found: dict[str, str] = {}
    for case, _number, line in sample_lines():
        data = orjson.loads(line)
        if data["type"] == "CaseReferred":
            regimes[case] = data["regime"]
        role = "chair" if regimes.get(case) == "wt2015" else "safeguarding-partner"
        for name in [*data.get("decided_by", []), data.get("approved_by")]:
            if name:
                found.setdefault(name, role)
    return sorted(found.items())


def record_sample(ledger_path: str) -> int:
    """Record the sample into a new SQLite store; returns the number of entries."""
    moment = datetime(2000, 1, 1, tzinfo=UTC)

    def clock() -> datetime:
        return moment

    led = CaseLedger(parse_store(ledger_path), clock=clock)
    who = Recorder("demo.business.manager", "business-unit")
    count = 0
    try:
        # The decision-makers the sample names are enrolled first: only they approve a
        # delay (the policy's ``approves``), and the decisions name them.
        for name, role in decision_makers():
            led.enrol(name, [role], Recorder(who.actor, "admin"))
        for case, number, line in sample_lines():
            data = orjson.loads(line)
            late = RECORDED_LATE.get((case, number))
            day = occurred_day(late or data.get("occurred_at") or "2000-01-01")
            at = datetime.combine(day, time(17, 0), LONDON).astimezone(UTC)
            moment = max(moment + timedelta(seconds=1), at)
            led.record_lines([line], who)
            count += 1
        # The person running the demo may record in its store too.
        led.enrol(led.identity(), ["admin", "business-unit"], Recorder(who.actor, "admin"))
    finally:
        led.close()
    return count


def fresh_name(base: str = "caseledger-demo", folder: str | os.PathLike[str] = ".") -> Path:
    """A store file name in ``folder`` (relative to it when it is the current one) that
    does not exist yet."""
    where = Path(folder)
    candidate = where / f"{base}.db"
    n = 2
    while candidate.exists():
        candidate = where / f"{base}-{n}.db"
        n += 1
    return candidate


__all__ = ["RECORDED_LATE", "SAMPLE_FILES", "decision_makers", "fresh_name", "record_sample"]
