"""Issue 13, "Answer right, and say why" (items 5 to 11): each answer an inspector reads,
as a scenario on both stores through the real CLI.  Every test here failed on the code
before the issue was taken up.

* 5: a delay recorded after the decision does not justify it (clocks, QM2 q5, ``why``).
* 6: a review stood down by a later no-review decision is ``withdrawn``; a rapid review
  decided before the notification is ``met`` on its first day, flagged.
* 7: a reply closes its request whatever the case or spacing of the agency's name.
* 8: open requests past their due date say so (``overdue``, ``days_overdue``).
* 9: QM2 q6 never counts a negation as evidence, and says when it read free text.
* 10: the ``why`` flags an inspector expects.
* 11: ``timeline --on D`` lists only what occurred up to D, corrections included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InputError
from projections.assess.clocks import clock_states, summary_of
from projections.fold.when import end_of_day, format_instant
from projections.index.clock_answers import states_from_facts
from projections.index.clock_facts import case_clock_facts, summary_from_facts
from tests.conftest import CliResult, FixedClock, open_ledger
from tests.test_clock_index import histories, stored
from tests.test_clocks import (
    by_clock,
    decided,
    delayed,
    event,
    notified,
    ok,
    record,
    record_as_it_happened,
    referral,
)

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]
PARTNERS = ["Northshire County Council", "Northshire ICB", "Northshire Police"]


def quality(cli: Cli, url: str, case: str, *args: str) -> dict[int, dict[str, Any]]:
    return {row["question"]: row for row in ok(cli, url, "quality", case, *args)}


def late_case(case: str) -> list[dict[str, Any]]:
    """Aware Mon 2 Feb 2026, notified Wed 4 Feb (rapid review due Wed 25 Feb), a delay
    approved on Fri 20 Feb, decided and sent to the panel Fri 13 Mar: 16 days late."""
    return [
        referral(case, "2026-02-02"),
        notified(case, "2026-02-04"),
        delayed(case, "2026-02-20"),
        decided(case, "2026-03-13", decided_by=PARTNERS),
        event("RapidReviewSent", case, "2026-03-13", to=["national-panel"]),
    ]


# --- 5: a delay recorded after the decision cannot justify it ----------------------------


def test_a_delay_recorded_after_the_decision_does_not_justify_it(
    store_url: str, clock: FixedClock, cli: Cli, tmp_path: Path
) -> None:
    record_as_it_happened(store_url, late_case("IN-TIME"))
    record(store_url, clock, late_case("AFTER"))  # every entry written on 1 Sep 2026
    for case in ("AFTER", "IN-TIME", None):  # one case folded; every case, indexed
        args = ["clocks", case] if case is not None else ["clocks"]
        rows = ok(cli, store_url, *args, "--on", "2026-09-02")
        if case == "IN-TIME":
            rows = rows + ok(cli, store_url, "clocks", "AFTER", "--on", "2026-09-02")
        if case == "AFTER":
            rows = rows + ok(cli, store_url, "clocks", "IN-TIME", "--on", "2026-09-02")
        rapid = by_clock(rows, "AFTER")["rapid_review"]
        assert (rapid["status"], rapid["justified"], rapid["delay"]) == ("late", False, None)
        assert rapid["delay_refs"] == []
        (listed,) = rapid["delays_recorded_late"]
        assert listed["ref"] == "AFTER#3"
        assert listed["recorded_at"].startswith("2026-09-01")
        assert rapid["not_justified_reason"].startswith(
            "delay recorded after the rapid review ended"
        )
        kept = by_clock(rows, "IN-TIME")["rapid_review"]
        assert (kept["status"], kept["justified"]) == ("late", True)
        assert kept["delay"]["ref"] == "IN-TIME#3"
        assert kept["delays_recorded_late"] == [] and kept["not_justified_reason"] is None
    # QM2 question 5 answers from the same rule.
    after = quality(cli, store_url, "AFTER")[5]
    assert after["answer"] == "no"
    assert "recorded after the decision" in after["explanation"]
    assert "AFTER#3" in after["evidence"]
    assert quality(cli, store_url, "IN-TIME")[5]["answer"] == "yes"
    # And why flags it.
    flags = ok(cli, store_url, "why", "AFTER")["flags"]
    assert "delay-approved-after-the-fact" in flags
    assert "delay-approved-after-the-fact" not in ok(cli, store_url, "why", "IN-TIME")["flags"]
    # Before the decision, on 1 Mar: the late-written delay was not on record that day.
    overdue = by_clock(ok(cli, store_url, "clocks", "AFTER", "--on", "2026-03-01"))
    assert (overdue["rapid_review"]["status"], overdue["rapid_review"]["justified"]) == (
        "overdue",
        False,
    )
    people = cli(["--store", store_url, "clocks", "AFTER", "--on", "2026-09-02"])
    assert people.exit_code == 0, people.stderr
    assert "recorded after the rapid review ended" in " ".join(people.stdout.split())
    # The inspector's report says so too.
    bundle = tmp_path / "bundle"
    exported = cli(["--store", store_url, "export", "AFTER", "--out", str(bundle)])
    assert exported.exit_code == 0, exported.stderr
    report = (bundle / "report.html").read_text(encoding="utf-8")
    assert "not justified: delay recorded after the rapid review ended" in report
    assert "delay-approved-after-the-fact" in report


# --- 6: clocks that can never end ----------------------------------------------------------


def test_a_review_stood_down_by_a_no_review_decision_is_withdrawn(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    case = "STOOD-DOWN"
    record(
        store_url,
        clock,
        [
            referral(case, "2026-02-02"),
            notified(case, "2026-02-04"),
            decided(case, "2026-02-20", "review", decided_by=PARTNERS),
            decided(case, "2026-04-10", "no-review", decided_by=PARTNERS),
            event("RapidReviewSent", case, "2026-02-20", to=["national-panel"]),
        ],
    )
    # Six months after the review decision (due 20 Aug), the review would be overdue.
    for args in (["clocks", case], ["clocks"]):
        review = by_clock(ok(cli, store_url, *args, "--on", "2026-12-01"))["review_completion"]
        assert (review["status"], review["ended"], review["end_ref"]) == (
            "withdrawn",
            "2026-04-10",
            f"{case}#4",
        )
        assert review["justified"] is False and review["days_over"] is None
    # Before the stand-down it ran.
    review = by_clock(ok(cli, store_url, "clocks", case, "--on", "2026-04-09"))
    assert review["review_completion"]["status"] == "running"
    # status never lists it as overdue, from the fold or the index.
    assert ok(cli, store_url, "status", case, "--on", "2026-12-01")["overdue"] == []
    assert ok(cli, store_url, "status", case)["overdue"] == []
    assert ok(cli, store_url, "status")[0]["overdue"] == []
    text = cli(["--store", store_url, "clocks", case, "--on", "2026-12-01"]).stdout
    assert "withdrawn" in text
    # Decided on again (review), the review is back on: it runs from its first start,
    # so it is overdue after 20 August, never hidden as withdrawn.
    record(store_url, clock, [decided(case, "2026-05-01", "review", decided_by=PARTNERS)])
    for args in (["clocks", case], ["clocks"]):
        review = by_clock(ok(cli, store_url, *args, "--on", "2026-12-01"))["review_completion"]
        assert (review["status"], review["started"], review["ended"]) == (
            "overdue",
            "2026-02-20",
            None,
        )
    assert ok(cli, store_url, "status", case, "--on", "2026-12-01")["overdue"] == [
        "review_completion"
    ]
    review = by_clock(ok(cli, store_url, "clocks", case, "--on", "2026-04-20"))
    assert review["review_completion"]["status"] == "withdrawn"  # as things stood then


def test_a_rapid_review_decided_before_the_notification_is_met_on_its_first_day(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    case = "EARLY"
    record(
        store_url,
        clock,
        [
            referral(case, "2026-02-02"),
            decided(case, "2026-02-03", "no-review", decided_by=PARTNERS),
            event("RapidReviewSent", case, "2026-02-03", to=["national-panel"]),
            notified(case, "2026-02-05"),
        ],
    )
    for args in (["clocks", case], ["clocks"]):
        rapid = by_clock(ok(cli, store_url, *args, "--on", "2026-06-01"))["rapid_review"]
        assert (rapid["status"], rapid["started"], rapid["ended"], rapid["end_ref"]) == (
            "met",
            "2026-02-05",
            "2026-02-05",
            f"{case}#3",
        )
        assert rapid["marks"] == {"decided": "2026-02-03"}
        assert rapid["flags"] == ["decided-before-notification"]
    assert ok(cli, store_url, "status", case, "--on", "2026-06-01")["overdue"] == []
    assert ok(cli, store_url, "status")[0]["overdue"] == []
    why = ok(cli, store_url, "why", case)
    assert "decided-before-notification" in why["flags"]


# --- 7: replies close their requests whatever the spelling --------------------------------


def test_a_reply_closes_its_request_whatever_the_case_or_spacing_of_the_agency(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    case = "SPELLING"
    record(
        store_url,
        clock,
        [
            referral(case, "2026-02-02"),
            notified(case, "2026-02-04"),
            event(
                "InformationRequested",
                case,
                "2026-02-04",
                agency="Northshire Police",
                asked_for="chronology",
                request_id="R1",
                due="2026-02-11",
            ),
            event(
                "InformationReceived",
                case,
                "2026-02-09",
                agency="  northshire   POLICE ",
                involved=True,
                summary="Two call-outs in 2025.",
            ),
            decided(case, "2026-02-20", decided_by=PARTNERS),
        ],
    )
    assert ok(cli, store_url, "status", case)["open_requests"] == []
    assert ok(cli, store_url, "status")[0]["open_requests"] == []  # the index
    assert "decided-with-open-requests" not in ok(cli, store_url, "why", case)["flags"]
    assert "unanswered" not in quality(cli, store_url, case)[1]["explanation"]
    # The aggregate closed it too: a second reply to R1 is refused.
    led = open_ledger(store_url, clock)
    again = event(
        "InformationReceived",
        case,
        "2026-02-10",
        agency="Northshire Police",
        request_id="R1",
        involved=True,
        summary="Again.",
    )
    with pytest.raises(InputError, match="not an open request"):
        led.record_lines([orjson.dumps(again)], led.recorder_for())


# --- 8: overdue agency replies are visible -------------------------------------------------


def test_open_requests_past_due_are_overdue_in_working_days(
    store_url: str, clock: FixedClock, cli: Cli, tmp_path: Path
) -> None:
    from projections.queries import cases as queries

    case = "CHASE"
    record(
        store_url,
        clock,
        [
            referral(case, "2026-02-02"),
            notified(case, "2026-02-04"),
            event(
                "InformationRequested",
                case,
                "2026-02-04",
                agency="Northshire ICB",
                asked_for="chronology",
                request_id="R1",
                due="2026-02-10",  # a Tuesday
            ),
            event(
                "InformationRequested",
                case,
                "2026-02-04",
                agency="Northshire Schools",
                asked_for="summary",
                request_id="R2",
            ),
        ],
    )

    def requests(*args: str) -> list[tuple[str, bool, int]]:
        answer = ok(cli, store_url, "status", case, *args)
        return [(r["request_id"], r["overdue"], r["days_overdue"]) for r in answer["open_requests"]]

    assert requests("--on", "2026-02-10") == [("R1", False, 0), ("R2", False, 0)]
    # Wed, Thu and Fri have passed by Saturday; a request without a due date is never late.
    assert requests("--on", "2026-02-14") == [("R1", True, 3), ("R2", False, 0)]
    assert requests("--on", "2026-02-16") == [("R1", True, 4), ("R2", False, 0)]
    assert requests()[0][1] is True  # now, long after
    # The index's answer (every case, no time given) equals the fold's.
    moment = datetime(2026, 2, 14, 12, 0, tzinfo=UTC)
    led = open_ledger(store_url, clock)
    assert queries.statuses(led, now=moment) == [queries.status(led, case, now=moment)]
    (row,) = queries.statuses(led, now=moment)
    assert row["open_requests"][0]["days_overdue"] == 3
    people = cli(["--store", store_url, "status", case, "--on", "2026-02-14"])
    assert "3 working days" in people.stdout
    listing = cli(["--store", store_url, "status"])
    assert "1 overdue" in " ".join(listing.stdout.split())
    # And the inspector's report lists the open requests, the late one marked.
    bundle = tmp_path / "bundle"
    exported = cli(["--store", store_url, "export", case, "--out", str(bundle)])
    assert exported.exit_code == 0, exported.stderr
    report = (bundle / "report.html").read_text(encoding="utf-8")
    section = report[report.index("Open information requests") :]
    section = section[: section.index("</table>")]
    assert section.count('<span class="tag overdue">overdue</span>') == 1
    assert f"{case}#3" in section and f"{case}#4" in section


# --- 9: QM2 answers from structure, not keywords -------------------------------------------


def test_q6_a_negation_is_never_evidence_of_challenge(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    cases = {
        "NEGATED": "No peer challenge was sought; the partners were agreed.",
        "MENTIONED": "Peer discussion with another chair was held informally.",
    }
    for case, rationale in cases.items():
        record(
            store_url,
            clock,
            [
                referral(case, "2026-02-02"),
                notified(case, "2026-02-04"),
                decided(case, "2026-02-20", decided_by=PARTNERS, rationale=rationale),
            ],
        )
    negated = quality(cli, store_url, "NEGATED")[6]
    assert negated["answer"] == "no"
    assert "negation" in negated["explanation"]
    mentioned = quality(cli, store_url, "MENTIONED")[6]
    assert mentioned["answer"] == "partly"
    assert "free text" in mentioned["explanation"]
    assert mentioned["evidence"] == ["MENTIONED#3"]


# --- 10: the flags an inspector expects ----------------------------------------------------


def test_flags_relies_on_later_evidence_contrary_and_not_all_partners(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    case = "FLAGS"
    record(
        store_url,
        clock,
        [
            referral(case, "2026-02-02"),
            notified(case, "2026-02-04"),
            event(
                "RecommendationMade",
                case,
                "2026-02-16",
                to="partners",
                outcome="review",
                rationale="Reg 11 (a) and (c) are met.",
            ),
            # Recorded before the decision, but dated after it.
            event("ContextRecorded", case, "2026-02-25", topic="other", summary="A later note."),
            decided(
                case,
                "2026-02-20",
                "no-review",
                decided_by=["Northshire County Council", "Northshire Police"],
                relied_on=[f"{case}#3", f"{case}#4"],
            ),
        ],
    )
    why = ok(cli, store_url, "why", case)
    assert {
        "relies-on-later-evidence",
        "contrary-to-recommendation",
        "not-all-partners-decided",
    } <= set(why["flags"])
    said = {f["flag"]: f["explanation"] for f in why["flag_explanations"]}
    assert f"{case}#4" in said["relies-on-later-evidence"]
    assert f"{case}#3" not in said["relies-on-later-evidence"]
    assert "health" in said["not-all-partners-decided"]
    assert f"{case}#3" in said["contrary-to-recommendation"]
    # A revisit is measured only against a recommendation made for it: none here.
    record(
        store_url,
        clock,
        [decided(case, "2026-03-10", "no-review", decided_by=PARTNERS, relied_on=[f"{case}#3"])],
    )
    assert "contrary-to-recommendation" not in ok(cli, store_url, "why", case)["flags"]
    # The same decision by all three partners, as recommended, on what came before it.
    good = "GOOD"
    record(
        store_url,
        clock,
        [
            referral(good, "2026-02-02"),
            notified(good, "2026-02-04"),
            event(
                "RecommendationMade",
                good,
                "2026-02-16",
                to="partners",
                outcome="review",
                rationale="Reg 11 (a) and (c) are met.",
            ),
            decided(good, "2026-02-20", "review", decided_by=PARTNERS, relied_on=[f"{good}#3"]),
        ],
    )
    flags = set(ok(cli, store_url, "why", good)["flags"])
    assert not flags & {
        "relies-on-later-evidence",
        "contrary-to-recommendation",
        "not-all-partners-decided",
        "decided-before-notification",
        "delay-approved-after-the-fact",
    }


def test_wt2015_abuse_or_neglect_unclear_still_makes_a_review_mandatory(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    case = "SCR-UNCLEAR"
    findings = {
        "abuse_or_neglect": {"finding": "unclear", "reason": "Neglect suspected, not proven."},
        "child_died": {"finding": "met", "reason": "The child died."},
        "seriously_harmed": {"finding": "not-met", "reason": "The death limb applies."},
        "agency_concern": {"finding": "not-met", "reason": "Agencies shared information."},
    }
    record(
        store_url,
        clock,
        [
            referral(case, "2016-10-03", "wt2015"),
            notified(case, "2016-10-05", "wt2015"),
            {
                **decided(case, "2016-10-20", "no-review", "wt2015", decided_by=["LSCB chair"]),
                "criteria": findings,
            },
        ],
    )
    why = ok(cli, store_url, "why", case)
    assert "mandatory-criteria-no-review" in why["flags"]
    said = {f["flag"]: f["explanation"] for f in why["flag_explanations"]}
    assert "unclear" in said["mandatory-criteria-no-review"]
    assert "not-all-partners-decided" not in why["flags"]  # wt2015: the chair decides
    assert "mandatory" in quality(cli, store_url, case)[7]["explanation"]


# --- 11: timeline --on D -------------------------------------------------------------------


def test_timeline_on_lists_only_what_occurred_up_to_that_day(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    case = "TL-1"
    refs = record(
        store_url,
        clock,
        [
            referral(case, "2026-02-02"),
            notified(case, "2026-02-04"),
            event(
                "InformationReceived",
                case,
                "2026-02-12",
                agency="Northshire ICB",
                involved=True,
                summary="GP records.",
            ),
            event(
                "EntryCorrected",
                case,
                "2026-03-20",
                corrects=f"{case}#3",
                changes={"occurred_at": "2026-02-10"},
                reason="The reply was dated 10 February.",
            ),
        ],
    )
    assert [r["ref"] for r in ok(cli, store_url, "timeline", case)] == refs
    on = ok(cli, store_url, "timeline", case, "--on", "2026-03-01")
    assert [r["ref"] for r in on] == refs[:3]  # the correction of 20 March is not listed
    assert on[2]["corrected"] is True and on[2]["occurred_at"] == "2026-02-10"
    csv = cli(["--store", store_url, "timeline", case, "--on", "2026-03-01", "--csv"])
    assert csv.stdout.count("\n") == 4  # header and three entries
    people = cli(["--store", store_url, "timeline", case, "--on", "2026-03-01"])
    assert "EntryCorrected" not in people.stdout


# --- the index's clock facts give the same answers -----------------------------------------


@st.composite
def recorded_histories(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], date]:
    """The clock-facts test's random histories, each entry also recorded some days after
    it happened (or on the day), so that delays sometimes come too late; the revisited
    decisions and notifications in any order give withdrawn and early-ended clocks."""
    from ledger.catalogue.models import occurred_day

    regime, records, on = draw(histories())
    for body in records:
        lag = draw(st.sampled_from([0, 0, 1, 30]))
        day = occurred_day(body["occurred_at"]) + timedelta(days=lag)
        body["recorded_at"] = format_instant(end_of_day(day) - timedelta(hours=6))
    return regime, records, on


@settings(max_examples=300, deadline=None)
@given(history=recorded_histories())
def test_clock_facts_equal_the_clocks_with_recording_times(
    history: tuple[str, list[dict[str, Any]], date],
) -> None:
    regime, records, on = history
    facts = stored(case_clock_facts("F-1", regime, records))
    expected = clock_states("F-1", regime, records, on, include_not_started=True)
    got = states_from_facts(facts, on, include_not_started=True)
    assert [s.as_dict() for s in got] == [s.as_dict() for s in expected]
    started = [s for s in expected if s.status != "not-started"]
    assert summary_from_facts(facts, on) == (summary_of(started) if started else None)
    for state in expected:
        assert not (state.justified and state.late_delays and state.delay is None)
        if state.status == "withdrawn":
            assert state.rule.withdrawn_by is not None and state.ended is not None
        if state.flags:
            assert state.status == "met" and state.ended == state.started
