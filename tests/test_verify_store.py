"""``caseledger verify`` re-hashes every chain and names the first altered entry, after a
direct UPDATE of a stored row behind the ledger's back, on both stores."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from ledger.domain.case import case_id


def tamper(url: str, seq: int, change: dict[str, Any]) -> None:
    """Rewrite one stored event's body directly in the database."""
    oid = case_id("RR-2026-004")
    if url.startswith("postgresql://"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, query = url.partition("?schema=")
        with psycopg.connect(base, autocommit=True) as conn:
            # Only the host's operator could do this: turn the ledger's triggers off.
            conn.execute("SET session_replication_role = replica")
            table = SQL("{}.{}").format(Identifier(query), Identifier("caseledger_events"))
            row = conn.execute(
                SQL("SELECT state FROM {} WHERE originator_id=%s AND originator_version=%s").format(
                    table
                ),
                (oid, seq),
            ).fetchone()
            assert row is not None
            state = {**orjson.loads(bytes(row[0])), **change}
            conn.execute(
                SQL(
                    "UPDATE {} SET state=%s WHERE originator_id=%s AND originator_version=%s"
                ).format(table),
                (orjson.dumps(state), oid, seq),
            )
    else:
        with sqlite3.connect(url) as conn:
            (blob,) = conn.execute(
                "SELECT state FROM stored_events WHERE originator_id=? AND originator_version=?",
                (oid.hex, seq),
            ).fetchone()
            state = {**orjson.loads(blob), **change}
            conn.execute(
                "UPDATE stored_events SET state=? WHERE originator_id=? AND originator_version=?",
                (orjson.dumps(state), oid.hex, seq),
            )


def test_untouched_store_verifies(scenario_store: str, cli: Any) -> None:
    result = cli(["--store", scenario_store, "verify", "--json"])
    assert result.exit_code == 0, result.stderr
    assert result.json()["ok"] is True
    assert result.json()["events"] == 22
    assert result.json()["first_bad"] is None


def test_altered_event_is_named(scenario_store: str, cli: Any) -> None:
    tamper(scenario_store, 19, {"outcome": "no-review"})
    result = cli(["--store", scenario_store, "verify", "--json"])
    assert result.exit_code == 1
    assert result.json()["ok"] is False
    assert result.json()["first_bad"] == "RR-2026-004#19"
    human = cli(["--store", scenario_store, "verify"])
    assert human.exit_code == 1 and "RR-2026-004#19" in human.stderr


def test_altered_last_event_is_caught_too(scenario_store: str, cli: Any) -> None:
    tamper(scenario_store, 22, {"location": "https://example.org/elsewhere"})
    result = cli(["--store", scenario_store, "verify", "--json"])
    assert result.exit_code == 1 and result.json()["first_bad"] == "RR-2026-004#22"


def test_rehashed_event_breaks_the_next_link(scenario_store: str, cli: Any) -> None:
    from ledger.integrity.canonical import event_hash

    led_state = {"outcome": "no-review"}
    # An insider who also recomputes the altered event's hash is caught by the next link.
    from tests.conftest import open_ledger

    record = open_ledger(scenario_store).entry("RR-2026-004", 19)
    forged = {**record, **led_state}
    forged["hash"] = event_hash(forged)
    tamper(scenario_store, 19, {**led_state, "hash": forged["hash"]})
    result = cli(["--store", scenario_store, "verify", "--json"])
    # On PostgreSQL the database kept the hash it appended: the forged entry itself is named.
    named = "RR-2026-004#19" if scenario_store.startswith("postgresql://") else "RR-2026-004#20"
    assert result.exit_code == 1 and result.json()["first_bad"] == named
