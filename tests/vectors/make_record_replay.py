"""The record replay vector: stored bodies and hashes, pinned byte for byte.

``tests/vectors/record_replay_input.jsonl`` holds a fixed input (the four demo cases and
eight generated ones: referrals with personal data, corrections, delays and their
approvers, requests with and without ids), each line with the command it belongs to
and the ledger clock of that command.  :func:`replay` records it on a store with the
command ids and personal-data salts made deterministic, and returns every stored entry
as ``(case, seq, topic, state)``; ``record_replay_expected.jsonl`` is what the write
path stored when the vector was made, and ``tests/test_record_replay.py`` requires the
same bytes of every later write path.

Regenerate the input (from the demo files and ``bench.generate``) and the expected
output only when the stored format is meant to change (it never is)::

    .venv/bin/python -m tests.vectors.make_record_replay
"""

from __future__ import annotations

import hashlib
import itertools
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
INPUT = HERE / "record_replay_input.jsonl"
EXPECTED = HERE / "record_replay_expected.jsonl"
ACTOR = "replay.recorder"
GENERATED_CASES = (
    "SCR-2015-00004",
    "SCR-2016-00005",
    "SCR-2017-00010",
    "SCR-2017-00011",
    "RR-2024-00033",
    "RR-2024-00035",
    "RR-2026-00039",
)


class StepClock:
    """The ledger clock of the replay: set per command, one microsecond on per call."""

    def __init__(self) -> None:
        self.now = datetime.fromisoformat("2000-01-01T00:00:00+00:00")

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


@contextmanager
def deterministic(monkeypatch: Any) -> Iterator[None]:
    """Command ids and salts from counters rather than randomness, for the replay only."""
    from ledger.application import personal

    ids = itertools.count(1)
    salts: dict[str, Iterator[int]] = {}

    def new_salt() -> bytes:
        # counted per caller, so that PostgreSQL's screen digests (salted too, and
        # only there) leave the commitments' salts as SQLite's
        caller = sys._getframe(1).f_code.co_name
        number = next(salts.setdefault(caller, itertools.count(1)))
        return hashlib.sha256(f"salt {caller} {number}".encode()).digest()[:16]

    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(ids), version=4))
    monkeypatch.setattr(personal, "new_salt", new_salt)
    yield


def commands() -> list[tuple[datetime, list[bytes]]]:
    """The input, as ``(clock, lines)`` per command."""
    out: list[tuple[datetime, list[bytes]]] = []
    for _command, group in itertools.groupby(
        (orjson.loads(line) for line in INPUT.read_bytes().splitlines() if line.strip()),
        key=lambda item: item["command"],
    ):
        items = list(group)
        out.append((datetime.fromisoformat(items[0]["clock"]), [i["line"].encode() for i in items]))
    return out


def approvers() -> list[str]:
    """Every approver the input's delays (and corrections of them) name."""
    names: set[str] = set()
    for _, lines in commands():
        for line in lines:
            body = orjson.loads(line)
            changes = body.get("changes") if isinstance(body.get("changes"), dict) else {}
            for name in (body.get("approved_by"), changes.get("approved_by")):
                if isinstance(name, str):
                    names.add(name)
    return sorted(names)


def replay(ledger: Any, actor: str = ACTOR) -> list[tuple[str, int, str, bytes]]:
    """Record the input on an empty store (enrolling the approvers first) and return
    every stored entry ``(case, seq, topic, state)`` in global order."""
    from ledger.application import Recorder

    clock = ledger.clock
    admin = Recorder(actor, "admin")
    ledger.enrol(actor, ["admin", "business-unit"], admin)
    for name in approvers():
        ledger.enrol(name, ["safeguarding-partner" if "Council" in name else "chair"], admin)
    for moment, lines in commands():
        clock.now = moment
        ledger.record_lines(lines, Recorder(actor, "business-unit"))
    out = []
    for position, state in ledger.ledger_recorder.iter_states():
        record = orjson.loads(state)
        out.append((record["case"], record["seq"], record["type"], bytes(state)))
        del position
    return out


def _make_input() -> None:  # pragma: no cover - run by hand only
    from bench.generate import iter_lines, plan_ledger

    demo = HERE.parents[1] / "ledger" / "data" / "demo"
    rows: list[dict[str, Any]] = []
    command = 0
    for path in sorted(demo.glob("*.jsonl")):
        command += 1
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        for line in lines:
            rows.append({"command": command, "clock": "2026-11-30T09:00:00+00:00", "line": ""})
            rows[-1]["line"] = orjson.loads(orjson.dumps(line.decode()))
    picked = [
        (moment, line)
        for moment, line in iter_lines(plan_ledger(1, 4000))
        if orjson.loads(line)["case"] in GENERATED_CASES
    ]
    for n, chunk in enumerate(
        itertools.batched(picked, 60)
        if hasattr(itertools, "batched")
        else [picked[i : i + 60] for i in range(0, len(picked), 60)]
    ):
        command += 1
        clock = (chunk[-1][0] + timedelta(seconds=1)).isoformat()
        for _, line in chunk:
            rows.append({"command": command, "clock": clock, "line": line.decode()})
        del n
    INPUT.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def main() -> None:  # pragma: no cover - run by hand only
    import tempfile

    import pytest

    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    _make_input()
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        with deterministic(mp):
            ledger = CaseLedger(parse_store(f"{tmp}/replay.db"), clock=StepClock())
            stored = replay(ledger)
            ledger.close()
    EXPECTED.write_bytes(
        b"".join(
            orjson.dumps({"case": c, "seq": s, "topic": t, "state": state.decode()}) + b"\n"
            for c, s, t, state in stored
        )
    )
    print(f"{len(stored)} entries written to {EXPECTED.name}")


if __name__ == "__main__":  # pragma: no cover
    main()
