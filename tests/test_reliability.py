"""Reliability on both stores: concurrent writers lose and duplicate nothing, a
``record`` killed mid-way leaves nothing of itself, and an unwritable store exits 4 with
nothing written."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import open_ledger, person, scenario_lines

#: The writers are child processes (which run at the real date whatever the tests' clock)
#: and login roles of their own (whose entries the PostgreSQL server dates): the module
#: runs at the real date, after all its fixed 2026 data (tests/conftest.py).
pytestmark = pytest.mark.real_clock

WRITER = r"""
import sys, orjson
from ledger.application import CaseLedger
from ledger.store.locations import parse_store
url, case, n, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
led = CaseLedger(parse_store(url))
for i in range(n):
    line = {"type": "ContextRecorded", "case": case, "occurred_at": "2026-02-20",
            "topic": "other", "summary": f"{tag} entry {i}"}
    led.record_lines([orjson.dumps(line)], led.recorder_for())
led.close()
"""


def referral(case: str) -> bytes:
    return scenario_lines()[0].replace(b"RR-2026-004", case.encode())


def run_writers(url: str, plan: list[tuple[str, str]], per_writer: int) -> None:
    """Each writer a process of its own, as its own user (its login name on SQLite, its
    own login role on PostgreSQL)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, writer_url, case, str(per_writer), tag],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "LOGNAME": tag, "USER": tag},
        )
        for case, tag, writer_url in plan_users(url, plan)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()[-2000:]


_USERS: dict[tuple[str, str], Any] = {}


def writer_name(url: str, tag: str) -> str:
    """The user a writer records as (a login role of its own on PostgreSQL)."""
    if (url, tag) not in _USERS:
        _USERS[(url, tag)] = person(url, tag)
    return str(_USERS[(url, tag)].name)


def plan_users(url: str, plan: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [(case, writer_name(url, tag), _USERS[(url, tag)].url) for case, tag in plan]


def check_chain(url: str, case: str, expected: int) -> list[dict[str, Any]]:
    led = open_ledger(url)
    records = led.case_records(case)
    assert [r["seq"] for r in records] == list(range(1, expected + 1))
    summaries = [r["summary"] for r in records[1:]]
    assert len(summaries) == len(set(summaries))  # nothing duplicated
    assert led.verify().ok
    led.close()
    return records


def test_concurrent_writers_on_the_same_case(store_url: str) -> None:
    led = open_ledger(store_url)
    admin = led.recorder_for()
    led.record_lines([referral("RR-2026-100")], admin)
    for i in range(4):
        led.enrol(writer_name(store_url, f"writer{i}"), ["business-unit"], admin)
    led.close()
    run_writers(store_url, [("RR-2026-100", f"writer{i}") for i in range(4)], per_writer=15)
    records = check_chain(store_url, "RR-2026-100", 1 + 4 * 15)
    for i in range(4):  # every writer's every entry is there
        name = writer_name(store_url, f"writer{i}")
        assert sum(1 for r in records if r.get("actor") == name) == 15


def test_concurrent_writers_on_different_cases(store_url: str) -> None:
    led = open_ledger(store_url)
    admin = led.recorder_for()
    led.record_lines([referral(f"RR-2026-20{i}") for i in range(3)], admin)
    for i in range(3):
        led.enrol(writer_name(store_url, f"w{i}"), ["business-unit"], admin)
    led.close()
    run_writers(store_url, [(f"RR-2026-20{i}", f"w{i}") for i in range(3)], per_writer=20)
    for i in range(3):
        check_chain(store_url, f"RR-2026-20{i}", 21)


#: The real ``caseledger record`` in a child process that says, through a pipe, when it is
#: inside the write transaction with entries sent, and then waits to be killed.  On SQLite
#: it watches its own connection's statements (``sqlite3``'s public trace callback): it
#: speaks when the entry after ``stop_at`` is about to be inserted, ``stop_at`` of them
#: inserted and not committed.  On PostgreSQL the database itself holds the writer (a
#: probe trigger the test adds sleeps at the ``stop_at``-th entry), and the child only
#: runs the command; ``client_connection_check_interval`` (through ``PGOPTIONS``) makes
#: the server notice the dead client during the sleep, as it would between statements.
KILLED_WRITER = r"""
import os, sqlite3, sys, time
url, path, fd, stop_at, total = sys.argv[1:6]
fd, stop_at = int(fd), int(stop_at)
if not url.startswith("postgresql://"):
    real_connect = sqlite3.connect
    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        sent = [0]
        def trace(statement):
            if statement.startswith("INSERT INTO stored_events"):
                if sent[0] == stop_at:
                    os.write(fd, f"inside the transaction: {sent[0]} of {total} sent\n".encode())
                    time.sleep(600)
                sent[0] += 1
        conn.set_trace_callback(trace)
        return conn
    sqlite3.connect = connect
from cli.main import run
run(["--store", url, "record", path])
"""


def add_pg_probe(url: str, stop_at: int) -> str:
    """Add to the store's schema a trigger that counts the entries inserted (in a
    sequence, which no rollback undoes) and sleeps at the ``stop_at``-th, inside the
    writer's transaction; return the schema."""
    import psycopg
    from psycopg.sql import SQL, Identifier, Literal

    base, _, schema = url.partition("?schema=")
    s = Identifier(schema)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(SQL("CREATE SEQUENCE {}.kill_probe").format(s))
        conn.execute(
            SQL(
                "CREATE FUNCTION {s}.kill_probe() RETURNS trigger LANGUAGE plpgsql AS $f$ "
                "BEGIN IF nextval({seq}) = {stop} THEN PERFORM pg_sleep(600); END IF; "
                "RETURN NEW; END $f$"
            ).format(s=s, seq=Literal(f"{schema}.kill_probe"), stop=Literal(stop_at))
        )
        conn.execute(
            SQL(
                "CREATE TRIGGER kill_probe AFTER INSERT ON {s}.caseledger_events "
                "FOR EACH ROW EXECUTE FUNCTION {s}.kill_probe()"
            ).format(s=s)
        )
    return schema


def pg_writer_inside(url: str, schema: str, stop_at: int) -> int | None:
    """The server process of a writer held inside its transaction by the probe, once
    ``stop_at`` entries are inserted (None while it is not yet there)."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(url.partition("?schema=")[0], autocommit=True) as conn:
        row = conn.execute(
            SQL("SELECT last_value, is_called FROM {}.kill_probe").format(Identifier(schema))
        ).fetchone()
        if row is None or not row[1] or row[0] < stop_at:
            return None
        held = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
            "AND xact_start IS NOT NULL AND query LIKE '%caseledger_append%'"
        ).fetchall()
        return int(held[0][0]) if len(held) == 1 else None


def pg_backend_alive(url: str, pid: int) -> bool:
    """Whether a PostgreSQL server process is still running."""
    import psycopg

    with psycopg.connect(url.partition("?schema=")[0], autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            is not None
        )


def test_kill_during_a_large_record_leaves_all_or_nothing(store_url: str, tmp_path: Path) -> None:
    """``kill -9`` of a writer proven to be inside its write transaction, half of its
    entries sent: it died by the signal, the store holds none of that command's
    entries and what it held before, verifies, and accepts the next write."""
    total, stop_at = 2_000, 1_000
    before = open_ledger(store_url)
    before.record_lines([referral("RR-2026-400")], before.recorder_for())
    before.close()
    pg = store_url.startswith("postgresql://")
    schema = add_pg_probe(store_url, stop_at) if pg else ""
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(referral(f"RR-2027-{n:04d}") + b"\n" for n in range(total)))
    read_end, write_end = os.pipe()
    args = [str(path), str(write_end), str(stop_at), str(total)]
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, store_url, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).parents[1],
        env={**os.environ, "PGOPTIONS": "-c client_connection_check_interval=100"},
        pass_fds=(write_end,),
    )
    os.close(write_end)
    backend: int | None = None
    try:
        deadline = time.monotonic() + 120
        if pg:
            while backend is None and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
                backend = pg_writer_inside(store_url, schema, stop_at)
        else:
            ready, _, _ = select.select([read_end], [], [], 120)
            said = os.read(read_end, 200) if ready else b""
            assert said == f"inside the transaction: {stop_at} of {total} sent\n".encode()
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert not pg or backend is not None, "the writer never reached the probe"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL  # it died by the signal, mid-way
    finally:
        os.close(read_end)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if backend is not None:  # the server saw its client die and rolled the transaction back
        deadline = time.monotonic() + 30
        while pg_backend_alive(store_url, backend) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pg_backend_alive(store_url, backend)
    led = open_ledger(store_url)
    assert led.count_events() == 1  # none of the killed command's entries
    assert [r["case"] for r in led.case_records("RR-2026-400")] == ["RR-2026-400"]
    assert led.verify().ok
    led.record_lines([referral("RR-2026-401")], led.recorder_for())  # the next write
    assert led.count_events() == 2
    assert led.verify().ok
    led.close()


def test_read_only_store_exits_4_and_writes_nothing(
    sqlite_url: str, cli: Any, tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions; the read-only check needs a normal user")
    assert cli(["--store", sqlite_url, "record", "-"], stdin=referral("RR-2026-300")).exit_code == 0
    os.chmod(sqlite_url, 0o444)
    os.chmod(tmp_path, 0o555)
    try:
        result = cli(["--store", sqlite_url, "record", "-"], stdin=referral("RR-2026-301"))
        assert result.exit_code == 4
    finally:
        os.chmod(tmp_path, 0o755)
        os.chmod(sqlite_url, 0o644)
    assert open_ledger(sqlite_url).count_events() == 1


def test_read_only_sqlite_via_uri_exits_4(sqlite_url: str, cli: Any) -> None:
    assert cli(["--store", sqlite_url, "record", "-"], stdin=referral("RR-2026-310")).exit_code == 0
    read_only = f"file:{sqlite_url}?mode=ro"
    read = cli(["--store", read_only, "status", "RR-2026-310", "--json"])
    assert read.exit_code == 0, read.stderr  # an inspector can read a read-only store
    assert read.json()["case"] == "RR-2026-310"
    result = cli(["--store", read_only, "record", "-"], stdin=referral("RR-2026-311"))
    assert result.exit_code == 4, result.stderr
    assert "Traceback" not in result.stderr
    assert open_ledger(sqlite_url).count_events() == 1


def test_read_only_postgres_user_exits_4(pg_url: str, cli: Any) -> None:
    import psycopg
    from psycopg.sql import SQL, Identifier

    assert cli(["--store", pg_url, "record", "-"], stdin=referral("RR-2026-320")).exit_code == 0
    base, _, schema = pg_url.partition("?schema=")
    role = f"ro_{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(role)))
        conn.execute(
            SQL("GRANT USAGE ON SCHEMA {} TO {}").format(Identifier(schema), Identifier(role))
        )
        conn.execute(
            SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                Identifier(schema), Identifier(role)
            )
        )
    try:
        ro_url = pg_url.replace("postgresql://postgres@", f"postgresql://{role}@")
        # An inspector with SELECT rights only can open the store and read it...
        read = cli(["--store", ro_url, "status", "RR-2026-320", "--json"])
        assert read.exit_code == 0, read.stderr
        assert cli(["--store", ro_url, "verify"]).exit_code == 0
        # ... and a write is refused by the server even when the ledger would allow it.
        enrolled = cli(["--store", pg_url, "users", "add", role, "--role", "business-unit"])
        assert enrolled.exit_code == 0, enrolled.stderr
        result = cli(["--store", ro_url, "record", "-"], stdin=referral("RR-2026-321"))
        assert result.exit_code == 4, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(
                SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(
                    Identifier(schema), Identifier(role)
                )
            )
            conn.execute(
                SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(Identifier(schema), Identifier(role))
            )
            conn.execute(SQL("DROP ROLE {}").format(Identifier(role)))
    assert open_ledger(pg_url).count_events() == 1


def test_record_input_fuzz_never_tracebacks(store_url: str) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from ledger.errors import InputError

    led = open_ledger(store_url)
    led.record_lines([referral("RR-2026-400")], led.recorder_for())
    base = orjson.loads(scenario_lines()[1].replace(b"RR-2026-004", b"RR-2026-400"))
    json_values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False)
        | st.text(),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=20,
    )

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.one_of(
            st.binary(max_size=200),
            json_values.map(orjson.dumps),
            st.dictionaries(st.sampled_from([*sorted(base), "x", "seq"]), json_values).map(
                lambda d: orjson.dumps({**base, **d})
            ),
            st.text(max_size=50).map(lambda t: orjson.dumps({**base, "reference": t})),
            st.integers(1, 2000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
            st.just(b'{"type":"IncidentNotified","case":"RR-2026-400","note":"\\ud800"}'),
            st.just(
                b'{"type":"IncidentNotified","case":"RR-2026-400","reference":1' + b"0" * 400 + b"}"
            ),
            st.just(b'{"type":"IncidentNotified","case":"RR-2026-400","recipients":[1e999]}'),
            st.just(orjson.dumps({**base, "reference": "x" * 1_000_000})),
        )
    )
    def attempt(line: bytes) -> None:
        before = led.count_events()
        try:
            led.record_lines([line], led.recorder_for())
        except InputError:
            assert led.count_events() == before

    attempt()
    led.close()


def test_full_disk_exits_4_with_nothing_half_written(tmp_path: Path, cli: Any) -> None:
    """A store on a tiny filesystem that fills up mid-write: exit 4, all or nothing."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        url = str(mount / "ledger.db")
        assert cli(["--store", url, "record", "-"], stdin=referral("RR-2026-500")).exit_code == 0
        big = b"\n".join(referral(f"RR-2028-{n:04d}") for n in range(3000)) + b"\n"
        result = cli(["--store", url, "record", "-"], stdin=big)
        assert result.exit_code == 4, (result.stdout[-500:], result.stderr[-500:])
        assert "Traceback" not in result.stderr
        led = open_ledger(url)
        assert led.count_events() == 1
        assert led.verify().ok
        led.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_large_record_on_postgres_completes(pg_url: str, tmp_path: Path) -> None:
    """A command carrying many megabytes (12,000 referrals with personal data) does not
    hang: the library's pipelined insert used to deadlock client and server."""
    lines = [referral(f"RR-2030-{n:05d}") for n in range(12_000)]
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "--store", pg_url, "record", str(path)],
        capture_output=True,
        timeout=180,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 0, done.stderr.decode()[-1000:]
    led = open_ledger(pg_url)
    assert led.count_events() == 12_000
    assert len(led.personal_data("RR-2030-00042")) == 2


def test_index_recovers_after_kill_during_reindex(store_url: str, cli: Any) -> None:
    """``kill -9`` during a rebuild of the cross-case index: the next query catches the
    index up from its tracked position and answers exactly as a clean rebuild does."""
    led = open_ledger(store_url)
    who = led.recorder_for()
    for start in range(0, 20_000, 10_000):
        led.record_lines([referral(f"RR-2031-{n:05d}") for n in range(start, start + 10_000)], who)
    led.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--store", store_url, "reindex"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).parents[1],
    )
    time.sleep(0.6)
    killed_mid_way = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after_kill = cli(["--store", store_url, "status", "--json"])
    assert after_kill.exit_code == 0, after_kill.stderr
    assert cli(["--store", store_url, "reindex"]).exit_code == 0
    rebuilt = cli(["--store", store_url, "status", "--json"]).json()
    assert after_kill.json() == rebuilt
    assert len(rebuilt) == 20_000
    assert killed_mid_way, "the rebuild finished before the kill: make the store larger"
