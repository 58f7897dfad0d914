"""Signed checkpoints (version 2) attacked as an insider with write access to the store
would, on both stores, through the real CLI: ``verify --since`` with a trusted key
checks RFC 9162 consistency proofs for the events, the register and the personal-data
commitments, and names the first entry that differs; witnesses refuse forks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.domain.case import case_id
from ledger.integrity.canonical import event_hash
from tests.conftest import CliResult, open_ledger, scenario_lines

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

# --- behind the ledger's back: direct SQL, as someone with the database's write grants ---


@contextmanager
def raw_sql(url: str) -> Iterator[tuple[Any, str, Any]]:
    """A connection straight to the store's database, with ordinary triggers off on
    PostgreSQL (as its owner could): ``(connection, placeholder, table-namer)``."""
    if url.startswith("postgresql://"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")

            def table(name: str) -> Any:
                return SQL("{}.{}").format(Identifier(schema), Identifier(name))

            yield conn, "%s", table
    else:
        conn = sqlite3.connect(url)
        try:
            with conn:
                yield conn, "?", lambda name: name
        finally:
            conn.close()


def _q(text: str, mark: str, **tables: Any) -> Any:
    if mark == "%s":
        from psycopg.sql import SQL

        return SQL(text.replace("?", "%s")).format(**tables)
    return text.format(**tables)


def events_table(url: str) -> str:
    return "caseledger_events" if url.startswith("postgresql://") else "stored_events"


def register_table(url: str) -> str:
    return "caseledger_register" if url.startswith("postgresql://") else "ledger_register"


def write_entry(url: str, led: Any, record: dict[str, Any]) -> None:
    """Overwrite one stored case entry with ``record`` (its body, re-encoded)."""
    state = led.ledger_mapper.encode_state({k: v for k, v in record.items() if k != "position"})
    oid = case_id(record["case"])
    with raw_sql(url) as (conn, mark, table):
        key = oid if mark == "%s" else oid.hex
        conn.execute(
            _q(
                "UPDATE {t} SET state=? WHERE originator_id=? AND originator_version=?",
                mark,
                t=table(events_table(url)),
            ),
            (state, key, record["seq"]),
        )


def rewrite_case(url: str, ref: str, seq: int, change: dict[str, Any]) -> None:
    """Rewrite ``ref#seq`` and re-hash the rest of the case's chain: a consistent
    forgery that the per-case chains cannot see."""
    led = open_ledger(url)
    records = led.case_records(ref)
    prev = records[seq - 2]["hash"] if seq > 1 else "0" * 64
    for record in records[seq - 1 :]:
        forged = {k: v for k, v in record.items() if k != "position"}
        if forged["seq"] == seq:
            forged.update(change)
        forged["prev_hash"] = prev
        forged["hash"] = event_hash(forged)
        write_entry(url, led, forged)
        prev = forged["hash"]


def delete_entry(url: str, ref: str, seq: int) -> None:
    """Delete one case entry directly."""
    oid = case_id(ref)
    with raw_sql(url) as (conn, mark, table):
        conn.execute(
            _q(
                "DELETE FROM {t} WHERE originator_id=? AND originator_version=?",
                mark,
                t=table(events_table(url)),
            ),
            (oid if mark == "%s" else oid.hex, seq),
        )


def rewrite_register(url: str, entries: list[dict[str, Any]]) -> None:
    """Replace the whole register by ``entries``, re-chained and re-hashed."""
    led = open_ledger(url)
    prev = "0" * 64
    rows = []
    for seq, entry in enumerate(entries, start=1):
        forged = {**entry, "seq": seq, "prev_hash": prev}
        forged["hash"] = event_hash(forged)
        prev = forged["hash"]
        rows.append((seq, led.ledger_mapper.encode_state(forged)))
    with raw_sql(url) as (conn, mark, table):
        t = table(register_table(url))
        conn.execute(_q("DELETE FROM {t}", mark, t=t))
        for row in rows:
            conn.execute(_q("INSERT INTO {t} VALUES (?, ?)", mark, t=t), row)


def plain_verdict(url: str) -> int:
    """What plain ``verify`` gives for a register rewritten behind the ledger's back: the
    chain alone cannot tell on SQLite (0); on PostgreSQL the database kept each entry it
    appended (1)."""
    return 1 if url.startswith("postgresql://") else 0


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class Lodged:
    """A store, the real signing key's file and public key, and a checkpoint lodged."""

    url: str
    key: Path
    public: str
    checkpoint: Path
    tmp: Path


def make_key(cli: Any, path: Path) -> str:
    made = cli(["keys", "signing", "--out", str(path)])
    assert made.exit_code == 0, made.stderr
    return str(made.stdout.split("public key:")[1].strip())


@pytest.fixture
def lodged(scenario_store: str, cli: Any, tmp_path: Path) -> Lodged:
    """The scenario, a second case, a second user, and a signed checkpoint of it all."""
    other = scenario_lines()[0].replace(b"RR-2026-004", b"RR-2026-005")
    assert cli(["--store", scenario_store, "record", "-"], stdin=other).exit_code == 0
    added = cli(["--store", scenario_store, "users", "add", "chair.smith", "--role", "chair"])
    assert added.exit_code == 0, added.stderr
    key = tmp_path / "sign.pem"
    public = make_key(cli, key)
    cp = tmp_path / "cp.json"
    made = cli(
        ["--store", scenario_store, "checkpoint", "--signing-key", str(key), "--out", str(cp)]
    )
    assert made.exit_code == 0, made.stderr
    return Lodged(scenario_store, key, public, cp, tmp_path)


def since(lodged: Lodged, cli: Any, *extra: str, trusted: bool = True) -> CliResult:
    args = ["--store", lodged.url, "verify", "--since", str(lodged.checkpoint), "--json"]
    if trusted:
        args += ["--public-key", lodged.public]
    return cli([*args, *extra])  # type: ignore[no-any-return]


# --- a store that only appended ------------------------------------------------------------


def test_the_checkpoint_covers_three_trees(lodged: Lodged) -> None:
    cp = orjson.loads(lodged.checkpoint.read_bytes())
    assert cp["version"] == 2
    assert cp["events"]["size"] == 23 and cp["personal"]["size"] == 4
    assert cp["register"]["size"] == 3  # the store's policy, the first user, chair.smith
    assert cp["public_key"] == lodged.public


def test_an_appended_store_extends_its_checkpoint(lodged: Lodged, cli: Any) -> None:
    more = scenario_lines()[0].replace(b"RR-2026-004", b"RR-2026-006")
    assert cli(["--store", lodged.url, "record", "-"], stdin=more).exit_code == 0
    added = cli(["--store", lodged.url, "users", "add", "partner.patel", "--role", "chair"])
    assert added.exit_code == 0
    result = since(lodged, cli)
    assert result.exit_code == 0, result.stdout + result.stderr
    verdict = result.json()
    assert verdict["ok"] is True and verdict["proof"] == "consistency"
    trees = verdict["checkpoint"]["trees"]
    assert trees["events"] == {"old_size": 23, "new_size": 24, "proof_nodes": 5, "ok": True}
    assert trees["personal"]["new_size"] == 6 and trees["personal"]["proof_nodes"] >= 1
    # the register grew by the checkpoint's own entry and the new user
    assert trees["register"]["old_size"] == 3 and trees["register"]["new_size"] == 5
    assert verdict["checkpoint"]["trusted_key"] is True
    assert "trusted key" in verdict["signature"]


def test_without_a_trusted_key_the_verdict_says_so(lodged: Lodged, cli: Any) -> None:
    result = since(lodged, cli, trusted=False)
    assert result.exit_code == 0
    assert "internally consistent only" in result.json()["signature"]
    human = cli(["--store", lodged.url, "verify", "--since", str(lodged.checkpoint)])
    assert human.exit_code == 0 and "internally consistent only" in human.stdout


# --- the attacks -----------------------------------------------------------------------------


def test_a_removed_register_entry_is_caught(lodged: Lodged, cli: Any) -> None:
    entries = open_ledger(lodged.url).register_entries()
    kinds = [e["type"] for e in entries]
    assert kinds == ["PolicyChanged", "UserEnrolled", "UserEnrolled", "CheckpointSigned"]
    rewrite_register(lodged.url, entries[:2])  # chair.smith's enrolment never happened
    # The chain is consistent; on PostgreSQL the database's own record of it is not.
    assert cli(["--store", lodged.url, "verify"]).exit_code == plain_verdict(lodged.url)
    result = since(lodged, cli)
    assert result.exit_code == 1
    assert result.json()["checkpoint"]["first_bad"] == "register#3"
    assert result.json()["checkpoint"]["trees"]["register"]["ok"] is False


def test_a_register_entry_slipped_into_the_history_is_caught(lodged: Lodged, cli: Any) -> None:
    entries = open_ledger(lodged.url).register_entries()
    forged = {
        **entries[1],
        "user": "mallory",
        "roles": ["admin", "business-unit"],
        "reason": "backdated",
    }
    rewrite_register(lodged.url, [*entries[:2], forged, *entries[2:]])
    assert cli(["--store", lodged.url, "verify"]).exit_code == plain_verdict(lodged.url)
    result = since(lodged, cli)
    assert result.exit_code == 1 and result.json()["checkpoint"]["first_bad"] == "register#3"


def test_a_rewritten_personal_commitment_is_caught(lodged: Lodged, cli: Any) -> None:
    first = open_ledger(lodged.url).entry("RR-2026-004", 1)
    personal = {**first["personal"], "name": "f" * 64}
    rewrite_case(lodged.url, "RR-2026-004", 1, {"personal": personal})
    assert cli(["--store", lodged.url, "verify"]).exit_code == plain_verdict(lodged.url)
    result = since(lodged, cli)
    assert result.exit_code == 1
    trees = result.json()["checkpoint"]["trees"]
    assert trees["personal"]["ok"] is False and trees["events"]["ok"] is False
    assert result.json()["checkpoint"]["first_bad"] == "RR-2026-004#1"


def test_a_deleted_trailing_entry_is_named(lodged: Lodged, cli: Any) -> None:
    delete_entry(lodged.url, "RR-2026-005", 1)
    assert cli(["--store", lodged.url, "verify"]).exit_code == plain_verdict(lodged.url)
    result = since(lodged, cli)
    assert result.exit_code == 1
    assert result.json()["checkpoint"]["first_bad"] == "RR-2026-005#1"
    assert "deleted" in result.json()["reason"]


def test_a_rewritten_and_rehashed_case_names_the_first_entry_that_differs(
    lodged: Lodged, cli: Any
) -> None:
    rewrite_case(lodged.url, "RR-2026-004", 19, {"outcome": "no-review"})
    assert cli(["--store", lodged.url, "verify"]).exit_code == plain_verdict(lodged.url)
    result = since(lodged, cli)
    assert result.exit_code == 1
    assert result.json()["checkpoint"]["first_bad"] == "RR-2026-004#19"
    human = cli(
        [
            "--store",
            lodged.url,
            "verify",
            "--since",
            str(lodged.checkpoint),
            "--public-key",
            lodged.public,
        ]
    )
    assert human.exit_code == 1 and "RR-2026-004#19" in human.stderr


def test_without_the_hints_a_rewrite_still_fails(lodged: Lodged, cli: Any) -> None:
    rewrite_case(lodged.url, "RR-2026-004", 19, {"outcome": "no-review"})
    with raw_sql(lodged.url) as (conn, mark, table):
        conn.execute(
            _q("UPDATE {t} SET leaf=?", mark, t=table("caseledger_checkpoint_leaves")),
            (b"\x00" * 32,),
        )
    result = since(lodged, cli)
    assert result.exit_code == 1
    assert result.json()["checkpoint"]["first_bad"] == "checkpoint:events"
    assert "cannot be named" in result.json()["checkpoint"]["reason"]


def test_a_checkpoint_signed_by_another_key_fails_under_the_trusted_key(
    lodged: Lodged, cli: Any
) -> None:
    # The insider rewrites history, then signs a fresh checkpoint with a key of their own.
    rewrite_case(lodged.url, "RR-2026-004", 19, {"outcome": "no-review"})
    theirs = lodged.tmp / "theirs.pem"
    make_key(cli, theirs)
    forged = lodged.tmp / "forged.json"
    made = cli(
        ["--store", lodged.url, "checkpoint", "--signing-key", str(theirs), "--out", str(forged)]
    )
    assert made.exit_code == 0
    data = orjson.loads(forged.read_bytes())
    result = cli(
        [
            "--store",
            lodged.url,
            "verify",
            "--since",
            str(forged),
            "--public-key",
            lodged.public,
            "--json",
        ]
    )
    assert result.exit_code == 1
    assert result.json()["checkpoint"]["first_bad"] == "checkpoint"
    assert result.json()["checkpoint"]["trusted_key"] is True
    # claiming the real key in the file does not help: the signature is not the real key's
    data["public_key"] = lodged.public
    forged.write_bytes(orjson.dumps(data))
    result = cli(
        ["--store", lodged.url, "verify", "--since", str(forged), "--public-key", lodged.public]
    )
    assert result.exit_code == 1 and "signature does not verify" in result.stderr


# --- witnesses ---------------------------------------------------------------------------------


def checkpoint_cmd(lodged: Lodged, cli: Any, *extra: str) -> CliResult:
    args = ["--store", lodged.url, "checkpoint", "--signing-key", str(lodged.key), "--json"]
    return cli([*args, *extra])  # type: ignore[no-any-return]


def test_a_folder_witness_keeps_its_head_and_refuses_a_fork(lodged: Lodged, cli: Any) -> None:
    folder = lodged.tmp / "witness"
    folder.mkdir()
    first = checkpoint_cmd(lodged, cli, "--witness", str(folder))
    assert first.exit_code == 0, first.stderr
    assert first.json()["witnesses"][0]["proof"] == "first checkpoint"
    more = scenario_lines()[0].replace(b"RR-2026-004", b"RR-2026-006")
    assert cli(["--store", lodged.url, "record", "-"], stdin=more).exit_code == 0
    second = checkpoint_cmd(lodged, cli, "--witness", str(folder))
    assert second.exit_code == 0, second.stderr
    assert second.json()["witnesses"][0]["proof"] == "consistency"
    head = orjson.loads((folder / "head.json").read_bytes())
    assert head["events"]["size"] == 24
    assert len((folder / "checkpoints.jsonl").read_bytes().splitlines()) == 2

    rewrite_case(lodged.url, "RR-2026-004", 19, {"outcome": "no-review"})
    registered = len(open_ledger(lodged.url).register_entries())
    refused = checkpoint_cmd(lodged, cli, "--witness", str(folder))
    assert refused.exit_code == 1
    assert "refuses" in refused.stderr and "RR-2026-004#19" in refused.stderr
    assert orjson.loads((folder / "head.json").read_bytes()) == head  # kept its head
    assert len(open_ledger(lodged.url).register_entries()) == registered  # nothing recorded
    # the verifier given the witness folder sees the same
    result = cli(
        ["--store", lodged.url, "verify", "--since", str(folder), "--public-key", lodged.public]
    )
    assert result.exit_code == 1 and "RR-2026-004#19" in result.stderr


def test_a_witness_file_refuses_another_key(lodged: Lodged, cli: Any) -> None:
    witness = lodged.tmp / "head.json"
    assert checkpoint_cmd(lodged, cli, "--witness", str(witness)).exit_code == 0
    theirs = lodged.tmp / "theirs.pem"
    make_key(cli, theirs)
    refused = cli(
        [
            "--store",
            lodged.url,
            "checkpoint",
            "--signing-key",
            str(theirs),
            "--witness",
            str(witness),
        ]
    )
    assert refused.exit_code == 1 and "another log" in refused.stderr


def test_a_witness_store_refuses_a_fork(lodged: Lodged, cli: Any, tmp_path: Path) -> None:
    witness_url = str(tmp_path / "witness.db")
    first = checkpoint_cmd(lodged, cli, "--witness-store", witness_url)
    assert first.exit_code == 0, first.stderr
    delete_entry(lodged.url, "RR-2026-005", 1)
    refused = checkpoint_cmd(lodged, cli, "--witness-store", witness_url)
    assert refused.exit_code == 1
    assert "fewer than" in refused.stderr and "RR-2026-005#1" in refused.stderr


def test_a_malformed_witness_head_is_a_usage_error(lodged: Lodged, cli: Any) -> None:
    witness = lodged.tmp / "head.json"
    witness.write_bytes(b'{"version": 2, "events": {"size": "23"}}')
    result = checkpoint_cmd(lodged, cli, "--witness", str(witness))
    assert result.exit_code == 2 and "events.size" in result.stderr
    assert "Traceback" not in result.stderr


# --- malformed input -----------------------------------------------------------------------------


def _mutations() -> list[tuple[str, Any, str]]:
    def set_in(path: str, value: Any) -> Any:
        def apply(cp: dict[str, Any]) -> dict[str, Any]:
            keys = path.split(".")
            target = cp
            for k in keys[:-1]:
                target = target[k]
            target[keys[-1]] = value
            return cp

        return apply

    def drop(name: str) -> Any:
        return lambda cp: {k: v for k, v in cp.items() if k != name}

    return [
        ("size as text", set_in("events.size", "23"), "events.size"),
        ("count as text", set_in("count", "23"), "count"),
        ("negative size", set_in("register.size", -1), "register.size"),
        ("bad root hex", set_in("personal.root", "zz" * 32), "personal.root"),
        ("short signature", set_in("signature", "ab"), "signature"),
        ("missing events", drop("events"), "events"),
        ("missing public key", drop("public_key"), "public_key"),
        ("version 3", set_in("version", 3), "version"),
        ("not an object", lambda cp: [cp], "not a JSON object"),
    ]


@pytest.mark.parametrize(
    ("mutate", "named"), [m[1:] for m in _mutations()], ids=[m[0] for m in _mutations()]
)
def test_a_malformed_checkpoint_exits_2_with_the_reason(
    lodged: Lodged, cli: Any, mutate: Any, named: str
) -> None:
    cp = mutate(orjson.loads(lodged.checkpoint.read_bytes()))
    lodged.checkpoint.write_bytes(orjson.dumps(cp))
    result = since(lodged, cli)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr


def test_not_json_and_a_bad_public_key_exit_2(lodged: Lodged, cli: Any) -> None:
    good = lodged.checkpoint.read_bytes()
    lodged.checkpoint.write_bytes(b"{not json")
    assert since(lodged, cli).exit_code == 2
    lodged.checkpoint.write_bytes(good)
    bad_key = cli(
        [
            "--store",
            lodged.url,
            "verify",
            "--since",
            str(lodged.checkpoint),
            "--public-key",
            "xyz",
        ]
    )
    assert bad_key.exit_code == 2 and "64 hexadecimal" in bad_key.stderr


def test_verify_bundle_refuses_since(lodged: Lodged, cli: Any) -> None:
    out = lodged.tmp / "bundle"
    assert cli(["--store", lodged.url, "export", "--out", str(out)]).exit_code == 0
    result = cli(["verify", str(out), "--since", str(lodged.checkpoint)])
    assert result.exit_code == 2 and "--since" in result.stderr


def test_a_version_1_checkpoint_is_still_read(lodged: Lodged, cli: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    from ledger.checkpoints.checkpoint import signed_body

    v2 = orjson.loads(lodged.checkpoint.read_bytes())
    v1 = {
        k: v2[k]
        for k in ("store", "count", "root", "last_position", "signed_at", "signed_by", "public_key")
    }
    v1["version"] = 1
    key: Any = serialization.load_pem_private_key(lodged.key.read_bytes(), password=None)
    v1["signature"] = key.sign(signed_body(v1)).hex()
    lodged.checkpoint.write_bytes(orjson.dumps(v1))
    result = since(lodged, cli)
    assert result.exit_code == 0, result.stderr
    assert result.json()["checkpoint"]["not_checked"] == ["register", "personal"]
    delete_entry(lodged.url, "RR-2026-005", 1)
    assert since(lodged, cli).exit_code == 1


def test_verify_since_writes_nothing(lodged: Lodged, cli: Any) -> None:
    from ledger.checkpoints.hints import LeafHints

    led = open_ledger(lodged.url)
    hints = LeafHints.open(led, create=False)
    assert hints is not None
    kept = hints.kept()
    registered = len(led.register_entries())
    assert kept == {"events": 23, "register": 3, "personal": 4}
    more = scenario_lines()[0].replace(b"RR-2026-004", b"RR-2026-006")
    assert cli(["--store", lodged.url, "record", "-"], stdin=more).exit_code == 0
    assert since(lodged, cli).exit_code == 0
    assert hints.kept() == kept and len(led.register_entries()) == registered


def test_a_reader_without_the_hints_grant_still_scans(pg_url: str) -> None:
    """Leaf hints only help to name a difference: a user who may not write them still
    gets the three trees (on PostgreSQL, with SELECT only)."""
    import psycopg

    from ledger.application import CaseLedger
    from ledger.checkpoints.checkpoint import scan_store
    from ledger.checkpoints.hints import LeafHints
    from ledger.store.locations import parse_store

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    assert LeafHints.open(led) is not None
    base, _, schema = pg_url.partition("?schema=")
    role = f"reader_{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    try:
        user_url = base.replace("postgres@", f"{role}@", 1) + f"?schema={schema}"
        reader = CaseLedger(parse_store(user_url))
        try:
            hints = LeafHints.open(reader)
            assert hints is not None
            scan = scan_store(reader, hints=hints)
            assert scan.heads()["events"]["size"] == 22
            assert hints.refused is not None and "permission denied" in hints.refused
        finally:
            reader.close()
    finally:
        led.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
