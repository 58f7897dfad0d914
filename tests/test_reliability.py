"""Reliability on both stores: concurrent writers lose and duplicate nothing, a killed
``record`` leaves all or nothing, and an unwritable store exits 4 with nothing written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import open_ledger, person, scenario_lines

WRITER = r"""
import sys, orjson
from ledger.application import CaseLedger
from ledger.store import parse_store
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


def test_kill_during_a_large_record_leaves_all_or_nothing(store_url: str, tmp_path: Path) -> None:
    lines = [referral(f"RR-2027-{n:04d}") for n in range(20_000)]
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--store", store_url, "record", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).parents[1],
    )
    time.sleep(3.0)  # well into validation or the write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    led = open_ledger(store_url)
    count = led.count_events()
    assert count in (0, 20_000)
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
    for start in range(0, 40_000, 10_000):
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
    assert len(rebuilt) == 40_000
    assert killed_mid_way, "the rebuild finished before the kill: make the store larger"
