"""Smoke tests of the benchmarks (issue 6): the generator's ledgers are valid and realistic,
and ``python -m bench --tiny --json`` prints every figure of the issue (or a reason)."""

from __future__ import annotations

import collections
import itertools
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import orjson

from bench.child import BenchClock
from bench.generate import MAX_LENGTH, MIN_LENGTH, batches, iter_lines, plan_ledger
from bench.runner import KEYS, after_horizon
from ledger.application import Recorder
from tests.conftest import open_ledger

ROOT = Path(__file__).resolve().parents[1]


def test_generated_ledger_is_accepted_and_realistic(sqlite_url: str) -> None:
    spec = plan_ledger(seed=7, events=3_000)
    assert sum(c.length for c in spec.cases) == 3_000
    assert all(MIN_LENGTH <= c.length <= MAX_LENGTH for c in spec.cases)
    assert spec.cases[0].length == MAX_LENGTH
    assert {c.regime for c in spec.cases} == {"wt2015", "wt2018", "wt2023"}
    clock = BenchClock(after_horizon())
    ledger = open_ledger(sqlite_url, clock)
    from bench.generate import decision_makers

    admin = Recorder("bench.test", "admin")
    ledger.enrol("bench.test", ["admin", "business-unit"], admin)
    for name, role in decision_makers():  # only an enrolled decision-maker approves a delay
        ledger.enrol(name, [role], admin)
    types: collections.Counter[str] = collections.Counter()
    latest: dict[str, date] = {}
    backdated = 0  # entries that happened over a week before the case's latest so far
    for moment, lines in batches(spec, 1_000):
        clock.now = moment + timedelta(seconds=1)
        receipts = ledger.record_lines(lines, Recorder("bench.test"))  # every line accepted
        assert len(receipts) == len(lines)
        for line in lines:
            body = orjson.loads(line)
            types[body["type"]] += 1
            if "occurred_at" in body:
                day = date.fromisoformat(body["occurred_at"][:10])
                seen = latest.setdefault(body["case"], day)
                backdated += day < seen - timedelta(days=7)
                latest[body["case"]] = max(seen, day)
    assert ledger.count_events() == 3_000
    assert types["CaseReferred"] == len(spec.cases)
    assert types["EntryCorrected"] >= 30 and types["DecisionMade"] > len(spec.cases)  # revisits
    assert types["InformationRequested"] > types["DecisionMade"] * 10
    assert backdated > 20
    # Personal data went to its own table, never into a hashed body.
    first = spec.cases[0].ref
    names = [orjson.loads(r.value) for r in ledger.personal_data(first) if r.field == "name"]
    bodies = b"".join(orjson.dumps(r) for r in ledger.case_records(first))
    assert names and names[0].encode() not in bodies
    assert ledger.verify().ok
    ledger.close()


def test_generator_is_deterministic_and_streams() -> None:
    first = list(itertools.islice(iter_lines(plan_ledger(3, 1_000_000)), 500))
    again = list(itertools.islice(iter_lines(plan_ledger(3, 1_000_000)), 500))
    assert first == again
    other = list(itertools.islice(iter_lines(plan_ledger(4, 1_000_000)), 500))
    assert other != first
    times = [moment for moment, _ in first]
    assert times == sorted(times)  # in recording order, across interleaved cases
    assert len({orjson.loads(line)["case"] for _, line in first}) > 5


def test_tiny_run_prints_every_key() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--json", "--stores", "sqlite"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result = orjson.loads(done.stdout)
    assert set(result) == {*KEYS, "reasons", "postgres", "meta"}
    for key in KEYS:
        value = result[key]
        assert value is None or isinstance(value, int | float), key
        if value is None:
            assert result["reasons"][key], key
    assert "not chosen" in result["reasons"]["pg_writers_4_vs_1"]
    measured = [k for k in KEYS if k != "pg_writers_4_vs_1"]
    assert all(result[k] is not None or "not built" in result["reasons"][k] for k in measured)
    meta = result["meta"]
    durability = meta["durability"]["sqlite"]
    assert set(durability) == {"journal_mode", "synchronous"}
    assert meta["details"]["sqlite"]["baseline_durability"] == durability
    assert meta["sizes"]["events"] == 3_000 and meta["machine"]["python"]
