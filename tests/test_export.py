"""Audit export bundles (issue 5): what a bundle holds, that it verifies with both checkers
(``caseledger verify`` and the standalone ``verify.py``), filtered subsets, personal data,
zip bundles, the Merkle root, canonical JSON without orjson, and flat memory.

Both checkers are run on every bundle and must agree (same verdict, same first failure):
``verify.py`` runs as a subprocess of the system ``python3 -I`` (isolated: no site
packages, no caseledger), as an inspector would run it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrity.canonical import GENESIS_HASH, canonical_json, event_hash
from ledger.integrity.merkle import MerkleTree, leaf_hash, merkle_root, merkle_root_recursive
from projections.export.bundle import export_bundle, verify_bundle
from tests.conftest import CliResult, FixedClock, open_ledger, scenario_lines

#: The fixed 2026 data is recorded through the real clock, and the report answers "now":
#: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

CASE = "RR-2026-004"
NAME = "Kai Example"
DOB = "2025-08-14"
PYTHON = shutil.which("python3") or sys.executable

# --- helpers shared with the tamper battery -----------------------------------------------


def run_standalone(bundle: Path, *extra: str, checker: Path | None = None) -> dict[str, Any]:
    """Run ``verify.py`` with the system Python, isolated: the shipped copy by default
    (an inspector's trusted copy; a tampered bundle's own copy proves nothing)."""
    checker = checker or standalone_checker()
    proc = subprocess.run(
        [PYTHON, "-I", str(checker), str(bundle), "--json", *extra],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr.decode()
    result: dict[str, Any] = json.loads(proc.stdout)
    assert result["ok"] == (proc.returncode == 0)
    return result


def standalone_checker() -> Path:
    """The shipped ``verify.py`` (the same bytes as every bundle's copy)."""
    return Path(__file__).resolve().parents[1] / "projections" / "data" / "verify.py"


def both_verdicts(bundle: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tool's verdict and the standalone checker's, which must agree."""
    ours = verify_bundle(bundle).as_dict()
    theirs = run_standalone(bundle)
    assert ours.keys() == theirs.keys()
    for key in ours.keys() - {"bundle"}:
        assert ours[key] == theirs[key], (key, ours, theirs)
    return ours, theirs


def assert_verifies(bundle: Path) -> dict[str, Any]:
    ours, _ = both_verdicts(bundle)
    assert ours["ok"], ours
    return ours


def record(led: Any, lines: list[bytes]) -> None:
    led.record_lines(lines, led.recorder_for())


def second_case(ref: str = "RR-2026-005") -> list[bytes]:
    """The scenario again under another case reference (no personal data)."""
    out = []
    for line in scenario_lines():
        data = orjson.loads(line)
        data["case"] = ref
        data.pop("personal", None)
        if "relied_on" in data:
            data["relied_on"] = [r.replace(CASE, ref) for r in data["relied_on"]]
        out.append(orjson.dumps(data))
    return out


def bundle_files(bundle: Path) -> dict[str, bytes]:
    if bundle.is_dir():
        return {p.name: p.read_bytes() for p in bundle.iterdir()}
    with zipfile.ZipFile(bundle) as zf:
        return {Path(n).name: zf.read(n) for n in zf.namelist() if not n.endswith("/")}


def events_of(bundle: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (bundle / "events.jsonl").read_bytes().splitlines()]


def manifest_of(bundle: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bundle / "manifest.json").read_bytes())
    return data


# --- the scenario bundle ------------------------------------------------------------------


def test_scenario_bundle_verifies_with_both_checkers(scenario_store: str, tmp_path: Path) -> None:
    led = open_ledger(scenario_store)
    stored = led.case_records(CASE)
    summary = export_bundle(led, tmp_path / "bundle")
    led.close()
    bundle = tmp_path / "bundle"
    result = assert_verifies(bundle)
    assert result["events"] == 22
    assert summary.events == 22
    assert sorted(p.name for p in bundle.iterdir()) == [
        "VERIFY.md",
        "events.jsonl",
        "manifest.json",
        "manifest.sha256",
        "report.html",
        "rules.json",
        "timeline.csv",
        "verify.py",
    ]
    # events.jsonl: the stored records, canonical, in position order, hashes intact.
    lines = (bundle / "events.jsonl").read_bytes().splitlines()
    assert lines == [canonical_json(r) for r in stored]
    events = [orjson.loads(x) for x in lines]
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    assert all(event_hash(e) == e["hash"] for e in events)
    assert events[0]["prev_hash"] == GENESIS_HASH
    # manifest: files, heads, root, personal data, generator, filters.
    manifest = manifest_of(bundle)
    root = merkle_root(e["hash"] for e in events)
    assert manifest["merkle"]["root"] == root == summary.events_root == result["events_root"]
    assert summary.root == result["root"]  # the bundle root, over every file
    assert manifest["events"]["count"] == 22
    assert manifest["personal_data"]["included"] is False
    assert manifest["personal_data"]["commitments"] == 2
    assert manifest["generator"]["name"] == "caseledger"
    assert manifest["generated_at"].endswith("Z")
    assert manifest["filters"]["cases"] is None and manifest["subset"] is False
    head = manifest["cases"][CASE]
    assert head["head"] == {"seq": 22, "hash": stored[-1]["hash"]}
    assert head["is_current_head"] is True and head["gaps"] == [] and head["complete"]
    for entry in manifest["files"]:
        data = (bundle / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"]
    sha_line = (bundle / "manifest.sha256").read_text()
    digest = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    assert sha_line == f"{digest}  manifest.json\n"
    assert (bundle / "verify.py").read_bytes() == standalone_checker().read_bytes()
    own_copy = run_standalone(bundle, checker=bundle / "verify.py")  # as shipped in the bundle
    assert own_copy["ok"] and own_copy["root"] == summary.root


def test_export_cli_json_and_verify_cli(
    scenario_store: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    out = tmp_path / "b"
    done = cli(["--store", scenario_store, "export", CASE, "--out", str(out), "--json"])
    assert done.exit_code == 0, done.stderr
    summary = done.json()
    assert summary["events"] == 22
    assert len(summary["root"]) == 64
    assert {f["path"] for f in summary["files"]} >= {"events.jsonl", "report.html"}
    checked = cli(["--store", scenario_store, "verify", str(out), "--json"])
    assert checked.exit_code == 0, checked.stderr
    payload = checked.json()
    assert payload["ok"] is True and payload["events"] == 22 and payload["first_bad"] is None
    assert payload["root"] == summary["root"]
    # A bundle that does not verify: exit 1, the first failure named.
    (out / "report.html").write_bytes((out / "report.html").read_bytes() + b" ")
    failed = cli(["--store", scenario_store, "verify", str(out), "--json"])
    assert failed.exit_code == 1
    assert failed.json()["first_bad"] == "report.html"
    human = cli(["--store", scenario_store, "verify", str(out)])
    assert human.exit_code == 1 and "report.html" in human.stderr


def test_export_refuses_bad_requests(
    scenario_store: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    tmp_path = tmp_path / "out"
    busy = tmp_path / "busy"
    busy.mkdir(parents=True)
    (busy / "x").write_text("x")
    for args in (
        ["export", "--out", str(busy)],
        ["export", "NO-SUCH-CASE", "--out", str(tmp_path / "n")],
        ["export", "--out", str(tmp_path / "t"), "--from", "not-a-date"],
        ["export", "--out", str(tmp_path / "t"), "--from", "2026-03-01", "--to", "2026-02-01"],
    ):
        done = cli(["--store", scenario_store, *args])
        assert done.exit_code == 2, (args, done.stdout, done.stderr)
        assert "error" in done.stderr
    assert not (tmp_path / "n").exists() and not (tmp_path / "t").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["busy"]  # nothing half-written


def test_zip_bundle_verifies(scenario_store: str, tmp_path: Path) -> None:
    led = open_ledger(scenario_store)
    summary = export_bundle(led, tmp_path / "bundle", as_zip=True)
    led.close()
    assert summary.out == tmp_path / "bundle.zip" and summary.zip
    with zipfile.ZipFile(summary.out) as zf:
        assert all(n.startswith("bundle/") for n in zf.namelist())
        assert "bundle/manifest.json" in zf.namelist()
    ours, _ = both_verdicts(summary.out)
    assert ours["ok"] and ours["events"] == 22 and ours["root"] == summary.root
    # The same bundle unpacked verifies too, with the same root.
    with zipfile.ZipFile(summary.out) as zf:
        zf.extractall(tmp_path / "unpacked")
    assert assert_verifies(tmp_path / "unpacked" / "bundle")["root"] == summary.root


# --- personal data ------------------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [False, True])
def test_no_personal_value_in_any_file_by_default(
    scenario_store: str, tmp_path: Path, as_zip: bool
) -> None:
    led = open_ledger(scenario_store)
    summary = export_bundle(led, tmp_path / "bundle", as_zip=as_zip)
    led.close()
    files = bundle_files(summary.out)
    assert "personal.jsonl" not in files
    needles = [NAME, DOB, "Kai", "Example", "2025-08-14", "14/08/2025", "20250814"]
    for name, data in files.items():
        text = data.decode("utf-8")
        for needle in needles:
            assert needle not in text, (needle, name)
        # nor JSON- or HTML-escaped
        assert orjson.dumps(NAME).decode()[1:-1] not in text
    manifest = json.loads(files["manifest.json"])
    assert manifest["personal_data"]["included"] is False
    assert "left out" in manifest["personal_data"]["statement"]
    assert "does not include" in files["VERIFY.md"].decode()
    if as_zip:
        raw = summary.out.read_bytes()
        assert NAME.encode() not in raw and DOB.encode() not in raw


def test_personal_data_included_and_verified(scenario_store: str, tmp_path: Path) -> None:
    led = open_ledger(scenario_store)
    salts = {row.field: row.salt for row in led.personal_data(CASE)}
    export_bundle(led, tmp_path / "bundle", include_personal_data=True)
    led.close()
    bundle = tmp_path / "bundle"
    result = assert_verifies(bundle)
    assert result["personal_data"] is True
    rows = [orjson.loads(x) for x in (bundle / "personal.jsonl").read_bytes().splitlines()]
    assert {(r["field"], r["value"]) for r in rows} == {("name", NAME), ("date_of_birth", DOB)}
    assert all(r["case"] == CASE and r["seq"] == 1 for r in rows)
    assert {r["field"]: bytes.fromhex(r["salt"]) for r in rows} == salts
    manifest = manifest_of(bundle)
    assert manifest["personal_data"]["included"] is True
    assert manifest["personal_data"]["values"] == 2
    assert "includes" in (bundle / "VERIFY.md").read_text()
    report = (bundle / "report.html").read_text()
    assert NAME in report  # shown to the reader who asked for it
    assert NAME not in (bundle / "events.jsonl").read_text()  # never in the hashed record


def test_a_wrong_personal_value_fails_both_checkers(scenario_store: str, tmp_path: Path) -> None:
    led = open_ledger(scenario_store)
    export_bundle(led, tmp_path / "bundle", include_personal_data=True)
    led.close()
    bundle = tmp_path / "bundle"
    path = bundle / "personal.jsonl"
    rows = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    for row in rows:
        if row["field"] == "name":
            row["value"] = "Someone Else"
    path.write_bytes(b"".join(canonical_json(r) + b"\n" for r in rows))
    reseal(bundle)  # a careful forger also fixes the manifest: the commitment still fails
    ours, _ = both_verdicts(bundle)
    assert not ours["ok"]
    assert ours["first_bad"] == f"{CASE}#1 personal.name"


def reseal(bundle: Path) -> None:
    """Rewrite the manifest's file hashes and manifest.sha256 after an edit, as a forger
    who controls the whole bundle would; only the content checks can then catch it."""
    manifest = manifest_of(bundle)
    for entry in manifest["files"]:
        data = (bundle / entry["path"]).read_bytes()
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        entry["bytes"] = len(data)
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    (bundle / "manifest.json").write_bytes(data)
    (bundle / "manifest.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  manifest.json\n")


def test_erased_personal_data_still_exports_and_verifies(
    scenario_store: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    erased = cli(["--store", scenario_store, "erase-personal", CASE, "--reason", "Retention"])
    assert erased.exit_code == 0, erased.stderr
    led = open_ledger(scenario_store)
    export_bundle(led, tmp_path / "bundle", include_personal_data=True)
    led.close()
    bundle = tmp_path / "bundle"
    assert_verifies(bundle)  # the commitments stay in the hashed entries; no values
    assert (bundle / "personal.jsonl").read_bytes() == b""
    manifest = manifest_of(bundle)
    assert manifest["personal_data"]["values"] == 0
    assert manifest["personal_data"]["commitments"] == 2


# --- filtered subsets ---------------------------------------------------------------------


def test_case_filter_exports_one_case_in_position_order(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    led = open_ledger(store_url, clock)
    # Interleave two cases so their positions alternate.
    other = second_case()
    mine = scenario_lines()
    for a, b in zip(mine, other, strict=True):
        record(led, [a])
        record(led, [b])
    export_bundle(led, tmp_path / "one", cases=[CASE])
    export_bundle(led, tmp_path / "all")
    led.close()
    one = assert_verifies(tmp_path / "one")
    assert one["events"] == 22 and one["cases"] == 1
    events = events_of(tmp_path / "one")
    assert {e["case"] for e in events} == {CASE}
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and positions[1] - positions[0] == 2
    manifest = manifest_of(tmp_path / "one")
    assert manifest["filters"]["cases"] == [CASE] and manifest["subset"] is True
    assert manifest["cases"][CASE]["gaps"] == []  # the whole case: every link checks
    every = assert_verifies(tmp_path / "all")
    assert every["events"] == 44 and every["cases"] == 2


def test_date_range_subset_lists_gaps_and_still_verifies(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    led = open_ledger(store_url, clock)
    record(led, scenario_lines())
    summary = export_bundle(
        led, tmp_path / "window", cases=[CASE], occurred_from="2026-02-16", occurred_to="2026-03-04"
    )
    led.close()
    bundle = tmp_path / "window"
    result = assert_verifies(bundle)
    seqs = [e["seq"] for e in events_of(bundle)]
    assert seqs == list(range(7, 19))  # 2026-02-16 .. 2026-03-04
    assert result["events"] == summary.events == 12
    case = manifest_of(bundle)["cases"][CASE]
    assert case["gaps"] == [[1, 6]]
    assert case["first_seq"] == 7 and case["head"]["seq"] == 18
    assert case["store_head"]["seq"] == 22 and case["is_current_head"] is False
    assert case["complete"] is False
    manifest = manifest_of(bundle)
    assert manifest["filters"]["occurred_from"]["given"] == "2026-02-16"
    assert "gaps" in manifest["chain"] and "listed gap" in manifest["chain"]
    assert "subset" in (bundle / "VERIFY.md").read_text()


def test_gaps_inside_a_case_are_listed(store_url: str, clock: FixedClock, tmp_path: Path) -> None:
    """A correction dated later than what it corrects leaves a hole in the middle."""
    led = open_ledger(store_url, clock)
    record(led, scenario_lines())
    correction = {
        "type": "EntryCorrected",
        "case": CASE,
        "occurred_at": "2026-02-17",
        "corrects": f"{CASE}#9",
        "changes": {"summary": "Two domestic incident call-outs in 2025."},
        "reason": "Police corrected their count.",
    }
    record(led, [orjson.dumps(correction)])
    export_bundle(led, tmp_path / "b", cases=[CASE], occurred_to="2026-02-20")
    led.close()
    bundle = tmp_path / "b"
    assert_verifies(bundle)
    seqs = [e["seq"] for e in events_of(bundle)]
    assert seqs == [*range(1, 12), 23]
    assert manifest_of(bundle)["cases"][CASE]["gaps"] == [[12, 22]]


def test_as_of_exports_the_record_as_it_stood(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    led = open_ledger(store_url, clock)
    lines = scenario_lines()
    record(led, lines[:18])  # up to the recommendation
    decided_before = clock.now
    clock.advance(days=1)
    record(led, lines[18:])  # the decision and what followed
    as_of = decided_before.isoformat()
    export_bundle(led, tmp_path / "then", as_of=as_of)
    export_bundle(led, tmp_path / "now")
    led.close()
    then = assert_verifies(tmp_path / "then")
    assert then["events"] == 18
    case = manifest_of(tmp_path / "then")["cases"][CASE]
    assert case["head"]["seq"] == 18 and case["gaps"] == [] and case["complete"]
    assert case["is_current_head"] is False and case["store_head"]["seq"] == 22
    report = (tmp_path / "then" / "report.html").read_text()
    assert "No decision had been recorded" in report
    assert assert_verifies(tmp_path / "now")["events"] == 22
    assert "No decision had been recorded" not in (tmp_path / "now" / "report.html").read_text()


def test_empty_export_verifies(store_url: str, clock: FixedClock, tmp_path: Path) -> None:
    led = open_ledger(store_url, clock)
    record(led, scenario_lines())
    summary = export_bundle(led, tmp_path / "empty", occurred_to="2020-01-01")
    led.close()
    result = assert_verifies(tmp_path / "empty")
    assert result["events"] == 0 and summary.events_root == hashlib.sha256(b"").hexdigest()
    # An empty bundle verifies, and says so: it is not a plain "ok".
    assert result["empty"] is True and "empty" in result["not_checked"]
    assert "holds no entries" in result["verdict"]
    # A named case of which no entry passes the filters is still listed (with none).
    led = open_ledger(store_url, clock)
    export_bundle(led, tmp_path / "none", cases=[CASE], occurred_to="2020-01-01")
    led.close()
    named = assert_verifies(tmp_path / "none")
    assert named["events"] == 0 and named["cases"] == 1 and named["empty"] is True


# --- the report and the timeline ----------------------------------------------------------


class _Marks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.marks: list[str] = []
        self.svgs = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        if tag == "circle" and "mark" in (found.get("class") or "").split():
            self.marks.append(found.get("data-ref") or "")
        for name in ("src", "href"):
            value = found.get(name) or ""
            if value and not value.startswith("#"):
                self.external.append(value)
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.external.append(tag)


def test_report_shows_the_decision_reasons_and_one_mark_per_entry(
    scenario_store: str, tmp_path: Path
) -> None:
    led = open_ledger(scenario_store)
    export_bundle(led, tmp_path / "b")
    led.close()
    html = (tmp_path / "b" / "report.html").read_text()
    parser = _Marks()
    parser.feed(html)
    assert parser.svgs == 1
    assert len(parser.marks) == 22
    assert set(parser.marks) == {f"{CASE}#{n}" for n in range(1, 23)}
    assert parser.external == []  # self-contained: nothing to fetch
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    for text in (
        "The decision in force",
        "Reg 11 (a), (b) and (c) are met",  # the reasons
        "LCSPR, systems methodology",  # the nature of the review
        "Statutory criteria: findings",
        "Injuries consistent with non-accidental cause.",
        "Factors weighed",
        "Builds on 2024 reviews.",
        "What was known when it was decided",
        "What was learned since",
        "Statutory clocks",
        "Quality marker 2",
        "Flags",
        "@media print",
    ):
        assert text in html, text
    # The criteria appear in the regime's order.
    assert html.index("Abuse or neglect known") < html.index("(d) The national panel")


def test_report_escapes_what_people_typed(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    led = open_ledger(store_url, clock)
    lines = scenario_lines()
    data = orjson.loads(lines[6])
    data["summary"] = '<script>alert("x")</script> & <b>bold</b>'
    lines[6] = orjson.dumps(data)
    record(led, lines)
    export_bundle(led, tmp_path / "b")
    led.close()
    html = (tmp_path / "b" / "report.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;" in html
    assert_verifies(tmp_path / "b")


def test_flags_show_for_a_mandatory_review_not_held(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    ref = "SCR-2016-001"
    lines = [
        {
            "type": "CaseReferred",
            "case": ref,
            "occurred_at": "2016-03-01",
            "regime": "wt2015",
            "subject": "Child L",
            "incident_date": "2016-02-27",
            "aware_date": "2016-03-01",
            "harm": "death",
            "abuse_or_neglect": "known",
            "home_area": "Eastshire",
            "referrer": "Eastshire Police",
            "route": "statutory",
            "summary": "Child died; neglect known.",
        },
        {
            "type": "IncidentNotified",
            "case": ref,
            "occurred_at": "2016-03-03",
            "recipients": ["ofsted"],
        },
        {
            "type": "DecisionMade",
            "case": ref,
            "occurred_at": "2016-03-20",
            "outcome": "no-review",
            "decided_by": ["LSCB chair"],
            "criteria": {
                "abuse_or_neglect": {"finding": "met", "reason": "Neglect known."},
                "child_died": {"finding": "met", "reason": "The child died."},
                "seriously_harmed": {"finding": "not-met", "reason": "n/a"},
                "agency_concern": {"finding": "unclear", "reason": "Not known yet."},
            },
            "rationale": "Learning already captured elsewhere.",
        },
    ]
    led = open_ledger(store_url, clock)
    record(led, [orjson.dumps(x) for x in lines])
    export_bundle(led, tmp_path / "b")
    led.close()
    assert_verifies(tmp_path / "b")
    html = (tmp_path / "b" / "report.html").read_text()
    assert "mandatory-criteria-no-review" in html
    assert 'class="flag"' in html


def test_timeline_csv_is_for_spreadsheets(scenario_store: str, tmp_path: Path) -> None:
    led = open_ledger(scenario_store)
    export_bundle(led, tmp_path / "b")
    led.close()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "b" / "timeline.csv").read_text())))
    assert len(rows) == 22
    assert rows[0]["ref"] == f"{CASE}#1" and rows[0]["type"] == "CaseReferred"
    assert [r["occurred_at"][:10] for r in rows] == sorted(r["occurred_at"][:10] for r in rows)
    events = {e["hash"] for e in events_of(tmp_path / "b")}
    assert {r["hash"] for r in rows} == events


def test_timeline_csv_defuses_formulas(store_url: str, clock: FixedClock, tmp_path: Path) -> None:
    led = open_ledger(store_url, clock)
    lines = scenario_lines()
    data = orjson.loads(lines[6])
    data["summary"] = '=HYPERLINK("http://evil.example","x")'
    lines[6] = orjson.dumps(data)
    record(led, lines)
    export_bundle(led, tmp_path / "b")
    led.close()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "b" / "timeline.csv").read_text())))
    assert all(not r["summary"].startswith(("=", "+", "-", "@")) for r in rows)


# --- canonical JSON without orjson ---------------------------------------------------------


def stdlib_canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


TRICKY = (
    "Zoë Ångström, Łódź; 東京; emoji 🧒🏽; math 𝄞; "
    'controls \x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f DEL\x7f; quotes " \\ /; '
    "separators \u2028\u2029; BOM \ufeff; combining e\u0301 vs \u00e9; nbsp\u00a0"
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=8), children)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_stdlib_canonical_json_equals_orjson(value: Any) -> None:
    assert stdlib_canonical(value) == canonical_json(value)


def test_stdlib_canonical_json_equals_orjson_on_tricky_text() -> None:
    value = {"b": TRICKY, "a": [TRICKY, {"é": 1, "e": 2, "𝄞": 3, "\uffff": 4, "z": -(2**63)}]}
    assert stdlib_canonical(value) == canonical_json(value)
    for code in range(0x20):
        assert stdlib_canonical(chr(code)) == canonical_json(chr(code))


def test_non_ascii_and_control_characters_export_and_verify(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    led = open_ledger(store_url, clock)
    lines = scenario_lines()
    referral = orjson.loads(lines[0])
    # the record refuses control characters other than tab and newline in text
    # (tests/test_hostile_input.py); the rest of TRICKY goes through to the bundle
    referral["summary"] = re.sub("[\x00-\x08\x0b-\x1f\x7f-\x9f]", "", TRICKY)
    referral["personal"] = {"name": "Zoë 東京 \u2028 🧒🏽", "date_of_birth": DOB}
    lines[0] = orjson.dumps(referral)
    record(led, lines)
    stored = led.case_records(CASE)
    export_bundle(led, tmp_path / "b", include_personal_data=True)
    led.close()
    bundle = tmp_path / "b"
    assert_verifies(bundle)
    for line, record_ in zip(
        (bundle / "events.jsonl").read_bytes().splitlines(), stored, strict=True
    ):
        assert stdlib_canonical(json.loads(line)) == line == canonical_json(record_)


# --- the Merkle root ----------------------------------------------------------------------

#: RFC 6962 / RFC 9162 reference test vectors (the Certificate Transparency reference
#: implementation's Merkle tree tests): leaf inputs and the roots of the first n leaves.
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_merkle_root_matches_the_rfc_test_vectors() -> None:
    tree = MerkleTree()
    assert tree.root() == hashlib.sha256(b"").hexdigest()
    for leaf, root in zip(CT_LEAVES, CT_ROOTS, strict=True):
        tree.add_bytes(bytes.fromhex(leaf))
        assert tree.root() == root
    assert merkle_root_recursive([bytes.fromhex(x) for x in CT_LEAVES]) == CT_ROOTS[-1]
    assert leaf_hash(b"").hex() == CT_ROOTS[0]


@pytest.mark.parametrize("n", [*range(0, 40), 63, 64, 65, 127, 128, 129, 1000])
def test_incremental_merkle_root_equals_the_recursive_definition(n: int) -> None:
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    assert merkle_root(hashes) == merkle_root_recursive([bytes.fromhex(h) for h in hashes])


def test_standalone_checker_merkle_agrees() -> None:
    sys.path.insert(0, str(standalone_checker().parent))
    try:
        import verify as standalone  # the shipped checker, as a module
    finally:
        sys.path.pop(0)
    for n in (0, 1, 2, 3, 5, 8, 13, 100):
        hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
        tree = standalone.Merkle()
        for h in hashes:
            tree.add(h)
        assert tree.root() == merkle_root(hashes)


def test_verify_md_recipe_works_by_hand(scenario_store: str, tmp_path: Path) -> None:
    """The Python in VERIFY.md runs as written, with the system python3."""
    led = open_ledger(scenario_store)
    export_bundle(led, tmp_path / "b", cases=[CASE], occurred_from="2026-02-16")
    led.close()
    text = (tmp_path / "b" / "VERIFY.md").read_text()
    script = text.split("```python\n", 1)[1].split("```", 1)[0]
    proc = subprocess.run(
        [PYTHON, "-I", "-c", script], cwd=tmp_path / "b", capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"entries: every hash, chain link and the Merkle root hold" in proc.stdout
    files = subprocess.run(
        ["sha256sum", "-c", "manifest.sha256"], cwd=tmp_path / "b", capture_output=True
    )
    assert files.returncode == 0 and b"manifest.json: OK" in files.stdout


# --- flat memory ----------------------------------------------------------------------------


def _many_cases(url: str, clock: FixedClock, cases: int) -> None:
    led = open_ledger(url, clock)
    template = scenario_lines()
    batch: list[bytes] = []
    for i in range(cases):
        ref = f"MEM-{i:05d}"
        for line in template:
            data = orjson.loads(line)
            data["case"] = ref
            data.pop("personal", None)
            if "relied_on" in data:
                data["relied_on"] = [r.replace(CASE, ref) for r in data["relied_on"]]
            batch.append(orjson.dumps(data))
        if len(batch) >= 2000:
            record(led, batch)
            batch = []
    if batch:
        record(led, batch)
    led.close()


def _peak(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_and_verify_memory_stays_flat(clock: FixedClock, tmp_path: Path) -> None:
    """Four times the entries (6,600 then 26,400), about the same peak: entries stream in
    fixed-size batches; only per-case heads (a few hundred bytes each) are kept."""
    peaks: dict[int, tuple[int, int]] = {}
    for cases in (300, 1200):
        url = str(tmp_path / f"mem{cases}.db")
        _many_cases(url, clock, cases)
        led = open_ledger(url, clock)
        out = tmp_path / f"b{cases}"
        export_peak = _peak(lambda: export_bundle(led, out, full_report=False))  # noqa: B023
        verify_peak = _peak(lambda: verify_bundle(out))  # noqa: B023
        led.close()
        assert verify_bundle(out).ok
        peaks[cases] = (export_peak, verify_peak)
    small, large = peaks[300], peaks[1200]
    per_case_budget = 4096  # bytes of state per case (chain head, gaps, manifest entry)
    extra_cases = 900
    assert large[0] <= small[0] * 1.2 + per_case_budget * extra_cases, peaks
    assert large[1] <= small[1] * 1.2 + per_case_budget * extra_cases, peaks
    assert large[1] < 16 * 1024 * 1024, peaks  # verify of 26,400 entries: a few MB


def test_generated_at_uses_the_ledger_clock(scenario_store: str, tmp_path: Path) -> None:
    clock = FixedClock(datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC))
    led = open_ledger(scenario_store, clock)
    summary = export_bundle(led, tmp_path / "b")
    led.close()
    assert summary.generated_at == "2027-01-02T03:04:05.000000Z"
    assert manifest_of(tmp_path / "b")["generated_at"] == summary.generated_at


# --- the store's signed checkpoint travels with the bundle -----------------------------------


def _checkpointed(url: str, clock: FixedClock) -> tuple[Any, str]:
    """The scenario, a (version 2) checkpoint signed after entry 18, then the rest."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.checkpoints.checkpoint import make_checkpoint

    led = open_ledger(url, clock)
    lines = scenario_lines()
    record(led, lines[:18])
    key = Ed25519PrivateKey.generate()
    make_checkpoint(led, key, led.recorder_for("admin"))
    clock.advance(hours=1)
    record(led, lines[18:])
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return led, public.hex()


def test_a_whole_store_bundle_carries_and_checks_the_latest_checkpoint(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    led, public = _checkpointed(store_url, clock)
    export_bundle(led, tmp_path / "b")
    export_bundle(led, tmp_path / "sub", cases=[CASE], occurred_from="2026-03-01")
    led.close()
    bundle = tmp_path / "b"
    result = assert_verifies(bundle)
    assert result["checkpoint"] is True and result["checkpoint_trusted"] is False
    assert result["covered"] == 18 and result["after_checkpoint"] == 4
    assert "checkpoint-signer" in result["not_checked"]
    assert "entries-after-checkpoint" in result["not_checked"]
    declared = manifest_of(bundle)["checkpoint"]
    assert declared["events"]["size"] == 18 and declared["proof"] == "whole"
    assert declared["public_key"] == public
    assert declared["events"]["root"] == merkle_root(e["hash"] for e in events_of(bundle)[:18])
    # With the signer's key given separately, both checkers accept it; with another, not.
    trusted = verify_bundle(bundle, trusted_key=public).as_dict()
    assert trusted["ok"] and trusted["checkpoint_trusted"]
    assert "checkpoint-signature-trusted" in trusted["checked"]
    assert "sender" not in trusted["not_checked"]
    assert run_standalone(bundle, "--public-key", public) == {**trusted, "bundle": str(bundle)}
    other = "11" * 32
    ours = verify_bundle(bundle, trusted_key=other).as_dict()
    theirs = run_standalone(bundle, "--public-key", other)
    assert ours["ok"] is theirs["ok"] is False
    assert ours["first_bad"] == theirs["first_bad"] == "checkpoint.json"
    # A subset carries it too, with an inclusion proof per entry against it.
    sub = assert_verifies(tmp_path / "sub")
    assert sub["checkpoint"] is True and "checkpoint-inclusion" in sub["checked"]
    assert manifest_of(tmp_path / "sub")["checkpoint"]["proof"] == "inclusion"
    assert (tmp_path / "sub" / "proofs.jsonl").is_file()


def test_the_checkpoint_catches_a_self_consistent_forgery(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """Drop entry 9, declare the hole a gap (and claim a filter to excuse it), recompute
    every count, hash and root: the forgery is consistent, but the signed checkpoint's
    root over the first 18 entries no longer matches."""
    led, _ = _checkpointed(store_url, clock)
    export_bundle(led, tmp_path / "b")
    led.close()
    bundle = tmp_path / "b"
    path = bundle / "events.jsonl"
    kept = [line for i, line in enumerate(path.read_bytes().splitlines(True)) if i != 8]
    path.write_bytes(b"".join(kept))
    hashes = [orjson.loads(line)["hash"] for line in kept]
    manifest = manifest_of(bundle)
    manifest["filters"]["occurred_from"] = {"given": "2000-01-01", "instant": "2000-01-01"}
    manifest["cases"][CASE].update(events=21, gaps=[[9, 9]])
    manifest["events"]["count"] = 21
    manifest["merkle"].update(root=merkle_root(hashes), size=21)
    (bundle / "manifest.json").write_bytes(orjson.dumps(manifest))
    reseal(bundle)
    ours, _ = both_verdicts(bundle)
    assert ours["ok"] is False
    assert ours["first_bad"] == "checkpoint.json"
    assert "do not hash to the checkpoint's events root" in ours["failure"]


def test_a_forged_checkpoint_signature_is_caught(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    led, _ = _checkpointed(store_url, clock)
    export_bundle(led, tmp_path / "b")
    led.close()
    bundle = tmp_path / "b"
    checkpoint = json.loads((bundle / "checkpoint.json").read_bytes())
    checkpoint["events"]["size"] = 17  # claim less, keep the signature
    (bundle / "checkpoint.json").write_bytes(orjson.dumps(checkpoint))
    reseal(bundle)
    ours, _ = both_verdicts(bundle)
    assert ours["first_bad"] == "checkpoint.json"
    assert "signature does not verify" in ours["failure"]


def test_standalone_ed25519_agrees_with_the_cryptography_package() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sys.path.insert(0, str(standalone_checker().parent))
    try:
        import verify as standalone
    finally:
        sys.path.pop(0)
    for i in range(8):
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        message = b"checkpoint %d" % i
        signature = key.sign(message)
        assert standalone.ed25519_verify(public, message, signature)
        assert not standalone.ed25519_verify(public, message + b".", signature)
        forged = bytearray(signature)
        forged[i] ^= 1
        assert not standalone.ed25519_verify(public, message, bytes(forged))


# --- the report's analyses: the read-side modules, or the export's own minimum ----------------


def test_report_uses_the_read_side_modules(scenario_store: str, tmp_path: Path) -> None:
    """The decision, clocks and QM2 answers come from projections.fold.why / clocks / quality
    (the same answers as the ``why``, ``clocks`` and ``quality`` commands), and the report
    says so in words, naming the commands, never the modules."""
    led = open_ledger(scenario_store)
    export_bundle(led, tmp_path / "b")
    led.close()
    html = (tmp_path / "b" / "report.html").read_text()
    assert "The decision analysis is the same answer as caseledger why gives" in html
    assert "The clocks are the same answer as caseledger clocks gives" in html
    assert "projections." not in html
    assert "could not be answered" not in html
    rows = re.findall(r'<span class="tag (yes|no|partly|not-applicable)">', html)
    assert len(rows) == 9  # the nine QM2 answers
    assert "rapid review" in html.lower() and "review completion" in html.lower()


def test_export_of_an_encrypted_store_verifies(
    store_url: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    """The store keeps entries encrypted; the bundle holds the plaintext canonical JSON
    that was hashed, so it verifies without the key."""
    key = tmp_path / "store.key"
    assert cli(["keys", "new", "--out", str(key)]).exit_code == 0
    with_key = {"CASELEDGER_KEY_FILE": str(key)}
    lines = b"\n".join(scenario_lines())
    done = cli(["--store", store_url, "record", "-"], stdin=lines, env=with_key)
    assert done.exit_code == 0, done.stderr
    out = tmp_path / "bundle"
    exported = cli(
        ["--store", store_url, "export", "--out", str(out), "--include-personal-data", "--json"],
        env=with_key,
    )
    assert exported.exit_code == 0, exported.stderr
    result = assert_verifies(out)
    assert result["events"] == 22 and result["personal_data"] is True
    rows = [orjson.loads(x) for x in (out / "personal.jsonl").read_bytes().splitlines()]
    assert {r["value"] for r in rows} == {NAME, DOB}


def test_export_cli_writes_a_zip(
    scenario_store: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    done = cli(["--store", scenario_store, "export", CASE, "--out", str(tmp_path / "b"), "--zip"])
    assert done.exit_code == 0, done.stderr
    assert (tmp_path / "b.zip").is_file()
    checked = cli(["--store", scenario_store, "verify", str(tmp_path / "b.zip"), "--json"])
    assert checked.exit_code == 0 and checked.json()["events"] == 22
    bad = cli(["--store", scenario_store, "export", "--out", str(tmp_path / "c"), "--report", "x"])
    assert bad.exit_code == 2


def test_export_to_an_unwritable_place_exits_2_and_signs_nothing(
    scenario_store: str, cli: Any, tmp_path: Path
) -> None:
    """Issue 13: an unwritable --out is a usage error with the reason (never a
    traceback), tried before a checkpoint is signed, so nothing is written anywhere."""
    key = tmp_path / "sign.pem"
    assert cli(["keys", "signing", "--out", str(key)]).exit_code == 0
    before = len(open_ledger(scenario_store).register_entries())
    unwritable = Path("/sys") / "caseledger-bundle"  # refused even to root
    result = cli(
        ["--store", scenario_store, "export", "--out", str(unwritable), "--signing-key", str(key)]
    )
    assert result.exit_code == 2, result.stderr
    assert "cannot write a bundle in /sys" in result.stderr and "Traceback" not in result.stderr
    assert len(open_ledger(scenario_store).register_entries()) == before
