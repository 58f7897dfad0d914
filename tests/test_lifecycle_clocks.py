"""The clocks of the lifecycle after the decision (issue 16): the rapid review ends when it
is sent to the national panel, a looked-after child's death is notified to Ofsted, the
partners answer the panel's disagreement, the final report is sent ahead of publication,
and the deferral entries justify a late notification or publication.

Each clock is tested across an England-and-Wales bank holiday (Easter 2026: Good Friday
3 April and Easter Monday 6 April; Christmas 2025 and New Year's Day 2026), with fixed
dates and ``--on``, through the CLI on both stores, for one case (folded) and for every
case (the cross-case index and its clock facts).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from projections.assess.clocks import clock_states
from projections.index.clock_answers import states_from_facts
from projections.index.clock_facts import case_clock_facts
from tests.conftest import CliResult
from tests.test_clocks import (
    by_clock,
    d,
    decided,
    delayed,
    event,
    notified,
    ok,
    record_as_it_happened,
    referral,
)

pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]


def sent(case: str, day: str) -> dict[str, Any]:
    """The rapid review sent to the national panel."""
    return event("RapidReviewSent", case, day, to=["national-panel"])


def communicated(case: str, day: str, *to: str) -> dict[str, Any]:
    """The decision communicated (the first wave's record of sending the review)."""
    return event("DecisionCommunicated", case, day, to=list(to))


def panel(case: str, day: str, response: str) -> dict[str, Any]:
    """The national panel's response."""
    return event("PanelResponded", case, day, response=response, summary="The panel replied.")


def report_sent(case: str, day: str, planned: str) -> dict[str, Any]:
    """The final report sent to the panel and the Secretary of State."""
    return event(
        "FinalReportSent",
        case,
        day,
        to=["national-panel", "secretary-of-state"],
        planned_publication=planned,
    )


def published(case: str, day: str) -> dict[str, Any]:
    return event("ReportPublished", case, day, location="https://example.org/lcspr")


def both_ways(cli: Cli, url: str, case: str, on: str) -> list[dict[str, dict[str, Any]]]:
    """The case's clocks on ``on``: folded (``clocks CASE``) and from the index
    (``clocks``), which must agree."""
    one = by_clock(ok(cli, url, "clocks", case, "--on", on))
    every = by_clock(ok(cli, url, "clocks", "--on", on), case)
    assert one == every
    return [one, every]


def clock_on(cli: Cli, url: str, case: str, on: str, name: str) -> dict[str, Any]:
    """One clock of the case on ``on``, the same both ways (None if not started)."""
    rows = both_ways(cli, url, case, on)[0]
    return rows.get(name)  # type: ignore[return-value]


# --- the rapid review: ended when sent ------------------------------------------------


def test_wt2018_decided_on_time_but_sent_late_is_late_across_easter(
    store_url: str, cli: Cli
) -> None:
    # Notified Tue 24 Mar 2026: 15 working days, skipping Good Friday and Easter Monday,
    # is Thu 16 Apr (Tue 14 Apr without them).  Decided Wed 15 Apr: on time.
    late, met = "RR18-LATE", "RR18-MET"
    for case, day in ((late, "2026-04-17"), (met, "2026-04-16")):
        record_as_it_happened(
            store_url,
            [
                referral(case, "2026-03-23", "wt2018"),
                notified(case, "2026-03-24", "wt2018"),
                decided(case, "2026-04-15", regime="wt2018"),
                communicated(case, day, "national-panel", "ofsted"),
            ],
        )
    # Decided, not yet sent: on Wed 15 Apr it still runs (it would be overdue without
    # the Easter holidays), with the decision's day shown.
    rapid = clock_on(cli, store_url, late, "2026-04-15", "rapid_review")
    assert (rapid["status"], rapid["due"], rapid["days_left"]) == ("running", "2026-04-16", 1)
    assert rapid["marks"] == {"decided": "2026-04-15"}
    # Sent Fri 17 Apr: late by a day, although decided on time.
    rapid = clock_on(cli, store_url, late, "2026-05-01", "rapid_review")
    assert (rapid["status"], rapid["ended"], rapid["days_over"]) == ("late", "2026-04-17", 1)
    assert rapid["end_ref"] == f"{late}#4"
    assert (rapid["marks"], rapid["mark_refs"]) == (
        {"decided": "2026-04-15"},
        {"decided": f"{late}#3"},
    )
    # Sent on the due day Thu 16 Apr: met.
    rapid = clock_on(cli, store_url, met, "2026-05-01", "rapid_review")
    assert (rapid["status"], rapid["ended"]) == ("met", "2026-04-16")
    table = cli(["--store", store_url, "clocks", late, "--on", "2026-05-01"])
    assert table.exit_code == 0 and "decided 2026-04-15" in table.stdout


def test_a_rapid_review_never_sent_is_overdue_and_a_delay_justifies_it(
    store_url: str, cli: Cli
) -> None:
    case = "RR23-UNSENT"
    record_as_it_happened(
        store_url,
        [
            referral(case, "2026-03-23"),
            notified(case, "2026-03-24"),
            delayed(case, "2026-04-09"),
            decided(case, "2026-04-10"),
        ],
    )
    rapid = clock_on(cli, store_url, case, "2026-04-20", "rapid_review")
    assert (rapid["status"], rapid["ended"], rapid["justified"]) == ("overdue", None, True)
    assert rapid["marks"] == {"decided": "2026-04-10"}
    assert rapid["delay"]["ref"] == f"{case}#3"


def test_a_review_sent_before_the_notification_is_met_on_its_start_day() -> None:
    records = [
        {**referral("P-1", "2026-03-23"), "seq": 1},
        {**decided("P-1", "2026-03-24"), "seq": 2},
        {**sent("P-1", "2026-03-24"), "occurred_at": "2026-03-24T09:00", "seq": 3},
        {**notified("P-1", "2026-03-25"), "seq": 4},
    ]
    (rapid,) = [s for s in clock_states("P-1", "wt2023", records, d("2026-05-01"))
                if s.clock == "rapid_review"]  # fmt: skip
    assert (rapid.status, rapid.ended, rapid.flags) == (
        "met",
        d("2026-03-25"),
        ("decided-before-notification",),
    )
    assert [(m.label, m.day) for m in rapid.marks] == [("decided", d("2026-03-24"))]


# --- Ofsted told of a looked-after child's death --------------------------------------


def _looked_after_death(case: str) -> dict[str, Any]:
    return {**referral(case, "2025-12-23"), "harm": "death", "looked_after": True}


def test_ofsted_notification_across_christmas(store_url: str, cli: Cli) -> None:
    # Aware Tue 23 Dec 2025: 5 working days, skipping Christmas Day, Boxing Day and New
    # Year's Day, is Fri 2 Jan 2026.
    told, untold, other = "LAC-TOLD", "LAC-UNTOLD", "NOT-LAC"
    record_as_it_happened(
        store_url,
        [
            _looked_after_death(told),
            event(
                "IncidentNotified",
                told,
                "2026-01-02",
                recipients=["national-panel", "ofsted"],
            ),
        ],
    )
    record_as_it_happened(
        store_url,
        [
            _looked_after_death(untold),
            notified(untold, "2025-12-29"),  # the panel only: Ofsted not told
            event(
                "NotificationDeferred",
                untold,
                "2025-12-30",
                reason="The placing authority was not known until the new year.",
                approved_by="Northshire County Council",
            ),
            communicated(untold, "2026-01-07", "ofsted"),
        ],
    )
    record_as_it_happened(
        store_url,
        [{**referral(other, "2025-12-23"), "harm": "death"}, notified(other, "2025-12-24")],
    )
    clock = clock_on(cli, store_url, told, "2026-01-05", "ofsted_notification")
    assert (clock["started"], clock["due"], clock["ended"], clock["status"]) == (
        "2025-12-23",
        "2026-01-02",
        "2026-01-02",
        "met",
    )
    # Not told: running on New Year's Eve, overdue from Mon 5 Jan, justified by the
    # recorded deferral; told on Wed 7 Jan (a DecisionCommunicated to Ofsted): late.
    clock = clock_on(cli, store_url, untold, "2025-12-31", "ofsted_notification")
    assert (clock["status"], clock["days_left"]) == ("running", 2)
    clock = clock_on(cli, store_url, untold, "2026-01-05", "ofsted_notification")
    assert (clock["status"], clock["days_over"], clock["justified"]) == ("overdue", 3, True)
    assert clock["delay"]["reason"].startswith("The placing authority")
    clock = clock_on(cli, store_url, untold, "2026-02-01", "ofsted_notification")
    assert (clock["status"], clock["ended"], clock["justified"]) == ("late", "2026-01-07", True)
    # The notification to the panel was met (Mon 29 Dec, on time) and stays unjustified.
    panel_clock = clock_on(cli, store_url, untold, "2026-02-01", "notification")
    assert (panel_clock["status"], panel_clock["justified"]) == ("met", False)
    # A child who was not looked after: no Ofsted clock.
    assert clock_on(cli, store_url, other, "2026-02-01", "ofsted_notification") is None


# --- the partners answer the panel ----------------------------------------------------


def _answered(case: str, response: str, answer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        referral(case, "2026-02-27"),
        notified(case, "2026-03-02"),
        decided(case, "2026-03-13"),
        sent(case, "2026-03-13"),
        panel(case, "2026-03-24", response),
        *answer,
    ]


def test_panel_follow_up_across_easter(store_url: str, cli: Cli) -> None:
    # The panel disagreed on Tue 24 Mar 2026: 15 working days over Easter is Thu 16 Apr.
    record_as_it_happened(
        store_url,
        _answered("PF-MET", "disagree", [communicated("PF-MET", "2026-04-16", "national-panel")]),
    )
    record_as_it_happened(
        store_url, _answered("PF-LATE", "request-info", [sent("PF-LATE", "2026-04-17")])
    )
    record_as_it_happened(store_url, _answered("PF-OPEN", "disagree", []))
    record_as_it_happened(store_url, _answered("PF-AGREED", "agree", []))
    clock = clock_on(cli, store_url, "PF-MET", "2026-05-01", "panel_follow_up")
    assert (clock["started"], clock["due"], clock["ended"], clock["status"]) == (
        "2026-03-24",
        "2026-04-16",
        "2026-04-16",
        "met",
    )
    assert clock["start_ref"] == "PF-MET#5" and clock["end_ref"] == "PF-MET#6"
    clock = clock_on(cli, store_url, "PF-LATE", "2026-05-01", "panel_follow_up")
    assert (clock["status"], clock["ended"], clock["days_over"]) == ("late", "2026-04-17", 1)
    clock = clock_on(cli, store_url, "PF-OPEN", "2026-04-15", "panel_follow_up")
    assert (clock["status"], clock["days_left"]) == ("running", 1)
    clock = clock_on(cli, store_url, "PF-OPEN", "2026-04-20", "panel_follow_up")
    assert (clock["status"], clock["days_over"], clock["justified"]) == ("overdue", 4, False)
    # The panel agreed: nothing to answer.
    assert clock_on(cli, store_url, "PF-AGREED", "2026-05-01", "panel_follow_up") is None
    # The rapid review itself was met (sent on the day of the decision).
    assert clock_on(cli, store_url, "PF-OPEN", "2026-05-01", "rapid_review")["status"] == "met"


def test_a_revisited_decision_answers_the_panel_and_a_second_disagreement_does_not_restart() -> (
    None
):
    records = [{**e, "seq": i} for i, e in enumerate(_answered("P-1", "disagree", []), 1)]
    revisit = {**decided("P-1", "2026-04-02", outcome="no-review"), "seq": 6}
    again = {**panel("P-1", "2026-04-20", "disagree"), "seq": 7}
    states = {s.clock: s for s in clock_states("P-1", "wt2023", [*records, revisit, again],
                                               d("2026-06-01"))}  # fmt: skip
    follow_up = states["panel_follow_up"]
    assert (follow_up.status, follow_up.started, follow_up.ended) == (
        "met",
        d("2026-03-24"),
        d("2026-04-02"),
    )


# --- the final report, due ahead of publication ---------------------------------------


def _reviewed(case: str, *later: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        referral(case, "2025-11-03"),
        notified(case, "2025-11-04"),
        decided(case, "2025-11-10"),
        sent(case, "2025-11-10"),
        *later,
    ]


def test_final_report_is_due_seven_working_days_before_publication_across_easter(
    store_url: str, cli: Cli
) -> None:
    # Published Tue 14 Apr 2026: 7 working days before, over Easter, is Wed 1 Apr (Fri 3
    # Apr without the holidays).
    record_as_it_happened(
        store_url,
        _reviewed(
            "FR-MET",
            report_sent("FR-MET", "2026-04-01", "2026-04-14"),
            published("FR-MET", "2026-04-14"),
        ),
    )
    record_as_it_happened(
        store_url,
        _reviewed(
            "FR-LATE",
            report_sent("FR-LATE", "2026-04-02", "2026-04-14"),
            published("FR-LATE", "2026-04-14"),
        ),
    )
    record_as_it_happened(store_url, _reviewed("FR-NONE", published("FR-NONE", "2026-04-14")))
    # Sent Thu 2 Apr for Mon 20 Apr (due Thu 9 Apr), then published early on Tue 7 Apr.
    record_as_it_happened(
        store_url,
        _reviewed(
            "FR-EARLY",
            report_sent("FR-EARLY", "2026-04-02", "2026-04-20"),
            published("FR-EARLY", "2026-04-07"),
        ),
    )
    clock = clock_on(cli, store_url, "FR-MET", "2026-05-01", "final_report")
    assert (clock["started"], clock["due"], clock["ended"], clock["status"]) == (
        "2026-04-01",
        "2026-04-01",
        "2026-04-01",
        "met",
    )
    assert (clock["kind"], clock["due_before"]) == ("lead", "2026-04-14")
    # Before publication, the planned day is the one it is due ahead of.
    clock = clock_on(cli, store_url, "FR-MET", "2026-04-02", "final_report")
    assert (clock["status"], clock["due_before"]) == ("met", "2026-04-14")
    clock = clock_on(cli, store_url, "FR-LATE", "2026-05-01", "final_report")
    assert (clock["status"], clock["days_over"]) == ("late", 1)
    # Published with no report recorded as sent: no final-report clock (the record cannot
    # say, as for every case recorded before the entry existed, the shared scenario's).
    assert clock_on(cli, store_url, "FR-NONE", "2026-04-15", "final_report") is None
    assert clock_on(cli, store_url, "FR-NONE", "2026-04-13", "final_report") is None
    # On time for the planned day, late for the actual, earlier, publication.
    clock = clock_on(cli, store_url, "FR-EARLY", "2026-04-06", "final_report")
    assert (clock["status"], clock["due"], clock["due_before"]) == (
        "met",
        "2026-04-09",
        "2026-04-20",
    )
    clock = clock_on(cli, store_url, "FR-EARLY", "2026-04-08", "final_report")
    assert (clock["status"], clock["due"], clock["due_before"]) == (
        "late",
        "2026-03-25",
        "2026-04-07",
    )


# --- a deferred publication justifies a late one --------------------------------------


def test_a_deferred_publication_justifies_a_late_review_completion(
    store_url: str, cli: Cli
) -> None:
    case = "PUB-DEFERRED"
    record_as_it_happened(
        store_url,
        [
            referral(case, "2025-08-26"),
            notified(case, "2025-08-27"),
            decided(case, "2025-09-01"),
            sent(case, "2025-09-01"),
            event(
                "PublicationDeferred",
                case,
                "2026-02-20",
                reason="Criminal proceedings are under way.",
                trigger="criminal-proceedings",
                expected_by="2026-06-30",
                approved_by="Northshire County Council",
            ),
            report_sent(case, "2026-04-23", "2026-05-05"),
            published(case, "2026-05-05"),
        ],
    )
    rows = both_ways(cli, store_url, case, "2026-06-01")[0]
    completion = rows["review_completion"]
    assert (completion["due"], completion["ended"], completion["status"]) == (
        "2026-03-01",
        "2026-05-05",
        "late",
    )
    assert completion["justified"] is True
    assert completion["delay"]["type"] == "PublicationDeferred"
    assert completion["delay"]["expected_by"] == "2026-06-30"
    # 7 working days ahead of Tue 5 May, without the early May bank holiday (Mon 4 May),
    # is Thu 23 Apr: sent that day, met.
    report = rows["final_report"]
    assert (report["due"], report["status"]) == ("2026-04-23", "met")


# --- the index's facts keep the new features ------------------------------------------


def test_facts_keep_marks_and_the_day_a_lead_clock_is_due_ahead_of() -> None:
    events = _reviewed(
        "P-1",
        report_sent("P-1", "2026-04-02", "2026-04-20"),
        published("P-1", "2026-04-07"),
    )
    records = [{**e, "seq": i} for i, e in enumerate(events, 1)]
    facts = case_clock_facts("P-1", "wt2023", records)
    on = date(2026, 6, 1)
    assert states_from_facts(facts, on) == clock_states("P-1", "wt2023", records, on)
    assert facts.clocks["final_report"].due_before == d("2026-04-07")
    assert [m.label for m in facts.clocks["rapid_review"].marks] == ["decided"]


# --- the rule in force on the clock's start day -----------------------------------------

CHANGED_PACK = """
regime = "wt2023"
title = "A pack whose notification limit changed on 1 April 2026"

[[clocks]]
name = "notification"
title = "Notified"
start = { event = "CaseReferred", field = "aware_date" }
end = { event = "IncidentNotified", where = { field = "recipients", contains = "national-panel" } }
limit = 5
unit = "working_days"
source = "test"
effective_to = 2026-03-31

[[clocks]]
name = "notification"
title = "Notified"
start = { event = "CaseReferred", field = "aware_date" }
end = { event = "IncidentNotified", where = { field = "recipients", contains = "national-panel" } }
limit = 10
unit = "working_days"
source = "test"
effective_from = 2026-04-01
"""


def test_each_case_is_judged_by_the_rule_in_force_when_its_clock_started() -> None:
    from projections.assess.rules import loads_rule_pack

    pack = loads_rule_pack(CHANGED_PACK)
    before = [
        {**referral("P-1", "2026-03-23"), "seq": 1},
        {**notified("P-1", "2026-04-07"), "seq": 2},
    ]
    after = [
        {**referral("P-2", "2026-04-07"), "seq": 1},
        {**notified("P-2", "2026-04-20"), "seq": 2},
    ]
    on = d("2026-06-01")
    (old,) = clock_states("P-1", "wt2023", before, on, pack=pack)
    (new,) = clock_states("P-2", "wt2023", after, on, pack=pack)
    # Aware Mon 23 Mar, 5 working days: Mon 30 Mar; notified Tue 7 Apr (after Easter): late,
    # though the 10-day rule in force by then would have had it on time.
    assert (old.rule.limit, old.due, old.status) == (5, d("2026-03-30"), "late")
    # Aware Tue 7 Apr, 10 working days: Tue 21 Apr; notified Mon 20 Apr: met.
    assert (new.rule.limit, new.due, new.status) == (10, d("2026-04-21"), "met")
