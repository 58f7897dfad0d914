"""What caseledger uses of the ``eventsourcing`` library beyond its public API, checked
against the installed version: each protected member the store backends override or call
still exists with the parameters they pass (docs/architecture.md, "The eventsourcing
library").  A release that renames or reshapes one fails here, before a store misbehaves;
``pyproject.toml`` pins the version these were read from."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteTrackingRecorder,
)

#: (where caseledger uses it, the member, the parameter names it is called with)
PROTECTED: list[tuple[str, Callable[..., Any], tuple[str, ...]]] = [
    (
        "ledger/store/sqlite.py: LedgerSQLiteRecorder._insert_events extends it",
        SQLiteApplicationRecorder._insert_events,
        ("self", "c", "stored_events"),
    ),
    (
        "ledger/store/sqlite.py: wraps the pool's connection factory (secure_delete)",
        SQLiteConnectionPool._create_connection,
        ("self",),
    ),
    (
        "projections/index: the SQLite index writes its position with the rows",
        SQLiteTrackingRecorder._insert_tracking,
        ("self", "c", "tracking"),
    ),
    (
        "ledger/domain/case.py: Case.refer creates the aggregate (the documented explicit style)",
        Aggregate._create,
        ("event_class", "id"),
    ),
]


def test_the_tested_version_is_installed() -> None:
    assert metadata.version("eventsourcing") == "9.5.6"


@pytest.mark.parametrize(("where", "member", "names"), PROTECTED, ids=[p[0] for p in PROTECTED])
def test_each_protected_member_is_still_there(
    where: str, member: Callable[..., Any], names: tuple[str, ...]
) -> None:
    parameters = list(inspect.signature(member).parameters)
    assert parameters[: len(names)] == list(names), (where, parameters)


def test_a_sqlite_connection_keeps_its_driver_connection(tmp_path: Any) -> None:
    """``ledger/store/sqlite.py`` runs PRAGMAs on the driver connection itself
    (``secure_delete``, ``wal_checkpoint(TRUNCATE)``), which the library keeps as
    ``_sqlite_conn``."""
    raw = sqlite3.connect(tmp_path / "x.db")
    try:
        assert SQLiteConnection(raw, max_age=None)._sqlite_conn is raw
    finally:
        raw.close()


def test_the_postgres_tracking_recorder_members_are_there() -> None:
    postgres = pytest.importorskip("eventsourcing.postgres")
    recorder = postgres.PostgresTrackingRecorder
    assert list(inspect.signature(recorder._insert_tracking).parameters)[:3] == [
        "self",
        "curs",
        "tracking",
    ]
    assert list(inspect.signature(recorder._create_table).parameters)[:2] == ["self", "curs"]
