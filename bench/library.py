"""The plain ``eventsourcing`` library, for reference: the issue's "do not be slower than it".

An application with a minimal aggregate (no validation, no hashing, no snapshots: the
library's defaults) appends one event per command (get the aggregate, trigger an event,
save) to aggregates of 100 events, on the same store kind and settings as the ledger, and
is compared with the same raw baseline as the ledger.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ledger.store.locations import parse_store

if TYPE_CHECKING:
    from .runner import Settings
    from .stores import RawBaseline, Target

#: About the size of one of the ledger's stored entries.
PAYLOAD = {
    "type": "ContextRecorded",
    "case": "RR-2026-00001",
    "occurred_at": "2026-10-31",
    "topic": "other",
    "summary": "Update from the business unit.",
    "seq": 101,
    "recorded_at": "2026-10-31T09:00:00.000000Z",
    "actor": "bench.loader",
    "role": "business-unit",
    "command_id": "00000000-0000-4000-8000-000000000000",
    "prev_hash": "0" * 64,
    "hash": "f" * 64,
}


class Note(Aggregate):
    """A minimal aggregate: a count of the events it has had."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    @event("Noted")
    def note(self, body: dict[str, Any]) -> None:
        self.count += 1


class Tally(Aggregate):
    """A minimal aggregate for the batch reference: opened by a case's first line, one
    event per later line, each event carrying the line's parsed body."""

    @event("Opened")
    def __init__(self, body: dict[str, Any]) -> None:
        self.count = 1

    @event("Noted")
    def note(self, body: dict[str, Any]) -> None:
        self.count += 1


class PlainApp(Application[UUID]):
    """The library's application, with its defaults (no snapshots)."""

    name = "BenchPlain"


class PlainSnapshottingApp(Application[UUID]):
    """The library's application, snapshotting every 50 events as the ledger does."""

    name = "BenchPlainSnap"
    snapshotting_intervals = {Note: 50}  # noqa: RUF012 - the library's class attribute


def library_single(target: Target, raw: RawBaseline, settings: Settings) -> dict[str, Any]:
    """Single appends by the plain library, without and with snapshots, vs the raw
    baseline: ratios like the ledger's."""
    out = {}
    for label, kind in (("no_snapshots", PlainApp), ("snapshots_every_50", PlainSnapshottingApp)):
        store = target.sibling(label)
        try:
            out[label] = _single(store, kind, raw, settings)
        finally:
            store.drop()
    return out


def _single(
    target: Target, kind: type[Application[UUID]], raw: RawBaseline, settings: Settings
) -> dict[str, Any]:
    env = {k: v for k, v in parse_store(target.url).env().items() if "RECORDER_TOPIC" not in k}
    if target.kind == "postgres":  # the library does not create its schema
        import psycopg
        from psycopg.sql import SQL, Identifier

        with psycopg.connect(target.base_url, autocommit=True) as conn:
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(target.schema)))
    app = kind(env=env)
    table = f"{kind.name.lower()}_events"
    try:
        ids = []
        for n in range(20):
            note = Note(f"note-{n}")
            for _ in range(99):
                note.note(PAYLOAD)
            app.save(note)
            ids.append(note.id)
        lib_rates, raw_rates = [], []
        for _ in range(settings.reps):
            position = target.last_position(table)
            start = time.perf_counter()
            for i in range(settings.single_ops):
                note = app.repository.get(ids[i % len(ids)])
                note.note(PAYLOAD)
                app.save(note)
            lib_rates.append(settings.single_ops / (time.perf_counter() - start))
            rows = target.rows_after(position, table)
            raw_rates.append(len(rows) / raw.insert_each(rows))
    finally:
        app.close()
    lib = statistics.median(lib_rates)
    baseline = statistics.median(raw_rates)
    return {
        "ratio_raw": round(lib / baseline, 3),
        "library_ops_per_s": round(lib, 1),
        "raw_ops_per_s": round(baseline, 1),
        "aggregate_events": 100,
    }


def library_env(url: str, kind: str, base_url: str = "", schema: str = "") -> dict[str, str]:
    """The library's own environment for a store (its default recorders, not the
    ledger's), creating the PostgreSQL schema, which the library does not create."""
    env = {k: v for k, v in parse_store(url).env().items() if "RECORDER_TOPIC" not in k}
    if kind == "postgres":
        import psycopg
        from psycopg.sql import SQL, Identifier

        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
    return env


def library_batch(env: dict[str, str], lines: list[bytes]) -> tuple[int, float]:
    """The plain library saving the same events as a ``record`` of ``lines`` in one
    transaction: each line parsed (orjson), one aggregate per case, one event per line
    carrying the parsed body, then one ``save`` of every aggregate.  No validation, no
    checks, no hashing, the library's JSON transcoder.  ``(events, seconds)``."""
    import orjson

    app = PlainApp(env=env)
    try:
        start = time.perf_counter()
        tallies: dict[str, Tally] = {}
        for line in lines:
            body = orjson.loads(line)
            tally = tallies.get(body["case"])
            if tally is None:
                tallies[body["case"]] = Tally(body)
            else:
                tally.note(body)
        app.save(*tallies.values())
        seconds = time.perf_counter() - start
    finally:
        app.close()
    return len(lines), seconds
