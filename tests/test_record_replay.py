"""The write path stores the same bytes as ever: a fixed input, recorded with the command
ids and salts made deterministic, gives exactly the stored bodies (and so hashes) that
the write path gave when ``tests/vectors/record_replay_expected.jsonl`` was made (see
``tests/vectors/make_record_replay.py``); and PostgreSQL stores the same bytes as SQLite
for the same input and actor."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from ledger.integrity.canonical import event_hash
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
