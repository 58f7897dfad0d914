"""A case's personal values are read with their keys in one read for the screen of a new
entry (issue 18: one round trip less per entry on PostgreSQL), and that read refuses and
fails exactly as the two reads it replaces: the database refuses keys to a user the
policy does not let export personal data, and a value whose key is gone (a data backup
restored without its key backup) stops the command rather than screening without it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
import pytest

from ledger.errors import StoreUnavailable
from tests.conftest import open_ledger, person
from tests.test_erasure import CASE, OTHER, _record_two_cases

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")


def test_the_one_read_gives_each_row_with_its_key(store_url: str, cli: Any) -> None:
    _record_two_cases(cli, store_url)
    led = open_ledger(store_url)
    for ref in (CASE, OTHER):
        stored = led.personal_key(ref)
        rows = led.ledger_recorder.select_personal(stored)
        keys = led.ledger_recorder.select_personal_keys(stored)
        assert rows and keys
        together = led.ledger_recorder.select_personal_with_keys(stored)
        assert together == [(row, keys[row.seq]) for row in rows]
    assert led.ledger_recorder.select_personal_with_keys(led.personal_key("RR-2026-999")) == []


def _drop_keys(url: str, ref: str) -> None:
    """Delete a case's keys behind the ledger's back, as a data backup restored without
    its key backup would leave the store."""
    if url.startswith("postgresql://"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute(
                SQL("DELETE FROM {}.caseledger_personal_keys WHERE case_ref=%s").format(
                    Identifier(schema)
                ),
                (ref,),
            )
    else:
        with sqlite3.connect(url) as conn:
            assert conn.execute("DELETE FROM personal_keys WHERE case_ref=?", (ref,)).rowcount


def test_an_entry_for_a_case_whose_keys_are_gone_is_not_recorded(store_url: str, cli: Any) -> None:
    """Without its keys the case's values cannot be screened for: the command stops (exit
    4, naming the entry whose key is missing) and writes nothing."""
    _record_two_cases(cli, store_url)
    led = open_ledger(store_url)
    _drop_keys(store_url, led.personal_key(OTHER))
    before = led.count_events()
    line = {"type": "ContextRecorded", "case": OTHER, "topic": "other", "summary": "a note"}
    result = cli(["--store", store_url, "record", "-"], stdin=orjson.dumps(line) + b"\n")
    assert result.exit_code == 4, result.stderr
    assert f"{OTHER}#1 has no key in this store" in result.stderr
    assert open_ledger(store_url).count_events() == before
    with pytest.raises(StoreUnavailable, match="has no key"):
        led.personal_data(OTHER)
    clean = dict(line, case=CASE)  # the other case still records
    result = cli(["--store", store_url, "record", "-"], stdin=orjson.dumps(clean) + b"\n")
    assert result.exit_code == 0, result.stderr


def test_the_database_refuses_the_one_read_to_a_user_without_export_personal(
    pg_url: str, cli: Any
) -> None:
    """A user the policy does not let export personal values gets no key from the one
    read either (exit 4 with the database's reason); a case without values has no key
    to refuse, and answers nothing, as the two reads did."""
    _record_two_cases(cli, pg_url)
    admin = open_ledger(pg_url)
    chair = person(pg_url, "chair.read")
    admin.enrol(chair.name, ["chair"], admin.recorder_for("admin"))
    theirs = chair.ledger()
    with pytest.raises(StoreUnavailable, match=r"refuses .* the personal-data keys"):
        theirs.ledger_recorder.select_personal_with_keys(theirs.personal_key(OTHER))
    with pytest.raises(StoreUnavailable, match=r"refuses .* the personal-data keys"):
        theirs.ledger_recorder.select_personal_keys(theirs.personal_key(OTHER))
    assert theirs.ledger_recorder.select_personal_with_keys("RR-2026-999") == []
    assert theirs.personal_data("RR-2026-999") == []
