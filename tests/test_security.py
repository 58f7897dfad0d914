"""Who may write what, encryption at rest, erasure under legal hold, and signed
checkpoints that catch what a per-case chain cannot, on both stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.domain.case import case_id
from ledger.errors import InputError
from tests.conftest import SCENARIO, open_ledger, person, scenario_lines

#: Writers with login roles of their own, whose entries the PostgreSQL server dates by its
#: own clock: these tests run at the real date (after all their fixed 2026 data) even when
#: ``CASELEDGER_TEST_TODAY`` moves the clock (tests/conftest.py).
pytestmark = pytest.mark.real_clock

DECISION = orjson.loads(scenario_lines()[18])
RECEIVED = orjson.loads(scenario_lines()[8])  # Northshire Police's reply


def _without_refs(event: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in event.items() if k != "relied_on"})


class Enrolled:
    """The scenario store, its admin's ledger, and the people enrolled in it."""

    def __init__(self, url: str) -> None:
        self.led = open_ledger(url)
        admin = self.led.recorder_for("admin")
        self.people = {
            "police.liaison": person(url, "police.liaison"),
            "inspector.jones": person(url, "inspector.jones", "reader"),
            "chair.smith": person(url, "chair.smith"),
            "partner.patel": person(url, "partner.patel"),
            "stranger": person(url, "stranger"),
        }
        self.led.enrol(self.name("police.liaison"), ["agency"], admin, agency="Northshire Police")
        self.led.enrol(self.name("inspector.jones"), ["inspector"], admin)
        self.led.enrol(self.name("chair.smith"), ["chair"], admin)
        self.led.enrol(self.name("partner.patel"), ["safeguarding-partner"], admin)

    def name(self, who: str) -> str:
        """The actor name of a person (on PostgreSQL, their login role)."""
        return self.people[who].name

    def record(self, who: str, role: str, lines: list[bytes]) -> Any:
        """Record as that person, through a ledger opened as them."""
        somebody = self.people[who]
        return somebody.ledger().record_lines(lines, somebody.recorder(role))

    def count_events(self) -> int:
        """How many entries the store holds."""
        return int(self.led.count_events())


@pytest.fixture
def enrolled(scenario_store: str) -> Enrolled:
    """The scenario store with an agency user, an inspector, a chair and a partner."""
    return Enrolled(scenario_store)


@pytest.mark.parametrize(
    ("user", "role"), [("police.liaison", "agency"), ("inspector.jones", "inspector")]
)
def test_agency_and_inspector_cannot_record_a_decision(
    enrolled: Enrolled, user: str, role: str
) -> None:
    before = enrolled.count_events()
    with pytest.raises(InputError) as refused:
        enrolled.record(user, role, [_without_refs(DECISION)])
    assert "may not record DecisionMade" in str(refused.value)
    assert enrolled.count_events() == before


def test_partner_and_business_unit_can_decide_but_chair_only_under_wt2015(
    enrolled: Enrolled,
) -> None:
    enrolled.record("partner.patel", "safeguarding-partner", [_without_refs(DECISION)])
    enrolled.led.record_lines([_without_refs(DECISION)], enrolled.led.recorder_for("business-unit"))
    with pytest.raises(InputError) as refused:  # RR-2026-004 is a wt2023 case
        enrolled.record("chair.smith", "chair", [_without_refs(DECISION)])
    assert "only in cases under wt2015" in str(refused.value)


def test_chair_can_decide_a_wt2015_case(enrolled: Enrolled) -> None:
    referral = orjson.loads(scenario_lines()[0])
    referral.update(  # a 2016 case: wt2015 was in force
        case="SCR-2016-001",
        regime="wt2015",
        incident_date="2016-03-01",
        aware_date="2016-03-02",
        occurred_at="2016-03-02",
    )
    enrolled.led.record_lines([orjson.dumps(referral)], enrolled.led.recorder_for())
    criteria = {
        k: {"finding": "met", "reason": "r"}
        for k in ("abuse_or_neglect", "child_died", "seriously_harmed", "agency_concern")
    }
    decision = {**DECISION, "case": "SCR-2016-001", "criteria": criteria}
    receipts = enrolled.record("chair.smith", "chair", [_without_refs(decision)])
    assert receipts[0].ref == "SCR-2016-001#2"


def test_agency_records_only_for_its_own_agency(enrolled: Enrolled) -> None:
    enrolled.record(
        "police.liaison", "agency", [orjson.dumps({**RECEIVED, "summary": "Addendum."})]
    )
    other = {**RECEIVED, "agency": "Northshire ICB", "summary": "Not ours."}
    with pytest.raises(InputError) as refused:
        enrolled.record("police.liaison", "agency", [orjson.dumps(other)])
    assert refused.value.field == "agency"
    with pytest.raises(InputError):  # nor any other kind of entry
        enrolled.record("police.liaison", "agency", [scenario_lines()[6]])


def test_unenrolled_user_and_wrong_role_are_refused(enrolled: Enrolled) -> None:
    before = enrolled.count_events()
    with pytest.raises(InputError, match="not enrolled"):
        enrolled.record("stranger", "business-unit", [scenario_lines()[6]])
    with pytest.raises(InputError, match="enrolled as agency"):
        enrolled.record("police.liaison", "business-unit", [scenario_lines()[6]])
    assert enrolled.count_events() == before


def test_cli_identity_is_the_login_name_not_self_declared(sqlite_url: str, cli: Any) -> None:
    """On SQLite the actor is the OS login name; the first user is admin and business-unit."""
    assert (
        cli(
            ["--store", sqlite_url, "record", str(SCENARIO)], env={"LOGNAME": "bu.manager"}
        ).exit_code
        == 0
    )
    record = open_ledger(sqlite_url).case_records("RR-2026-004")[0]
    assert record["actor"] == "bu.manager" and record["role"] == "business-unit"
    assert (
        cli(
            [
                "--store",
                sqlite_url,
                "users",
                "add",
                "police.liaison",
                "--role",
                "agency",
                "--agency",
                "Northshire Police",
            ],
            env={"LOGNAME": "bu.manager"},
        ).exit_code
        == 0
    )
    decision = _without_refs(DECISION)
    refused = cli(
        ["--store", sqlite_url, "record", "-", "--role", "agency"],
        stdin=decision,
        env={"LOGNAME": "police.liaison"},
    )
    assert refused.exit_code == 2 and "may not record DecisionMade" in refused.stderr
    stranger = cli(
        ["--store", sqlite_url, "users", "add", "x", "--role", "chair"],
        env={"LOGNAME": "police.liaison"},
    )
    assert stranger.exit_code == 2 and "not enrolled" not in stranger.stderr
    listed = cli(["--store", sqlite_url, "users", "list", "--json"]).json()
    assert {u["user"] for u in listed} == {"bu.manager", "police.liaison"}


def test_postgres_actor_is_the_session_user(pg_url: str, cli: Any) -> None:
    assert cli(["--store", pg_url, "record", str(SCENARIO)]).exit_code == 0
    led = open_ledger(pg_url)
    assert led.identity() == pg_url.split("://", 1)[1].split("@", 1)[0]
    assert led.case_records("RR-2026-004")[0]["actor"] == led.identity()


# --- encryption at rest ---------------------------------------------------------------

PLAINTEXTS = [
    b"Northshire",
    b"Kai Example",
    b"2025-08-14",
    b"RR-2026-004",
    b"Child K",
    b"bruising",
    b"A. Reviewer",
    b"Westmoor",
]


def _raw_store_bytes(url: str) -> bytes:
    if url.startswith("postgresql://"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, schema = url.partition("?schema=")
        blob = b""
        with psycopg.connect(base) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema=%s",
                    (schema,),
                )
            ]
            for table in tables:
                for row in conn.execute(
                    SQL("SELECT * FROM {}.{}").format(Identifier(schema), Identifier(table))
                ):
                    blob += repr(row).encode() + b"".join(
                        bytes(v) for v in row if isinstance(v, (bytes, memoryview))
                    )
        return blob
    return b"".join(p.read_bytes() for p in Path(url).parent.glob(Path(url).name + "*"))


def test_encrypted_store_holds_no_plaintext_and_needs_its_key(
    store_url: str, cli: Any, tmp_path: Path
) -> None:
    key, wrong = tmp_path / "store.key", tmp_path / "wrong.key"
    assert cli(["keys", "new", "--out", str(key)]).exit_code == 0
    assert cli(["keys", "new", "--out", str(wrong)]).exit_code == 0
    assert key.stat().st_mode & 0o777 == 0o600
    with_key = {"CASELEDGER_KEY_FILE": str(key)}
    assert cli(["--store", store_url, "record", str(SCENARIO)], env=with_key).exit_code == 0
    raw = _raw_store_bytes(store_url)
    assert raw, "read nothing from the store"
    for text in PLAINTEXTS:
        assert text not in raw, text
    no_key = cli(["--store", store_url, "verify"])
    assert no_key.exit_code == 4 and "encrypted" in no_key.stderr
    bad_key = cli(["--store", store_url, "verify"], env={"CASELEDGER_KEY_FILE": str(wrong)})
    assert bad_key.exit_code == 4 and "not this store's key" in bad_key.stderr
    good = cli(["--store", store_url, "verify", "--json"], env=with_key)
    assert good.exit_code == 0 and good.json()["ok"] is True
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    led = CaseLedger(parse_store(store_url), key_file=str(key))
    assert {r.field: orjson.loads(r.value) for r in led.personal_data("RR-2026-004")} == {
        "name": "Kai Example",
        "date_of_birth": "2025-08-14",
    }


def test_unencrypted_store_refuses_a_key(sqlite_url: str, cli: Any, tmp_path: Path) -> None:
    assert cli(["--store", sqlite_url, "record", str(SCENARIO)]).exit_code == 0
    key = tmp_path / "k"
    cli(["keys", "new", "--out", str(key)])
    result = cli(["--store", sqlite_url, "verify"], env={"CASELEDGER_KEY_FILE": str(key)})
    assert result.exit_code == 4 and "not encrypted" in result.stderr


# --- erasure and legal hold -------------------------------------------------------------


def test_erasure_removes_personal_values_and_everything_still_verifies(
    scenario_store: str, cli: Any
) -> None:
    base = ["--store", scenario_store]
    assert cli([*base, "hold", "RR-2026-004", "--reason", "Judicial review"]).exit_code == 0
    held = cli([*base, "erase-personal", "RR-2026-004", "--reason", "Retention ended"])
    assert held.exit_code == 2 and "legal hold" in held.stderr
    assert open_ledger(scenario_store).personal_data("RR-2026-004")
    assert cli([*base, "hold", "RR-2026-004", "--release", "--reason", "Ended"]).exit_code == 0
    erased = cli([*base, "erase-personal", "RR-2026-004", "--reason", "Retention ended", "--json"])
    assert erased.exit_code == 0, erased.stderr
    assert erased.json()["fields"] == ["RR-2026-004#1:date_of_birth", "RR-2026-004#1:name"]
    led = open_ledger(scenario_store)
    assert led.personal_data("RR-2026-004") == []
    if not scenario_store.startswith("postgresql://"):
        with sqlite3.connect(scenario_store) as conn:
            assert conn.execute("SELECT COUNT(*) FROM personal_data").fetchone()[0] == 0
    assert cli([*base, "verify", "--json"]).json()["ok"] is True
    erasures = led.register_state().erasures
    assert erasures[0]["reason"] == "Retention ended" and erasures[0]["actor"] == led.identity()


def test_only_admin_may_erase(enrolled: Enrolled) -> None:
    chair = enrolled.people["chair.smith"]
    with pytest.raises(InputError, match="may not run erase-personal"):
        chair.ledger().erase_personal("RR-2026-004", "r", chair.recorder("chair"))


# --- signed checkpoints ----------------------------------------------------------------


def _delete(url: str, case: str, seq: int | None) -> None:
    """Delete events directly in the database, behind the ledger's back."""
    oid = case_id(case)
    if url.startswith("postgresql://"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, schema = url.partition("?schema=")
        table = SQL("{}.{}").format(Identifier(schema), Identifier("caseledger_events"))
        with psycopg.connect(base, autocommit=True) as conn:
            # Only the host's operator could do this: turn the ledger's triggers off.
            conn.execute("SET session_replication_role = replica")
            if seq is None:
                conn.execute(SQL("DELETE FROM {} WHERE originator_id=%s").format(table), (oid,))
            else:
                conn.execute(
                    SQL("DELETE FROM {} WHERE originator_id=%s AND originator_version=%s").format(
                        table
                    ),
                    (oid, seq),
                )
    else:
        with sqlite3.connect(url) as conn:
            if seq is None:
                conn.execute("DELETE FROM stored_events WHERE originator_id=?", (oid.hex,))
            else:
                conn.execute(
                    "DELETE FROM stored_events WHERE originator_id=? AND originator_version=?",
                    (oid.hex, seq),
                )


@pytest.fixture
def checkpointed(scenario_store: str, cli: Any, tmp_path: Path) -> tuple[str, Path]:
    """A store with a second case, and a signed checkpoint of it lodged in a file."""
    other = scenario_lines()[0].replace(b"RR-2026-004", b"RR-2026-005")
    assert cli(["--store", scenario_store, "record", "-"], stdin=other).exit_code == 0
    key, cp = tmp_path / "sign.pem", tmp_path / "cp.json"
    assert cli(["keys", "signing", "--out", str(key)]).exit_code == 0
    made = cli(
        [
            "--store",
            scenario_store,
            "checkpoint",
            "--signing-key",
            str(key),
            "--out",
            str(cp),
            "--json",
        ]
    )
    assert made.exit_code == 0, made.stderr
    assert made.json()["count"] == 23
    return scenario_store, cp


def test_store_that_grew_still_extends_its_checkpoint(
    checkpointed: tuple[str, Path], cli: Any
) -> None:
    url, cp = checkpointed
    assert cli(["--store", url, "record", "-"], stdin=scenario_lines()[6]).exit_code == 0
    result = cli(["--store", url, "verify", "--since", str(cp), "--json"])
    assert result.exit_code == 0 and result.json()["checkpoint"]["ok"] is True


@pytest.mark.parametrize(
    ("case", "seq"),
    [("RR-2026-004", 22), ("RR-2026-005", None)],
    ids=["last event of a case", "a whole case"],
)
def test_deletion_is_caught_since_the_checkpoint(
    checkpointed: tuple[str, Path], cli: Any, case: str, seq: int | None
) -> None:
    url, cp = checkpointed
    _delete(url, case, seq)
    plain = cli(["--store", url, "verify", "--json"])
    if url.startswith("postgresql://"):  # the database's provenance names the lost entry
        assert plain.exit_code == 1 and plain.json()["first_bad"] == f"{case}#{seq or 1}"
    else:  # the per-case chains cannot see it
        assert plain.exit_code == 0
    result = cli(["--store", url, "verify", "--since", str(cp), "--json"])
    assert result.exit_code == 1
    assert result.json()["checkpoint"]["ok"] is False


def test_rewritten_and_rehashed_history_is_caught(checkpointed: tuple[str, Path], cli: Any) -> None:
    from ledger.integrity.canonical import event_hash
    from tests.test_verify_store import tamper

    url, cp = checkpointed
    led = open_ledger(url)
    records = led.case_records("RR-2026-004")
    prev = records[20]["hash"]
    for record in records[21:]:  # rewrite #22 and re-hash the chain from there
        forged = {k: v for k, v in record.items() if k != "position"}
        forged.update(prev_hash=prev, location="https://example.org/rewritten")
        forged["hash"] = event_hash(forged)
        tamper(url, forged["seq"], {"location": forged["location"], "hash": forged["hash"]})
        prev = forged["hash"]
    plain = cli(["--store", url, "verify", "--json"])
    if url.startswith("postgresql://"):  # the database kept the hash it appended
        assert plain.exit_code == 1 and plain.json()["first_bad"] == "RR-2026-004#22"
        assert "provenance" in plain.json()["reason"]
    else:
        assert plain.exit_code == 0  # a consistent forgery
    result = cli(["--store", url, "verify", "--since", str(cp), "--json"])
    assert result.exit_code == 1 and "rewritten" in result.json()["checkpoint"]["reason"]


def test_forged_checkpoint_signature_is_refused(checkpointed: tuple[str, Path], cli: Any) -> None:
    url, cp = checkpointed
    data = orjson.loads(cp.read_bytes())
    data["count"] = 1
    cp.write_bytes(orjson.dumps(data))
    result = cli(["--store", url, "verify", "--since", str(cp), "--json"])
    assert result.exit_code == 1 and "signature" in result.json()["reason"]
