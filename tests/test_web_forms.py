"""The business unit's forms (issue 17 part 3), host mode and per-request database roles
(parts 4 and 5), through Starlette's TestClient against real stores (an SQLite file, a
PostgreSQL schema), never a mocked one.

A form is the catalogue's model; a submission with mistakes shows every one next to its
field and writes nothing; a correct one stores exactly the body the CLI's entry command
stores, and ``caseledger verify`` then passes; a POST without its CSRF token is refused.
In host mode a request is believed only from the proxy, for an enrolled user; an inspector
gets no form; an agency records only for its own agency; on PostgreSQL each request runs
under the user's own database role, which the database checks, and never leaks to the next.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any, get_args

import pytest

from cli.web.app import create_app
from cli.web.config import WebConfig
from cli.web.forms import ENVELOPE
from cli.web.server import checked_config
from ledger import api
from ledger.catalogue.fields import ALL_CRITERIA, Outcome
from ledger.catalogue.models import DecisionMade
from ledger.errors import UsageError
from tests.conftest import _ROLES, CliResult, invoke, open_ledger, person, scenario_lines

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note that httpx is deprecated for it
    from starlette.testclient import TestClient

CASE = "RR-2026-004"
#: The scenario's referral, notification and three requests for information.
OPENING = scenario_lines()[:5]
JSON = {"accept": "application/json"}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
#: The fields the ledger gives every entry; the rest is what was recorded.
LEDGER_FIELDS = {"seq", "recorded_at", "actor", "command_id", "prev_hash", "hash", "position"}


def token_of(page: str) -> str:
    match = TOKEN.search(page)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def errors_on(page: str) -> dict[str, str]:
    """Each field's error text, as shown next to it (``id="err-<field>"``)."""
    return {
        m.group(1): re.sub(r"<[^>]+>", " ", m.group(2))
        for m in re.finditer(r'<p class="field-error" id="err-([\w.]+)">(.*?)</p>', page, re.S)
    }


def body(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in LEDGER_FIELDS}


def _client(app: Any, peer: str = "testclient", https: bool = False) -> TestClient:
    """A browser at ``peer``; ``https``: behind the proxy, which serves HTTPS (host mode's
    session cookie is ``Secure``)."""
    base = "https://testserver" if https else "http://testserver"
    return TestClient(app, base_url=base, client=(peer, 40123))


def test_a_form_is_the_catalogue_and_records_what_the_command_records(
    store_url: str, cli: Callable[..., CliResult]
) -> None:
    led = open_ledger(store_url)
    api.add_user(led, led.identity(), role=["admin", "business-unit"])
    led.record_lines(OPENING, led.recorder_for())
    app = create_app(WebConfig(opener=lambda: open_ledger(store_url)))
    decide = f"/cases/{CASE}/record/decide"
    discuss = f"/cases/{CASE}/record/discuss"
    with _client(app) as web:
        # the form is the model: its fields in order, the vocabularies, the required marks
        spec = web.get(decide, headers=JSON).json()["form"]
        fields = {f["name"]: f for f in spec["fields"]}
        own = [n for n in DecisionMade.model_fields if n not in ("type", "case", *ENVELOPE)]
        assert list(fields) == [*own, *ENVELOPE]
        assert spec["title"] == "Decision made" and fields["rationale"]["widget"] == "textarea"
        assert fields["outcome"]["choices"] == list(get_args(Outcome))
        assert fields["criteria"]["widget"] == "criteria"
        assert fields["criteria"]["choices"] == list(ALL_CRITERIA)
        assert [n for n, f in fields.items() if f["required"]] == [
            n for n, i in DecisionMade.model_fields.items() if i.is_required() and n != "type"
        ][1:]  # all but case, which the address gives
        index = web.get(f"/cases/{CASE}/record")
        assert index.status_code == 200 and index.text.index("/record/decide") < index.text.index(
            "/record/close"
        )

        page = web.get(decide)
        assert page.status_code == 200 and 'name="outcome"' in page.text
        token = token_of(page.text)
        before = len(led.case_records(CASE))

        # two mistakes at once, each by its field; the values given are shown again
        wrong = web.post(
            decide,
            data={
                "csrf_token": token,
                "outcome": "perhaps",
                "decided_by": "Northshire Police",
                "criteria.child_died.finding": "met",
                "criteria.child_died.reason": "the child died",
            },
        )
        assert wrong.status_code == 422
        shown = errors_on(wrong.text)
        assert "perhaps" in shown["outcome"] and "review" in shown["outcome"]
        assert "required" in shown["rationale"]
        assert ">Northshire Police</textarea>" in wrong.text
        assert "problems: nothing was recorded" in wrong.text
        as_json = web.post(decide, data={"csrf_token": token, "outcome": "x"}, headers=JSON)
        assert as_json.status_code == 422
        assert {"outcome", "rationale"} <= {p["field"] for p in as_json.json()["problems"]}
        # a file named the command line's way is refused, not read
        sneaky = web.post(discuss, data={"csrf_token": token, "attendees": "@/etc/passwd"})
        assert "cannot name a file" in errors_on(sneaky.text)["attendees"]
        assert len(led.case_records(CASE)) == before

        # CSRF: no token, a forged one, another browser's: 403, nothing written
        entry = {
            "occurred_at": "2026-02-18",
            "forum": "rapid-review-meeting",
            "attendees": "Northshire Police\nNorthshire ICB",
            "summary": "Rapid review meeting: chronology gaps discussed.",
        }
        assert web.post(discuss, data=entry).status_code == 403
        forged = web.post(discuss, data={**entry, "csrf_token": token[:-4] + "AAAA"})
        assert forged.status_code == 403 and "security token" in forged.text
        with _client(app) as stranger:
            assert stranger.post(discuss, data={**entry, "csrf_token": token}).status_code == 403
        cross = web.post(
            discuss, data={**entry, "csrf_token": token}, headers={"sec-fetch-site": "cross-site"}
        )
        assert cross.status_code == 403
        assert len(led.case_records(CASE)) == before
        assert (
            "samesite=strict" in page.headers.get("set-cookie", "").lower()
            or "caseledger_session" in web.cookies
        )

        # a correct entry: recorded, confirmed with its reference and hash
        done = web.post(discuss, data={**entry, "csrf_token": token})
        assert done.status_code == 201
        stored = led.case_records(CASE)
        assert len(stored) == before + 1
        assert f"{CASE}#{before + 1}" in done.text and stored[-1]["hash"] in done.text

    # the CLI's entry command with the same content stores the same body
    typed = cli(
        ["--store", store_url, "discuss", CASE, "--occurred-at", entry["occurred_at"],
         "--forum", entry["forum"], "--attendees", "Northshire Police",
         "--attendees", "Northshire ICB", "--summary", entry["summary"]]
    )  # fmt: skip
    assert typed.exit_code == 0, typed.stderr
    form_entry, cli_entry = led.case_records(CASE)[-2:]
    assert form_entry["type"] == "DiscussionHeld" == cli_entry["type"]
    assert body(form_entry) == body(cli_entry)
    assert form_entry["actor"] == cli_entry["actor"]
    verified = cli(["--store", store_url, "verify"])
    assert verified.exit_code == 0, verified.stdout + verified.stderr


def test_serve_refuses_a_host_mode_that_could_not_tell_who_is_who() -> None:
    with pytest.raises(UsageError, match="address of the proxy"):
        checked_config(None, host="10.0.0.7", host_mode=True)
    with pytest.raises(UsageError, match="not an IP address"):
        checked_config(None, host="10.0.0.7", host_mode=True, trusted_proxy=["proxy.local"])
    with pytest.raises(UsageError, match="only for host mode"):
        checked_config(None, trusted_proxy=["10.0.0.5"])
    with pytest.raises(UsageError, match="host mode"):
        checked_config(None, host="0.0.0.0")
    config = checked_config(None, host="10.0.0.7", host_mode=True, trusted_proxy=["10.0.0.0/24"])
    assert config.proxy_addresses == ("10.0.0.0/24",) and config.trusted_header == "X-Remote-User"
    told = invoke(["serve", "--host-mode", "--host", "10.0.0.7"])  # as typed: exit 2
    assert told.exit_code == 2 and "--trusted-proxy" in told.stderr


class People:
    """The users of a host-mode test: their names (on PostgreSQL their database roles)
    and the URL the server logs in with."""

    def __init__(self, store_url: str) -> None:
        self.business_unit = person(store_url, "bu").name
        self.inspector = person(store_url, "inspector", "reader").name
        self.police = person(store_url, "police").name
        self.server_url = store_url
        if store_url.startswith("postgresql://"):
            self.server_url = self._login(store_url)

    def _login(self, store_url: str) -> str:
        """A login role with no privileges of its own on the store (NOINHERIT; only
        USAGE and the meta table, to open it), a member of each user's role: the set-up
        of docs/hosting.md."""
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, schema = store_url.partition("?schema=")
        login = f"web@{schema}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(SQL("CREATE ROLE {} LOGIN NOINHERIT").format(Identifier(login)))
            _ROLES.insert(0, login)  # dropped after the users' roles it is a member of
            for user in (self.business_unit, self.inspector, self.police):
                conn.execute(SQL("GRANT {} TO {}").format(Identifier(user), Identifier(login)))
            conn.execute(
                SQL("GRANT USAGE ON SCHEMA {} TO {}").format(Identifier(schema), Identifier(login))
            )
            conn.execute(
                SQL("GRANT SELECT ON {}.caseledger_meta TO {}").format(
                    Identifier(schema), Identifier(login)
                )
            )
        user_part = store_url.split("://", 1)[1].split("@", 1)[0]
        from urllib.parse import quote

        return store_url.replace(f"://{user_part}@", f"://{quote(login, safe='')}@", 1)


@pytest.fixture
def host_store(store_url: str) -> Iterator[tuple[str, People]]:
    led = open_ledger(store_url)
    api.add_user(led, led.identity(), role=["admin", "business-unit"])
    led.record_lines(OPENING, led.recorder_for())
    people = People(store_url)
    api.add_user(led, people.business_unit, role=["business-unit"])
    api.add_user(led, people.inspector, role=["inspector"])
    api.add_user(led, people.police, role=["agency"], agency="Northshire Police")
    led.close()
    yield store_url, people


@pytest.mark.real_clock  # PostgreSQL dates a non-operator's entries by its own clock
def test_host_mode_believes_only_the_proxy_and_acts_as_each_enrolled_user(
    host_store: tuple[str, People],
) -> None:
    store_url, people = host_store
    config = WebConfig(
        opener=lambda: open_ledger(people.server_url),
        host_mode=True,
        trusted_header="X-Remote-User",
        proxy_addresses=("10.0.0.5",),
    )
    app = create_app(config)
    owner = open_ledger(store_url)
    discuss = f"/cases/{CASE}/record/discuss"
    receive = f"/cases/{CASE}/record/receive-info"
    entry = {
        "occurred_at": "2026-02-18",
        "forum": "rapid-review-meeting",
        "attendees": "Northshire Police",
        "summary": "Rapid review meeting.",
    }

    def as_user(name: str) -> dict[str, str]:
        return {"X-Remote-User": name}

    with _client(app, "10.0.0.5", True) as proxy, _client(app, "10.0.0.9", True) as elsewhere:
        # not through the proxy, nobody named, nobody enrolled: refused with a clear page
        bypass = elsewhere.get(discuss, headers=as_user(people.business_unit))
        assert bypass.status_code == 403 and "10.0.0.9" in bypass.text
        assert "not one of its proxies" in bypass.text
        unnamed = proxy.get(discuss)
        assert unnamed.status_code == 400 and "X-Remote-User" in unnamed.text
        stranger = proxy.get(discuss, headers=as_user("mallory"))
        assert stranger.status_code == 403 and "mallory is not enrolled" in stranger.text
        assert proxy.get(discuss, headers={**as_user("mallory"), **JSON}).json()["status"] == 403

        before = len(owner.case_records(CASE))
        # an inspector reads every page (on PostgreSQL with the reader's grants only)...
        for path in ("/", f"/cases/{CASE}", f"/cases/{CASE}/why", "/clocks"):
            read = proxy.get(path, headers=as_user(people.inspector))
            assert read.status_code == 200, (path, read.text[-500:])
            assert f"Acting as <strong>{people.inspector}</strong> (host mode)" in read.text
        # ...but gets no form, and a forced POST records nothing
        index = proxy.get(f"/cases/{CASE}/record", headers=as_user(people.inspector))
        assert index.status_code == 200 and "not for your roles" in index.text
        token = token_of(proxy.get(discuss, headers=as_user(people.business_unit)).text)
        denied = proxy.get(discuss, headers=as_user(people.inspector))
        assert denied.status_code == 403 and "may not record DiscussionHeld" in denied.text
        forced = proxy.post(
            discuss, data={**entry, "csrf_token": token}, headers=as_user(people.inspector)
        )
        assert forced.status_code == 403 and "may not record" in forced.text
        assert len(owner.case_records(CASE)) == before

        # an agency: its own agency given, and only its own accepted
        form = proxy.get(receive, headers=as_user(people.police))
        assert form.status_code == 200
        assert re.search(r'name="agency" value="Northshire Police" readonly', form.text)
        reply = {
            "csrf_token": token,
            "occurred_at": "2026-02-19",
            "involved": "yes",
            "summary": "Two call-outs to the address in 2025.",
        }
        other = proxy.post(
            receive, data={**reply, "agency": "Northshire ICB"}, headers=as_user(people.police)
        )
        assert other.status_code == 422
        assert "only for their own agency" in errors_on(other.text)["agency"]
        assert len(owner.case_records(CASE)) == before
        own = proxy.post(
            receive, data={**reply, "agency": "Northshire Police"}, headers=as_user(people.police)
        )
        assert own.status_code == 201, own.text
        # the business unit, in the next request: each entry is its own user's
        done = proxy.post(
            discuss, data={**entry, "csrf_token": token}, headers=as_user(people.business_unit)
        )
        assert done.status_code == 201, done.text

    stored = owner.case_records(CASE)
    assert [(e["type"], e["actor"], e["role"]) for e in stored[-2:]] == [
        ("InformationReceived", people.police, "agency"),
        ("DiscussionHeld", people.business_unit, "business-unit"),
    ]
    if store_url.startswith("postgresql://"):
        _the_database_saw_each_role(store_url, people, app)


def _the_database_saw_each_role(store_url: str, people: People, app: Any) -> None:
    """On PostgreSQL: the database recorded each entry as its user's role, refuses what
    that role may not do even when asked directly, and no role outlives its request."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    base, _, schema = store_url.partition("?schema=")
    with psycopg.connect(base) as conn:
        actors = conn.execute(
            SQL("SELECT actor FROM {}.caseledger_provenance ORDER BY notification_id DESC LIMIT 2")
            .format(Identifier(schema))
        ).fetchall()  # fmt: skip
    assert [a for (a,) in actors] == [people.business_unit, people.police]

    server = open_ledger(people.server_url)
    datastore = server.authority_recorder.datastore
    s = Identifier(schema)
    # without a user the login itself may read nothing but the meta table
    with pytest.raises(Exception, match="permission denied"), datastore.get_connection() as conn:
        conn.execute(SQL("SELECT count(*) FROM {}.caseledger_events").format(s))
    # as the inspector the database refuses an append, whatever the client
    with (
        api.acting_as(server, people.inspector),
        pytest.raises(Exception, match="permission denied"),
    ):
        with datastore.get_connection() as conn:
            conn.execute(
                SQL(
                    "SELECT {}.caseledger_register_append('[]'::jsonb, '{{}}'::bytea[], NULL)"
                ).format(s)
            )
    # personal-data keys: refused to the agency's role, given to the business unit's
    with api.acting_as(server, people.police), pytest.raises(Exception, match="personal-data keys"):
        with datastore.get_connection() as conn:
            conn.execute(SQL("SELECT * FROM {}.caseledger_personal_keys_of(%s)").format(s), (CASE,))
    with api.acting_as(server, people.business_unit), datastore.get_connection() as conn:
        keys = conn.execute(
            SQL("SELECT * FROM {}.caseledger_personal_keys_of(%s)").format(s), (CASE,)
        ).fetchall()
        assert (
            keys
            and conn.execute("SELECT current_user AS u").fetchone()["u"] == people.business_unit
        )
    # every pooled connection, the web app's too, is back to the login with no role set
    web = app.state.ledger
    for store in (server, web()):
        pool = store.authority_recorder.datastore
        for _ in range(6):
            with pool.get_connection() as conn:
                row = conn.execute(
                    "SELECT current_user AS u, current_setting('role') AS r"
                ).fetchone()
                assert (row["u"], row["r"]) == (f"web@{schema}", "none")
