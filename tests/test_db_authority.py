"""The record stays trustworthy when someone who can write to it cannot be trusted.

Each test is an attack that succeeded before the database became the authority (issue
12): a client-chosen policy, a refused command that still enrolled its caller, history
forged with a user's own grants, an impersonated actor, a forged snapshot.  On
PostgreSQL the people are real login roles with exactly the grants of
``docs/security.md`` (``tests.conftest.person``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.application import CaseLedger, Recorder
from ledger.domain.case import CaseSnapshot, case_id
from ledger.domain.policy import default_policy_text
from ledger.errors import InputError, StoreUnavailable
from tests.conftest import Person, open_ledger, person, scenario_lines

#: Writers with login roles of their own, whose entries the PostgreSQL server dates by its
#: own clock: these tests run at the real date (after all their fixed 2026 data) even when
#: ``CASELEDGER_TEST_TODAY`` moves the clock (tests/conftest.py).
pytestmark = pytest.mark.real_clock

ROOT = Path(__file__).resolve().parents[1]
DECISION = orjson.loads(scenario_lines()[18])


def _decision() -> bytes:
    return orjson.dumps({k: v for k, v in DECISION.items() if k != "relied_on"})


def _permissive_policy(tmp_path: Path) -> Path:
    """A policy file that lets an agency user record anything and administer the store."""
    text = default_policy_text().replace(
        '[roles.agency]\ndescription = "A member agency: records only information and views '
        "for its own agency, and reads only its own agency's part of the cases it is in.\"\n"
        'record = ["InformationReceived", "InformationDeclined", '
        '"AgencyViewGiven"]\nown_agency = true\nsees = "own-agency"\nactions = []',
        '[roles.agency]\ndescription = "x"\nrecord = ["*"]\n'
        'actions = ["users", "hold", "erase-personal", "checkpoint", "policy"]',
    )
    assert 'record = ["*"]\nactions = ["users"' in text
    path = tmp_path / "my-policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the policy is part of the record ---------------------------------------------------


def test_a_client_policy_file_is_refused_not_obeyed(
    scenario_store: str, cli: Any, tmp_path: Path
) -> None:
    led = open_ledger(scenario_store)
    police = person(scenario_store, "police.liaison")
    led.enrol(police.name, ["agency"], led.recorder_for("admin"), agency="Northshire Police")
    before = led.count_events(), len(led.register_entries())
    env = {"CASELEDGER_POLICY": str(_permissive_policy(tmp_path)), "LOGNAME": police.name}
    decided = cli(
        ["--store", police.url, "record", "-", "--role", "agency"], stdin=_decision(), env=env
    )
    assert decided.exit_code == 2 and "CASELEDGER_POLICY is no longer read" in decided.stderr
    promoted = cli(["--store", police.url, "users", "add", police.name, "--role", "admin"], env=env)
    assert promoted.exit_code == 2
    assert (led.count_events(), len(led.register_entries())) == before
    assert "admin" not in led.register_state().users[police.name].roles


def _without_decisions(policy: str) -> str:
    """The shipped policy with DecisionMade taken from the safeguarding partners."""
    line = next(
        x
        for x in policy.splitlines()
        if x.startswith("record = [") and '"DecisionMade"' in x and "PartnersDelegated" in x
    )
    stricter = policy.replace(line, line.replace('"DecisionMade", ', ""), 1)
    assert stricter != policy
    return stricter


def test_a_policy_change_is_a_register_entry_that_takes_effect(
    scenario_store: str, cli: Any, tmp_path: Path
) -> None:
    led = open_ledger(scenario_store)
    partner = person(scenario_store, "partner.patel")
    led.enrol(partner.name, ["safeguarding-partner"], led.recorder_for("admin"))
    stricter = tmp_path / "stricter.toml"
    stricter.write_text(
        _without_decisions(default_policy_text()),
        encoding="utf-8",
    )
    # Not an admin: refused, nothing written.
    refused = cli(
        ["--store", partner.url, "policy", "set", str(stricter), "--reason", "mine"],
        env={"LOGNAME": partner.name},
    )
    assert refused.exit_code == 2 and "may not run policy" in refused.stderr
    made = cli(
        ["--store", scenario_store, "policy", "set", str(stricter), "--reason", "Board 2026/14"]
    )
    assert made.exit_code == 0, made.stderr
    entry = led.register_entries()[-1]
    assert entry["type"] == "PolicyChanged" and entry["reason"] == "Board 2026/14"
    assert entry["text"] == stricter.read_text(encoding="utf-8")
    import hashlib

    assert entry["sha256"] == hashlib.sha256(stricter.read_bytes()).hexdigest()
    shown = cli(["--store", scenario_store, "policy", "show", "--json"]).json()
    assert shown["ref"] == f"register#{entry['seq']}"
    assert "DecisionMade" not in shown["roles"]["safeguarding-partner"]["record"]
    assert "DecisionDelayed" in shown["roles"]["safeguarding-partner"]["record"]
    with pytest.raises(InputError, match="may not record DecisionMade"):
        partner.ledger().record_lines([_decision()], partner.recorder("safeguarding-partner"))
    assert cli(["--store", scenario_store, "verify"]).exit_code == 0


def test_a_policy_that_locks_out_administration_is_refused(
    scenario_store: str, cli: Any, tmp_path: Path
) -> None:
    locked = tmp_path / "locked.toml"
    admin_actions = re.compile(r'^actions = \["users", [^\n]*"policy"[^\n]*\]$', re.M)
    assert len(admin_actions.findall(default_policy_text())) == 1
    locked.write_text(
        admin_actions.sub('actions = ["hold"]', default_policy_text()), encoding="utf-8"
    )
    result = cli(["--store", scenario_store, "policy", "set", str(locked), "--reason", "r"])
    assert result.exit_code == 2 and '"users" and "policy"' in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[roles.admin\n", encoding="utf-8")
    result = cli(["--store", scenario_store, "policy", "set", str(broken), "--reason", "r"])
    assert result.exit_code == 2 and "Traceback" not in result.stderr


# --- administration is atomic ----------------------------------------------------------


def test_a_refused_first_command_enrols_nobody(store_url: str, cli: Any) -> None:
    """A new store's first user is enrolled as admin only with a command that succeeds."""
    refused = cli(["--store", store_url, "record", "-"], stdin=_decision())  # no such case
    assert refused.exit_code == 2, refused.stderr
    assert cli(["--store", store_url, "users", "add", "x", "--role", "nonsense"]).exit_code == 2
    led = open_ledger(store_url)
    assert led.register_entries() == [] and led.count_events() == 0
    assert cli(["--store", store_url, "record", "-"], stdin=scenario_lines()[0]).exit_code == 0
    kinds = [e["type"] for e in led.register_entries()]
    assert kinds == ["PolicyChanged", "UserEnrolled"]
    assert led.register_state().users[led.identity()].roles == {"admin", "business-unit"}


def test_the_last_admin_keeps_the_admin_role(scenario_store: str, cli: Any) -> None:
    led = open_ledger(scenario_store)
    me = led.identity()
    demoted = cli(["--store", scenario_store, "users", "add", me, "--role", "business-unit"])
    assert demoted.exit_code == 2 and "last admin" in demoted.stderr
    assert "admin" in led.register_state().users[me].roles
    other = person(scenario_store, "second.admin")
    assert (
        cli(["--store", scenario_store, "users", "add", other.name, "--role", "admin"]).exit_code
        == 0
    )
    again = cli(["--store", scenario_store, "users", "add", me, "--role", "business-unit"])
    assert again.exit_code == 0, again.stderr


@pytest.mark.parametrize("lookalike", ["jsrnith", "JSmith", "j\u0455mith"])  # rn, case, Cyrillic s
def test_user_names_are_normalised_and_confusables_refused(
    scenario_store: str, cli: Any, lookalike: str
) -> None:
    led = open_ledger(scenario_store)
    assert (
        cli(["--store", scenario_store, "users", "add", " jsmith ", "--role", "chair"]).exit_code
        == 0
    )
    assert "jsmith" in led.register_state().users
    before = len(led.register_entries())
    result = cli(["--store", scenario_store, "users", "add", lookalike, "--role", "admin"])
    assert (
        result.exit_code == 2
        and "could be mistaken for the enrolled user 'jsmith'" in result.stderr
    )
    assert len(led.register_entries()) == before
    decomposed = "jo\u0301e"  # "jóe" as o + combining acute
    assert (
        cli(["--store", scenario_store, "users", "add", decomposed, "--role", "peer"]).exit_code
        == 0
    )
    assert "j\u00f3e" in led.register_state().users


# --- PostgreSQL: users hold no table privileges; the functions check everything ---------


def _raw(url: str) -> Any:
    import psycopg

    base, _, _schema = url.partition("?schema=")
    return psycopg.connect(base, autocommit=True)


def test_users_can_neither_insert_update_nor_delete(pg_url: str) -> None:
    import psycopg
    from psycopg.sql import SQL, Identifier

    admin = open_ledger(pg_url)
    admin.record_lines(scenario_lines()[:3], admin.recorder_for())
    chair = person(pg_url, "chair.smith")
    admin.enrol(chair.name, ["chair"], admin.recorder_for("admin"))
    schema = pg_url.partition("?schema=")[2]
    # The register entry a stranger forged with INSERT: correctly chained, admin role.
    state = admin.register_state()
    forged = admin._register_entry(
        {"type": "UserEnrolled", "user": chair.name, "roles": ["admin"], "reason": "x"},
        Recorder(chair.name, "admin"),
        state,
    )
    attempts = [
        (
            SQL("INSERT INTO {}.caseledger_register (seq, state) VALUES (%s, %s)"),
            (forged["seq"], orjson.dumps(forged)),
        ),
        (SQL("UPDATE {}.caseledger_events SET state = state"), ()),
        (SQL("DELETE FROM {}.caseledger_events"), ()),
        (SQL("DELETE FROM {}.caseledger_personal"), ()),
        (SQL("INSERT INTO {}.caseledger_users VALUES ('x', ARRAY['admin'], NULL)"), ()),
        (SQL("UPDATE {}.caseledger_policy SET record = ARRAY['*']"), ()),
        (SQL("INSERT INTO {}.caseledger_snapshots SELECT * FROM {}.caseledger_snapshots"), ()),
    ]
    with _raw(chair.url) as conn:
        for statement, args in attempts:
            composed = statement.format(*([Identifier(schema)] * statement.as_string().count("{}")))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(composed, args)
    assert admin.verify().ok and "admin" not in admin.register_state().users[chair.name].roles


def test_the_database_refuses_what_a_modified_client_would_write(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that skips its own checks (here: hands the ledger a forged Recorder, or
    calls the functions directly) is stopped by the database."""
    admin = open_ledger(pg_url)
    admin.record_lines(scenario_lines(), admin.recorder_for())
    chair, partner, stranger = (
        person(pg_url, "chair.smith"),
        person(pg_url, "partner.patel"),
        person(pg_url, "stranger"),
    )
    admin.enrol(chair.name, ["chair"], admin.recorder_for("admin"))
    admin.enrol(partner.name, ["safeguarding-partner"], admin.recorder_for("admin"))
    before = admin.count_events(), len(admin.register_entries())
    chairs_ledger = chair.ledger()
    # The chair records a decision in the partner's name (the actor forgery).
    with pytest.raises(StoreUnavailable, match="actor must be the session user"):
        chairs_ledger.record_lines([_decision()], partner.recorder("safeguarding-partner"))
    # The chair claims a role they are not enrolled in (skipping the client's check).
    real_authorise = CaseLedger.authorise

    def claims_partner(self: CaseLedger, recorder: Recorder, state: Any = None) -> Any:
        enrolment, register, genesis = real_authorise(self, Recorder(recorder.actor, "chair"))
        return replace(enrolment, roles=frozenset({"safeguarding-partner"})), register, genesis

    monkeypatch.setattr(CaseLedger, "authorise", claims_partner)
    with pytest.raises(StoreUnavailable, match="is not enrolled as safeguarding-partner"):
        chairs_ledger.record_lines([_decision()], chair.recorder("safeguarding-partner"))
    monkeypatch.setattr(CaseLedger, "authorise", real_authorise)
    # The chair decides a wt2023 case, skipping the client's policy check.
    policy = admin.register_state().policy
    original = type(policy).check_entry
    try:
        type(policy).check_entry = lambda *a, **k: None  # type: ignore[method-assign]
        with pytest.raises(StoreUnavailable, match="may not record DecisionMade in a case under"):
            chairs_ledger.record_lines([_decision()], chair.recorder("chair"))
    finally:
        type(policy).check_entry = original  # type: ignore[method-assign]
    # A user not in the register appends a correctly chained admin enrolment of itself.
    strangers_ledger = stranger.ledger()
    entry = strangers_ledger._register_entry(
        {"type": "UserEnrolled", "user": stranger.name, "roles": ["admin"], "reason": "x"},
        Recorder(stranger.name, "admin"),
        strangers_ledger.register_state(),
    )
    with pytest.raises(Exception, match="is not enrolled in this store"):
        strangers_ledger.recorder.insert_register(strangers_ledger._encode_register([entry]))
    # The chair enrols itself as admin through the function.
    entry = chairs_ledger._register_entry(
        {"type": "UserEnrolled", "user": chair.name, "roles": ["admin", "chair"], "reason": "x"},
        Recorder(chair.name, "chair"),
        chairs_ledger.register_state(),
    )
    with pytest.raises(Exception, match="may not run users"):
        chairs_ledger.recorder.insert_register(chairs_ledger._encode_register([entry]))
    assert (admin.count_events(), len(admin.register_entries())) == before
    assert admin.verify().ok


def test_an_entry_appended_behind_the_functions_back_fails_verify(pg_url: str, cli: Any) -> None:
    """Even the host's operator, inserting a correctly chained entry directly (triggers
    and functions bypassed), leaves no provenance: verify names the entry."""
    from psycopg.sql import SQL, Identifier

    from ledger.integrity.canonical import event_hash

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines()[:3], led.recorder_for())
    last = led.case_records("RR-2026-004")[-1]
    forged = {k: v for k, v in last.items() if k not in ("position", "hash")}
    forged.update(seq=4, prev_hash=last["hash"], actor="partner.patel", role="safeguarding-partner")
    forged["hash"] = event_hash(forged)
    schema = pg_url.partition("?schema=")[2]
    with _raw(pg_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            SQL(
                "INSERT INTO {}.caseledger_events (originator_id, originator_version, topic, "
                "state) VALUES (%s, 4, %s, %s)"
            ).format(Identifier(schema)),
            (
                case_id("RR-2026-004"),
                forged["type"],
                orjson.dumps(forged, option=orjson.OPT_SORT_KEYS),
            ),
        )
    result = cli(["--store", pg_url, "verify", "--json"])
    assert result.exit_code == 1 and result.json()["first_bad"] == "RR-2026-004#4"
    assert "provenance" in result.json()["reason"]


def test_history_cannot_be_updated_even_by_the_owner(pg_url: str) -> None:
    import psycopg
    from psycopg.sql import SQL, Identifier

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines()[:2], led.recorder_for())
    schema = Identifier(pg_url.partition("?schema=")[2])
    with _raw(pg_url) as conn:
        for statement in (
            "UPDATE {}.caseledger_events SET topic = topic",
            "DELETE FROM {}.caseledger_register",
            "TRUNCATE {}.caseledger_events",
            "UPDATE {}.caseledger_provenance SET actor = 'someone'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="cannot be changed"):
                conn.execute(SQL(statement).format(schema))
    assert led.verify().ok


# --- snapshots are checked against the chain --------------------------------------------


def _forge_regime_snapshot(led: CaseLedger, url: str) -> None:
    """Write a snapshot of RR-2026-004 that says it is a wt2015 case, as someone who can
    write the store directly would (on PostgreSQL: the operator, bypassing the function)."""
    from psycopg.sql import SQL, Identifier

    case = led._load_case("RR-2026-004")
    assert case is not None and case.regime == "wt2023"
    case.regime = "wt2015"
    snapshot = CaseSnapshot.take(case)
    if not url.startswith("postgresql://"):
        assert led.snapshots is not None
        led.snapshots.put([snapshot])
        return
    stored = led.mapper.to_stored_event(snapshot)
    schema = pg_url_schema(url)
    with _raw(url) as conn:
        conn.execute(
            SQL(
                "INSERT INTO {}.caseledger_snapshots (originator_id, originator_version, topic, "
                "state) VALUES (%s, %s, %s, %s)"
            ).format(Identifier(schema)),
            (stored.originator_id, stored.originator_version, stored.topic, stored.state),
        )


def pg_url_schema(url: str) -> str:
    return url.partition("?schema=")[2]


def test_a_forged_snapshot_is_not_used_and_verify_names_it(scenario_store: str, cli: Any) -> None:
    led = open_ledger(scenario_store)
    chair = person(scenario_store, "chair.smith")
    led.enrol(chair.name, ["chair"], led.recorder_for("admin"))
    _forge_regime_snapshot(led, scenario_store)
    # The chair may decide only wt2015 cases: the forged snapshot must not make this one so.
    with pytest.raises(InputError, match="only in cases under wt2015"):
        chair.ledger().record_lines([_decision()], chair.recorder("chair"))
    result = cli(["--store", scenario_store, "verify", "--json"])
    assert result.exit_code == 1 and result.json()["first_bad"] == "RR-2026-004#22"
    assert "snapshot" in result.json()["reason"]


def test_a_writer_cannot_store_a_snapshot_that_contradicts_the_chain(pg_url: str) -> None:
    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    writer = person(pg_url, "bu.officer")
    led.enrol(writer.name, ["business-unit"], led.recorder_for("admin"))
    theirs = writer.ledger()
    case = theirs._load_case("RR-2026-004")
    case.regime = "wt2015"
    with pytest.raises(Exception, match="snapshot does not match the chain"):
        theirs.snapshots.put([CaseSnapshot.take(case)])
    assert led.verify().ok


# --- every command as each kind of user ---------------------------------------------------

COMMANDS = [
    ["status"],
    ["status", "RR-2026-004", "--json"],
    ["timeline", "RR-2026-004", "--json"],
    ["why", "RR-2026-004", "--json"],
    ["clocks", "RR-2026-004", "--json"],
    ["quality", "RR-2026-004", "--json"],
    ["delays", "--from", "CaseReferred", "--to", "DecisionMade", "--json"],
    ["due", "--on", "2026-02-20", "--json"],
    ["users", "list", "--json"],
    ["policy", "show", "--json"],
    ["verify", "--json"],
    ["users", "add", "someone.else", "--role", "peer"],
    ["erase-personal", "RR-2026-004", "--reason", "Retention ended"],
]


@pytest.mark.parametrize("kind", ["reader", "writer"])
def test_every_command_works_or_is_refused_cleanly_for_each_grant(
    pg_url: str, cli: Any, tmp_path: Path, kind: str
) -> None:
    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    assert cli(["--store", pg_url, "status"]).exit_code == 0  # the owner makes the index
    somebody: Person = person(pg_url, f"user.{kind}", kind)
    led.enrol(
        somebody.name,
        ["inspector" if kind == "reader" else "business-unit"],
        led.recorder_for("admin"),
    )
    before = led.count_events(), len(led.register_entries())
    for command in [*COMMANDS, ["export", "RR-2026-004", "--out", str(tmp_path / f"b-{kind}")]]:
        result = cli(["--store", somebody.url, *command])
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert result.exit_code in (0, 2, 4), (command, result.exit_code, result.stderr)
        if command[0] in (
            "status",
            "timeline",
            "why",
            "clocks",
            "quality",
            "delays",
            "due",
            "verify",
            "export",
        ):
            assert result.exit_code == 0, (command, result.stderr)
        if command[:2] == ["users", "add"] or command[0] == "erase-personal":
            assert result.exit_code in (2, 4), (command, result.stdout)
    held = cli(["--store", somebody.url, "hold", "RR-2026-004", "--reason", "Judicial review"])
    assert held.exit_code == (0 if kind == "writer" else 2), held.stderr  # business-unit holds
    recorded = cli(["--store", somebody.url, "record", "-"], stdin=scenario_lines()[6])
    assert recorded.exit_code == (0 if kind == "writer" else 2), recorded.stderr
    assert led.count_events() == before[0] + (1 if kind == "writer" else 0)
    assert len(led.register_entries()) == before[1] + (1 if kind == "writer" else 0)
    assert led.verify().ok


def test_the_documented_grants_are_the_ones_the_tests_use() -> None:
    """docs/security.md shows the grants for schema ``northshire``; they are exactly the
    statements :func:`ledger.store.postgres.role_grants` makes (and the tests grant)."""
    from ledger.store.postgres import role_grants

    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    for kind, role in (
        ("reader", "inspector.jones"),
        ("writer", "jsmith"),
        ("indexer", "caseledger_indexer"),
    ):
        for statement in role_grants("northshire", role, kind):
            assert statement + ";" in doc, statement
    assert not re.search(r"GRANT[^;]*\b(INSERT|UPDATE|DELETE)\b[^;]*TO \"(jsmith|inspector)", doc)


# --- the red team's findings (each reproduced against the first authority version) -------


def _now_z() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _call_append(who: Person, url: str, body: dict[str, Any], **meta: Any) -> None:
    """Call caseledger_append directly, as a modified client would, with one entry."""
    import psycopg
    from psycopg.types.json import Jsonb

    from ledger.integrity.canonical import canonical_json, event_hash

    schema = pg_url_schema(url)
    body = dict(body)
    body["hash"] = event_hash(body)
    envelope = {
        k: body.get(k)
        for k in ("case", "seq", "type", "actor", "role", "prev_hash", "hash", "recorded_at")
    }
    envelope.update(agency=body.get("agency"), regime="wt2023", **meta)
    s = f'"{schema}"'
    with psycopg.connect(who.url.partition("?schema=")[0], autocommit=True) as conn:
        conn.execute(
            f"SELECT {s}.caseledger_append(ARRAY[ROW(%s::uuid, %s::bigint, %s::text, "
            f"%s::bytea)::{s}.stored_event_uuid], %s, %s::text[], %s::bigint[], %s::text[], "
            "%s::bytea[], %s::bytea[], %s::text[], %s::bigint[], %s::bytea[])",
            (
                case_id(body["case"]),
                body["seq"],
                body["type"],
                canonical_json(body),
                Jsonb([envelope]),
                [],
                [],
                [],
                [],
                [],
                [],
                [],
                [],
            ),
        )


def _next_context(led: CaseLedger, who: Person, role: str, **fields: Any) -> dict[str, Any]:
    last = led.case_records("RR-2026-004")[-1]
    return {
        "type": "ContextRecorded",
        "case": "RR-2026-004",
        "occurred_at": "2026-11-30",
        "topic": "other",
        "summary": "crafted",
        "seq": last["seq"] + 1,
        "prev_hash": last["hash"],
        "actor": who.name,
        "role": role,
        "recorded_at": _now_z(),
        "command_id": "00000000-0000-4000-8000-000000000000",
        **fields,
    }


@pytest.mark.parametrize(
    "stamp",
    ["now", "2026-11-30T22:18:51.013491-15:59", "20261201T141734.763146Z", 23],
    ids=["now", "offset", "basic-form", "number"],
)
def test_recorded_at_is_only_the_ledgers_own_form(pg_url: str, stamp: Any) -> None:
    """A time PostgreSQL would parse but the ledger never writes ('now', an offset that
    sorts hours earlier, ISO basic form) is refused, so nobody hides or backdates an
    entry in "the record as it stood"."""
    import psycopg

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    writer = person(pg_url, "bu.officer")
    led.enrol(writer.name, ["business-unit"], led.recorder_for("admin"))
    body = _next_context(led, writer, "business-unit", recorded_at=stamp)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="recorded_at"):
        _call_append(writer, pg_url, body)
    assert led.verify().ok


def test_seq_must_be_a_number(pg_url: str) -> None:
    import psycopg

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    writer = person(pg_url, "bu.officer")
    led.enrol(writer.name, ["business-unit"], led.recorder_for("admin"))
    body = _next_context(led, writer, "business-unit")
    body["seq"] = str(body["seq"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="seq must be a number"):
        _call_append(writer, pg_url, body, seq=body["seq"])
    assert led.verify().ok


def test_a_malformed_register_entry_is_refused_and_cannot_brick_the_store(pg_url: str) -> None:
    """A hold without a case (the business unit may place holds) would have made every
    later fold of the register fail; the database refuses it, and a register that
    cannot be read is said plainly (exit 4), never a traceback."""
    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    writer = person(pg_url, "bu.officer")
    led.enrol(writer.name, ["business-unit"], led.recorder_for("admin"))
    theirs = writer.ledger()
    entry = theirs._register_entry(
        {"type": "LegalHoldPlaced", "reason": "no case"},
        writer.recorder("business-unit"),
        theirs.register_state(),
    )
    with pytest.raises(Exception, match="LegalHoldPlaced needs case"):
        theirs.recorder.insert_register(theirs._encode_register([entry]))
    bad_policy = theirs._register_entry(
        {
            "type": "PolicyChanged",
            "policy": {"roles": {"admin": {"record": [], "actions": ["users", "policy"]}}},
            "text": "x",
            "sha256": "0" * 64,
            "reason": "r",
        },
        Recorder(led.identity(), "admin"),
        led.register_state(),
    )
    with pytest.raises(Exception, match="own_agency must be true or false"):
        led.recorder.insert_register(led._encode_register([bad_policy]))
    assert led.verify().ok
    # Written by the operator behind the functions' back, it is refused plainly.
    from psycopg.sql import SQL, Identifier

    with _raw(pg_url) as conn:
        conn.execute(
            SQL("INSERT INTO {}.caseledger_register (seq, state) VALUES (%s, %s)").format(
                Identifier(pg_url_schema(pg_url))
            ),
            (entry["seq"], orjson.dumps(entry)),
        )
    with pytest.raises(StoreUnavailable, match="cannot be read"):
        led.register_state()


def test_the_sole_admin_removing_themselves_does_not_reopen_the_store(pg_url: str) -> None:
    """The store is new only while its register is empty: after the last admin is gone
    (here by a direct call the CLI refuses), nobody can enrol themselves as admin."""
    led = open_ledger(pg_url)
    led.record_lines(scenario_lines()[:1], led.recorder_for())
    me = led.identity()
    removal = led._register_entry(
        {"type": "UserRemoved", "user": me, "reason": "gone"},
        Recorder(me, "admin"),
        led.register_state(),
    )
    with pytest.raises(Exception, match="no enrolled user could enrol users"):
        led.recorder.insert_register(led._encode_register([removal]))
    stranger = person(pg_url, "stranger")
    theirs = stranger.ledger()
    grab = theirs._register_entry(
        {"type": "UserEnrolled", "user": stranger.name, "roles": ["admin"], "reason": "x"},
        stranger.recorder("admin"),
        theirs.register_state(),
    )
    with pytest.raises(Exception, match="is not enrolled in this store"):
        theirs.recorder.insert_register(theirs._encode_register([grab]))
    assert led.verify().ok


def test_personal_keys_go_only_with_their_entries(pg_url: str, cli: Any) -> None:
    """A key planted for a future case's entry would block its referral for ever (exit 3);
    keys and rows are accepted only for the entries appended with them."""
    import psycopg
    from psycopg.types.json import Jsonb

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    writer = person(pg_url, "bu.officer")
    led.enrol(writer.name, ["business-unit"], led.recorder_for("admin"))
    s = f'"{pg_url_schema(pg_url)}"'
    with (
        psycopg.connect(writer.url.partition("?schema=")[0], autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="go only with the entries"),
    ):
        conn.execute(
            f"SELECT {s}.caseledger_append(ARRAY[]::{s}.stored_event_uuid[], %s, "
            "%s::text[], %s::bigint[], %s::text[], %s::bytea[], %s::bytea[], "
            "%s::text[], %s::bigint[], %s::bytea[])",
            (Jsonb([]), [], [], [], [], [], ["RR-2026-005"], [1], [b"k" * 32]),
        )
    referral = scenario_lines()[0].replace(b"RR-2026-004", b"RR-2026-005")
    assert cli(["--store", pg_url, "record", "-"], stdin=referral).exit_code == 0


@pytest.mark.parametrize("forgery", ["last_recorded_at", "extra-key", "topic"])
def test_a_snapshot_the_ledger_could_not_have_taken_is_never_used(
    store_url: str, cli: Any, forgery: str
) -> None:
    """Snapshots that shadow a method, name another aggregate's module or carry a time
    no entry has are cache misses for the write path, and verify names them."""
    from psycopg.sql import SQL, Identifier

    led = open_ledger(store_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    case = led._load_case("RR-2026-004")
    assert case is not None
    snapshot = CaseSnapshot.take(case)
    state = dict(snapshot.state)
    topic = snapshot.topic
    if forgery == "last_recorded_at":
        state["last_recorded_at"] = "2030-01-01T00:00:00.000000Z"
    elif forgery == "extra-key":
        state["record"] = "x"
    else:
        topic = "antigravity:geohash"
    forged = CaseSnapshot(
        originator_id=snapshot.originator_id,
        originator_version=snapshot.originator_version,
        timestamp=snapshot.timestamp,
        topic=topic,
        state=state,
    )
    if store_url.startswith("postgresql://"):
        stored = led.mapper.to_stored_event(forged)
        with _raw(store_url) as conn:  # the operator, bypassing the function
            conn.execute(
                SQL(
                    "INSERT INTO {}.caseledger_snapshots (originator_id, originator_version, "
                    "topic, state) VALUES (%s, %s, %s, %s)"
                ).format(Identifier(pg_url_schema(store_url))),
                (stored.originator_id, stored.originator_version, stored.topic, stored.state),
            )
    else:
        assert led.snapshots is not None
        led.snapshots.put([forged])
    # The next command is checked against the chain and records normally.
    more = cli(["--store", store_url, "record", "-"], stdin=scenario_lines()[6])
    assert more.exit_code == 0, more.stderr
    assert led.case_records("RR-2026-004")[-1]["recorded_at"] < "2030"
    result = cli(["--store", store_url, "verify", "--json"])
    assert result.exit_code == 1 and "snapshot" in result.json()["reason"]


def test_genuine_snapshots_are_used(store_url: str) -> None:
    """The check is not so strict that it throws away the snapshots the ledger takes."""
    led = open_ledger(store_url)
    led.record_lines(scenario_lines()[:1], led.recorder_for())
    context = {"type": "ContextRecorded", "case": "RR-2026-004", "occurred_at": "2026-02-20"}
    lines = [orjson.dumps({**context, "topic": "other", "summary": f"e{i}"}) for i in range(60)]
    led.record_lines(lines, led.recorder_for())
    assert led._trusted_snapshot(case_id("RR-2026-004")) is not None
    assert led.verify().ok


def test_store_may_be_given_after_the_command(store_url: str, cli: Any) -> None:
    """Issue 13 item 15: ``caseledger status --store X`` is ``caseledger --store X status``."""
    assert cli(["record", "-", "--store", store_url], stdin=scenario_lines()[0]).exit_code == 0
    after = cli(["status", "RR-2026-004", "--json", f"--store={store_url}"])
    before = cli(["--store", store_url, "status", "RR-2026-004", "--json"])
    assert after.exit_code == 0 and after.json() == before.json()
    assert open_ledger(store_url).count_events() == 1


# --- delays approved only by the decision-maker (issue 13 item 4) -------------------------


def _delay_body(led: CaseLedger, who: Person, approved_by: str) -> dict[str, Any]:
    """A correctly chained DecisionDelayed for the scenario case, as a client builds it."""
    body = _next_context(led, who, "business-unit")
    for name in ("topic", "summary"):
        del body[name]
    body.update(
        type="DecisionDelayed",
        reason="crafted",
        expected_by="2026-12-31",
        approved_by=approved_by,
    )
    return body


def test_the_database_refuses_a_delay_no_decision_maker_approved(pg_url: str) -> None:
    """A writer calling caseledger_append directly (the client's check skipped) with an
    approver who is not an enrolled decision-maker of the case's regime is refused, and
    so is an envelope that names another approver than the entry it carries."""
    import psycopg

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    writer, chair, partner = (
        person(pg_url, "bu.officer"),
        person(pg_url, "chair.smith"),
        person(pg_url, "partner.patel"),
    )
    led.enrol(writer.name, ["business-unit"], led.recorder_for("admin"))
    led.enrol(chair.name, ["chair"], led.recorder_for("admin"))  # wt2015 only
    led.enrol(partner.name, ["safeguarding-partner"], led.recorder_for("admin"))
    before = led.count_events()
    for nobody in ("The partners", chair.name, writer.name):
        body = _delay_body(led, writer, nobody)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not approve"):
            _call_append(writer, pg_url, body, approval="DecisionDelayed", approved_by=nobody)
    # the envelope names the partner, the entry someone else
    body = _delay_body(led, writer, "The partners")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="differs from the one checked"):
        _call_append(writer, pg_url, body, approval="DecisionDelayed", approved_by=partner.name)
    # the envelope says nothing of the approval
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="differs from the one checked"):
        _call_append(writer, pg_url, body)
    assert led.count_events() == before
    # the partner's approval is accepted through the function, and kept as provenance
    body = _delay_body(led, writer, partner.name)
    _call_append(writer, pg_url, body, approval="DecisionDelayed", approved_by=partner.name)
    assert [r["approved_by"] for r in led.recorder.iter_provenance()][-1] == partner.name
    assert led.verify().ok


def test_the_database_refuses_what_a_client_without_the_approval_check_writes(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger's own write path with its approval check removed: the database still
    refuses the delay and the correction of its approver."""
    import ledger.application.recording as recording

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    partner = "partner.patel"
    led.enrol(partner, ["safeguarding-partner"], led.recorder_for("admin"))
    delay = _delay_body(led, person(pg_url, "x"), partner)
    line = {k: delay[k] for k in ("type", "case", "occurred_at", "reason", "expected_by")}
    (receipt,) = led.record_lines(
        [orjson.dumps({**line, "approved_by": partner})], led.recorder_for()
    )
    before = led.count_events()
    monkeypatch.setattr(recording, "check_approval", lambda policy, users, event, *a: event)
    with pytest.raises(StoreUnavailable, match="may not approve a DecisionDelayed"):
        led.record_lines([orjson.dumps({**line, "approved_by": "Anyone"})], led.recorder_for())
    correction = {
        "type": "EntryCorrected",
        "case": "RR-2026-004",
        "corrects": receipt.ref,
        "changes": {"approved_by": "Anyone"},
        "reason": "crafted",
    }
    with pytest.raises(StoreUnavailable, match="may not approve a DecisionDelayed"):
        led.record_lines([orjson.dumps(correction)], led.recorder_for())
    assert led.count_events() == before and led.verify().ok


def test_an_encrypted_store_checks_and_keeps_the_approver_it_is_given(
    pg_url: str, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With entries encrypted the database cannot read approved_by: the client passes
    the approver in clear; the database checks it as it would the entry's and keeps it
    as provenance, and verify (which has the key) names an entry whose approver differs."""
    import ledger.application.recording as recording
    from ledger.store.locations import parse_store

    key = tmp_path / "store.key"
    assert cli(["keys", "new", "--out", str(key)]).exit_code == 0
    led = CaseLedger(parse_store(pg_url), key_file=str(key))
    try:
        led.record_lines(scenario_lines(), led.recorder_for())
        assert led.encrypted
        partner = "partner.patel"
        led.enrol(partner, ["safeguarding-partner"], led.recorder_for("admin"))
        last = led.case_records("RR-2026-004")[-1]
        line = {
            "type": "DecisionDelayed",
            "case": "RR-2026-004",
            "occurred_at": "2026-03-05",
            "reason": "crafted",
            "expected_by": "2026-12-31",
        }
        led.record_lines([orjson.dumps({**line, "approved_by": partner})], led.recorder_for())
        assert led.verify().ok
        last = led.case_records("RR-2026-004")[-1]
        before = led.count_events()
        real = recording.provenance_approval
        monkeypatch.setattr(recording, "check_approval", lambda policy, users, event, *a: event)
        # the approver passed is no decision-maker: refused
        with pytest.raises(StoreUnavailable, match="may not approve a DecisionDelayed"):
            led.record_lines([orjson.dumps({**line, "approved_by": "Anyone"})], led.recorder_for())
        # no approver passed at all: refused
        monkeypatch.setattr(
            recording, "provenance_approval", lambda body, type_of: {"approval": None}
        )
        with pytest.raises(StoreUnavailable, match="must name its approver"):
            led.record_lines([orjson.dumps({**line, "approved_by": partner})], led.recorder_for())
        assert led.count_events() == before
        # a valid approver passed while the sealed entry names another: verify names it
        monkeypatch.setattr(
            recording,
            "provenance_approval",
            lambda body, type_of: {"approval": "DecisionDelayed", "approved_by": partner},
        )
        led.record_lines([orjson.dumps({**line, "approved_by": "Anyone"})], led.recorder_for())
        monkeypatch.setattr(recording, "provenance_approval", real)
        result = led.verify()
        assert not result.ok and result.first_bad == f"RR-2026-004#{last['seq'] + 1}"
        assert "approver differs" in (result.reason or "")
    finally:
        led.close()
