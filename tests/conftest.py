"""Shared fixtures: real stores (an SQLite file, a PostgreSQL schema) and the real CLI.

Every store-level test takes the ``store_url`` fixture and so runs on both stores.
PostgreSQL tests use ``CASELEDGER_TEST_POSTGRES`` (a URL such as
``postgresql://postgres@127.0.0.1:5432/test``); each test gets a schema of its own,
dropped afterwards, so runs repeat and never see each other's events.  Without the
variable they skip with a reason; with ``CASELEDGER_REQUIRE_POSTGRES=1`` (set by CI) a
missing or unreachable server fails them instead.

``CASELEDGER_TEST_TODAY=YYYY-MM-DD`` (or a full ISO date-time) runs the whole session
with the process clock moved to that day (noon UTC, ticking) by ``time-machine``, so a
test that silently depends on today's date fails; ``docs/testing.md`` says how to use it.
"""

from __future__ import annotations

import io
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
if not SHARED.is_dir():  # a CI clone may have shared/ beside the checkout
    SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_SCENARIO = SHARED / "scenarios" / "rr-2026-004.jsonl"
#: The demo ships the scenario (``ledger/data/demo/rr-2026-004.jsonl``); the tests use the shared
#: copy when the checkout has ``shared/`` beside it, and the demo's copy otherwise (a
#: clone elsewhere), and ``test_demo`` checks that the two are the same bytes.
DEMO_SCENARIO = (
    Path(__file__).resolve().parents[1] / "ledger" / "data" / "demo" / "rr-2026-004.jsonl"
)
SCENARIO = SHARED_SCENARIO if SHARED_SCENARIO.is_file() else DEMO_SCENARIO
DATA = Path(__file__).resolve().parent / "data"

PG_URL = os.environ.get("CASELEDGER_TEST_POSTGRES", "")
PG_REQUIRED = os.environ.get("CASELEDGER_REQUIRE_POSTGRES") == "1"


def _pg_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None if they can."""
    if not PG_URL:
        return (
            "CASELEDGER_TEST_POSTGRES is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:  # the reason is reported, not swallowed
        return f"PostgreSQL at {PG_URL} is unreachable: {exc}"


_PG_SKIP = _pg_reason()

TEST_TODAY = os.environ.get("CASELEDGER_TEST_TODAY", "").strip()
_TRAVEL: list[Any] = []


def moved_today_instant(value: str) -> datetime:
    """The instant ``CASELEDGER_TEST_TODAY`` names: a date means noon UTC that day (far
    from midnight in London, so the London date is the one written); a date-time is
    taken as written (UTC when it has no offset)."""
    moment = datetime.fromisoformat(value)
    if len(value) == 10:
        moment = moment.replace(hour=12)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def pytest_configure(config: pytest.Config) -> None:
    """Move the process clock for the whole session when ``CASELEDGER_TEST_TODAY`` is
    set (before collection, so module-level dates are moved too)."""
    config.addinivalue_line(
        "markers",
        "real_clock: runs at the real date even when CASELEDGER_TEST_TODAY moves the "
        "process clock (the PostgreSQL server's clock and child processes cannot be moved)",
    )
    if TEST_TODAY and not _TRAVEL:
        import time_machine

        traveller = time_machine.travel(moved_today_instant(TEST_TODAY), tick=True)
        traveller.start()
        _TRAVEL.append(traveller)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Bring the process clock back at the end of a moved session."""
    while _TRAVEL:
        _TRAVEL.pop().stop()


# pytest-xdist's workers are told the terminal's size through COLUMNS and LINES (80x24 when
# not at a terminal); the tests size the CLI's tables themselves, as a serial run does.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say at the top of the run that the clock is moved, and to when."""
    return (
        f"CASELEDGER_TEST_TODAY={TEST_TODAY}: the clock reads {datetime.now(UTC)}"
        if _TRAVEL
        else None
    )


@pytest.fixture(autouse=True)
def _real_clock_when_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give a ``real_clock`` test the real date in a moved session: the PostgreSQL
    server's clock cannot be moved (the database refuses a writer's entry recorded more
    than five minutes from it), nor can a child process's."""
    if not _TRAVEL or request.node.get_closest_marker("real_clock") is None:
        yield
        return
    _TRAVEL[-1].stop()
    try:
        yield
    finally:
        _TRAVEL[-1].start()


def _drop_schema(schema: str) -> None:
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))


def pg_store_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    if _PG_SKIP:
        if PG_REQUIRED:
            pytest.fail(f"PostgreSQL is required (CASELEDGER_REQUIRE_POSTGRES=1): {_PG_SKIP}")
        pytest.skip(_PG_SKIP)
    schema = f"cl_test_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}schema={schema}"
    finally:
        while _OPENED:  # close the test's connections before dropping its schema
            _OPENED.pop().close()
        _drop_schema(schema)
        _drop_roles()


_ROLES: list[str] = []


def _drop_roles() -> None:
    import psycopg
    from psycopg.sql import SQL, Identifier

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        while _ROLES:
            role = Identifier(_ROLES.pop())
            conn.execute(SQL("DROP OWNED BY {}").format(role))
            conn.execute(SQL("DROP ROLE {}").format(role))


@dataclass(frozen=True)
class Person:
    """Someone who uses a store: on SQLite the store URL and an actor name (the Python
    API records under the name it is given, as the file's permissions are the boundary);
    on PostgreSQL a login role of their own (named after the person and the test's
    schema) with exactly the grants of ``docs/security.md``, and its own URL."""

    name: str
    url: str

    def ledger(self, clock: Callable[[], datetime] | None = None) -> Any:
        """The store opened as this person."""
        return open_ledger(self.url, clock)

    def recorder(self, role: str) -> Any:
        """This person recording under ``role``."""
        from ledger.application import Recorder

        return Recorder(self.name, role)


def person(store_url: str, name: str, kind: str = "writer") -> Person:
    """A person using the store (see :class:`Person`); ``kind`` is ``writer`` or
    ``reader`` for the PostgreSQL grants."""
    if not store_url.startswith("postgresql://"):
        return Person(name, store_url)
    import psycopg
    from psycopg.sql import SQL, Identifier

    from ledger.store.postgres import role_grants

    base, _, schema = store_url.partition("?schema=")
    role = f"{name}@{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(role)))
        _ROLES.append(role)
        for statement in role_grants(schema, role, kind):
            conn.execute(statement.encode())
    user_part = store_url.split("://", 1)[1].split("@", 1)[0]
    from urllib.parse import quote

    url = store_url.replace(f"://{user_part}@", f"://{quote(role, safe='')}@", 1)
    return Person(role, url)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store: an SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
    else:
        yield from pg_store_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite store, for tests about the embedded store only."""
    return str(tmp_path / "ledger.db")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL store, for tests about PostgreSQL only."""
    yield from pg_store_url()


class FixedClock:
    """A ledger clock for tests: starts at a given instant and can be moved."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward and return the new time."""
        self.now = self.now + timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    """A clock set to 2026-09-01 09:00 UTC (after the scenario's last event)."""
    return FixedClock(datetime(2026, 9, 1, 9, 0, tzinfo=UTC))


#: "Today" for the tests that pin it (``fixed_today``): after every date in the shared
#: scenario and in the tests' own fixed data, noon UTC so the London date is the same.
FIXED_TODAY = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fixed_today(request: pytest.FixtureRequest) -> Iterator[datetime]:
    """Run the test with the process clock at :data:`FIXED_TODAY` (ticking), whatever
    the real date or ``CASELEDGER_TEST_TODAY``.  For tests that record the fixed 2026
    data through the real CLI or a ledger opened without a clock (the CLI has no clock
    option, on purpose): the data is refused as "in the future" before it, and answers
    "now" drift after it.  Not for PostgreSQL writers with login roles of their own,
    whose entries the database dates by its own clock: a ``real_clock`` test keeps the
    real date even in a module that pins the others."""
    import time_machine

    if request.node.get_closest_marker("real_clock") is not None:
        yield datetime.now(UTC)
        return
    with time_machine.travel(FIXED_TODAY, tick=True):
        yield FIXED_TODAY


_OPENED: list[Any] = []


def open_ledger(url: str, clock: Callable[[], datetime] | None = None) -> Any:
    """Open the real ledger on a store URL (closed at the end of the test)."""
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    ledger = CaseLedger(parse_store(url), clock=clock)
    _OPENED.append(ledger)
    return ledger


@pytest.fixture(autouse=True)
def _close_ledgers() -> Iterator[None]:
    """Close every ledger a test opened, so PostgreSQL connections do not pile up."""
    yield
    while _OPENED:
        _OPENED.pop().close()


@dataclass
class CliResult:
    """What one CLI invocation printed and returned."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """Standard output parsed as JSON."""
        return orjson.loads(self.stdout)


class _KeptOpen(io.BytesIO):
    """A buffer that survives its text wrapper being closed or collected."""

    def close(self) -> None:
        pass


def invoke(args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None) -> CliResult:
    """Run the real ``caseledger`` command in-process, as a user would from a shell."""
    from cli.main import run

    out_buf, err_buf = _KeptOpen(), _KeptOpen()
    old = sys.stdin, sys.stdout, sys.stderr
    old_env = {k: os.environ.get(k) for k in (env or {})}
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(out_buf, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err_buf, encoding="utf-8", write_through=True)
    os.environ.update(env or {})
    os.environ.setdefault("COLUMNS", "200")
    code = 0
    try:
        run(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdin, sys.stdout, sys.stderr = old
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return CliResult(code, out_buf.getvalue().decode(), err_buf.getvalue().decode())


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """The real CLI, in-process."""
    return invoke


def scenario_lines() -> list[bytes]:
    """The shared scenario RR-2026-004, one JSON line each."""
    return [line for line in SCENARIO.read_bytes().splitlines() if line.strip()]


@pytest.fixture
def scenario_store(store_url: str, clock: FixedClock) -> str:
    """A store holding the shared scenario, recorded at the fixed clock's time."""
    led = open_ledger(store_url, clock)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.close()
    return store_url


def enrol_decision_makers(led: Any, events: Any) -> None:
    """Enrol every approver the events name (``approved_by``) as the decision-maker of
    its case's regime (chair under wt2015, safeguarding-partner otherwise), as an admin
    would before such entries are recorded: only an enrolled decision-maker approves a
    delay.  ``events`` are dicts or JSON lines; regimes come from their referrals or
    from the store."""
    items = [e if isinstance(e, dict) else orjson.loads(e) for e in events]
    regimes = {e["case"]: e["regime"] for e in items if e.get("type") == "CaseReferred"}
    state = led.register_state()
    admin = led.recorder_for_action("users")
    for item in items:
        name = item.get("approved_by") or (item.get("changes") or {}).get("approved_by")
        if not isinstance(name, str):
            continue
        case = item["case"]
        if case not in regimes:
            regimes[case] = led.case_records(case)[0]["regime"]
        role = "chair" if regimes[case] == "wt2015" else "safeguarding-partner"
        name = name.strip()
        enrolled = state.users.get(name)
        if enrolled is None or role not in enrolled.roles:
            roles = sorted({role, *(enrolled.roles if enrolled else ())})
            led.enrol(name, roles, admin)
            state = led.register_state()
            admin = led.recorder_for_action("users")
