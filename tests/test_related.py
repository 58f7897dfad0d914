"""Themes and learning: ``caseledger related``, QM2 question 8 reading it, and the area
responsible after a transfer (``status``'s ``area``, QM2 question 3), on both stores.

Three cases: OLD-1 (referred first) recorded learning on ``neglect``; MID-1 (referred
next) carries ``unsafe-sleep`` only; NEW-1 (referred last) carries ``neglect`` and
``escalation``.  NEW-1 relates to OLD-1 alone; OLD-1 relates to nothing (it is the
earliest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from projections import api
from tests.conftest import CliResult, FixedClock, open_ledger
from tests.test_clocks import decided, event, notified, ok, record, referral

pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]


def three_cases() -> list[dict[str, Any]]:
    return [
        referral("OLD-1", "2025-03-03"),
        notified("OLD-1", "2025-03-04"),
        event("ThemesRecorded", "OLD-1", "2025-03-10", themes=["neglect"]),
        decided("OLD-1", "2025-03-20"),
        event(
            "LearningRecorded",
            "OLD-1",
            "2025-09-01",
            summary="Neglect of a toddler was seen by four agencies and never escalated.",
            recommendations=["Adopt the neglect screening tool", "Audit escalations yearly"],
            themes=["escalation"],
        ),
        referral("MID-1", "2025-06-02"),
        event("ThemesRecorded", "MID-1", "2025-06-05", themes=["unsafe-sleep"]),
        referral("NEW-1", "2026-01-05"),
        notified("NEW-1", "2026-01-06"),
        event("ThemesRecorded", "NEW-1", "2026-01-07", themes=["neglect", "escalation"]),
    ]


def test_related_lists_the_earlier_case_sharing_themes_with_its_learning(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    record(store_url, clock, three_cases())
    found = ok(cli, store_url, "related", "NEW-1")
    assert [r["case"] for r in found] == ["OLD-1"]
    (old,) = found
    assert tuple(old)[:3] == ("case", "themes", "learning")
    # The learning's own theme (escalation) counts as a theme of OLD-1.
    assert old["themes"] == ["neglect", "escalation"]
    assert old["learning"] == [
        {
            "ref": "OLD-1#5",
            "summary": "Neglect of a toddler was seen by four agencies and never escalated.",
            "recommendations": ["Adopt the neglect screening tool", "Audit escalations yearly"],
        }
    ]
    # The earliest case has nothing earlier; a case sharing no theme has nothing either.
    assert ok(cli, store_url, "related", "OLD-1") == []
    assert ok(cli, store_url, "related", "MID-1") == []
    # The table for people names the case and its learning.
    people = cli(["--store", store_url, "related", "NEW-1"])
    assert people.exit_code == 0, people.stderr
    assert "OLD-1" in people.stdout and "neglect screening tool" in people.stdout


def test_related_on_a_date_and_as_of_a_time(store_url: str, clock: FixedClock, cli: Cli) -> None:
    events = three_cases()
    learning = {**events[4], "occurred_at": "2026-02-02"}  # after NEW-1 was referred
    record(store_url, clock, [e for e in events if e is not events[4]])
    between = clock.now.isoformat()
    clock.advance(days=1)
    record(store_url, clock, [learning])
    now = ok(cli, store_url, "related", "NEW-1")
    assert [(r["case"], r["themes"], len(r["learning"])) for r in now] == [
        ("OLD-1", ["neglect", "escalation"], 1)
    ]
    # The world before the learning happened: related on neglect only, nothing taught.
    then = ok(cli, store_url, "related", "NEW-1", "--on", "2026-01-10")
    assert [(r["case"], r["themes"], r["learning"]) for r in then] == [("OLD-1", ["neglect"], [])]
    # The record before the learning was recorded: the same.
    stood = ok(cli, store_url, "related", "NEW-1", "--as-of", between)
    assert [(r["case"], r["themes"], r["learning"]) for r in stood] == [("OLD-1", ["neglect"], [])]
    # The Python API gives the case's own themes beside the related cases.
    report = api.related(open_ledger(store_url, clock), "NEW-1", on="2026-01-10")
    assert report.themes == ("neglect", "escalation")
    # As of a time before anything was recorded, the case is unknown: a usage error.
    result = cli(["--store", store_url, "related", "NEW-1", "--as-of", "2026-01-01"])
    assert result.exit_code == 2 and "NEW-1" in result.stderr


def test_related_orders_by_shared_themes_then_most_recent(
    store_url: str, clock: FixedClock
) -> None:
    record(
        store_url,
        clock,
        [
            referral("A-1", "2024-01-08"),
            event("ThemesRecorded", "A-1", "2024-01-09", themes=["neglect", "escalation"]),
            referral("B-1", "2024-05-06"),
            event("ThemesRecorded", "B-1", "2024-05-07", themes=["neglect"]),
            referral("C-1", "2024-09-02"),
            event("ThemesRecorded", "C-1", "2024-09-03", themes=["neglect"]),
            referral("D-1", "2025-02-03"),
            event("ThemesRecorded", "D-1", "2025-02-04", themes=["escalation", "neglect"]),
        ],
    )
    led = open_ledger(store_url, clock)
    found = api.related(led, "D-1").to_json()
    assert [(r["case"], r["themes"]) for r in found] == [
        ("A-1", ["escalation", "neglect"]),
        ("C-1", ["neglect"]),
        ("B-1", ["neglect"]),
    ]


def q8(cli: Cli, url: str, case: str) -> dict[str, Any]:
    rows = ok(cli, url, "quality", case, "--on", "2026-09-01")
    return {r["question"]: r for r in rows}[8]


def test_q8_needs_the_decision_to_cite_related_learning(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    context = event(
        "ContextRecorded",
        "NEW-1",
        "2026-01-12",
        topic="previous-learning",
        summary="OLD-1 found neglect seen by four agencies and never escalated.",
    )
    uncited = [*three_cases(), context, decided("NEW-1", "2026-01-20")]
    record(store_url, clock, uncited)
    answer = q8(cli, store_url, "NEW-1")
    assert answer["answer"] == "partly"
    assert "OLD-1" in answer["explanation"] and "does not cite it" in answer["explanation"]
    # The same decision, revisited, relying on the previous-learning context: yes.
    clock.advance(hours=1)
    record(store_url, clock, [decided("NEW-1", "2026-01-21", relied_on=["NEW-1#4"])])
    answer = q8(cli, store_url, "NEW-1")
    assert answer["answer"] == "yes"
    assert "NEW-1#4" in answer["evidence"] and "OLD-1#5" in answer["explanation"]


def test_q8_none_related_yes_only_when_the_decision_says_so(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    record(
        store_url,
        clock,
        [
            referral("LONE-1", "2026-01-05"),
            event("ThemesRecorded", "LONE-1", "2026-01-07", themes=["online-harm"]),
            event("ContextRecorded", "LONE-1", "2026-01-08", topic="local-priority", summary="x"),
            decided("LONE-1", "2026-01-20", factors={"learning": "Online harm is new here."}),
            referral("LONE-2", "2026-01-05"),
            event("ThemesRecorded", "LONE-2", "2026-01-07", themes=["online-harm"]),
            decided(
                "LONE-2",
                "2026-01-20",
                factors={"previous_learning": "No earlier local review on online harm."},
            ),
        ],
    )
    said_nothing = q8(cli, store_url, "LONE-1")
    assert said_nothing["answer"] == "partly"
    assert "does not say there is none" in said_nothing["explanation"]
    said_none = q8(cli, store_url, "LONE-2")
    assert said_none["answer"] == "yes"
    assert "No earlier case sharing its themes (online-harm)" in said_none["explanation"]


def test_q8_without_themes_keeps_the_answer_from_the_case_record(
    scenario_store: str, cli: Cli
) -> None:
    answer = q8(cli, scenario_store, "RR-2026-004")
    assert answer["answer"] == "yes"
    assert "No practice themes are recorded" in answer["explanation"]


def test_transfer_moves_the_area_and_q3_asks_for_the_home_area(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    moved = [
        referral("MOVE-1", "2026-01-05"),
        notified("MOVE-1", "2026-01-06"),
        event(
            "ResponsibilityTransferred",
            "MOVE-1",
            "2026-01-08",
            to_area="Westmoor",
            reason="The child lived in Westmoor.",
            accepted_by="Westmoor Safeguarding Partnership",
        ),
        decided("MOVE-1", "2026-01-20"),
        referral("STAY-1", "2026-01-05"),
    ]
    record(store_url, clock, moved)
    rows = {r["case"]: r for r in ok(cli, store_url, "status", "--all")}
    assert rows["MOVE-1"]["area"] == "Westmoor" and rows["STAY-1"]["area"] == "Northshire"
    assert ok(cli, store_url, "status", "MOVE-1")["area"] == "Westmoor"
    # Before the transfer happened, Northshire was responsible.
    assert ok(cli, store_url, "status", "MOVE-1", "--on", "2026-01-07")["area"] == "Northshire"
    answers = {r["question"]: r for r in ok(cli, store_url, "quality", "MOVE-1")}
    assert answers[3]["answer"] == "no"
    assert "Westmoor is responsible after the transfer" in answers[3]["explanation"]
    assert "Northshire" in answers[3]["explanation"]
    assert "MOVE-1#3" in answers[3]["evidence"]
    clock.advance(hours=1)
    record(
        store_url,
        clock,
        [
            event("NeighbourCheckRequested", "MOVE-1", "2026-01-09", area="Northshire"),
            decided("MOVE-1", "2026-01-21"),
        ],
    )
    answers = {r["question"]: r for r in ok(cli, store_url, "quality", "MOVE-1")}
    assert answers[3]["answer"] == "yes"


def test_a_corrected_theme_relates_by_the_correction_and_as_of_before_by_the_original(
    store_url: str, clock: FixedClock
) -> None:
    record(store_url, clock, three_cases())
    before = clock.now.isoformat()
    clock.advance(hours=1)
    # MID-1's theme was neglect, not unsafe sleep.
    record(
        store_url,
        clock,
        [
            {
                "type": "EntryCorrected",
                "case": "MID-1",
                "occurred_at": "2026-02-01",
                "corrects": "MID-1#2",
                "changes": {"themes": ["neglect"]},
                "reason": "The rapid review meeting named neglect, not unsafe sleep.",
            }
        ],
    )
    led = open_ledger(store_url, clock)
    found = api.related(led, "NEW-1").to_json()
    assert [(r["case"], r["themes"], r["learning"]) for r in found] == [
        ("OLD-1", ["neglect", "escalation"], found[0]["learning"]),
        ("MID-1", ["neglect"], []),
    ]
    assert [r["case"] for r in api.related(led, "NEW-1", as_of=before).to_json()] == ["OLD-1"]
