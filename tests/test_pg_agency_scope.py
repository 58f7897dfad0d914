"""PostgreSQL itself enforces an agency's read scope (issue 17, item 4: "an agency sees
only its own").

Each test is an attack by a narrowed user's own database role, with exactly the grants
of ``docs/security.md``, that read everything before the database had row security:
plain ``SELECT`` on the entries, their provenance, the snapshots, the personal rows, the
cross-case index; ``SET ROLE`` to someone else.  PostgreSQL only: there are no database
roles on SQLite (the file's permissions are the boundary), so these skip there with the
reason the other PostgreSQL tests give.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.sql import SQL, Identifier

from ledger import api
from ledger.domain.case import case_id
from projections import api as read_api
from projections.queries.visibility import Reader
from tests.conftest import FixedClock, invoke, open_ledger, person, scenario_lines
from tests.test_visibility import CASE, OTHER, POLICE, POLICE_SEES, _other_case

INDEX_TABLES = ("case_index", "case_milestones", "case_clocks", "case_index_tracking")


class Store:
    """The scenario and a case without the police, a snapshot of each, and the people:
    the owner (the test's superuser login), a business-unit writer, an inspector
    (reads all), the police (an agency writer) and a second police user."""

    def __init__(self, url: str, clock: FixedClock) -> None:
        self.url = url
        self.schema = url.partition("?schema=")[2]
        self.owner = open_ledger(url, clock)
        self.owner.record_lines(scenario_lines(), self.owner.recorder_for())
        self.owner.record_lines(_other_case(), self.owner.recorder_for())
        for ref in (CASE, OTHER):
            self.owner.take_snapshot(case_id(ref))
        self.bu = person(url, "bu")
        self.inspector = person(url, "inspector", "reader")
        self.police = person(url, "police")
        api.add_user(self.owner, self.bu.name, role=["business-unit"])
        api.add_user(self.owner, self.inspector.name, role=["inspector"])
        api.add_user(self.owner, self.police.name, role=["agency"], agency=POLICE)
        assert len(read_api.status(self.owner).rows) == 2  # the owner builds the index

    def rows(self, who: Any, table: str, columns: str = "*") -> list[dict[str, Any]]:
        """Every row of a table of the store, read with plain SQL as ``who``."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self._base(who), autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(
                SQL("SELECT {} FROM {}.{}").format(
                    SQL(columns), Identifier(self.schema), Identifier(table)
                )
            ).fetchall()

    def owner_login(self) -> Any:
        """The owner's login (the test server's superuser), as a person."""
        from tests.conftest import Person

        return Person(self.owner.identity(), self.url)

    def _base(self, who: Any) -> str:
        return who.url.partition("?schema=")[0]


@pytest.fixture
def store(pg_url: str, clock: FixedClock) -> Iterator[Store]:
    yield Store(pg_url, clock)


def _seqs(rows: list[dict[str, Any]], key: str = "originator_version") -> dict[str, set[int]]:
    """The entry numbers of each case among rows keyed by aggregate id."""
    cases = {case_id(CASE): CASE, case_id(OTHER): OTHER}
    out: dict[str, set[int]] = {}
    for row in rows:
        out.setdefault(cases[row["originator_id"]], set()).add(int(row[key]))
    return out


def _expected(store: Store) -> set[int]:
    """The entry numbers of CASE that the facades' own rule shows the police."""
    records = store.owner.case_records(CASE)
    return {int(r["seq"]) for r in Reader(store.police.name, POLICE).records(records)}


@pytest.mark.real_clock  # the police's own role records below: the server dates it
def test_an_agency_role_reads_by_sql_only_what_the_facades_show(store: Store) -> None:
    """The police's own role, by plain SQL: only the entries the facades show them (the
    referral, which holds personal commitments, only through the screened function),
    never another case's entry, a snapshot, a personal row or the index; and they still
    record their reply, checked against what they may read and the case's head."""
    import psycopg
    from psycopg.rows import dict_row

    shown = _expected(store)
    assert 1 in shown and len(shown) < len(scenario_lines())
    events = store.rows(store.police, "caseledger_events")
    assert _seqs(events) == {CASE: shown - {1}}  # the referral's row holds commitments
    assert all(b'"personal"' not in bytes(r["state"]) for r in events)
    assert store.rows(store.police, "caseledger_snapshots") == []
    assert store.rows(store.police, "caseledger_personal") == []
    for table in INDEX_TABLES:
        assert store.rows(store.police, table) == [], table
        assert store.rows(store.owner_login(), table), table
    for table in ("caseledger_provenance", "caseledger_scope"):
        assert _seqs(store.rows(store.police, table), "seq") == {CASE: shown}, table
    for table in ("caseledger_personal_screen", "caseledger_personal_keys"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            store.rows(store.police, table)
    # the screened read path: every entry shown, the referral without `personal`
    with psycopg.connect(store._base(store.police), autocommit=True, row_factory=dict_row) as c:
        seen = c.execute(
            SQL("SELECT * FROM {}.caseledger_seen_entries(NULL)").format(Identifier(store.schema))
        ).fetchall()
    assert [int(r["originator_version"]) for r in seen] == sorted(shown)
    assert all(b"personal" not in bytes(r["state"]) for r in seen)
    referral = orjson.loads(bytes(seen[0]["state"]))
    assert referral["type"] == "CaseReferred" and referral["regime"] == "wt2023"
    # their facades answer, through the CLI as their own login
    line = invoke(["--store", store.police.url, "timeline", CASE, "--json"])
    assert line.exit_code == 0, line.stderr
    assert {e["type"] for e in line.json()} == set(POLICE_SEES)
    hidden = invoke(["--store", store.police.url, "status", OTHER, "--json"])
    assert hidden.exit_code == 2 and "not one" in hidden.stderr
    unread = invoke(["--store", store.police.url, "verify"])  # not "DOES NOT VERIFY"
    assert unread.exit_code == 2 and "may not verify the store" in unread.stderr
    # and they record their view (and may not reply in a case not theirs)
    view = {
        "type": "AgencyViewGiven",
        "case": CASE,
        "agency": POLICE,
        "occurred_at": "2026-08-01T10:00",
        "view": "review",
        "reasons": "A further view from the police.",
    }
    recorded = invoke(
        ["--store", store.police.url, "record", "-", "--role", "agency"], stdin=orjson.dumps(view)
    )
    assert recorded.exit_code == 0, recorded.stderr
    assert store.owner.case_records(CASE)[-1]["actor"] == store.police.name
    elsewhere = invoke(
        ["--store", store.police.url, "record", "-", "--role", "agency"],
        stdin=orjson.dumps({**view, "case": OTHER}),
    )
    assert elsewhere.exit_code == 2, elsewhere.stderr
    assert store.owner.verify().ok  # no snapshot or entry the chain does not hold


def test_a_reader_who_sees_all_still_reads_every_row(store: Store) -> None:
    """The inspector (sees all) and the business unit read every row, as before."""
    whole = {
        CASE: set(range(1, len(scenario_lines()) + 1)),
        OTHER: set(range(1, len(_other_case()) + 1)),
    }
    for who in (store.inspector, store.bu):
        assert _seqs(store.rows(who, "caseledger_events")) == whole
        assert _seqs(store.rows(who, "caseledger_provenance"), "seq") == whole
        assert len(store.rows(who, "caseledger_snapshots")) == 2
        assert {r["case_ref"] for r in store.rows(who, "case_index")} == {CASE, OTHER}
        assert len(store.rows(who, "caseledger_personal")) > 0
    assert store.inspector.ledger().verify().ok


def test_the_agencys_answers_on_postgresql_equal_those_on_sqlite(
    store: Store, tmp_path: Path, clock: FixedClock
) -> None:
    """The police's CLI answers, read through what PostgreSQL lets their role read, equal
    the narrowed answers of an SQLite store holding the same entries."""
    sqlite_url = str(tmp_path / "same.db")
    same = open_ledger(sqlite_url, clock)
    same.record_lines(scenario_lines(), same.recorder_for())
    same.record_lines(_other_case(), same.recorder_for())
    api.add_user(same, store.police.name, role=["agency"], agency=POLICE)
    env = {"LOGNAME": store.police.name, "USER": store.police.name}
    asked = (
        ["timeline", CASE, "--json"],
        ["status", "--json"],
        ["status", CASE, "--json"],
        ["why", CASE, "--on", "2026-12-01", "--as-of", "2026-12-01", "--json"],
        ["due", "--on", "2026-12-01", "--as-of", "2026-12-01", "--json"],
    )
    for args in asked:
        on_pg = invoke(["--store", store.police.url, *args])
        on_sqlite = invoke(["--store", sqlite_url, *args], env=env)
        assert on_pg.exit_code == on_sqlite.exit_code == 0, (on_pg.stderr, on_sqlite.stderr)
        assert _same_but_actor(on_pg.json(), store.owner.identity()) == _same_but_actor(
            on_sqlite.json(), same.identity()
        ), args


def _same_but_actor(answer: Any, actor: str) -> Any:
    """An answer with the recording user's name, and the hashes that cover it, left out
    (the two stores were written by different users: the database login, the OS user)."""
    if isinstance(answer, dict):
        return {
            k: _same_but_actor(v, actor)
            for k, v in answer.items()
            if k not in ("hash", "prev_hash") and v != actor
        }
    if isinstance(answer, list):
        return [_same_but_actor(v, actor) for v in answer]
    return answer


def test_set_role_to_another_users_role_is_refused(store: Store) -> None:
    """The police's login cannot become the business unit, the inspector or the owner,
    nor change the session's user; a web login that is a member of the police's role
    reads, after SET ROLE, only what the police read, and nothing before it."""
    import psycopg

    with psycopg.connect(store._base(store.police), autocommit=True) as conn:
        for target in (store.bu.name, store.inspector.name, "postgres"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(SQL("SET ROLE {}").format(Identifier(target)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(SQL("SET SESSION AUTHORIZATION {}").format(Identifier(store.bu.name)))
    login = f"web@{store.schema}"
    with psycopg.connect(store.url.partition("?schema=")[0], autocommit=True) as conn:
        conn.execute(SQL("CREATE ROLE {} LOGIN NOINHERIT").format(Identifier(login)))
        conn.execute(SQL("GRANT {} TO {}").format(Identifier(store.police.name), Identifier(login)))
        conn.execute(
            SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                Identifier(store.schema), Identifier(login)
            )
        )
    from tests.conftest import _ROLES

    _ROLES.insert(0, login)
    base = store.url.partition("?schema=")[0]
    user_part = base.split("://", 1)[1].split("@", 1)[0]
    web = base.replace(f"://{user_part}@", f"://{quote(login, safe='')}@", 1)
    events = SQL("SELECT originator_id FROM {}.caseledger_events").format(Identifier(store.schema))
    with psycopg.connect(web, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(events)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(SQL("SET ROLE {}").format(Identifier(store.bu.name)))
        conn.execute(SQL("SET ROLE {}").format(Identifier(store.police.name)))
        assert {row[0] for row in conn.execute(events).fetchall()} == {case_id(CASE)}


def test_a_reader_role_made_before_the_index_reads_it(pg_url: str, clock: FixedClock) -> None:
    """A reader granted SELECT on the store's tables before the cross-case index was
    made (the first ``status``) may read the index too: its tables are granted to the
    entries' readers as they are made."""
    owner = open_ledger(pg_url, clock)
    owner.record_lines(scenario_lines(), owner.recorder_for())
    early = person(pg_url, "early.reader", "reader")
    api.add_user(owner, early.name, role=["inspector"])
    schema = pg_url.partition("?schema=")[2]
    import psycopg

    with psycopg.connect(pg_url.partition("?schema=")[0]) as conn:
        made = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".case_index',)).fetchone()
    assert made is not None and made[0] is None  # no index yet
    assert len(read_api.status(owner).rows) == 1  # the owner makes it
    with psycopg.connect(early.url.partition("?schema=")[0], autocommit=True) as conn:
        for table in INDEX_TABLES:
            conn.execute(SQL("SELECT * FROM {}.{}").format(Identifier(schema), Identifier(table)))
    answer = invoke(["--store", early.url, "status", "--json"])
    assert answer.exit_code == 0 and [r["case"] for r in answer.json()] == [CASE]


def test_a_store_made_before_the_scope_gains_it(store: Store) -> None:
    """A store whose entries were appended before the scope was kept is given it at its
    owner's next open, entry by entry, as the trigger would have kept it."""
    import psycopg

    kept = store.rows(store.owner_login(), "caseledger_scope")
    with psycopg.connect(store.url.partition("?schema=")[0], autocommit=True) as conn:
        conn.execute(SQL("DELETE FROM {}.caseledger_scope").format(Identifier(store.schema)))
        # such a store has no digest of the statements that made the scope (tests/test_pg_open.py)
        conn.execute(
            SQL("DELETE FROM {}.caseledger_meta WHERE key LIKE 'ddl:%'").format(
                Identifier(store.schema)
            )
        )
    open_ledger(store.url).close()
    assert _key(store.rows(store.owner_login(), "caseledger_scope")) == _key(kept)
    assert _seqs(store.rows(store.police, "caseledger_scope"), "seq") == {CASE: _expected(store)}


def _key(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(r.items())) for r in rows)


AGENCIES = (POLICE, "Northshire ICB", "Northshire Education")
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from(AGENCIES), st.just(0)),
        st.tuples(st.just("move"), st.sampled_from(AGENCIES), st.integers(0, 5)),
    ),
    min_size=1,
    max_size=6,
)
_CASES = iter(range(1, 1000))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=_STEPS)
def test_the_databases_scope_is_the_facades_rule(store: Store, steps: list[Any]) -> None:
    """Whatever requests are made of which agencies and however corrections then move
    them between agencies, the entries the database lets the police read are the ones
    the facades' own rule (``Reader.records``) shows them, judged as corrected."""
    ref = f"RR-2031-{next(_CASES):03d}"
    referral = orjson.loads(scenario_lines()[0])
    referral.pop("command_id", None)
    lines = [{**referral, "case": ref}]
    requests: list[int] = []
    for kind, agency, pick in steps:
        if kind == "request":
            requests.append(len(lines) + 1)
            lines.append(
                {
                    "type": "InformationRequested",
                    "case": ref,
                    "occurred_at": "2026-02-13",
                    "agency": agency,
                    "asked_for": "minimum-data",
                    "due": "2026-02-20",
                }
            )
        elif requests:
            target = requests[pick % len(requests)]
            lines.append(
                {
                    "type": "EntryCorrected",
                    "case": ref,
                    "corrects": f"{ref}#{target}",
                    "changes": {"agency": agency},
                    "reason": "Asked of the wrong agency.",
                }
            )
    store.owner.record_lines([orjson.dumps(x) for x in lines], store.owner.recorder_for())
    records = store.owner.case_records(ref)
    shown = {int(r["seq"]) for r in Reader(store.police.name, POLICE).records(records)}
    rows = [r for r in store.rows(store.police, "caseledger_scope") if r["case_ref"] == ref]
    assert {int(r["seq"]) for r in rows} == shown
    events = store.rows(store.police, "caseledger_events", "originator_id, originator_version")
    assert {int(r["originator_version"]) for r in events if r["originator_id"] == case_id(ref)} == (
        shown - {1}
    )
