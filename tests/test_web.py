"""The web view without a browser (issue 17): each page's JSON is the facade's own answer,
every response carries the security headers, mistakes are pages naming the field, the
bundle upload gives the verifier's verdict, and ``caseledger serve`` refuses to listen
beyond this machine outside host mode.  The browser tests are ``test_web_browser.py``."""

from __future__ import annotations

import io
import re
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.web.app import CONTENT_SECURITY_POLICY, create_app
from cli.web.config import WebConfig
from ledger import api as ledger_api
from projections import api
from tests.conftest import CliResult, FixedClock, invoke, open_ledger

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note on its test client's HTTP library
    from starlette.testclient import TestClient

CASE = "RR-2026-004"
JSON = {"accept": "application/json"}
#: A day of the demo's record with more than one deadline open (for paging them).
BUSY = "2026-02-20"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's store (``caseledger demo``'s cases), recorded once for the module."""
    return Path(ledger_api.record_demo(tmp_path_factory.mktemp("demo")).path)


@pytest.fixture(scope="module")
def led(demo: Path) -> Iterator[ledger_api.CaseLedger]:
    ledger = ledger_api.open_store(str(demo))
    yield ledger
    ledger.close()


@pytest.fixture(scope="module")
def client(demo: Path) -> Iterator[TestClient]:
    with TestClient(create_app(WebConfig(store=str(demo), max_upload_bytes=200_000))) as c:
        yield c


@pytest.fixture(scope="module")
def times(led: ledger_api.CaseLedger) -> dict[str, str]:
    """Fixed times from the demo's own record (never today): the day the decision was
    recorded, and the day the last entry of the case happened."""
    decision = api.why(led, CASE).answer.decision
    assert decision is not None
    last = api.timeline(led, CASE).entries[-1]
    return {"as_of": decision.recorded_at[:10], "on": str(last.occurred_at)[:10]}


def get_json(client: TestClient, path: str, **params: str) -> Any:
    response = client.get(path, params=params, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_each_page_answers_json_equal_to_the_facade(
    client: TestClient, led: ledger_api.CaseLedger, times: dict[str, str]
) -> None:
    as_of, on = times["as_of"], times["on"]
    desk = get_json(client, "/", on=on)
    assert {"cases": desk["cases"], "due": desk["due"]} == {
        "cases": api.status(led, on=on, sort="urgency").to_json(),
        "due": api.due(led, on=on).to_json(),
    }  # the demo's cases and deadlines fill less than a page
    assert desk["paging"]["cases"]["total"] == len(desk["cases"])
    assert desk["paging"]["due"]["next_link"] is None
    page = get_json(client, f"/cases/{CASE}", as_of=as_of, on=on)
    assert page == {
        "status": api.status(led, CASE, as_of=as_of, on=on).to_json(),
        "due": api.due(led, case=CASE, as_of=as_of, on=on).to_json(),
        "why": api.why(led, CASE, as_of=as_of, on=on).to_json(),
        "clocks": api.clocks(led, CASE, as_of=as_of, on=on).to_json(),
        "quality": api.quality(led, CASE, as_of=as_of, on=on).to_json(),
        "timeline": api.timeline(led, CASE, as_of=as_of, on=on).to_json(),
    }
    assert page["why"]["decision"]["outcome"] == "review"
    why = get_json(client, f"/cases/{CASE}/why", as_of=as_of, on=on)
    assert why == api.why(led, CASE, as_of=as_of, on=on).to_json()
    clocks = get_json(client, "/clocks", regime="wt2023", status="met", on=on)["clocks"]
    expected = api.clock_table(led, regime="wt2023", status=["met"], on=on).to_json()
    assert clocks == expected
    assert clocks and all(c["regime"] == "wt2023" and c["status"] == "met" for c in clocks)
    everything = get_json(client, "/clocks", on=on)["clocks"]
    assert len(everything) > len(clocks)


def pages_of(client: TestClient, path: str, key: str, per_page: int, **params: str) -> list[Any]:
    """Every row of the list ``key`` of a paged page's JSON, following its ``next_link``
    from the first page to the last (each page checked to hold what its paging says)."""
    rows: list[Any] = []
    link: str | None = path
    query: dict[str, str] | None = {**params, "per_page": str(per_page)}
    seen = 0
    while link is not None:
        answer = client.get(link, params=query, headers=JSON)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        paging = data["paging"][key] if key in ("cases", "due") else data["paging"]
        got = data[key]
        seen += 1
        assert paging["page"] == seen and paging["per_page"] == per_page
        assert len(got) == (paging["last"] - paging["first"] + 1 if paging["first"] else 0)
        assert paging["first"] == (len(rows) + 1 if got else 0)
        rows.extend(got)
        assert paging["total"] >= len(rows)
        link, query = paging["next_link"], None  # the link keeps every other parameter
    assert len(rows) == paging["total"] and seen == paging["pages"]
    return rows


@pytest.mark.parametrize("per_page", [1, 2, 3, 7])
def test_the_paged_rows_are_the_whole_answer_in_order(
    client: TestClient, led: ledger_api.CaseLedger, times: dict[str, str], per_page: int
) -> None:
    """Page after page, the desk's cases and deadlines and the clocks page's clocks are
    the facade's whole answer, in its order; the chart's counts are of every clock."""
    on = times["on"]
    cases = pages_of(client, "/", "cases", per_page, on=on)
    assert cases == api.status(led, on=on, sort="urgency").to_json()
    due = pages_of(client, "/", "due", per_page, on=BUSY)
    assert due == api.due(led, on=BUSY).to_json() and len(due) > 1
    clocks = pages_of(client, "/clocks", "clocks", per_page, on=on, status="met")
    whole = api.clock_table(led, on=on, status=["met"])
    assert clocks == whole.to_json() and len(clocks) > per_page
    first = get_json(client, "/clocks", on=on, status="met", per_page=str(per_page))
    assert first["counts"] == dict(whole.counts())
    assert sum(sum(by.values()) for by in first["counts"].values()) == len(clocks)


def test_a_page_past_the_last_and_a_bad_page_number(
    client: TestClient, led: ledger_api.CaseLedger
) -> None:
    total = len(api.clock_table(led).rows)
    past = get_json(client, "/clocks", page="99", per_page="2")
    assert past["clocks"] == [] and past["paging"]["total"] == total
    assert past["paging"]["next_link"] is None
    assert past["paging"]["previous_link"] == f"/clocks?per_page=2&page={-(-total // 2)}"
    html = client.get("/clocks", params={"page": "99", "per_page": "2"})
    assert html.status_code == 200 and "past the last page of clocks" in html.text
    for name, value in [
        ("page", "0"),
        ("page", "two"),
        ("page", "-1"),
        ("page", "1" * 50),
        ("page", "²"),
        ("due_page", "1.5"),
        ("per_page", "0"),
        ("per_page", "5000"),
    ]:
        path = "/" if name != "page" or value != "two" else "/clocks"
        bad = client.get(path, params={name: value}, headers=JSON)
        assert bad.status_code == 400, (name, value, bad.text)
        assert bad.json()["problems"][0]["field"] == name
        page = client.get(path, params={name: value})
        assert page.status_code == 400 and f"<strong>{name}</strong>" in page.text
        assert "Traceback" not in page.text


def test_the_desk_links_each_page_keeping_the_others(client: TestClient) -> None:
    """Plain links (no script): the next page of cases keeps the day and the deadlines'
    page; showing "1–1 of N" with N the whole answer's count."""
    on = BUSY
    html = client.get("/", params={"on": on, "per_page": "1", "due_page": "2"}).text
    total = len(get_json(client, "/", on=on)["cases"])
    assert f"Showing 1–1 of {total} open cases" in html
    assert f'href="/?on={on}&amp;per_page=1&amp;due_page=2&amp;page=2"' in html
    assert "Previous page of deadlines" in html
    due = get_json(client, "/", on=on, per_page="1", due_page="2")["paging"]["due"]
    assert (due["first"], due["last"], due["previous_page"]) == (2, 2, 1)
    assert f"Showing 2–2 of {due['total']} deadlines" in html


def test_html_pages_show_the_answer_and_carry_the_security_headers(
    client: TestClient, led: ledger_api.CaseLedger, times: dict[str, str]
) -> None:
    decision = api.why(led, CASE).answer.decision
    assert decision is not None
    for path in (
        "/",
        f"/cases/{CASE}",
        f"/cases/{CASE}/why",
        "/clocks",
        "/verify",
        "/static/web.css",
        "/no/such/page",
    ):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert "script-src" not in CONTENT_SECURITY_POLICY
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        if response.headers["content-type"].startswith("text/html"):
            assert "<script" not in response.text and " style=" not in response.text, path
            assert "<style" not in response.text
    case_page = client.get(f"/cases/{CASE}").text
    assert decision.rationale.replace("'", "&#39;") in case_page
    assert 'id="as_of"' in case_page and 'id="on"' in case_page
    assert "As the record stood on" in case_page and "As the world was on" in case_page
    assert case_page.count("<svg") == 1 and 'data-marks="' in case_page
    before = client.get(f"/cases/{CASE}", params={"as_of": "2026-02-20"}).text
    assert 'id="no-decision"' in before and decision.rationale not in before
    desk = client.get("/").text
    order = [row["case"] for row in api.status(led, sort="urgency").rows]
    positions = [desk.index(f'href="/cases/{ref}"') for ref in order]
    assert positions == sorted(positions)


def test_mistakes_are_pages_naming_the_field(client: TestClient) -> None:
    unknown = client.get("/cases/RR-1999-404")
    assert unknown.status_code == 404
    assert "RR-1999-404" in unknown.text and "Not found" in unknown.text
    as_json = client.get("/cases/RR-1999-404", headers=JSON)
    assert as_json.status_code == 404
    assert as_json.json()["problems"][0]["field"] == "case"
    bad_on = client.get(f"/cases/{CASE}", params={"on": "2026-13-01"})
    assert bad_on.status_code == 400
    assert "<strong>on</strong>" in bad_on.text and "2026-13-01" in bad_on.text
    bad = client.get("/clocks", params={"year": "last", "regime": "wt1999"}, headers=JSON)
    assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "year"
    regime = client.get("/clocks", params={"regime": "wt1999"}, headers=JSON)
    assert regime.status_code == 400 and regime.json()["problems"][0]["field"] == "regime"
    assert client.post("/").status_code == 403  # no CSRF token: refused before any page
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/verify").text)
    assert token and client.post("/", data={"csrf_token": token[1]}).status_code == 405
    assert client.get("/nowhere", headers=JSON).json()["status"] == 404


def _bundle(led: ledger_api.CaseLedger, folder: Path) -> bytes:
    out = folder / "bundle.zip"
    api.export(led, [CASE], out_path=out, as_zip=True)
    return out.read_bytes()


def _tampered(bundle: bytes) -> bytes:
    """The bundle with one entry's text changed in ``events.jsonl``."""
    source = zipfile.ZipFile(io.BytesIO(bundle))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("events.jsonl"):
                data = data.replace(b"Health visitor", b"Health Visitor", 1)
                assert data != source.read(item.filename)
            target.writestr(item, data)
    return out.getvalue()


def test_verify_gives_the_verifiers_verdict_on_an_upload(
    client: TestClient, led: ledger_api.CaseLedger, tmp_path: Path
) -> None:
    bundle = _bundle(led, tmp_path)
    # every POST carries the form's CSRF token (cli/web/forms.py), as the page's form does
    token = {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', client.get("/verify").text)[1]
    }
    temporary = Path(tempfile.gettempdir())
    before = set(temporary.glob("caseledger-verify-*"))
    expected = {**api.verify(None, tmp_path / "bundle.zip").to_json(), "bundle": "mine.zip"}
    good = client.post("/verify", data=token, files={"bundle": ("mine.zip", bundle)}, headers=JSON)
    assert good.status_code == 200 and good.json() == expected and expected["ok"] is True
    page = client.post("/verify", data=token, files={"bundle": ("../../etc/mine.zip", bundle)})
    assert "verifies" in page.text and "does not verify" not in page.text
    bad = client.post(
        "/verify", data=token, files={"bundle": ("bad.zip", _tampered(bundle))}, headers=JSON
    )
    assert bad.status_code == 200 and bad.json()["ok"] is False
    first = bad.json()["first_bad"]
    assert first
    shown = client.post(
        "/verify", data=token, files={"bundle": ("bad.zip", _tampered(bundle))}
    ).text
    assert "does not verify" in shown and first in shown
    big = client.post(
        "/verify", data=token, files={"bundle": ("big.zip", b"0" * 300_000)}, headers=JSON
    )
    assert big.status_code == 413 and big.json()["problems"][0]["field"] == "bundle"
    none = client.post("/verify", data={**token, "other": "x"}, headers=JSON)
    assert none.status_code == 400 and none.json()["problems"][0]["field"] == "bundle"
    assert set(temporary.glob("caseledger-verify-*")) <= before  # each upload's folder is gone


def test_the_pages_read_both_stores(scenario_store: str, clock: FixedClock) -> None:
    """The same page on SQLite and PostgreSQL answers what the facade answers there."""
    opened = open_ledger(scenario_store, clock)
    app = create_app(WebConfig(opener=lambda: open_ledger(scenario_store, clock)))
    times = {"as_of": "2026-09-02", "on": "2026-03-10"}  # recorded by the fixed clock
    with TestClient(app) as client:
        page = get_json(client, f"/cases/{CASE}", **times)
        html = client.get(f"/cases/{CASE}", params=times).text
        desk = get_json(client, "/", on=times["on"])
    assert page["why"] == api.why(opened, CASE, **times).to_json()
    assert page["timeline"] == api.timeline(opened, CASE, **times).to_json()
    assert page["why"]["decision"]["outcome"] == "review"
    assert page["why"]["decision"]["rationale"].split(";")[0] in html
    assert [row["case"] for row in desk["cases"]] == [CASE]


def test_what_the_record_says_is_shown_as_text_never_as_markup(tmp_path: Path) -> None:
    """A summary holding markup is escaped on every page: the record is data, not HTML."""
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    led = ledger_api.open_store(str(tmp_path / "hostile.db"), create=True)
    referral = {
        "type": "CaseReferred",
        "case": "RR-2026-666",
        "occurred_at": "2026-02-09",
        "regime": "wt2023",
        "subject": "Child Z (RR-2026-666)",
        "incident_date": "2026-02-06",
        "aware_date": "2026-02-09",
        "harm": "serious-harm",
        "abuse_or_neglect": "suspected",
        "looked_after": False,
        "home_area": "Northshire",
        "referrer": "Northshire Police",
        "route": "statutory",
        "summary": hostile,
    }
    ledger_api.record_lines(led, [orjson.dumps(referral).decode()])
    with TestClient(create_app(WebConfig(opener=lambda: led))) as client:
        for path in ("/", "/cases/RR-2026-666", "/cases/RR-2026-666/why", "/clocks"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert "<script" not in page.text and "<img" not in page.text, path
        assert "&lt;script&gt;" in client.get("/cases/RR-2026-666").text


def test_serve_refuses_a_host_beyond_this_machine(demo: Path) -> None:
    result: CliResult = invoke(["--store", str(demo), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "0.0.0.0" in result.stderr and "host mode" in result.stderr
    missing = invoke(["--store", str(demo.with_name("absent.db")), "serve", "--port", "9"])
    assert missing.exit_code == 4 and "no caseledger store" in missing.stderr
    assert not demo.with_name("absent.db").exists()
