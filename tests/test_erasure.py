"""Erasure that erases: each case's personal values are encrypted with keys of the case's
own, and ``erase-personal`` destroys the keys and the rows, so the values are gone from
the SQLite file and its WAL, from PostgreSQL's heap, and from a backup made as
``docs/security.md`` says; exporting personal data needs a role the policy allows
(checked by the database on PostgreSQL); the SQLite store file is private (0600).

Every test here reads the real store's bytes or drives the real CLI on both stores.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.store.postgres import role_grants
from tests.conftest import SCENARIO, open_ledger, scenario_lines

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

NAME, DOB = b"Kai Example", b"2025-08-14"
OTHER_NAME, OTHER_DOB = b"Zed Otherchild", b"2024-03-17"
CASE, OTHER = "RR-2026-004", "RR-2026-077"


def other_referral() -> bytes:
    """A second case with personal data of its own, which an erasure must not touch."""
    referral = orjson.loads(scenario_lines()[0])
    referral["case"] = OTHER
    referral["subject"] = f"Child Z ({OTHER})"
    referral["personal"] = {"name": OTHER_NAME.decode(), "date_of_birth": OTHER_DOB.decode()}
    return orjson.dumps(referral) + b"\n"


def _record_two_cases(cli: Any, url: str, env: dict[str, str] | None = None) -> None:
    assert cli(["--store", url, "record", str(SCENARIO)], env=env).exit_code == 0
    result = cli(["--store", url, "record", "-"], stdin=other_referral(), env=env)
    assert result.exit_code == 0, result.stderr


def _erase(cli: Any, url: str, env: dict[str, str] | None = None) -> None:
    result = cli(["--store", url, "erase-personal", CASE, "--reason", "Retention ended"], env=env)
    assert result.exit_code == 0, result.stderr


def _sqlite_files(url: str) -> bytes:
    """Every byte of every file beside the store (the file, its -wal, its -shm)."""
    folder = Path(url).parent
    files = [p for p in folder.iterdir() if p.name.startswith(Path(url).name)]
    assert Path(url) in files
    return b"".join(p.read_bytes() for p in files)


def _schema(url: str) -> tuple[str, str]:
    base, _, schema = url.partition("?schema=")
    return base, schema


def _pg_raw_pages(url: str) -> bytes:
    """The raw pages (dead tuples included) of every table, TOAST table and index of the
    store's schema, read through ``pageinspect`` as the superuser."""
    import psycopg
    from psycopg.errors import DuplicateObject, UniqueViolation

    base, schema = _schema(url)
    with psycopg.connect(base, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        except (DuplicateObject, UniqueViolation):
            pass  # another test created it at the same moment: it exists now
        relations = conn.execute(
            "SELECT c.oid::regclass::text, c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
            "AND c.relkind IN ('r', 'i') "
            "UNION SELECT t.oid::regclass::text, t.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_class t ON t.oid = c.reltoastrelid WHERE n.nspname = %s",
            (schema, schema),
        ).fetchall()
        assert relations, f"no relations in {schema}"
        blob = b""
        for name, _kind in relations:
            (blocks,) = conn.execute(
                "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int",
                (name,),
            ).fetchone()
            for block in range(blocks):
                (page,) = conn.execute("SELECT get_raw_page(%s, %s)", (name, block)).fetchone()
                blob += bytes(page)
        return blob


def _raw(url: str) -> bytes:
    return _pg_raw_pages(url) if url.startswith("postgresql://") else _sqlite_files(url)


# --- the erased values are gone from the store's bytes ----------------------------------


def test_erased_name_and_birth_date_are_in_no_byte_of_the_store(store_url: str, cli: Any) -> None:
    """The attack: read the raw file and WAL (SQLite) or the heap's pages, dead tuples
    included (PostgreSQL), after an erasure.  Before per-case keys, the values were there
    in clear: in the WAL's frames and the freed cells, and in PostgreSQL's dead tuple."""
    _record_two_cases(cli, store_url)
    _erase(cli, store_url)
    raw = _raw(store_url)
    assert len(raw) > 8192, "read nothing from the store"
    assert NAME not in raw and DOB not in raw  # the erased case's values
    assert OTHER_NAME not in raw and OTHER_DOB not in raw  # never stored in clear at all
    led = open_ledger(store_url)
    assert led.personal_data(CASE) == []
    assert {r.field: orjson.loads(r.value) for r in led.personal_data(OTHER)} == {
        "name": OTHER_NAME.decode(),
        "date_of_birth": OTHER_DOB.decode(),
    }
    assert cli(["--store", store_url, "verify", "--json"]).json()["ok"] is True


def _case_keys(url: str) -> list[bytes]:
    """The erased case's stored keys, read behind the ledger's back (the superuser)."""
    led = open_ledger(url)
    ref = led.personal_key(CASE)
    if url.startswith("postgresql://"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, schema = _schema(url)
        with psycopg.connect(base) as conn:
            rows = conn.execute(
                SQL("SELECT key FROM {}.{} WHERE case_ref=%s").format(
                    Identifier(schema), Identifier("caseledger_personal_keys")
                ),
                (ref,),
            ).fetchall()
    else:
        with sqlite3.connect(url) as conn:
            rows = conn.execute("SELECT key FROM personal_keys WHERE case_ref=?", (ref,)).fetchall()
    keys = [bytes(r[0]) for r in rows]
    assert keys, "the case has no key"
    return keys


def test_the_erasure_waits_for_a_writer_that_holds_an_older_transaction_id(
    pg_url: str, cli: Any
) -> None:
    """The attack on a shared server: another session's write transaction, begun before
    the erasure and idle between statements, has a transaction id but no snapshot
    (``backend_xmin`` is NULL), and still holds VACUUM's horizon back; an erasure that
    waited only for snapshots vacuumed at once and left the key's bytes in the heap."""
    import threading

    import psycopg

    _record_two_cases(cli, pg_url)
    keys = _case_keys(pg_url)
    base, _ = _schema(pg_url)
    holding = threading.Event()
    released: list[float] = []

    def writer_elsewhere() -> None:
        with psycopg.connect(base) as conn:
            conn.execute("SELECT pg_current_xact_id()")  # takes a transaction id, then idles
            holding.set()
            time.sleep(2.0)
            released.append(time.monotonic())
            conn.commit()

    other = threading.Thread(target=writer_elsewhere)
    other.start()
    assert holding.wait(30)
    _erase(cli, pg_url)
    erased_at = time.monotonic()
    other.join()
    assert released and released[0] <= erased_at, "the erasure did not wait for the writer"
    raw = _raw(pg_url)
    for key in keys:
        assert key not in raw


def _erase_json(cli: Any, url: str) -> tuple[dict[str, Any], str]:
    result = cli(["--store", url, "erase-personal", CASE, "--reason", "Retention ended", "--json"])
    assert result.exit_code == 0, result.stderr
    return orjson.loads(result.stdout), result.stderr


def test_an_erasure_that_clears_the_files_says_nothing_remains(store_url: str, cli: Any) -> None:
    _record_two_cases(cli, store_url)
    entry, stderr = _erase_json(cli, store_url)
    assert entry["type"] == "PersonalDataErased" and entry["case"] == CASE
    assert entry["remaining"] is None
    assert "warning" not in stderr


def test_an_erasure_kept_from_vacuuming_by_an_older_transaction_says_so(
    pg_url: str, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait before VACUUM is bounded: a transaction begun before the erasure and
    still open when it ends keeps the deleted key in the heap.  The erasure used to
    vacuum and report success; now it names the session and says what to run."""
    import threading

    import psycopg

    from ledger.store.postgres import LedgerPostgresRecorder

    monkeypatch.setattr(LedgerPostgresRecorder, "SNAPSHOT_WAIT_SECONDS", 0.5)
    _record_two_cases(cli, pg_url)
    base, schema = _schema(pg_url)
    holding, done = threading.Event(), threading.Event()
    pids: list[int] = []

    def writer_elsewhere() -> None:
        with psycopg.connect(base) as conn:
            row = conn.execute("SELECT pg_backend_pid(), pg_current_xact_id()").fetchone()
            assert row is not None
            pids.append(int(row[0]))
            holding.set()
            done.wait(30)  # idle in its transaction until the erasure has answered
            conn.commit()

    other = threading.Thread(target=writer_elsewhere)
    other.start()
    try:
        assert holding.wait(30)
        entry, stderr = _erase_json(cli, pg_url)
    finally:
        done.set()
        other.join()
    remaining = entry["remaining"]
    assert isinstance(remaining, str)
    assert f"pid {pids[0]}" in remaining and "VACUUM" in remaining and schema in remaining
    assert "warning" in stderr and "not yet gone" in stderr
    assert entry["type"] == "PersonalDataErased"  # the erasure itself stands


def test_an_erasure_whose_wal_another_process_keeps_says_so(sqlite_url: str, cli: Any) -> None:
    """SQLite: a reader holding a read transaction keeps the WAL from being emptied, so
    its frames keep a copy of the erased key; the erasure says so and what to run, after
    the five seconds it says it waits (each try used to wait the store's 30-second lock
    timeout, 50 of them: 25 minutes)."""
    import sqlite3

    _record_two_cases(cli, sqlite_url)
    reader = sqlite3.connect(sqlite_url, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM personal_keys").fetchone()  # a read snapshot
        started = time.monotonic()
        entry, stderr = _erase_json(cli, sqlite_url)
        assert time.monotonic() - started < 20
        assert Path(sqlite_url + "-wal").stat().st_size > 0  # what it says is so
    finally:
        reader.close()
    remaining = entry["remaining"]
    assert isinstance(remaining, str)
    assert "-wal" in remaining and "wal_checkpoint(TRUNCATE)" in remaining
    assert "not yet gone" in stderr


def test_the_erased_case_s_key_is_in_no_byte_of_the_store(store_url: str, cli: Any) -> None:
    """Crypto-shredding holds only if the key itself is gone: SQLite overwrites freed
    cells (secure_delete) and truncates its WAL; on PostgreSQL the erasure vacuums the
    key table when its user owns it (here: the test's superuser)."""
    _record_two_cases(cli, store_url)
    keys = _case_keys(store_url)
    assert any(k in _raw(store_url) for k in keys)  # the search can find a key at all
    _erase(cli, store_url)
    raw = _raw(store_url)
    for key in keys:
        assert key not in raw
    if not store_url.startswith("postgresql://"):
        wal = Path(store_url + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0


def test_the_erasure_waits_for_a_reader_that_could_still_see_the_key(pg_url: str, cli: Any) -> None:
    """A transaction that began before the erasure may still read the deleted key, so
    VACUUM cannot remove its bytes yet: the erasure waits for that reader to finish
    (bounded), then vacuums, and the key is in no byte of the store."""
    import threading

    import psycopg

    _record_two_cases(cli, pg_url)
    keys = _case_keys(pg_url)
    base = pg_url.partition("?schema=")[0]
    reader = psycopg.connect(base)
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    reader.execute("SELECT 1")  # the snapshot is taken: it predates the erasure
    released = threading.Event()

    def finish_later() -> None:
        released.wait(1.0)
        reader.rollback()

    finisher = threading.Thread(target=finish_later)
    finisher.start()
    try:
        _erase(cli, pg_url)
    finally:
        released.set()
        finisher.join()
        reader.close()
    raw = _raw(pg_url)
    for key in keys:
        assert key not in raw


def test_an_encrypted_store_wraps_each_case_key_with_the_store_key(
    store_url: str, cli: Any, tmp_path: Path
) -> None:
    """With CASELEDGER_KEY_FILE, a stored case key is itself ciphertext: the raw store
    never holds the key that decrypts a case's values."""
    key_file = tmp_path / "store.key"
    assert cli(["keys", "new", "--out", str(key_file)]).exit_code == 0
    env = {"CASELEDGER_KEY_FILE": str(key_file)}
    _record_two_cases(cli, store_url, env)
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    led = CaseLedger(parse_store(store_url), key_file=str(key_file))
    try:
        keys = led.case_keys(OTHER)
        assert keys and all(len(k) == 32 for k in keys.values())
        stored = set(_stored_keys(store_url))
        assert stored and not stored & set(keys.values())
        raw = _raw(store_url)
        for k in keys.values():
            assert k not in raw
        assert {r.field for r in led.personal_data(OTHER)} == {"name", "date_of_birth"}
    finally:
        led.close()
    _erase(cli, store_url, env)
    assert cli(["--store", store_url, "verify", "--json"], env=env).json()["ok"] is True


def _stored_keys(url: str) -> list[bytes]:
    if url.startswith("postgresql://"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, schema = _schema(url)
        with psycopg.connect(base) as conn:
            rows = conn.execute(
                SQL("SELECT key FROM {}.{}").format(
                    Identifier(schema), Identifier("caseledger_personal_keys")
                )
            ).fetchall()
    else:
        with sqlite3.connect(url) as conn:
            rows = conn.execute("SELECT key FROM personal_keys").fetchall()
    return [bytes(r[0]) for r in rows]


# --- backups ----------------------------------------------------------------------------


def _pg_dump_data_backup(url: str, out: Path) -> None:
    """The data backup of docs/security.md: everything but the key table's rows."""
    base, schema = _schema(url)
    subprocess.run(
        [
            "pg_dump",
            "--dbname",
            base,
            "--schema",
            schema,
            "--exclude-table-data",
            f"{schema}.caseledger_personal_keys",
            "--file",
            str(out),
        ],
        check=True,
    )


def _pg_dump_keys(url: str, out: Path) -> None:
    """The key backup of docs/security.md: the key table's rows only."""
    base, schema = _schema(url)
    subprocess.run(
        [
            "pg_dump",
            "--dbname",
            base,
            "--data-only",
            "--table",
            f"{schema}.caseledger_personal_keys",
            "--file",
            str(out),
        ],
        check=True,
    )


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A fresh PostgreSQL database to restore a backup into, dropped afterwards."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("CASELEDGER_TEST_POSTGRES is not set")
    name = f"cl_restore_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(SQL("CREATE DATABASE {}").format(Identifier(name)))
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(Identifier(name)))


def _sqlite3(*args: str | Path, stdin: bytes = b"") -> bytes:
    """Run the sqlite3 shell, as docs/security.md tells an operator to."""
    if shutil.which("sqlite3") is None:
        pytest.fail("the sqlite3 shell is needed to test the documented backup")
    done = subprocess.run(["sqlite3", *map(str, args)], input=stdin, capture_output=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _sqlite_data_backup(url: str, out: Path) -> None:
    """The data backup of docs/security.md on SQLite: a consistent copy (VACUUM INTO),
    then the key table emptied and the copy rebuilt, so it holds no key."""
    _sqlite3(url, f"VACUUM INTO '{out}'")
    _sqlite3(out, "PRAGMA secure_delete=ON; DELETE FROM personal_keys; VACUUM;")


def test_a_backup_taken_before_the_erasure_cannot_decrypt_the_erased_case(
    store_url: str, cli: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A data backup (made as docs/security.md says: without the key table's rows) taken
    BEFORE the erasure, restored AFTER it with the keys as they stand then, gives back
    every other case's personal data but not the erased case's: its rows are there, as
    ciphertext, and no key for them exists anywhere."""
    _record_two_cases(cli, store_url)
    if store_url.startswith("postgresql://"):
        restore = request.getfixturevalue("scratch_database")
        _pg_dump_data_backup(store_url, tmp_path / "data.sql")
        _erase(cli, store_url)
        _pg_dump_keys(store_url, tmp_path / "keys.sql")
        for dump in ("data.sql", "keys.sql"):
            subprocess.run(
                ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", restore, "-f", tmp_path / dump],
                check=True,
                capture_output=True,
            )
        restored = f"{restore}?schema={_schema(store_url)[1]}"
        raw = _pg_raw_pages(restored)
    else:
        backup = tmp_path / "backup" / "ledger.db"
        backup.parent.mkdir()
        _sqlite_data_backup(store_url, backup)
        _erase(cli, store_url)
        keys = _sqlite3(store_url, ".mode insert personal_keys", "SELECT * FROM personal_keys")
        assert keys.count(b"INSERT INTO") == 1  # the other case's key only
        _sqlite3(backup, stdin=keys)
        restored = str(backup)
        raw = _sqlite_files(restored)
    for value in (NAME, DOB, OTHER_NAME, OTHER_DOB):
        assert value not in raw
    led = open_ledger(restored)
    assert {r.field: orjson.loads(r.value) for r in led.personal_data(OTHER)} == {
        "name": OTHER_NAME.decode(),
        "date_of_birth": OTHER_DOB.decode(),
    }
    from ledger.errors import LedgerError

    with pytest.raises(LedgerError, match="no key"):
        led.personal_data(CASE)
    out = tmp_path / "bundle"
    refused = cli(
        ["--store", restored, "export", CASE, "--out", str(out), "--include-personal-data"]
    )
    assert refused.exit_code == 4, (refused.stdout, refused.stderr)
    assert "no key" in refused.stderr and "Traceback" not in refused.stderr
    assert not out.exists()
    assert cli(["--store", restored, "verify", "--json"]).json()["ok"] is True


# --- who may export personal data -------------------------------------------------------


@pytest.fixture
def reader_role(store_url: str) -> Iterator[Any]:
    """Make a user who can read the store but was given no key rights: on SQLite a login
    name (LOGNAME), on PostgreSQL a real database role with SELECT on every table of the
    schema except the key table.  Returns ``(url, env)`` for that user."""
    made: list[str] = []

    def make(name: str) -> tuple[str, dict[str, str]]:
        if not store_url.startswith("postgresql://"):
            return store_url, {"LOGNAME": name}
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, schema = _schema(store_url)
        role = f"{name.replace('.', '_')}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(role)))
            made.append(role)
            for grant in role_grants(schema, role, "writer"):  # docs/security.md's grants
                conn.execute(grant.encode())
        return store_url.replace("postgresql://postgres@", f"postgresql://{role}@"), {}

    yield make
    if made:
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _ = _schema(store_url)
        with psycopg.connect(base, autocommit=True) as conn:
            for role in made:
                conn.execute(SQL("DROP OWNED BY {}").format(Identifier(role)))
                conn.execute(SQL("DROP ROLE {}").format(Identifier(role)))


def _user_name(url: str, env: dict[str, str]) -> str:
    if url.startswith("postgresql://"):
        return url.split("://", 1)[1].split("@", 1)[0]
    return env["LOGNAME"]


@pytest.mark.parametrize(("role", "agency"), [("inspector", None), ("agency", "Northshire Police")])
def test_a_reader_without_the_export_personal_role_cannot_export_personal_data(
    store_url: str, cli: Any, reader_role: Any, tmp_path: Path, role: str, agency: str | None
) -> None:
    """An inspector can read and export the record, never the names; an agency user,
    whose role sees only its own agency's entries (docs/security.md), exports nothing."""
    _record_two_cases(cli, store_url)
    url, env = reader_role(f"{role}.user")
    add = ["--store", store_url, "users", "add", _user_name(url, env), "--role", role]
    assert cli(add + (["--agency", agency] if agency else [])).exit_code == 0
    out = tmp_path / "with-personal"
    refused = cli(
        ["--store", url, "export", CASE, "--out", str(out), "--include-personal-data"], env=env
    )
    assert refused.exit_code == 2, (refused.stdout, refused.stderr)
    why = "export-personal" if role == "inspector" else "only their own agency's entries"
    assert why in refused.stderr and "Traceback" not in refused.stderr
    assert not out.exists() and not list(tmp_path.glob(".with-personal*"))
    plain = cli(["--store", url, "export", CASE, "--out", str(tmp_path / "plain")], env=env)
    assert plain.exit_code == (0 if role == "inspector" else 2), plain.stderr
    assert (tmp_path / "plain").exists() == (role == "inspector")


def test_admin_and_business_unit_may_export_personal_data(
    store_url: str, cli: Any, reader_role: Any, tmp_path: Path
) -> None:
    """The roles the default policy allows export-personal get the values, each checked
    against its commitment by the bundle's verifier."""
    _record_two_cases(cli, store_url)
    url, env = reader_role("bu.officer")
    name = _user_name(url, env)
    assert (
        cli(["--store", store_url, "users", "add", name, "--role", "business-unit"]).exit_code == 0
    )
    for who, (u, e) in {"admin": (store_url, {}), "business-unit": (url, env)}.items():
        out = tmp_path / who
        done = cli(
            ["--store", u, "export", OTHER, "--out", str(out), "--include-personal-data"], env=e
        )
        assert done.exit_code == 0, (who, done.stderr)
        assert OTHER_NAME in (out / "personal.jsonl").read_bytes()
        checked = cli(["verify", str(out), "--json"])
        assert checked.exit_code == 0, checked.stdout


def test_the_database_refuses_keys_to_a_user_the_policy_does_not_allow(
    pg_url: str, cli: Any, tmp_path: Path
) -> None:
    """PostgreSQL is the authority: a role with SELECT on every other table cannot read
    the key table, the key function refuses it, and a client that widens its own policy
    (CASELEDGER_POLICY giving inspectors export-personal) is refused, cleanly."""
    import psycopg
    from psycopg.errors import InsufficientPrivilege
    from psycopg.sql import SQL, Identifier

    _record_two_cases(cli, pg_url)
    base, schema = _schema(pg_url)
    role = f"insp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(role)))
        for grant in role_grants(schema, role, "reader"):  # docs/security.md's grants
            conn.execute(grant.encode())
    try:
        assert cli(["--store", pg_url, "users", "add", role, "--role", "inspector"]).exit_code == 0
        ref = open_ledger(pg_url).personal_key(OTHER)
        role_url = base.replace("postgresql://postgres@", f"postgresql://{role}@")
        with psycopg.connect(role_url, autocommit=True) as conn:
            with pytest.raises(InsufficientPrivilege):
                conn.execute(
                    SQL("SELECT * FROM {}.{}").format(
                        Identifier(schema), Identifier("caseledger_personal_keys")
                    )
                )
            with pytest.raises(InsufficientPrivilege, match="export-personal"):
                conn.execute(
                    SQL("SELECT * FROM {}.{}(%s)").format(
                        Identifier(schema), Identifier("caseledger_personal_keys_of")
                    ),
                    (ref,),
                )
            # the ciphertext it may read is useless without a key
            rows = conn.execute(
                SQL("SELECT value FROM {}.{}").format(
                    Identifier(schema), Identifier("caseledger_personal")
                )
            ).fetchall()
            assert rows and all(OTHER_NAME not in bytes(r[0]) for r in rows)
        wide = tmp_path / "wide-policy.toml"
        from importlib import resources

        text = (resources.files("ledger") / "data" / "policy.toml").read_text()
        wide.write_text(
            text.replace(
                'description = "Reads and exports; never writes."\nrecord = []\nactions = []',
                'description = "Reads and exports; never writes."\nrecord = []\n'
                'actions = ["export-personal"]',
            )
        )
        assert wide.read_text() != text
        out = tmp_path / "stolen"
        refused = cli(
            [
                "--store",
                f"{role_url}?schema={schema}",
                "export",
                OTHER,
                "--out",
                str(out),
                "--include-personal-data",
            ],
            env={"CASELEDGER_POLICY": str(wide)},
        )
        # the client's policy file is refused outright; the database refused above
        assert refused.exit_code == 2, (refused.stdout, refused.stderr)
        assert "CASELEDGER_POLICY is no longer read" in refused.stderr
        assert not out.exists() and not list(tmp_path.glob(".stolen*"))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(SQL("DROP OWNED BY {}").format(Identifier(role)))
            conn.execute(SQL("DROP ROLE {}").format(Identifier(role)))


def test_removing_a_user_takes_away_their_key_rights(
    store_url: str, cli: Any, reader_role: Any, tmp_path: Path
) -> None:
    """The readers the database checks follow the register: a removed business-unit
    officer is refused at once."""
    _record_two_cases(cli, store_url)
    url, env = reader_role("bu.leaver")
    name = _user_name(url, env)
    assert (
        cli(["--store", store_url, "users", "add", name, "--role", "business-unit"]).exit_code == 0
    )
    args = ["export", OTHER, "--include-personal-data", "--out"]
    assert cli(["--store", url, *args, str(tmp_path / "a")], env=env).exit_code == 0
    removed = cli(["--store", store_url, "users", "remove", name, "--reason", "Left"])
    assert removed.exit_code == 0, removed.stderr
    refused = cli(["--store", url, *args, str(tmp_path / "b")], env=env)
    assert refused.exit_code in (2, 4) and "Traceback" not in refused.stderr
    assert not (tmp_path / "b").exists()


# --- the SQLite file is private -----------------------------------------------------------


def test_the_sqlite_store_and_its_wal_are_created_0600(
    sqlite_url: str, cli: Any, tmp_path: Path
) -> None:
    """Whatever the umask, nobody but the owner can read the store's files."""
    old = os.umask(0o022)
    try:
        assert cli(["--store", sqlite_url, "record", str(SCENARIO)]).exit_code == 0
        led = open_ledger(sqlite_url)
        assert led.count_events() > 0  # holds the WAL and its index open
        files = [p for p in tmp_path.iterdir() if p.name.startswith("ledger.db")]
        assert {p.name for p in files} >= {"ledger.db"}
        for path in files:
            assert path.stat().st_mode & 0o777 == 0o600, (path.name, oct(path.stat().st_mode))
        led.close()
    finally:
        os.umask(old)


def test_a_whole_store_copy_taken_before_the_erasure_still_opens_it(
    sqlite_url: str, cli: Any, tmp_path: Path
) -> None:
    """The limit docs/security.md states: a copy that holds the keys is not erased by an
    erasure made after it was taken; that is why data backups leave the keys out."""
    _record_two_cases(cli, sqlite_url)
    copy = tmp_path / "copy" / "ledger.db"
    copy.parent.mkdir()
    _sqlite3(sqlite_url, f"VACUUM INTO '{copy}'")
    _erase(cli, sqlite_url)
    assert open_ledger(sqlite_url).personal_data(CASE) == []
    led = open_ledger(str(copy))
    assert {r.field: orjson.loads(r.value) for r in led.personal_data(CASE)} == {
        "name": NAME.decode(),
        "date_of_birth": DOB.decode(),
    }
