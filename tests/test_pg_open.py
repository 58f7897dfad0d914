"""Opening a PostgreSQL store that is already there changes nothing in it.

The library runs its create statements on every open, and so did the ledger's authority
(about 80 tables, functions, triggers and grants: most of a cold command's time on the
server, issue 18).  Now the owner records a digest of the statements as they ran, in the
meta table only the owner may write, and an open whose statements are the recorded ones
runs none of them.  What that must not weaken: statements that changed (a new version of
the authority) run again; nobody else can record a digest to stop them.
"""

from __future__ import annotations

from typing import Any

import pytest
from psycopg.sql import SQL, Identifier

from tests.conftest import open_ledger, person, scenario_lines

pytestmark = pytest.mark.real_clock


def _connect(url: str) -> Any:
    import psycopg

    base, _, _schema = url.partition("?schema=")
    return psycopg.connect(base, autocommit=True)


def _schema(url: str) -> str:
    return url.partition("?schema=")[2]


def _function_versions(url: str) -> dict[str, str]:
    """Each function of the store's schema by the transaction that last wrote it: a
    ``CREATE OR REPLACE FUNCTION`` writes its catalogue row anew even when unchanged."""
    with _connect(url) as conn:
        rows = conn.execute(
            "SELECT p.oid::regprocedure::text, p.xmin::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s",
            (_schema(url),),
        ).fetchall()
    return {name: xmin for name, xmin in rows}


def _recorded_digest(url: str) -> bytes | None:
    with _connect(url) as conn:
        row = conn.execute(
            SQL("SELECT value FROM {}.caseledger_meta WHERE key = 'ddl:caseledger_events'").format(
                Identifier(_schema(url))
            )
        ).fetchone()
    return None if row is None else bytes(row[0])


def _made_store(url: str) -> None:
    ledger = open_ledger(url)
    ledger.record_lines(scenario_lines()[:3], ledger.recorder_for())
    ledger.close()


def test_opening_a_current_store_again_rewrites_none_of_its_functions(pg_url: str) -> None:
    _made_store(pg_url)
    assert _recorded_digest(pg_url) is not None
    before = _function_versions(pg_url)
    assert any("caseledger_append" in name for name in before)
    reader = open_ledger(pg_url)
    assert reader.verify().ok
    reader.close()
    assert _function_versions(pg_url) == before


def test_statements_that_changed_run_again_and_are_recorded(pg_url: str) -> None:
    _made_store(pg_url)
    current = _recorded_digest(pg_url)
    assert current is not None
    schema = Identifier(_schema(pg_url))
    with _connect(pg_url) as conn:  # as an older version of the ledger left it
        conn.execute(
            SQL(
                "UPDATE {}.caseledger_meta SET value = 'older' WHERE key = 'ddl:caseledger_events'"
            ).format(schema)
        )
        conn.execute(
            SQL("DROP TRIGGER caseledger_events_immutable ON {}.caseledger_events").format(schema)
        )
    before = _function_versions(pg_url)
    ledger = open_ledger(pg_url)
    ledger.close()
    after = _function_versions(pg_url)
    changed = [name for name in before if after.get(name) != before[name]]
    assert any("caseledger_append" in name for name in changed)
    assert _recorded_digest(pg_url) == current
    with _connect(pg_url) as conn:
        trigger = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgname = 'caseledger_events_immutable' "
            "AND tgrelid = %s::regclass",
            (f'"{_schema(pg_url)}".caseledger_events',),
        ).fetchone()
    assert trigger is not None


def test_no_user_can_record_a_digest_to_keep_old_statements(pg_url: str) -> None:
    import psycopg

    _made_store(pg_url)
    admin = open_ledger(pg_url)
    writer = person(pg_url, "chair.smith", kind="writer")
    admin.enrol(writer.name, ["chair"], admin.recorder_for("admin"))
    admin.close()
    schema = Identifier(_schema(pg_url))
    attempts = [
        SQL("UPDATE {}.caseledger_meta SET value = 'x' WHERE key = 'ddl:caseledger_events'"),
        SQL("DELETE FROM {}.caseledger_meta WHERE key = 'ddl:caseledger_events'"),
        SQL("INSERT INTO {}.caseledger_meta VALUES ('ddl:caseledger_snapshots', 'x')"),
    ]
    with _connect(writer.url) as conn:
        for statement in attempts:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.format(schema))
    # and opening the store as that user records nothing either
    ledger = open_ledger(writer.url)
    assert ledger.verify().ok
    ledger.close()
    digest = _recorded_digest(pg_url)
    assert digest is not None and digest != b"x"


def test_an_index_of_an_earlier_layout_is_dropped_and_rebuilt(pg_url: str) -> None:
    """An index made when ``case_index`` kept a ``state`` column is replaced at the next
    open that reads it (its layout read from the catalogue, not information_schema)."""
    from projections import api

    _made_store(pg_url)
    ledger = open_ledger(pg_url)
    before = api.status(ledger, include_closed=True).to_json()
    ledger.close()
    schema = Identifier(_schema(pg_url))
    with _connect(pg_url) as conn:
        conn.execute(SQL("ALTER TABLE {}.case_index ADD COLUMN state text").format(schema))
    ledger = open_ledger(pg_url)
    assert api.status(ledger, include_closed=True).to_json() == before
    ledger.close()
    with _connect(pg_url) as conn:
        column = conn.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'state' "
            "AND NOT attisdropped",
            (f'"{_schema(pg_url)}".case_index',),
        ).fetchone()
    assert column is None
