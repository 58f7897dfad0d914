"""``caseledger quality``: the nine QM2 questions through the real CLI, on both stores.

The scenario's answers are those of ``shared/scenarios/README.md``; the variants change
one thing at a time and check the answer the rules of ``docs/quality.md`` give.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.catalogue.models import normalise_occurred_at
from projections.assess.quality import (
    ANSWERS,
    QUESTIONS,
    KeyAgency,
    QualityConfigError,
    answer_questions,
    default_config,
    loads_config,
)
from projections.fold.case_view import fold
from projections.fold.when import LONDON, parse_on
from tests.conftest import CliResult, FixedClock, scenario_lines
from tests.test_clocks import ok, record, record_as_it_happened

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

CASE = "RR-2026-004"
Cli = Callable[..., CliResult]
SHIPPED = Path(__file__).resolve().parents[1] / "projections" / "data" / "quality.toml"


def answers(cli: Cli, url: str, case: str, *args: str) -> dict[int, dict[str, Any]]:
    rows = ok(cli, url, "quality", case, *args)
    assert [r["question"] for r in rows] == list(range(1, 10))
    for row in rows:
        assert tuple(row)[:4] == ("question", "answer", "evidence", "explanation")
        assert row["answer"] in ANSWERS
        assert row["explanation"].strip().endswith(".")
        assert all(ref.startswith(f"{case}#") for ref in row["evidence"])
    return {r["question"]: r for r in rows}


def scenario_events() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in scenario_lines()]


def variant(case: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events under another case reference (refs into the case dropped)."""
    out = []
    for e in events:
        e = {**e, "case": case}
        e.pop("relied_on", None)
        out.append(e)
    return out


def without(events: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] not in types]


def insert_before(
    events: list[dict[str, Any]], kind: str, new: dict[str, Any]
) -> list[dict[str, Any]]:
    at = next(i for i, e in enumerate(events) if e["type"] == kind)
    return [*events[:at], new, *events[at:]]


def shifted_decision(events: list[dict[str, Any]], day: str) -> list[dict[str, Any]]:
    """The decision (and its communication) made on ``day`` instead."""
    return [
        {**e, "occurred_at": day} if e["type"] in ("DecisionMade", "DecisionCommunicated") else e
        for e in events
    ]


def values(found: dict[int, dict[str, Any]]) -> dict[int, str]:
    return {q: a["answer"] for q, a in found.items()}


SCENARIO_ANSWERS = {
    1: "yes",
    2: "yes",
    3: "yes",
    4: "yes",
    5: "not-applicable",
    6: "no",
    7: "yes",
    8: "yes",
    9: "yes",
}


# --- the scenario -----------------------------------------------------------------------


@pytest.mark.parametrize("on", [[], ["--on", "2026-03-06"], ["--on", "2026-09-01"]])
def test_scenario_answers(scenario_store: str, cli: Cli, on: list[str]) -> None:
    found = answers(cli, scenario_store, CASE, *on)
    assert values(found) == SCENARIO_ANSWERS
    refs = {q: a["evidence"] for q, a in found.items()}
    assert refs[2] == [f"{CASE}#{n}" for n in (3, 4, 5, 6)]  # the four requests
    assert f"{CASE}#8" in refs[3]  # the Westmoor check
    assert refs[4] == [f"{CASE}#14", f"{CASE}#18"]  # discussion, recommendation
    assert f"{CASE}#19" in refs[5]  # the decision that met its clock
    assert refs[6] == []
    assert f"{CASE}#19" in refs[7] and f"{CASE}#7" in refs[8]
    assert refs[9] == [f"{CASE}#{n}" for n in (14, 15, 16, 17)]
    assert "met its rapid_review clock" in found[5]["explanation"]


def test_scenario_before_the_decision(scenario_store: str, cli: Cli) -> None:
    found = answers(cli, scenario_store, CASE, "--on", "2026-03-05")
    assert values(found) == {**SCENARIO_ANSWERS, 7: "not-applicable", 8: "not-applicable"}
    assert "still running" in found[5]["explanation"]
    # Before any agency had replied (17 Feb): no information, no discussion yet.
    early = values(answers(cli, scenario_store, CASE, "--on", "2026-02-17"))
    assert early[1] == "no" and early[4] == "no" and early[9] == "no"
    assert early[2] == "yes" and early[3] == "yes"


def test_scenario_as_of(store_url: str, clock: FixedClock, cli: Cli) -> None:
    events = scenario_events()
    clock.now = clock.now.replace(month=3, day=5, hour=12)
    record(store_url, clock, events[:18])
    clock.now = clock.now.replace(month=9, day=1)
    record(store_url, clock, events[18:])
    found = answers(cli, store_url, CASE, "--as-of", "2026-03-05", "--on", "2026-03-10")
    # As the record stood on 5 March the rapid review was overdue on 10 March, with no
    # approved delay.
    assert found[5]["answer"] == "no"
    assert found[7]["answer"] == "not-applicable"
    assert values(answers(cli, store_url, CASE, "--on", "2026-03-10")) == SCENARIO_ANSWERS


def test_people_view(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "quality", CASE])
    assert result.exit_code == 0, result.stderr
    assert "independent challenge" in result.stdout
    assert "7 yes" in result.stdout and "1 no" in result.stdout


def test_unknown_case_exits_2(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "quality", "NOPE-1", "--json"])
    assert result.exit_code == 2 and result.stdout == "" and "NOPE-1" in result.stderr


# --- question 5: delay --------------------------------------------------------------------


def test_q5_late_with_and_without_an_approved_delay(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    # The scenario decided on Fri 13 Mar instead of Fri 6 Mar: a week past the rapid
    # review's due date.
    late = shifted_decision(variant("Q5-LATE", scenario_events()), "2026-03-13")
    delay = {
        "type": "DecisionDelayed",
        "case": "Q5-JUST",
        "occurred_at": "2026-03-05",
        "reason": "The police asked partners to wait for a strategy meeting on 12 March",
        "expected_by": "2026-03-13",
        "approved_by": "Northshire ICB (lead partner)",
    }
    justified = insert_before(variant("Q5-JUST", late), "DecisionMade", delay)
    record(store_url, clock, late)
    record_as_it_happened(store_url, justified)
    yes = answers(cli, store_url, "Q5-JUST", "--on", "2026-09-01")
    assert yes[5]["answer"] == "yes"
    assert "strategy meeting" in yes[5]["explanation"]
    assert "Northshire ICB (lead partner)" in yes[5]["explanation"]
    assert "Q5-JUST#19" in yes[5]["evidence"]  # the DecisionDelayed
    no = answers(cli, store_url, "Q5-LATE", "--on", "2026-09-01")
    assert no[5]["answer"] == "no"
    assert "no approved delay" in no[5]["explanation"]
    # The clocks agree.
    rapid = {r["clock"]: r for r in ok(cli, store_url, "clocks", "Q5-JUST", "--on", "2026-09-01")}
    assert (rapid["rapid_review"]["status"], rapid["rapid_review"]["justified"]) == (
        "late",
        True,
    )
    rapid = {r["clock"]: r for r in ok(cli, store_url, "clocks", "Q5-LATE", "--on", "2026-09-01")}
    assert (rapid["rapid_review"]["status"], rapid["rapid_review"]["justified"]) == (
        "late",
        False,
    )
    # While overdue (on 10 March): no without a delay, yes with it.
    assert answers(cli, store_url, "Q5-LATE", "--on", "2026-03-10")[5]["answer"] == "no"
    assert answers(cli, store_url, "Q5-JUST", "--on", "2026-03-10")[5]["answer"] == "yes"
    # On 6 March, not yet late: nothing to justify.
    on_time = answers(cli, store_url, "Q5-LATE", "--on", "2026-03-06")
    assert on_time[5]["answer"] == "not-applicable"


def test_q5_before_the_notification(store_url: str, clock: FixedClock, cli: Cli) -> None:
    record(store_url, clock, variant("Q5-EARLY", scenario_events()))
    found = answers(cli, store_url, "Q5-EARLY", "--on", "2026-02-10")
    assert found[5]["answer"] == "not-applicable"
    assert "has not started" in found[5]["explanation"]


# --- the other questions, one change at a time ----------------------------------------------


def test_q6_challenge_sought_or_only_mentioned(store_url: str, clock: FixedClock, cli: Cli) -> None:
    sought = insert_before(
        variant("Q6-YES", scenario_events()),
        "DecisionMade",
        {
            "type": "PeerChallengeSought",
            "case": "Q6-YES",
            "occurred_at": "2026-03-05",
            "peer": "Westmoor partnership chair",
            "question": "Is a local review proportionate?",
        },
    )
    mentioned = [
        {**e, "summary": e["summary"] + " Peer challenge from another chair was considered."}
        if e["type"] == "DiscussionHeld"
        else e
        for e in variant("Q6-PARTLY", scenario_events())
    ]
    record(store_url, clock, sought)
    record(store_url, clock, mentioned)
    yes = answers(cli, store_url, "Q6-YES", "--on", "2026-09-01")[6]
    assert (yes["answer"], yes["evidence"]) == ("yes", ["Q6-YES#19"])
    assert "Westmoor partnership chair" in yes["explanation"]
    partly = answers(cli, store_url, "Q6-PARTLY", "--on", "2026-09-01")[6]
    assert (partly["answer"], partly["evidence"]) == ("partly", ["Q6-PARTLY#14"])


def test_q1_q2_q9_gaps(store_url: str, clock: FixedClock, cli: Cli) -> None:
    # Education never asked, never answered, not at the discussion; context not recorded.
    events = [
        e
        for e in variant("GAPS-1", scenario_events())
        if "Education" not in str(e.get("agency", "")) and e["type"] != "ContextRecorded"
    ]
    events = [
        {**e, "attendees": [a for a in e["attendees"] if "Education" not in a]}
        if e["type"] == "DiscussionHeld"
        else e
        for e in events
    ]
    record(store_url, clock, events)
    found = answers(cli, store_url, "GAPS-1", "--on", "2026-09-01")
    assert found[1]["answer"] == "partly" and "no context" in found[1]["explanation"]
    assert found[2]["answer"] == "partly" and "not Education" in found[2]["explanation"]
    assert found[9]["answer"] == "partly" and "not Education" in found[9]["explanation"]
    assert found[8]["answer"] == "partly"  # learning weighed but not recorded as context


def test_q1_open_request_at_the_decision(store_url: str, clock: FixedClock, cli: Cli) -> None:
    # Education replied after the decision.
    events = [
        {**e, "occurred_at": "2026-03-09"}
        if e["type"] == "InformationReceived" and "Education" in e["agency"]
        else e
        for e in variant("OPEN-1", scenario_events())
    ]
    record(store_url, clock, events)
    found = answers(cli, store_url, "OPEN-1", "--on", "2026-09-01")
    assert found[1]["answer"] == "partly"
    assert "1 request still unanswered (Northshire Education)" in found[1]["explanation"]


def test_q3_no_other_area_and_an_unchecked_area(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    home_only = without(
        variant("HOME-1", scenario_events()), "NeighbourCheckRequested", "NeighbourCheckAnswered"
    )
    home_only[0] = {k: v for k, v in home_only[0].items() if k != "other_areas"}
    two_areas = variant("AREAS-2", scenario_events())
    two_areas[0] = {**two_areas[0], "other_areas": ["Westmoor", "Eastvale"]}
    unchecked = without(
        variant("AREAS-0", scenario_events()), "NeighbourCheckRequested", "NeighbourCheckAnswered"
    )
    for events in (home_only, two_areas, unchecked):
        record(store_url, clock, events)
    na = answers(cli, store_url, "HOME-1", "--on", "2026-09-01")[3]
    assert (na["answer"], na["evidence"]) == ("not-applicable", ["HOME-1#1"])
    partly = answers(cli, store_url, "AREAS-2", "--on", "2026-09-01")[3]
    assert partly["answer"] == "partly" and "not with Eastvale" in partly["explanation"]
    assert answers(cli, store_url, "AREAS-0", "--on", "2026-09-01")[3]["answer"] == "no"


def test_q4_recommendation_without_discussion(store_url: str, clock: FixedClock, cli: Cli) -> None:
    record(store_url, clock, without(variant("NODISC-1", scenario_events()), "DiscussionHeld"))
    found = answers(cli, store_url, "NODISC-1", "--on", "2026-09-01")
    assert found[4]["answer"] == "partly"
    assert "without any recorded inter-agency discussion" in found[4]["explanation"]
    # Views were still given by three key agencies, but Education had no opportunity.
    assert found[9]["answer"] == "partly"


def test_q7_mandatory_criteria_with_no_review_and_q8(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    from tests.test_clocks import decided, notified, referral

    case = "SCR-2016-003"
    decision = decided(case, "2016-03-20", "no-review", "wt2015")
    decision["criteria"] = {
        "abuse_or_neglect": {"finding": "met", "reason": "Neglect established."},
        "child_died": {"finding": "met", "reason": "The child died."},
        "seriously_harmed": {"finding": "not-met", "reason": "Died."},
        "agency_concern": {"finding": "unclear", "reason": "Not yet known."},
    }
    record(
        store_url,
        clock,
        [referral(case, "2016-03-01", "wt2015"), notified(case, "2016-03-02", "wt2015"), decision],
    )
    found = answers(cli, store_url, case, "--on", "2016-04-01")
    assert found[7]["answer"] == "partly"
    assert "mandatory" in found[7]["explanation"]
    assert found[8]["answer"] == "not-applicable" and "no-review" in found[8]["explanation"]
    assert found[5]["answer"] == "not-applicable"  # decided within the month


# --- configuration ----------------------------------------------------------------------------

EXTRA_AGENCY = """
[[key_agencies]]
key = "probation"
title = "Probation"
patterns = ["Probation"]
"""


def test_rules_file_and_environment(
    scenario_store: str, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(SHIPPED.read_text(encoding="utf-8") + EXTRA_AGENCY, encoding="utf-8")
    found = answers(cli, scenario_store, CASE, "--rules", str(rules))
    assert found[2]["answer"] == "partly" and "not Probation" in found[2]["explanation"]
    assert found[9]["answer"] == "partly"
    monkeypatch.setenv("CASELEDGER_QUALITY_RULES", str(rules))
    assert answers(cli, scenario_store, CASE)[2]["answer"] == "partly"
    monkeypatch.delenv("CASELEDGER_QUALITY_RULES")
    assert answers(cli, scenario_store, CASE)[2]["answer"] == "yes"
    bad = tmp_path / "bad.toml"
    bad.write_text('key_agencies = []\ncolour = "red"\n', encoding="utf-8")
    result = cli(["--store", scenario_store, "quality", CASE, "--rules", str(bad), "--json"])
    assert result.exit_code == 2 and "colour" in result.stderr and result.stdout == ""
    result = cli(["--store", scenario_store, "quality", CASE, "--rules", str(tmp_path / "no")])
    assert result.exit_code == 2


def test_shipped_config() -> None:
    config = default_config()
    assert [a.key for a in config.key_agencies] == [
        "police",
        "health",
        "childrens-social-care",
        "education",
    ]
    kinds = {
        "Northshire Police": "police",
        "West Mercia Constabulary": "police",
        "Northshire ICB": "health",
        "Northshire CCG": "health",
        "Northshire NHS Foundation Trust": "health",
        "Northshire Children’s Social Care": "childrens-social-care",
        "Northshire CSC": "childrens-social-care",
        "Northshire Education": "education",
        "St Mary's Primary School": "education",
    }
    for name, key in kinds.items():
        assert [a.key for a in config.key_agencies_of(name)] == [key], name
    for name in ("Dicbury Council", "Northshire Probation", "Policeman's Ball"):
        assert config.key_agencies_of(name) == [], name
    assert config.mentions_challenge("We discussed Independent Challenge at length")
    assert not config.mentions_challenge("The partners met.")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("key_agencies = []", "at least one"),
        ('[[key_agencies]]\nkey = "p"\ntitle = "P"\npatterns = []', "at least one pattern"),
        ('[[key_agencies]]\nkey = "p"\ntitle = "P"\npatterns = "Police"', "list"),
        ('[[key_agencies]]\nkey = "p"\ntitle = "P"\npatterns = ["P"]\nwho = 1', "key, title"),
        (
            '[[key_agencies]]\nkey = "p"\ntitle = "P"\npatterns = ["P"]\n'
            '[[key_agencies]]\nkey = "p"\ntitle = "Q"\npatterns = ["Q"]',
            "twice",
        ),
        ("minimum_data = [1]\n[[key_agencies]]\nkey='p'\ntitle='P'\npatterns=['P']", "strings"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_configs_are_rejected(text: str, message: str) -> None:
    with pytest.raises(QualityConfigError, match=message):
        loads_config(text, "test.toml")


@settings(max_examples=200, deadline=None)
@given(
    word=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=12),
    before=st.text(alphabet=" -.,()0123", max_size=6),
    after=st.text(alphabet=" -.,()0123", max_size=6),
)
def test_key_agency_patterns_match_whole_words(word: str, before: str, after: str) -> None:
    agency = KeyAgency("k", "K", (word,))
    assert agency.matches(f"Northshire{before} {word.upper()} {after}")
    assert agency.matches(f"{word.title()}")
    assert not agency.matches(f"{before}x{word}{after}")
    assert not agency.matches(f"{before}{word}x{after}")


# --- properties over the scenario's entries -----------------------------------------------


def _records(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    for seq, e in enumerate(events, start=1):
        r = {**e, "seq": seq, "recorded_at": "2026-09-01T09:00:00.000000Z", "actor": "t"}
        r["occurred_at"] = normalise_occurred_at(r["occurred_at"])
        if r["type"] == "InformationRequested":
            r["request_id"] = f"R{seq}"
        records.append(r)
    return records


@settings(max_examples=100, deadline=None)
@given(keep=st.lists(st.booleans(), min_size=21, max_size=21))
def test_answers_for_any_subset_of_the_scenario(keep: list[bool]) -> None:
    events = variant("SUB-1", scenario_events())
    chosen = [events[0]] + [e for e, k in zip(events[1:], keep, strict=True) if k]
    records = _records(chosen)
    view = fold(records)
    assert view is not None
    on = parse_on("2026-09-01", datetime.now(LONDON))
    found = answer_questions(view, on)
    assert [a.question for a in found] == list(QUESTIONS)
    refs = {f"SUB-1#{r['seq']}" for r in records}
    types = {r["type"] for r in records}
    for a in found:
        assert a.answer in ANSWERS
        assert set(a.evidence) <= refs
        assert list(a.evidence) == sorted(a.evidence, key=lambda r: int(r.split("#")[1]))
    by = {a.question: a.answer for a in found}
    if "DecisionMade" not in types:
        assert by[7] == by[8] == "not-applicable"
    if not types & {"PeerChallengeSought", "PeerChallengeReceived"}:
        assert by[6] == "no"
    if "InformationReceived" not in types:
        assert by[1] == "no"
    if "IncidentNotified" not in types:
        assert by[5] == "not-applicable"
    if all(keep):
        assert by == SCENARIO_ANSWERS
