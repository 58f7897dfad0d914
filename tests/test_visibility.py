"""What each role sees (issue 17 part 4: "an agency sees only its own"), on the web and
the CLI alike, against real stores (an SQLite file, a PostgreSQL schema).

The shipped policy gives the agency role ``sees = "own-agency"``: an agency user reads
only the cases naming their agency and, in them, the referral (without personal data),
the case's publication and their own agency's entries; never another agency's reply, the
partners' discussion or decision, nor the statutory clocks.  An inspector reads all and
records nothing.  The filtering is the read facades' (``projections/queries/visibility``),
so the web view in host mode and the CLI run as that user answer the same.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from cli.web.app import create_app
from cli.web.config import WebConfig
from ledger import api
from ledger.domain.policy import default_policy_text, policy_from_text
from ledger.errors import InputError
from projections import api as read_api
from tests.conftest import FixedClock, invoke, open_ledger, scenario_lines
from tests.test_web_forms import People

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note that httpx is deprecated for it
    from starlette.testclient import TestClient

CASE = "RR-2026-004"
OTHER = "RR-2026-005"
POLICE = "Northshire Police"
JSON = {"accept": "application/json"}
PROXY = "10.0.0.5"
#: What the agency sees of the scenario: its referral, the request made of the police,
#: the police's reply and view, and the publication; nothing else.
POLICE_SEES = [
    "CaseReferred",
    "InformationRequested",
    "InformationReceived",
    "AgencyViewGiven",
    "ReportPublished",
]


def _other_case() -> list[bytes]:
    """A second case whose only request is to the ICB: the police are not in it."""
    lines = []
    for line in scenario_lines()[:5]:
        entry = orjson.loads(line)
        if entry.get("agency") not in (None, "Northshire ICB"):
            continue
        entry["case"] = OTHER
        entry.pop("command_id", None)
        lines.append(orjson.dumps(entry))
    return lines


@pytest.fixture
def scoped_store(store_url: str, clock: FixedClock) -> Iterator[tuple[str, People]]:
    """The whole scenario and a second case without the police, with a business-unit
    user, an inspector and the police enrolled (on PostgreSQL each a database role, and a
    web login that switches to them)."""
    led = open_ledger(store_url, clock)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.record_lines(_other_case(), led.recorder_for())
    people = People(store_url)
    api.add_user(led, people.business_unit, role=["business-unit"])
    api.add_user(led, people.inspector, role=["inspector"])
    api.add_user(led, people.police, role=["agency"], agency=POLICE)
    led.close()
    yield store_url, people


def test_an_agency_sees_only_its_own_and_an_inspector_sees_all(
    scoped_store: tuple[str, People], clock: FixedClock
) -> None:
    store_url, people = scoped_store
    config = WebConfig(
        opener=lambda: open_ledger(people.server_url, clock),
        host_mode=True,
        trusted_header="X-Remote-User",
        proxy_addresses=(PROXY,),
    )
    police = {"X-Remote-User": people.police}
    inspector = {"X-Remote-User": people.inspector}
    with TestClient(create_app(config), "https://testserver", client=(PROXY, 40123)) as web:
        # the case page, as JSON: only the police's part of the case
        page = web.get(f"/cases/{CASE}", headers={**police, **JSON})
        assert page.status_code == 200, page.text[-400:]
        seen = page.json()
        timeline = seen["timeline"]
        assert [e["type"] for e in timeline] == [
            t for t in POLICE_SEES for e in timeline if e["type"] == t
        ]
        assert {e["type"] for e in timeline} == set(POLICE_SEES)
        assert {r["agency"] for r in seen["status"]["open_requests"]} <= {POLICE}
        assert seen["why"]["decision"] is None  # the partners' decision is theirs
        assert seen["clocks"] == [] and seen["status"]["overdue"] == []
        assert seen["quality"] == []  # QM2 judges the partners' decision making
        assert {d["kind"] for d in seen["due"]} <= {"reply"}
        text = json.dumps(seen)
        assert '"personal"' not in text and "date_of_birth" not in text
        # the page as rendered: no other agency's reply, no discussion
        html = web.get(f"/cases/{CASE}", headers=police).text
        assert "Northshire ICB" not in html and "Education" not in html
        assert POLICE in html
        # a case without the police is as unknown as one that does not exist
        hidden = web.get(f"/cases/{OTHER}", headers={**police, **JSON})
        missing = web.get("/cases/RR-2099-001", headers={**police, **JSON})
        assert hidden.status_code == missing.status_code == 404
        assert "not one" in hidden.text and OTHER not in web.get("/", headers=police).text
        # the desk lists only their case, and the clocks page none
        desk = web.get("/", headers={**police, **JSON}).json()
        assert [row["case"] for row in desk["cases"]] == [CASE]
        assert {d["case"] for d in desk["due"]} <= {CASE}
        assert web.get("/clocks", headers={**police, **JSON}).json()["clocks"] == []

        # an inspector reads every case and every entry (and records nothing: see
        # tests/test_web_forms.py)
        whole = web.get(f"/cases/{CASE}", headers={**inspector, **JSON}).json()
        assert len(whole["timeline"]) == len(scenario_lines())
        assert "Northshire ICB" in web.get(f"/cases/{CASE}", headers=inspector).text
        assert whole["why"]["decision"] is not None
        every = web.get("/", headers={**inspector, **JSON}).json()
        assert {row["case"] for row in every["cases"]} >= {OTHER}
        assert web.get(f"/cases/{OTHER}", headers={**inspector, **JSON}).status_code == 200

    # the CLI as the police (SQLite: the login name; PostgreSQL: their own login role)
    # answers the same
    url, env = (store_url, {"LOGNAME": people.police, "USER": people.police})
    if store_url.startswith("postgresql://"):
        url, env = (_login_of(store_url, people.police), {})
    line = invoke(["--store", url, "timeline", CASE, "--json"], env=env)
    assert line.exit_code == 0, line.stderr
    assert [e["type"] for e in line.json()] == [e["type"] for e in timeline]
    listed = invoke(["--store", url, "status", "--json"], env=env)
    assert [row["case"] for row in listed.json()] == [CASE]
    refused = invoke(["--store", url, "status", OTHER, "--json"], env=env)
    assert refused.exit_code == 2 and "not one" in refused.stderr
    export = invoke(["--store", url, "export", CASE, "--out", "unused-dir"], env=env)
    assert export.exit_code == 2 and "may not export" in export.stderr


def _login_of(store_url: str, role: str) -> str:
    """The URL the database user ``role`` logs in with (tests.conftest.person's form)."""
    from urllib.parse import quote

    user_part = store_url.split("://", 1)[1].split("@", 1)[0]
    return store_url.replace(f"://{user_part}@", f"://{quote(role, safe='')}@", 1)


def test_sees_is_checked_recorded_and_shown(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """A bad ``sees`` is refused with the reason; a good one is recorded in the register
    (and on PostgreSQL the database's copy agrees: verify checks it); ``policy show``
    gives it; a role changed to ``all`` reads everything again."""
    shipped = default_policy_text()
    assert 'sees = "own-agency"' in shipped
    with pytest.raises(InputError, match=r"roles\.agency\.sees must be one of"):
        policy_from_text(shipped.replace('sees = "own-agency"', 'sees = "own"'), "bad.toml")
    led = open_ledger(store_url, clock)
    led.record_lines(scenario_lines(), led.recorder_for())
    shown = api.show_policy(led).to_json()
    assert shown["roles"]["agency"]["sees"] == "own-agency"
    assert shown["roles"]["inspector"]["sees"] == "all"
    assert led.verify().ok  # on PostgreSQL: the database's policy copy agrees
    if store_url.startswith("postgresql://"):
        return  # acting as a user there needs their database role (the test above)
    api.add_user(led, "police-user", role=["agency"], agency=POLICE)
    assert len(read_api.status(led).rows) == 1  # builds the cross-case index
    with api.acting_as(led, "police-user"):
        narrowed = read_api.timeline(led, CASE)
        assert {e.type for e in narrowed.entries} == set(POLICE_SEES)
        assert not any("personal" in e.body for e in narrowed.entries)
        # every other facade answers the same narrowed record
        assert read_api.case_refs(led) == (CASE,)
        assert read_api.related(led, CASE).cases == ()
        assert read_api.quality(led, CASE).answers == ()
        assert read_api.clocks(led).shown == ()
        assert {d.kind for d in read_api.due(led).deadlines} <= {"reply"}
        spans = read_api.delays(led, from_type="CaseReferred", to_type="DecisionMade")
        assert [i.to_ref for i in spans.intervals] == [None]  # the decision is the partners'
    # an admin widens the agency role: it reads every entry again
    wide = tmp_path / "wide.toml"
    wide.write_text(shipped.replace('sees = "own-agency"', 'sees = "all"'), encoding="utf-8")
    api.set_policy(led, wide, reason="Board decision: agencies read whole cases")
    with api.acting_as(led, "police-user"):
        assert len(read_api.timeline(led, CASE).entries) == len(scenario_lines())
