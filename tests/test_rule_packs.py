"""Rule packs that change with the law, and local rules that are never silent.

A clock is judged by the rule in force on its start day, so a rule added with a later
``effective_from`` leaves earlier cases as they were; a local override file (``--rules`` /
``CASELEDGER_RULES``) is validated like a shipped pack, and every answer judged with it
says so: tables, JSON, the export's manifest and ``rules.json``, both verifiers (and
``verify --shipped-rules`` fails it), while another process without it still sees the
shipped judgement, on both stores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from projections.assess.rules import (
    RuleError,
    judged_with,
    load_local_rules,
    rule_pack,
    shipped_rule_pack,
)
from projections.index.clock_facts import rules_fingerprint
from tests.conftest import CliResult

Cli = Any

#: Two wt2023 cases notified nine working days after the local authority became aware
#: (over the shipped five): one aware on 2 February 2026, one on 2 March 2026.
EVENTS = [
    {
        "type": "CaseReferred",
        "case": case,
        "occurred_at": aware,
        "regime": "wt2023",
        "subject": f"Child {case[-1]} ({case})",
        "incident_date": aware,
        "aware_date": aware,
        "harm": "serious-harm",
        "abuse_or_neglect": "suspected",
        "looked_after": False,
        "home_area": "Northshire",
        "referrer": "Northshire Police",
        "route": "statutory",
        "summary": "Test referral.",
    }
    for case, aware in (("RR-2026-101", "2026-02-02"), ("RR-2026-102", "2026-03-02"))
] + [
    {
        "type": "IncidentNotified",
        "case": case,
        "occurred_at": notified,
        "recipients": ["national-panel", "ofsted"],
        "reference": f"SIN-{case[-3:]}",
    }
    for case, notified in (("RR-2026-101", "2026-02-13"), ("RR-2026-102", "2026-03-13"))
]

ON = "2026-04-30"


def _rules_file(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


PANEL = '{ field = "recipients", contains = "national-panel" }'


def _notification(limit: int, effective_from: str, extra: str = "") -> str:
    return f"""
        [[clocks]]
        regime = "wt2023"
        name = "notification"
        title = "Serious incident notified to the national panel"
        label = "notification"
        start = {{ event = "CaseReferred", field = "aware_date" }}
        end = {{ event = "IncidentNotified", where = {PANEL} }}
        limit = {limit}
        unit = "working_days"
        source = "A local procedure (check)"
        effective_from = {effective_from}
        {extra}
        """


@pytest.fixture
def two_cases(store_url: str, tmp_path: Path, cli: Cli) -> str:
    lines = tmp_path / "cases.jsonl"
    lines.write_text("".join(json.dumps(e) + "\n" for e in EVENTS), encoding="utf-8")
    assert cli(["--store", store_url, "record", str(lines)]).exit_code == 0
    return store_url


def _statuses(result: CliResult) -> dict[str, str]:
    assert result.exit_code == 0, result.stderr
    return {row["case"]: row["status"] for row in result.json() if row["clock"] == "notification"}


# --- the override file: merged, validated -------------------------------------------------


def test_a_rule_with_a_later_effective_from_adds_a_version_and_clips_the_shipped_one(
    tmp_path: Path,
) -> None:
    local = load_local_rules(_rules_file(tmp_path, "r.toml", _notification(10, "2026-03-01")))
    pack = local.packs["wt2023"]
    old, new = pack.versions("notification")
    assert (old.limit, old.effective_from, old.effective_to) == (
        5,
        date(2023, 12, 15),
        date(2026, 2, 28),
    )
    assert (new.limit, new.effective_from, new.effective_to) == (10, date(2026, 3, 1), None)
    assert pack.in_force("notification", date(2026, 2, 2)) is old
    assert pack.in_force("notification", date(2026, 3, 2)) is new
    assert local.packs["wt2018"] == shipped_rule_pack("wt2018")  # other regimes untouched
    assert len(local.sha256) == 64 and local.sha256 in local.disclosure()


def test_a_rule_with_the_shipped_effective_from_replaces_it(tmp_path: Path) -> None:
    local = load_local_rules(_rules_file(tmp_path, "r.toml", _notification(20, "2023-12-15")))
    (only,) = local.packs["wt2023"].versions("notification")
    assert only.limit == 20 and only.source == "A local procedure (check)"
    # in use only inside judged_with: the shipped pack is what everything else sees
    assert rule_pack("wt2023").clock("notification").limit == 5
    with judged_with(local):
        assert rule_pack("wt2023").clock("notification").limit == 20
    assert rule_pack("wt2023").clock("notification").limit == 5


def test_an_effective_to_splits_the_shipped_rule_around_it(tmp_path: Path) -> None:
    body = _notification(10, "2024-06-01", "effective_to = 2024-06-30")
    local = load_local_rules(_rules_file(tmp_path, "r.toml", body))
    versions = local.packs["wt2023"].versions("notification")
    assert [(v.limit, v.effective_from, v.effective_to) for v in versions] == [
        (5, date(2023, 12, 15), date(2024, 5, 31)),
        (10, date(2024, 6, 1), date(2024, 6, 30)),
        (5, date(2024, 7, 1), None),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _notification(10, "2026-03-01").replace('regime = "wt2023"', 'regime = "wt2030"'),
            r"r\.toml: clocks\[0\]\.regime: unknown regime 'wt2030'",
        ),
        (
            _notification(10, "2026-03-01").replace("limit = 10", "limit = -3"),
            r"clocks\[0\]\.limit: expected a whole number",
        ),
        (
            _notification(10, "2026-03-01").replace(
                'contains = "national-panel"', 'contains = "natonal-panel"'
            ),
            r"clocks\[0\]\.end\.where: contains: 'natonal-panel' is not a value",
        ),
        (_notification(10, '"2026-03-01"'), r"clocks\[0\]\.effective_from: expected a date"),
        ('title = "x"\n', r"r\.toml: unknown key 'title'; allowed: clocks"),
        (
            _notification(10, "2026-03-01") + _notification(12, "2026-04-01"),
            "given twice for the same dates",
        ),
    ],
)
def test_a_bad_override_is_refused_naming_file_place_and_reason(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(RuleError, match=message):
        load_local_rules(_rules_file(tmp_path, "r.toml", body))


def test_the_clock_facts_fingerprint_covers_the_override(tmp_path: Path) -> None:
    shipped = rules_fingerprint()
    local = load_local_rules(_rules_file(tmp_path, "r.toml", _notification(20, "2023-12-15")))
    same_rules = load_local_rules(_rules_file(tmp_path, "s.toml", _notification(5, "2023-12-15")))
    with judged_with(local):
        overridden = rules_fingerprint()
    with judged_with(same_rules):
        # an override that changes only a limit still never labels facts as shipped
        assert rules_fingerprint() not in (shipped, overridden)
    assert overridden != shipped
    assert rules_fingerprint() == shipped


# --- through the CLI, on both stores ----------------------------------------------------------


def test_a_later_rule_leaves_earlier_cases_as_they_were(
    two_cases: str, tmp_path: Path, cli: Cli
) -> None:
    store = two_cases
    before = _statuses(cli(["--store", store, "clocks", "--on", ON, "--json"]))
    assert before == {"RR-2026-101": "late", "RR-2026-102": "late"}
    later = _rules_file(tmp_path, "later.toml", _notification(10, "2026-03-01"))
    for case, status in (("RR-2026-101", "late"), ("RR-2026-102", "met")):
        one = cli(["--store", store, "clocks", case, "--on", ON, "--json", "--rules", str(later)])
        assert _statuses(one) == {case: status}
        row = next(r for r in one.json() if r["clock"] == "notification")
        assert row["limit"] == (5 if case == "RR-2026-101" else 10)
    every = cli(["--store", store, "clocks", "--on", ON, "--json", "--rules", str(later)])
    assert _statuses(every) == {"RR-2026-101": "late", "RR-2026-102": "met"}
    assert "Clocks judged with local rules" in every.stderr


def test_rules_on_a_day_shows_the_rules_in_force_then(tmp_path: Path, cli: Cli) -> None:
    shown = cli(["rules", "wt2018", "--on", "2019-01-15", "--json"])
    assert shown.exit_code == 0, shown.stderr
    rows = shown.json()
    assert {r["clock"] for r in rows} == {
        "notification",
        "rapid_review",
        "review_completion",
        "ofsted_notification",
        "panel_follow_up",
        "final_report",
    }
    assert all(r["effective_from"] == "2018-06-29" and r["on"] == "2019-01-15" for r in rows)
    assert all("Working Together 2018, chapter 4" in r["source"] for r in rows)
    before = cli(["rules", "wt2018", "--on", "2018-01-15"])
    assert "no clock rule of this regime is in force on that day" in before.stdout
    later = _rules_file(tmp_path, "later.toml", _notification(10, "2026-03-01"))
    args = ["rules", "wt2023", "--json", "--rules", str(later), "--on"]
    limits = {
        day: {r["clock"]: r["limit"] for r in cli([*args, day]).json()}["notification"]
        for day in ("2026-02-28", "2026-03-01")
    }
    assert limits == {"2026-02-28": 5, "2026-03-01": 10}
    table = cli(["rules", "wt2023", "--rules", str(later), "--on", "2026-03-01"])
    assert f"Clocks judged with local rules {later}" in table.stdout
    assert "in force from 2026-03-01" in table.stdout


def test_a_bad_rules_file_exits_2_and_writes_nothing(
    two_cases: str, tmp_path: Path, cli: Cli
) -> None:
    bad = _rules_file(
        tmp_path, "bad.toml", _notification(10, "2026-03-01").replace("unit", "units")
    )
    out = tmp_path / "bundle"
    for args in (
        ["clocks", "--json"],
        ["status", "RR-2026-101"],
        ["due"],
        ["quality", "RR-2026-101", "--clock-rules", str(bad)],
        ["export", "--out", str(out)],
    ):
        extra = [] if "--clock-rules" in args else ["--rules", str(bad)]
        result = cli(["--store", two_cases, *args, *extra])
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert "bad.toml: clocks[0]: unknown key 'units'" in result.stderr
        assert "Traceback" not in result.stderr
    assert not out.exists()


def test_an_override_that_hides_a_late_clock_is_never_silent(
    two_cases: str, tmp_path: Path, cli: Cli
) -> None:
    """The attack: CASELEDGER_RULES set to a pack that makes a late clock met."""
    store = two_cases
    lenient = _rules_file(tmp_path, "lenient.toml", _notification(20, "2023-12-15"))
    env = {"CASELEDGER_RULES": str(lenient)}
    judged = cli(["--store", store, "clocks", "--on", ON, "--json"], env=env)
    assert _statuses(judged) == {"RR-2026-101": "met", "RR-2026-102": "met"}
    assert f"Clocks judged with local rules {lenient} (sha256 " in judged.stderr
    table = cli(["--store", store, "clocks", "RR-2026-101", "--on", ON], env=env)
    assert f"Clocks judged with local rules {lenient}" in table.stdout
    one = cli(["--store", store, "status", "RR-2026-101", "--on", ON, "--json"], env=env)
    assert one.json()["local_rules"]["path"] == str(lenient)
    # the option wins over the environment
    strict = _rules_file(tmp_path, "strict.toml", _notification(5, "2023-12-15"))
    chosen = cli(
        ["--store", store, "clocks", "--on", ON, "--json", "--rules", str(strict)], env=env
    )
    assert _statuses(chosen)["RR-2026-101"] == "late" and str(strict) in chosen.stderr
    # another process without the override still sees late (the index's facts written
    # under the override are labelled with its fingerprint, never read as shipped)
    plain = [sys.executable, "-m", "cli.main", "--store", store, "clocks", "--on", ON, "--json"]
    other = subprocess.run(plain, capture_output=True, text=True, check=False, env=_env_without())
    assert other.returncode == 0, other.stderr
    assert {
        r["case"]: r["status"] for r in json.loads(other.stdout) if r["clock"] == "notification"
    } == {
        "RR-2026-101": "late",
        "RR-2026-102": "late",
    }
    assert "local rules" not in other.stderr
    # the export records it, and both verifiers say so; --shipped-rules fails it
    bundle = tmp_path / "bundle"
    exported = cli(["--store", store, "export", "--out", str(bundle)], env=env)
    assert exported.exit_code == 0, exported.stderr
    assert f"Clocks judged with local rules {lenient}" in exported.stdout
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    override = manifest["rules"]["override"]
    assert override["path"] == str(lenient) and len(override["sha256"]) == 64
    assert "rules.json" in {f["path"] for f in manifest["files"]}
    kept = json.loads((bundle / "rules.json").read_text(encoding="utf-8"))
    assert kept["override"] == override
    limits = [c["limit"] for c in kept["packs"]["wt2023"]["clocks"] if c["name"] == "notification"]
    assert limits == [20]
    assert "judged with local rules" in (bundle / "report.html").read_text(encoding="utf-8")
    verdict = cli(["verify", str(bundle), "--json"])
    assert verdict.exit_code == 0 and verdict.json()["rules"]["override"] == override
    assert "LOCAL rules" in cli(["verify", str(bundle)]).stdout
    refused = cli(["verify", str(bundle), "--shipped-rules", "--json"])
    assert refused.exit_code == 1 and refused.json()["first_bad"] == "rules.json"
    assert "not the shipped rule packs" in refused.json()["failure"]
    standalone = [sys.executable, str(bundle / "verify.py"), str(bundle)]
    alone = subprocess.run([*standalone, "--json"], capture_output=True, text=True, check=False)
    assert alone.returncode == 0 and json.loads(alone.stdout)["rules"]["override"] == override
    fails = subprocess.run(
        [*standalone, "--shipped-rules"], capture_output=True, text=True, check=False
    )
    assert fails.returncode == 1 and "not the shipped rule packs" in fails.stderr
    # a bundle judged with the shipped packs passes --shipped-rules with both verifiers
    shipped = tmp_path / "shipped"
    assert cli(["--store", store, "export", "--out", str(shipped)]).exit_code == 0
    ok = cli(["verify", str(shipped), "--shipped-rules", "--json"])
    assert ok.exit_code == 0 and ok.json()["rules"]["override"] is None
    assert "shipped-rules" in ok.json()["checked"]
    passes = subprocess.run(
        [sys.executable, str(shipped / "verify.py"), str(shipped), "--shipped-rules"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert passes.returncode == 0, passes.stderr
    assert "the shipped rule packs (sha256" in passes.stdout


def _env_without() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "CASELEDGER_RULES"}


def test_the_override_sample_in_the_docs_runs(tmp_path: Path, cli: Cli) -> None:
    """docs/clocks.md's sample override file, as written there, is accepted and does what
    the page says: 5 working days up to 28 February 2026, 10 from 1 March."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "clocks.md").read_text("utf-8")
    start = page.index("```toml\n# local-rules.toml") + len("```toml\n")
    sample = _rules_file(tmp_path, "local-rules.toml", page[start : page.index("```", start)])
    args = ["rules", "wt2023", "--json", "--rules", str(sample), "--on"]
    for day, limit in (("2026-02-28", 5), ("2026-03-01", 10)):
        shown = cli([*args, day])
        assert shown.exit_code == 0, shown.stderr
        assert {r["clock"]: r["limit"] for r in shown.json()}["notification"] == limit


# --- the shipped packs' generated table (issue 18: parsing them was ~40 ms of a cold status)


def test_the_shipped_packs_table_is_what_parsing_the_files_gives() -> None:
    from projections.assess import rules, shipped_packs

    assert shipped_packs.TABLE_MODULE.read_text(encoding="utf-8") == shipped_packs.table_source(), (
        "run python -m cli.reference"
    )
    for regime in rules.REGIMES:
        text = rules._shipped_text(regime)
        parsed = rules.loads_rule_pack(text, origin=f"{regime}.toml")
        assert rules._compiled_pack(regime, text) == parsed == rules.shipped_rule_pack(regime)


def test_a_pack_file_changed_where_installed_is_parsed_not_taken_from_the_table() -> None:
    from projections.assess import rules

    text = rules._shipped_text("wt2023")
    assert rules._compiled_pack("wt2023", text) is not None
    assert rules._compiled_pack("wt2023", text.replace("limit = 5", "limit = 6", 1)) is None
    assert rules._compiled_pack("wt1999", text) is None
