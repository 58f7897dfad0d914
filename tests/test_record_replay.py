"""The write path stores the same bytes as ever: a fixed input, recorded with the command
ids and salts made deterministic, gives exactly the stored bodies (and so hashes) that
the write path gave when ``tests/vectors/record_replay_expected.jsonl`` was made (see
``tests/vectors/make_record_replay.py``); and PostgreSQL stores the same bytes as SQLite
for the same input and actor."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrity.canonical import canonical_json, event_hash, sealed_record
from tests.conftest import open_ledger
from tests.vectors.make_record_replay import EXPECTED, StepClock, deterministic, replay


def expected() -> list[tuple[str, int, str, bytes]]:
    return [
        (r["case"], r["seq"], r["topic"], r["state"].encode())
        for r in map(orjson.loads, EXPECTED.read_bytes().splitlines())
    ]


def test_the_vector_is_a_valid_chain() -> None:
    """The pinned bytes are what they claim: each body hashes to its ``hash`` and chains
    to the one before (so a regenerated vector cannot hide a broken write path)."""
    heads: dict[str, str] = {}
    for case, seq, topic, state in expected():
        record = orjson.loads(state)
        assert (record["case"], record["seq"], record["type"]) == (case, seq, topic)
        assert record["hash"] == event_hash(record)
        assert record["prev_hash"] == heads.get(case, "0" * 64)
        heads[case] = record["hash"]
    assert len(heads) >= 10


def test_sqlite_stores_the_pinned_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with deterministic(monkeypatch):
        stored = replay(open_ledger(str(tmp_path / "replay.db"), StepClock()))
    want = expected()
    assert len(stored) == len(want)
    for got, pinned in zip(stored, want, strict=True):
        assert got == pinned, f"{got[0]}#{got[1]} differs from the pinned bytes"


def test_postgres_stores_what_sqlite_stores(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same input on PostgreSQL (whose actor is the session user) stores the same
    bytes as SQLite recording under that actor's name."""
    pg = open_ledger(pg_url, StepClock())
    actor = pg.identity()
    with deterministic(monkeypatch):
        on_pg = replay(pg, actor)
    with deterministic(monkeypatch):
        on_sqlite = replay(open_ledger(str(tmp_path / "replay.db"), StepClock()), actor)
    assert [hashlib.sha256(s).hexdigest() for *_, s in on_pg] == [
        hashlib.sha256(s).hexdigest() for *_, s in on_sqlite
    ]
    assert len(on_pg) == len(expected())


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6).filter(lambda k: k not in ("hash", "position")), _JSON))
def test_one_serialisation_gives_the_hash_and_the_stored_bytes(entry: dict[str, Any]) -> None:
    """``sealed_record`` (the write path's one serialisation) equals hashing the entry
    and serialising it with its hash, whatever its keys (beyond ASCII too) and values."""
    digest, stored = sealed_record(entry)
    assert digest == event_hash(entry)
    assert stored == canonical_json({**entry, "hash": digest})


def test_sqlite_notification_ids_are_the_rows_positions(tmp_path: Path) -> None:
    """The rows of one command, inserted at once, get the next positions in order: the
    ids the recorder returns are the rows' own."""
    from ledger.application import Recorder

    led = open_ledger(str(tmp_path / "ids.db"), StepClock())
    led.clock.now = datetime.fromisoformat("2026-11-30T09:00:00+00:00")
    from tests.conftest import scenario_lines

    led.record_lines(scenario_lines(), Recorder("ids.recorder", "business-unit"))
    positions = [p for p, _ in led.ledger_recorder.iter_states()]
    assert positions == list(range(1, len(positions) + 1))
    other = uuid.uuid4()
    rows = [StoredEvent(other, v, "Probe", b"{}") for v in (1, 2, 3)]
    returned = led.recorder.insert_events(rows)
    assert list(returned) == [len(positions) + n for n in (1, 2, 3)]
    found = led.recorder.select_notifications(start=len(positions) + 1, limit=10)
    assert [(n.id, n.originator_version) for n in found] == list(
        zip(returned, (1, 2, 3), strict=True)
    )


def test_postgres_in_small_calls_stores_the_same(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command sent to the database in several calls of ``caseledger_append`` (one
    transaction) stores the same entries, personal rows and keys as one call would, and
    what SQLite stores."""
    from ledger.store import postgres

    monkeypatch.setattr(postgres, "APPEND_CHUNK", 7)
    pg = open_ledger(pg_url, StepClock())
    actor = pg.identity()
    with deterministic(monkeypatch):
        on_pg = replay(pg, actor)
    sqlite = open_ledger(str(tmp_path / "replay.db"), StepClock())
    with deterministic(monkeypatch):
        on_sqlite = replay(sqlite, actor)
    assert on_pg == on_sqlite
    for case in sorted({c for c, *_ in on_sqlite}):
        assert [(r.seq, r.field, r.value) for r in pg.personal_data(case)] == [
            (r.seq, r.field, r.value) for r in sqlite.personal_data(case)
        ]
    assert pg.verify().ok


def test_a_retried_record_validates_its_released_lines_again(store_url: str) -> None:
    """A record that loses the race to another writer (who records in the same case
    just before the first attempt's commit) is checked again from its lines' text, the
    models having been released, and stores every line after the other writer's."""
    from ledger.application import Recorder
    from tests.conftest import scenario_lines

    clock = StepClock()
    clock.now = datetime.fromisoformat("2026-11-30T09:00:00+00:00")
    led = open_ledger(store_url, clock)
    actor = led.identity() if store_url.startswith("postgresql") else "race.recorder"
    who = Recorder(actor, "business-unit")
    lines = scenario_lines()
    led.record_lines(lines[:5], who)
    other = open_ledger(store_url, clock)
    raced: list[int] = []

    def progress(what: str, done: int, total: int | None) -> None:
        if what == "saving" and done == 0 and not raced:
            note = {"type": "ContextRecorded", "case": "RR-2026-004", "topic": "other"}
            note["summary"] = "Recorded by another writer meanwhile."
            raced.append(len(other.record_lines([orjson.dumps(note)], who)))

    receipts = led.record_lines(lines[5:], who, progress=progress)
    assert raced == [1]
    assert [r.ref for r in receipts] == [f"RR-2026-004#{n}" for n in range(7, 7 + len(lines) - 5)]
    records = led.case_records("RR-2026-004")
    assert records[5]["summary"] == "Recorded by another writer meanwhile."
    assert [r["seq"] for r in records] == list(range(1, len(lines) + 2))
    assert led.verify().ok
