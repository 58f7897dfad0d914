"""Opening stores (issue 13, item 12): whatever is at a store location and is not a
caseledger store is refused with exit 4 and left byte for byte as it was (no tables
added, no ``-wal``/``-journal`` file left behind); a query where no store exists exits 4
and creates nothing; only recording commands (and ``demo``) create a store.

Every query command is tried on every kind of location, on both stores."""

from __future__ import annotations

import csv
import hashlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PG_URL, SCENARIO, CliResult, open_ledger

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
CASE = "RR-2026-004"

#: Every command that only reads (or, for a store, writes only what needs one there
#: already): none may create a store.  ``{dir}`` is a fresh folder of the test's.
QUERIES: dict[str, list[str]] = {
    "status": ["status", "--json"],
    "status CASE": ["status", CASE, "--json"],
    "timeline": ["timeline", CASE, "--json"],
    "why": ["why", CASE, "--json"],
    "clocks": ["clocks", "--json"],
    "delays": ["delays", "--from", "CaseReferred", "--to", "DecisionMade", "--json"],
    "due": ["due", "--json"],
    "quality": ["quality", CASE, "--json"],
    "export": ["export", "--out", "{dir}/bundle", "--json"],
    "verify": ["verify", "--json"],
    "users list": ["users", "list", "--json"],
    "users remove": ["users", "remove", "someone", "--reason", "left"],
    "policy show": ["policy", "show", "--json"],
    "reindex": ["reindex", "--json"],
    "checkpoint": ["checkpoint", "--json"],
    "hold": ["hold", CASE, "--reason", "litigation"],
    "erase-personal": ["erase-personal", CASE, "--reason", "retention ended"],
}

#: Commands that record, and so may create a store where none is.
RECORDING: dict[str, list[str]] = {
    "record": ["record", str(SCENARIO), "--json"],
    "refer": [
        "refer",
        "RR-2026-900",
        "--occurred-at",
        "2026-02-09",
        "--regime",
        "wt2023",
        "--subject",
        "Child Q (RR-2026-900)",
        "--incident-date",
        "2026-02-06",
        "--aware-date",
        "2026-02-09",
        "--harm",
        "serious-harm",
        "--abuse-or-neglect",
        "suspected",
        "--home-area",
        "Northshire",
        "--referrer",
        "Northshire Police",
        "--route",
        "statutory",
        "--summary",
        "Infant admitted with injuries.",
        "--json",
    ],
    "users add": ["users", "add", "jsmith", "--role", "chair", "--json"],
    "policy set": [
        "policy",
        "set",
        str(ROOT / "ledger" / "data" / "policy.toml"),
        "--reason",
        "the shipped policy",
        "--json",
    ],
    "import-tracker": [
        "import-tracker",
        str(EXAMPLES / "tracker-sample.csv"),
        "--mapping",
        str(EXAMPLES / "tracker-mapping.toml"),
        "--json",
    ],
}

#: A dry run records nothing: on a location with no store it answers from an empty one.
DRY_RUN = [*RECORDING["import-tracker"], "--dry-run"]


@pytest.fixture(autouse=True, scope="module")
def _tracker_without_delays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tracker sample without its agreed delay: an import that creates the store
    finds no decision-maker enrolled who could have approved one (a delay needs one)."""
    path = tmp_path_factory.mktemp("tracker") / "tracker-sample.csv"
    with (EXAMPLES / "tracker-sample.csv").open(newline="", encoding="utf-8") as sample:
        rows = list(csv.reader(sample))
    columns = [rows[0].index(c) for c in ("Delay reason", "Delay agreed", "Decision expected")]
    for row in rows[1:]:
        for column in columns:
            row[column] = ""
    with path.open("w", newline="", encoding="utf-8") as copy:
        csv.writer(copy).writerows(rows)
    original = RECORDING["import-tracker"][1]
    RECORDING["import-tracker"][1] = DRY_RUN[1] = str(path)
    yield
    RECORDING["import-tracker"][1] = DRY_RUN[1] = original


def _args(args: list[str], folder: Path) -> list[str]:
    return [a.replace("{dir}", str(folder)) for a in args]


# --- the state of a location, to show nothing changed -------------------------------


def file_state(path: Path) -> tuple[Any, ...]:
    """The path's bytes (hash), mtime and mode, and every name in its folder (so a side
    file or a new store shows)."""
    names = tuple(sorted(p.name for p in path.parent.iterdir()))
    if path.is_file():
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return (digest, stat.st_mtime_ns, stat.st_mode, names)
    if path.is_dir():
        return ("folder", tuple(sorted(p.name for p in path.iterdir())), names)
    return ("missing", names)


def pg_schema(url: str) -> str:
    return url.partition("?schema=")[2]


def pg_state(schema: str) -> tuple[Any, ...]:
    """Whether the schema exists, and its tables, types and functions."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname=%s", (schema,)).fetchone()
        objects = conn.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace "
            "WHERE nspname=%s UNION ALL SELECT typname FROM pg_type t JOIN pg_namespace n "
            "ON n.oid=t.typnamespace WHERE nspname=%s UNION ALL SELECT proname FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid=p.pronamespace WHERE nspname=%s ORDER BY 1",
            (schema, schema, schema),
        ).fetchall()
    return (exists is not None, tuple(r[0] for r in objects))


def pg_execute(*statements: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def location_state(store_url: str) -> tuple[Any, ...]:
    """What is at a store URL now (a file and its folder, or a PostgreSQL schema)."""
    if store_url.startswith("postgresql://"):
        return pg_state(pg_schema(store_url))
    return file_state(Path(store_url))


# --- things at a store path that are no caseledger store --------------------------


def make_text(path: Path) -> None:
    path.write_text("case,decision\nRR-1,review\n")


def make_zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def make_unrelated_sqlite(path: Path) -> None:
    """An SQLite database of its own (rollback journal), with a table and a row."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO patients VALUES (1, 'Ann Other')")
    conn.commit()
    conn.close()


def make_other_eventsourcing_app(path: Path) -> None:
    """The SQLite database (WAL mode, ``stored_events``) of another eventsourcing
    application."""
    from eventsourcing.application import Application

    app: Application[uuid.UUID] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    app.save(OtherAggregate())
    app.close()
    assert path.read_bytes()[18] == 2  # WAL mode, as another application leaves it


def make_folder(path: Path) -> None:
    path.mkdir()
    (path / "notes.txt").write_text("not a store")


from eventsourcing.domain import Aggregate  # noqa: E402 - kept beside its only use


class OtherAggregate(Aggregate):
    """An aggregate of some other application."""


NOT_STORES: dict[str, Callable[[Path], None]] = {
    "text file": make_text,
    "unrelated SQLite database": make_unrelated_sqlite,
    "another eventsourcing application's database": make_other_eventsourcing_app,
    "folder": make_folder,
}


@pytest.mark.parametrize("command", [*QUERIES, *RECORDING, "import-tracker --dry-run"])
@pytest.mark.parametrize("kind", list(NOT_STORES))
def test_what_is_no_caseledger_store_is_refused_and_left_unchanged(
    cli: Cli, tmp_path: Path, kind: str, command: str
) -> None:
    store = tmp_path / "ledger.db"
    NOT_STORES[kind](store)
    before = file_state(store)
    args = DRY_RUN if command.endswith("--dry-run") else {**QUERIES, **RECORDING}[command]
    result = cli(["--store", str(store), *_args(args, tmp_path)])
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert f"{store} is not a caseledger store" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert file_state(store) == before


@pytest.mark.parametrize("command", list(QUERIES))
def test_a_query_on_an_empty_file_is_refused_and_the_file_kept(
    cli: Cli, tmp_path: Path, command: str
) -> None:
    store = tmp_path / "ledger.db"
    make_zero_bytes(store)
    before = file_state(store)
    result = cli(["--store", str(store), *_args(QUERIES[command], tmp_path)])
    assert result.exit_code == 4
    assert f"{store} is not a caseledger store (an empty file)" in result.stderr
    assert file_state(store) == before


@pytest.mark.parametrize("command", list(QUERIES))
def test_a_query_where_no_store_is_exits_4_and_creates_nothing(
    cli: Cli, store_url: str, tmp_path: Path, command: str
) -> None:
    """A missing SQLite file, or a PostgreSQL schema that does not exist: no file, no
    schema, no table is created."""
    out = tmp_path / "out"
    out.mkdir()
    before = location_state(store_url)
    result = cli(["--store", store_url, *_args(QUERIES[command], out)])
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert "there is no caseledger store at" in result.stderr
    assert "nothing was created" in result.stderr
    assert location_state(store_url) == before
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("command", list(QUERIES))
@pytest.mark.parametrize("tables", ["no tables", "unrelated tables"])
def test_a_query_on_a_postgres_schema_without_a_store_creates_nothing(
    cli: Cli, pg_url: str, tmp_path: Path, command: str, tables: str
) -> None:
    schema = pg_schema(pg_url)
    pg_execute(f'CREATE SCHEMA "{schema}"')
    if tables == "unrelated tables":
        pg_execute(
            f'CREATE TABLE "{schema}".patients (id int PRIMARY KEY, name text)',
            f"INSERT INTO \"{schema}\".patients VALUES (1, 'Ann Other')",
        )
    before = pg_state(schema)
    result = cli(["--store", pg_url, *_args(QUERIES[command], tmp_path)])
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert "there is no caseledger store at" in result.stderr
    assert pg_state(schema) == before


def test_a_postgres_schema_of_another_caseledger_named_application_is_refused(
    cli: Cli, pg_url: str
) -> None:
    """A ``caseledger_events`` table without the ledger's ``caseledger_meta`` belongs to
    something else: refused by queries and recording alike, and not added to."""
    schema = pg_schema(pg_url)
    pg_execute(f'CREATE SCHEMA "{schema}"', f'CREATE TABLE "{schema}".caseledger_events (id int)')
    before = pg_state(schema)
    for args in (QUERIES["status"], RECORDING["record"]):
        result = cli(["--store", pg_url, *args])
        assert result.exit_code == 4
        assert f"schema {schema} is not a caseledger store" in result.stderr
        assert pg_state(schema) == before


@pytest.mark.parametrize("command", list(RECORDING))
def test_recording_creates_the_store_where_none_is(cli: Cli, store_url: str, command: str) -> None:
    result = cli(["--store", store_url, *RECORDING[command]])
    assert result.exit_code == 0, result.stderr
    status = cli(["--store", store_url, "users", "list", "--json"])
    assert status.exit_code == 0, status.stderr
    assert cli(["--store", store_url, "verify", "--json"]).json()["ok"] is True


def test_recording_creates_the_store_beside_unrelated_postgres_tables(
    cli: Cli, pg_url: str
) -> None:
    schema = pg_schema(pg_url)
    pg_execute(
        f'CREATE SCHEMA "{schema}"',
        f'CREATE TABLE "{schema}".patients (id int PRIMARY KEY)',
        f'INSERT INTO "{schema}".patients VALUES (7)',
    )
    assert cli(["--store", pg_url, *RECORDING["record"]]).exit_code == 0
    assert [r["case"] for r in cli(["--store", pg_url, "status", "--json"]).json()] == [CASE]
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(f'SELECT id FROM "{schema}".patients').fetchall()
    assert rows == [(7,)]


@pytest.mark.parametrize("vacant", ["zero-byte file", "SQLite database with no tables"])
def test_recording_may_create_the_store_in_an_empty_file(
    cli: Cli, tmp_path: Path, vacant: str
) -> None:
    """A file made empty beforehand (``touch``, ``mktemp``) holds nothing to protect."""
    store = tmp_path / "ledger.db"
    if vacant == "zero-byte file":
        store.write_bytes(b"")
    else:
        conn = sqlite3.connect(store)
        conn.execute("PRAGMA user_version=3")
        conn.close()
    assert cli(["--store", str(store), *RECORDING["record"]]).exit_code == 0
    assert cli(["--store", str(store), "verify", "--json"]).json()["ok"] is True


def test_a_dry_run_import_on_no_store_answers_and_creates_nothing(cli: Cli, store_url: str) -> None:
    before = location_state(store_url)
    result = cli(["--store", store_url, *DRY_RUN])
    assert result.exit_code == 0, result.stderr
    assert result.json()["dry_run"] is True and result.json()["events"]
    assert location_state(store_url) == before


def test_a_query_on_a_store_in_use_opens_it(cli: Cli, tmp_path: Path) -> None:
    """A live store (another connection holds its ``-wal`` and ``-shm``) is recognised
    through those files, read-only, and queried as usual."""
    store = tmp_path / "ledger.db"
    led = open_ledger(str(store))
    led.record_lines(SCENARIO.read_bytes().splitlines(), led.recorder_for())
    assert Path(f"{store}-wal").exists() and Path(f"{store}-shm").exists()
    result = cli(["--store", str(store), "status", "--json"])
    assert result.exit_code == 0, result.stderr
    assert [r["case"] for r in result.json()] == [CASE]


def test_a_query_on_a_closed_store_leaves_no_side_file(cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "ledger.db"
    assert cli(["--store", str(store), *RECORDING["record"]]).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.db"]
    assert cli(["--store", str(store), "status", "--json"]).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.db"]


def test_a_missing_folder_and_an_unknown_scheme(cli: Cli, tmp_path: Path) -> None:
    """A store in a folder that does not exist cannot be reached (exit 4, the folder is
    not made); a URL of an unknown scheme is a usage error (exit 2)."""
    missing = tmp_path / "nowhere" / "ledger.db"
    for args in (QUERIES["status"], RECORDING["record"]):
        result = cli(["--store", str(missing), *args])
        assert result.exit_code == 4 and "does not exist" in result.stderr
    assert not missing.parent.exists()
    for url in ("mysql://me@host/db", "sqlite://relative.db", "file+x://a"):
        result = cli(["--store", url, "status"])
        assert result.exit_code == 2 and "--store" in result.stderr
    assert list(tmp_path.iterdir()) == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    content=st.one_of(
        st.binary(min_size=1, max_size=300),
        st.binary(min_size=0, max_size=300).map(lambda b: b"SQLite format 3\x00" + b),
    )
)
def test_any_bytes_that_are_no_store_are_refused_and_kept(
    cli: Cli, tmp_path: Path, content: bytes
) -> None:
    """Whatever bytes the file holds (random, or an SQLite header over junk), a query
    and a recording command either refuse it with exit 4 and leave it as it was, or
    (never for these) find a store."""
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    store = folder / "ledger.db"
    store.write_bytes(content)
    before = file_state(store)
    for args in (QUERIES["status"], RECORDING["record"]):
        result = cli(["--store", str(store), *args])
        assert result.exit_code == 4, (content, result.stderr)
        assert "is not a caseledger store" in result.stderr
        assert "Traceback" not in result.stderr
        assert file_state(store) == before


@pytest.mark.parametrize("url", ["/tmp/a\x00b.db", "postgresql://u@h/db\x00", "sqlite:///x\x00"])
def test_a_location_holding_a_nul_is_refused_as_a_usage_error(url: str) -> None:
    """A NUL cannot be in a file name or URL: ``parse_store`` refuses it (exit 2) rather
    than leaving the operating system's ValueError to whoever opens it (found by the fuzzer
    through ``checkpoint --witness-store``)."""
    from ledger.errors import UsageError
    from ledger.store.locations import parse_store

    with pytest.raises(UsageError, match="NUL") as refused:
        parse_store(url)
    assert refused.value.field == "store"  # the CLI names it --store
