"""The read side through the real CLI on both stores: ``status``, ``timeline`` and ``why``
as the record stood at any time (``--as-of``) about the world at any time (``--on``),
corrections applied, and the scenario's expected answers (``shared/scenarios/README.md``).

Entries are recorded with the ``clock`` fixture so ``recorded_at`` is under the test's
control; queries go through ``caseledger`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

from ledger.catalogue import models as catalogue
from tests.conftest import CliResult, FixedClock, open_ledger

Cli = Callable[..., CliResult]
CASE = "RR-2026-004"


def ok(result: CliResult) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.json()


def query(cli: Cli, url: str, *args: str) -> Any:
    return ok(cli(["--store", url, *args, "--json"]))


def record(url: str, clock: FixedClock, *lines: dict[str, Any]) -> list[str]:
    """Record lines at the clock's current time; return their refs."""
    led = open_ledger(url, clock)
    try:
        receipts = led.record_lines([orjson.dumps(x) for x in lines], led.recorder_for())
    finally:
        led.close()
    return [r.ref for r in receipts]


def at(clock: FixedClock) -> str:
    """The clock's time in the form --as-of takes."""
    return clock.now.isoformat()


def referral(case: str, regime: str = "wt2023", **extra: Any) -> dict[str, Any]:
    return {
        "type": "CaseReferred",
        "case": case,
        "occurred_at": "2026-05-04",
        "regime": regime,
        "subject": f"Child {case}",
        "incident_date": "2026-05-01",
        "aware_date": "2026-05-04",
        "harm": "death",
        "abuse_or_neglect": "known",
        "home_area": "Northshire",
        "referrer": "Northshire Police",
        "route": "statutory",
        "summary": "A test case.",
        # the test dates are 2026: an earlier regime than wt2023 is a transitional case
        **({"transitional": True} if regime != "wt2023" else {}),
        **extra,
    }


CRITERIA = catalogue.CRITERIA  # every criterion of each regime


def decision(
    case: str,
    outcome: str,
    occurred_at: str,
    *,
    regime: str = "wt2023",
    relied_on: list[str] | None = None,
    findings: dict[str, str] | None = None,
    rationale: str = "Reasons given.",
) -> dict[str, Any]:
    found = {name: "met" for name in CRITERIA[regime]} | (findings or {})
    line: dict[str, Any] = {
        "type": "DecisionMade",
        "case": case,
        "occurred_at": occurred_at,
        "outcome": outcome,
        "decided_by": ["Northshire County Council", "Northshire ICB", "Northshire Police"],
        "criteria": {k: {"finding": v, "reason": f"{k} {v}"} for k, v in found.items()},
        "rationale": rationale,
    }
    if outcome in ("review", "other-review"):
        line["nature"] = "LCSPR, systems method."
    if relied_on is not None:
        line["relied_on"] = relied_on
    return line


def request(case: str, agency: str, occurred_at: str, due: str = "2026-05-20") -> dict[str, Any]:
    return {
        "type": "InformationRequested",
        "case": case,
        "occurred_at": occurred_at,
        "agency": agency,
        "asked_for": "minimum-data",
        "due": due,
    }


def reply(case: str, agency: str, occurred_at: str) -> dict[str, Any]:
    return {
        "type": "InformationReceived",
        "case": case,
        "occurred_at": occurred_at,
        "agency": agency,
        "involved": True,
        "summary": f"{agency} knew the family.",
    }


# --- the scenario's answers -----------------------------------------------------------


def test_scenario_status_now(scenario_store: str, cli: Cli) -> None:
    status = query(cli, scenario_store, "status", CASE)
    assert status["case"] == CASE
    assert status["regime"] == "wt2023"
    assert status["stage"] == "published"
    assert status["decision"]["ref"] == f"{CASE}#19"
    assert status["decision"]["outcome"] == "review"
    assert status["decision"]["occurred_at"] == "2026-03-06"
    assert status["open_requests"] == []
    # Published on 28 Aug; no final report recorded as sent, so no final-report clock.
    assert status["overdue"] == []


def test_scenario_status_on_24_february_only_education_open(scenario_store: str, cli: Cli) -> None:
    status = query(cli, scenario_store, "status", CASE, "--on", "2026-02-24")
    assert [r["agency"] for r in status["open_requests"]] == ["Northshire Education"]
    request = status["open_requests"][0]
    assert set(request) >= {"agency", "request_id", "due"}
    assert request["due"] == "2026-02-20"
    assert request["request_id"]
    assert status["decision"] is None
    assert status["stage"] == "gathering-information"


def test_scenario_status_on_5_march_has_no_decision(scenario_store: str, cli: Cli) -> None:
    status = query(cli, scenario_store, "status", CASE, "--on", "2026-03-05")
    assert status["decision"] is None
    assert status["stage"] == "recommended"
    assert status["open_requests"] == []


def test_scenario_why(scenario_store: str, cli: Cli) -> None:
    why = query(cli, scenario_store, "why", CASE)
    assert set(why) >= {
        "case",
        "as_of",
        "decision",
        "superseded",
        "known_then",
        "relied_on",
        "learned_since",
        "flags",
    }
    decision = why["decision"]
    assert decision["ref"] == f"{CASE}#19"
    assert decision["outcome"] == "review"
    assert set(decision) >= {
        "ref",
        "outcome",
        "occurred_at",
        "recorded_at",
        "decided_by",
        "rationale",
        "criteria",
        "factors",
        "nature",
    }
    assert decision["criteria"]["abuse_or_neglect"]["finding"] == "met"
    assert decision["factors"]["learning"].startswith("High")
    assert why["flags"] == []
    assert why["relied_on"] == [f"{CASE}#{n}" for n in (9, 10, 14, 18)]
    assert why["known_then"] == [f"{CASE}#{n}" for n in range(1, 19)]
    assert why["learned_since"] == [f"{CASE}#{n}" for n in (20, 21, 22)]
    assert why["superseded"] == []
    assert why["case"] == CASE


def test_scenario_why_for_people(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "why", CASE])
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    for expected in (
        "review",
        "Northshire County Council",
        "Reg 11 (a), (b) and (c) are met",
        "abuse or neglect",
        "relied on",
        "No flags",
    ):
        assert expected in text


def test_scenario_timeline(scenario_store: str, cli: Cli) -> None:
    rows = query(cli, scenario_store, "timeline", CASE)
    assert len(rows) == 22
    assert set(rows[0]) >= {"ref", "type", "occurred_at", "recorded_at", "actor", "corrected"}
    assert rows[0]["type"] == "CaseReferred"
    assert rows[-1]["type"] == "ReportPublished"
    assert not any(r["corrected"] for r in rows)
    days = [r["occurred_at"][:10] for r in rows]
    assert days == sorted(days)


# --- why: known then, learned since, as of ---------------------------------------------


def test_backdated_reply_is_learned_since_not_known_then(
    store_url: str, cli: Cli, clock: FixedClock
) -> None:
    case = "SCR-2026-101"
    record(
        store_url,
        clock,
        referral(case),
        request(case, "Northshire Police", "2026-05-05"),
        request(case, "Northshire ICB", "2026-05-05"),
        reply(case, "Northshire ICB", "2026-05-08"),
    )
    clock.advance(days=1)
    (decided,) = record(
        store_url, clock, decision(case, "review", "2026-05-12", relied_on=[f"{case}#4"])
    )
    before_reply = at(clock)
    clock.advance(days=2)
    # The police reply arrives late in the record, dated before the decision.
    (late,) = record(store_url, clock, reply(case, "Northshire Police", "2026-05-10"))

    why = query(cli, store_url, "why", case)
    assert why["decision"]["ref"] == decided
    assert late in why["learned_since"]
    assert late not in why["known_then"]
    assert late in why["learned_since_backdated"]
    assert why["known_then"] == [f"{case}#{n}" for n in (1, 2, 3, 4)]
    # In the world the police had replied before the decision: no open request then.
    assert "decided-with-open-requests" not in why["flags"]

    then = query(cli, store_url, "why", case, "--as-of", before_reply)
    assert then["learned_since"] == []
    assert "decided-with-open-requests" in then["flags"]
    assert then["as_of"] == datetime.fromisoformat(before_reply).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_why_as_of_before_the_decision_was_recorded_is_null(
    store_url: str, cli: Cli, clock: FixedClock
) -> None:
    case = "SCR-2026-102"
    before_case = at(clock)
    clock.advance(minutes=5)
    record(store_url, clock, referral(case))
    clock.advance(hours=1)
    before_decision = at(clock)
    clock.advance(hours=1)
    record(store_url, clock, decision(case, "no-review", "2026-05-06", relied_on=[]))

    assert query(cli, store_url, "why", case)["decision"]["ref"] == f"{case}#2"
    then = query(cli, store_url, "why", case, "--as-of", before_decision)
    assert then["decision"] is None
    assert then["superseded"] == [] and then["relied_on"] == []
    assert then["known_then"] == [] and then["learned_since"] == [] and then["flags"] == []
    # Before the case was in the record at all: a clear usage error, nothing on stdout.
    result = cli(["--store", store_url, "why", case, "--as-of", before_case, "--json"])
    assert result.exit_code == 2
    assert case in result.stderr and result.stdout == ""


def test_revisited_decision_supersedes_and_as_of_between_shows_the_first(
    store_url: str, cli: Cli, clock: FixedClock
) -> None:
    case = "SCR-2026-103"
    record(store_url, clock, referral(case))
    clock.advance(days=1)
    (first,) = record(store_url, clock, decision(case, "no-review", "2026-05-20", relied_on=[]))
    clock.advance(days=1)
    between = at(clock)
    clock.advance(days=1)
    (second,) = record(
        store_url, clock, decision(case, "review", "2026-06-15", relied_on=[f"{case}#1"])
    )

    now = query(cli, store_url, "why", case)
    assert now["decision"]["ref"] == second
    assert now["decision"]["outcome"] == "review"
    assert now["superseded"] == [first]
    assert first in now["known_then"]

    then = query(cli, store_url, "why", case, "--as-of", between)
    assert then["decision"]["ref"] == first
    assert then["decision"]["outcome"] == "no-review"
    assert then["superseded"] == []

    status_then = query(cli, store_url, "status", case, "--as-of", between)
    assert status_then["decision"]["ref"] == first
    # The world on 1 June: the first decision had been made, the second not yet.
    status_on = query(cli, store_url, "status", case, "--on", "2026-06-01")
    assert status_on["decision"]["ref"] == first


def test_backdated_decision_does_not_take_force(
    store_url: str, cli: Cli, clock: FixedClock
) -> None:
    case = "SCR-2026-104"
    record(store_url, clock, referral(case))
    (made,) = record(store_url, clock, decision(case, "review", "2026-06-10", relied_on=[]))
    clock.advance(days=3)
    (backdated,) = record(store_url, clock, decision(case, "no-review", "2026-06-01", relied_on=[]))
    why = query(cli, store_url, "why", case)
    assert why["decision"]["ref"] == made
    assert why["superseded"] == [backdated]
    assert backdated in why["learned_since"]


# --- corrections ----------------------------------------------------------------------


def test_correction_changes_timeline_now_not_as_of_before(
    store_url: str, cli: Cli, clock: FixedClock
) -> None:
    case = "SCR-2026-105"
    record(
        store_url,
        clock,
        referral(case),
        request(case, "Northshire Police", "2026-05-05"),
        reply(case, "Northshire Police", "2026-05-07"),
    )
    clock.advance(days=1)
    before_correction = at(clock)
    original = query(cli, store_url, "timeline", case)
    assert [r["ref"] for r in original] == [f"{case}#{n}" for n in (1, 2, 3)]
    clock.advance(days=1)
    (fix,) = record(
        store_url,
        clock,
        {
            "type": "EntryCorrected",
            "case": case,
            "occurred_at": "2026-05-09",
            "corrects": f"{case}#2",
            "changes": {"occurred_at": "2026-05-08", "agency": "Northshire ICB"},
            "reason": "Mis-keyed date and agency.",
        },
    )

    now = query(cli, store_url, "timeline", case)
    by_ref = {r["ref"]: r for r in now}
    corrected = by_ref[f"{case}#2"]
    assert corrected["occurred_at"] == "2026-05-08"
    assert corrected["corrected"] is True
    assert corrected["corrected_by"] == [fix]
    assert corrected["original_occurred_at"] == "2026-05-05"
    # occurred_at order with the correction applied: the reply (7th) now comes first.
    assert [r["ref"] for r in now] == [f"{case}#{n}" for n in (1, 3, 2, 4)]

    assert query(cli, store_url, "timeline", case, "--as-of", before_correction) == original

    # The corrected agency changes which request is open: the police reply no longer
    # answers it, since the request is now to Northshire ICB.
    status = query(cli, store_url, "status", case)
    assert [r["agency"] for r in status["open_requests"]] == ["Northshire ICB"]
    status_then = query(cli, store_url, "status", case, "--as-of", before_correction)
    assert status_then["open_requests"] == []


def test_corrected_decision_is_flagged_and_shows_corrected_values(
    store_url: str, cli: Cli, clock: FixedClock
) -> None:
    case = "SCR-2026-106"
    record(store_url, clock, referral(case))
    record(store_url, clock, decision(case, "no-review", "2026-05-10", relied_on=[f"{case}#1"]))
    clock.advance(days=1)
    (fix,) = record(
        store_url,
        clock,
        {
            "type": "EntryCorrected",
            "case": case,
            "corrects": f"{case}#2",
            "changes": {"rationale": "The corrected reasons."},
            "reason": "Typo in the rationale.",
        },
    )
    why = query(cli, store_url, "why", case)
    assert why["decision"]["rationale"] == "The corrected reasons."
    assert why["decision"]["corrected_by"] == [fix]
    assert "decision-corrected" in why["flags"]


# --- flags ----------------------------------------------------------------------------


def test_mandatory_criteria_with_no_review_is_flagged(
    store_url: str, cli: Cli, clock: FixedClock
) -> None:
    case = "SCR-2015-107"
    record(
        store_url,
        clock,
        referral(case, regime="wt2015"),
        decision(
            case,
            "no-review",
            "2026-05-10",
            regime="wt2015",
            findings={"child_died": "not-met"},
            relied_on=[f"{case}#1"],
        ),
    )
    why = query(cli, store_url, "why", case)
    assert why["flags"] == ["mandatory-criteria-no-review"]
    people = cli(["--store", store_url, "why", case])
    assert "mandatory" in people.stdout and "no-review" in people.stdout


def test_unclear_criteria_are_not_mandatory(store_url: str, cli: Cli, clock: FixedClock) -> None:
    case = "SCR-2015-108"
    record(
        store_url,
        clock,
        referral(case, regime="wt2015"),
        decision(
            case,
            "no-review",
            "2026-05-10",
            regime="wt2015",
            findings={"child_died": "not-met", "agency_concern": "unclear"},
            relied_on=[f"{case}#1"],
        ),
    )
    assert query(cli, store_url, "why", case)["flags"] == []


def test_relies_on_nothing_late_and_open_requests_flags(
    store_url: str, cli: Cli, clock: FixedClock
) -> None:
    case = "SCR-2026-109"
    clock.now = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)
    record(store_url, clock, referral(case), request(case, "Northshire Police", "2026-05-05"))
    clock.now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # 22 days after the decision
    record(store_url, clock, decision(case, "review", "2026-05-10"))
    why = query(cli, store_url, "why", case)
    assert why["flags"] == ["relies-on-nothing", "recorded-late", "decided-with-open-requests"]
    explained = {f["flag"]: f["explanation"] for f in why["flag_explanations"]}
    assert "22 days" in explained["recorded-late"]
    assert "Northshire Police" in explained["decided-with-open-requests"]


def test_recorded_within_the_limit_is_not_late(store_url: str, cli: Cli, clock: FixedClock) -> None:
    case = "SCR-2026-110"
    clock.now = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)
    record(store_url, clock, referral(case))
    clock.now = datetime(2026, 5, 24, 9, 0, tzinfo=UTC)  # 14 days after
    record(store_url, clock, decision(case, "no-review", "2026-05-10", relied_on=[f"{case}#1"]))
    assert query(cli, store_url, "why", case)["flags"] == []


# --- status and options -----------------------------------------------------------------


def test_status_of_every_case_with_as_of_and_on(
    scenario_store: str, cli: Cli, clock: FixedClock
) -> None:
    before = at(clock)
    clock.advance(days=1)
    record(scenario_store, clock, referral("SCR-2026-111"))
    rows = query(cli, scenario_store, "status", "--sort", "ref")
    assert [r["case"] for r in rows] == [CASE, "SCR-2026-111"]
    # By urgency (the default): the new referral's notification is overdue, the
    # published scenario has nothing due.
    urgent = query(cli, scenario_store, "status")
    assert [r["case"] for r in urgent] == ["SCR-2026-111", CASE]
    assert [r["overdue"] for r in urgent] == [["notification"], []]
    assert query(cli, scenario_store, "status", "--as-of", before) == [
        query(cli, scenario_store, "status", CASE, "--as-of", before)
    ]
    on_rows = query(cli, scenario_store, "status", "--on", "2026-03-05")
    assert [r["case"] for r in on_rows] == [CASE]
    assert on_rows[0]["decision"] is None
    only = query(cli, scenario_store, "status", "--on", "2026-06-01", "--stage", "published")
    assert only == []


def test_unknown_case_exits_2(store_url: str, cli: Cli, clock: FixedClock) -> None:
    record(store_url, clock, referral("SCR-2026-112"))
    for command in ("status", "timeline", "why"):
        result = cli(["--store", store_url, command, "NOPE-1", "--json"])
        assert result.exit_code == 2, (command, result.stderr)
        assert "NOPE-1" in result.stderr and "unknown" in result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize("option", ["--as-of", "--on"])
def test_bad_times_exit_2_naming_the_option(scenario_store: str, cli: Cli, option: str) -> None:
    for bad in ("2026-02-30", "yesterday", "06/03/2026", "2026-03-06T25:00"):
        result = cli(["--store", scenario_store, "status", CASE, option, bad, "--json"])
        assert result.exit_code == 2, bad
        assert option in result.stderr and result.stdout == ""


def test_bad_filters_exit_2(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "status", "--stage", "pondering"])
    assert result.exit_code == 2 and "--stage" in result.stderr
    result = cli(["--store", scenario_store, "status", "--regime", "wt1999"])
    assert result.exit_code == 2 and "--regime" in result.stderr
    result = cli(["--store", scenario_store, "status", CASE, "--stage", "decided"])
    assert result.exit_code == 2


def test_timeline_csv(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "timeline", CASE, "--csv"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split(",")[:6] == [
        "ref",
        "type",
        "occurred_at",
        "recorded_at",
        "actor",
        "corrected",
    ]
    assert len(lines) == 23
    assert lines[1].startswith(f"{CASE}#1,CaseReferred,2026-02-09,")
    both = cli(["--store", scenario_store, "timeline", CASE, "--csv", "--json"])
    assert both.exit_code == 2


def test_people_views_render(scenario_store: str, cli: Cli) -> None:
    for args in (
        ["status", CASE],
        ["status", CASE, "--on", "2026-02-24"],
        ["status"],
        ["timeline", CASE],
        ["why", CASE, "--as-of", "2026-09-01"],
    ):
        result = cli(["--store", scenario_store, *args])
        assert result.exit_code == 0, (args, result.stderr)
        assert CASE in result.stdout
    assert (
        "Northshire Education"
        in cli(["--store", scenario_store, "status", CASE, "--on", "2026-02-24"]).stdout
    )


# --- --as-of / --on parsing -------------------------------------------------------------


def test_when_parsing() -> None:
    from ledger.errors import UsageError
    from projections.fold.when import format_instant, on_day, parse_as_of, parse_on

    now = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
    assert parse_as_of(None, now) == now and parse_on(None, now) == now
    winter = parse_on("2026-03-06", now)
    assert format_instant(winter) == "2026-03-06T23:59:59.999999Z"
    summer = parse_on("2026-07-01", now)  # BST: the London day ends at 22:59:59 UTC
    assert format_instant(summer) == "2026-07-01T22:59:59.999999Z"
    assert on_day(summer) == date(2026, 7, 1)
    local = parse_as_of("2026-07-01T10:30", now)
    assert format_instant(local) == "2026-07-01T09:30:00.000000Z"
    assert format_instant(parse_as_of("2026-07-01T10:30:15.25Z", now)).endswith("10:30:15.250000Z")
    assert format_instant(parse_as_of("2026-07-01 10:30:00+02:00", now)).startswith(
        "2026-07-01T08:30"
    )
    for bad in ("", "   "):
        assert parse_as_of(bad, now) == now
    for bad in ("2026-7-1", "1 July 2026", "2026-07-01T10", "2026-02-29"):
        with pytest.raises(UsageError) as caught:
            parse_as_of(bad, now)
        assert caught.value.field == "as_of"  # the CLI names it --as-of


# --- random histories (also used by tests/test_index.py) --------------------------------

AGENCIES = ("Northshire Police", "Northshire ICB", "Northshire Education")
KINDS = (
    "InformationRequested",
    "InformationReceived",
    "InformationDeclined",
    "IncidentNotified",
    "DiscussionHeld",
    "RecommendationMade",
    "DecisionMade",
    "ReviewerCommissioned",
    "ReviewCompleted",
    "ReportPublished",
    "PanelResponded",
    "EntryCorrected",
    "CaseClosed",
)


class History:
    """Draws valid, messy histories: several cases, backdated entries, corrections,
    revisited and backdated decisions, entries of several cases in one command."""

    def __init__(self, data: Any, prefix: str) -> None:
        from hypothesis import strategies as st

        self.st = st
        self.data = data
        self.prefix = prefix
        self.cases: dict[str, dict[str, Any]] = {}

    def draw(self, strategy: Any) -> Any:
        return self.data.draw(strategy)

    def occurred(self) -> str:
        day = date.fromordinal(date(2026, 1, 5).toordinal() + self.draw(self.st.integers(0, 200)))
        if self.draw(self.st.booleans()):
            return day.isoformat()
        hour = self.draw(self.st.integers(0, 23))
        return f"{day.isoformat()}T{hour:02d}:30"

    def command(self) -> list[dict[str, Any]]:
        """The lines of one ``record`` command (1 to 5 entries)."""
        lines = []
        for _ in range(self.draw(self.st.integers(1, 5))):
            open_cases = [c for c, s in self.cases.items() if not s["closed"]]
            if not self.cases or (len(self.cases) < 4 and self.draw(self.st.integers(0, 3)) == 0):
                lines.append(self.referral())
            else:
                case = self.draw(self.st.sampled_from(sorted(self.cases)))
                line = self.entry(case, closed=case not in open_cases)
                if line is not None:
                    lines.append(line)
        return lines

    def referral(self) -> dict[str, Any]:
        case = f"{self.prefix}-{len(self.cases) + 1}"
        regime = self.draw(self.st.sampled_from(("wt2015", "wt2018", "wt2023")))
        self.cases[case] = {"regime": regime, "types": ["CaseReferred"], "closed": False}
        line = referral(case, regime=regime)
        line["incident_date"] = "2026-01-05"
        line["aware_date"] = "2026-01-06"
        line["occurred_at"] = "2026-01-06"
        return line

    def entry(self, case: str, *, closed: bool) -> dict[str, Any] | None:
        state = self.cases[case]
        kind = "EntryCorrected" if closed else self.draw(self.st.sampled_from(KINDS))
        line: dict[str, Any] = {"type": kind, "case": case, "occurred_at": self.occurred()}
        agency = self.draw(self.st.sampled_from(AGENCIES))
        seq = len(state["types"]) + 1
        if kind == "InformationRequested":
            line |= {"agency": agency, "asked_for": "minimum-data"}
            if self.draw(self.st.booleans()):
                line["due"] = self.occurred()[:10]
        elif kind == "InformationReceived":
            line |= {"agency": agency, "involved": False, "summary": "Nothing known."}
        elif kind == "InformationDeclined":
            line |= {"agency": agency, "reason": "Records sealed."}
        elif kind == "IncidentNotified":
            line["recipients"] = self.draw(
                self.st.lists(
                    self.st.sampled_from(("ofsted", "national-panel", "dfe")),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
        elif kind == "DiscussionHeld":
            line |= {"forum": "board", "attendees": list(AGENCIES[:2]), "summary": "Met."}
        elif kind == "RecommendationMade":
            line |= {"to": "partners", "outcome": "review", "rationale": "Learning."}
        elif kind == "DecisionMade":
            outcome = self.draw(self.st.sampled_from(("review", "no-review", "other-review")))
            regime = state["regime"]
            criteria = CRITERIA["wt2015" if regime == "wt2015" else "wt2023"]
            line |= decision(case, outcome, line["occurred_at"], regime=regime)
            line["criteria"] = {
                name: {
                    "finding": self.draw(self.st.sampled_from(("met", "not-met", "unclear"))),
                    "reason": "Because.",
                }
                for name in criteria
            }
            line["nature"] = "Scope."
            earlier = list(range(1, seq))
            line["relied_on"] = [
                f"{case}#{n}"
                for n in self.draw(self.st.lists(self.st.sampled_from(earlier), unique=True))
            ]
        elif kind == "ReviewerCommissioned":
            line |= {"reviewer": "A. Reviewer", "independence": "None."}
        elif kind == "ReportPublished":
            line["location"] = "https://example.org/report"
        elif kind == "PanelResponded":
            line |= {
                "response": self.draw(self.st.sampled_from(("agree", "disagree"))),
                "summary": "Noted.",
            }
        elif kind == "CaseClosed":
            line["reason"] = "Done."
            state["closed"] = True
        elif kind == "EntryCorrected":
            targets = [n for n, t in enumerate(state["types"], 1) if t != "EntryCorrected"]
            target = self.draw(self.st.sampled_from(targets))
            target_type = state["types"][target - 1]
            changes: dict[str, Any] = {}
            if target_type in (
                "InformationRequested",
                "InformationReceived",
                "InformationDeclined",
            ) and self.draw(self.st.booleans()):
                changes["agency"] = agency
            if target_type == "DecisionMade" and self.draw(self.st.booleans()):
                changes["outcome"] = self.draw(self.st.sampled_from(("review", "no-review")))
            if target_type == "CaseReferred" and state["regime"] != "wt2015":
                if self.draw(self.st.booleans()):
                    changes["regime"] = self.draw(self.st.sampled_from(("wt2018", "wt2023")))
                    state["regime"] = changes["regime"]
                    if changes["regime"] == "wt2018":  # in 2026, only as a transitional case
                        changes["transitional"] = True
            if not changes or self.draw(self.st.booleans()):
                changes["occurred_at"] = (
                    self.occurred() if target_type != "CaseReferred" else "2026-01-07"
                )
            line |= {"corrects": f"{case}#{target}", "changes": changes, "reason": "Fix."}
        state["types"].append(kind)
        return line


def test_as_of_answers_never_change_when_more_is_recorded(
    store_url: str, clock: FixedClock
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from ledger.errors import UsageError
    from projections.queries import cases as queries

    led = open_ledger(store_url, clock)
    fixed_now = datetime(2026, 12, 1, tzinfo=UTC)
    counter = iter(range(1_000_000))

    def answers(case: str, moment: datetime) -> Any:
        try:
            return (
                queries.status(led, case, moment, now=fixed_now),
                queries.why(led, case, moment, now=fixed_now).as_dict(),
                queries.timeline(led, case, moment),
                queries.status(led, case, moment, datetime(2026, 3, 1, tzinfo=UTC)),
            )
        except UsageError as exc:  # a case not yet referred then: the same error later
            return str(exc)

    @settings(
        max_examples=30 if store_url.startswith("postgresql") else 60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def check(data: Any) -> None:
        history = History(data, f"P{next(counter)}")
        seen: list[tuple[datetime, dict[str, Any]]] = []
        for _ in range(data.draw(st.integers(1, 8))):
            led.record_lines([orjson.dumps(x) for x in history.command()], led.recorder_for())
            moment = clock.now
            seen.append((moment, {case: answers(case, moment) for case in history.cases}))
            clock.advance(seconds=data.draw(st.integers(1, 90_000)))
        for moment, then in seen:
            assert {case: answers(case, moment) for case in then} == then

    try:
        check()
    finally:
        led.close()


def test_corrected_time_without_offset_is_london_time(
    store_url: str, cli: Cli, clock: FixedClock
) -> None:
    case = "SCR-2026-113"
    record(store_url, clock, referral(case), request(case, "Northshire Police", "2026-05-05"))
    record(
        store_url,
        clock,
        {
            "type": "EntryCorrected",
            "case": case,
            "corrects": f"{case}#2",
            "changes": {"occurred_at": "2026-05-06T09:15"},
            "reason": "The time was known.",
        },
    )
    rows = {r["ref"]: r for r in query(cli, store_url, "timeline", case)}
    assert rows[f"{case}#2"]["occurred_at"] == "2026-05-06T09:15:00+01:00"
    on = query(cli, store_url, "status", case, "--on", "2026-05-06T09:00")
    assert on["open_requests"] == []
    on = query(cli, store_url, "status", case, "--on", "2026-05-06T09:15")
    assert [r["agency"] for r in on["open_requests"]] == ["Northshire Police"]


def test_scenario_stages_over_time(scenario_store: str, cli: Cli) -> None:
    """The walk-through of docs/stages.md."""
    expected = {
        "2026-02-10": "referred",
        "2026-02-13": "gathering-information",
        "2026-03-03": "discussed",
        "2026-03-05": "recommended",
        "2026-03-10": "decided",
        "2026-03-20": "under-review",
    }
    for day, stage in expected.items():
        assert query(cli, scenario_store, "status", CASE, "--on", day)["stage"] == stage, day
    # Before the referral happened, the case did not exist in the world.
    before = cli(["--store", scenario_store, "status", CASE, "--on", "2026-02-08", "--json"])
    assert before.exit_code == 2 and "not yet referred" in before.stderr
