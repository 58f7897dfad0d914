"""The statutory-clock rule packs: what they say, how they are validated and matched.

Every clock is checked against the table in ``shared/domain.md`` ("Timescales"); the
scenario figures are the ones ``shared/scenarios/README.md`` lists for RR-2026-004.
"""

from __future__ import annotations

import json
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.assess.calendar import Calendar
from projections.assess.rules import (
    CLOCK_NAMES,
    REGIMES,
    ClockRule,
    Condition,
    EventMatch,
    RuleError,
    RulePack,
    all_rule_packs,
    describe,
    event_day,
    first_match,
    load_rule_pack,
    loads_rule_pack,
    match,
    rule_pack,
)
from tests.conftest import SCENARIO

RULES_DIR = Path(__file__).resolve().parents[1] / "projections" / "rules"

EW = Calendar()


def d(text: str) -> date:
    return date.fromisoformat(text)


# --- what the shipped packs say -----------------------------------------------------------


def test_every_regime_has_a_pack() -> None:
    packs = all_rule_packs()
    assert tuple(packs) == REGIMES == ("wt2015", "wt2018", "wt2023")
    for regime, pack in packs.items():
        assert pack.regime == regime
        assert pack.calendar == "england-and-wales"
        assert pack.working_calendar() == Calendar()
        assert pack.origin == f"{regime}.toml"
    assert rule_pack("wt2018") is rule_pack("wt2018")  # loaded once


def test_the_packs_on_disk_are_the_ones_loaded() -> None:
    for regime in REGIMES:
        assert load_rule_pack(RULES_DIR / f"{regime}.toml") == rule_pack(regime)


@pytest.mark.parametrize(
    ("regime", "names"),
    [
        ("wt2015", ("notification", "scr_decision", "no_scr_explanation", "review_completion")),
        (
            "wt2018",
            (
                "notification",
                "rapid_review",
                "review_completion",
                "ofsted_notification",
                "panel_follow_up",
                "final_report",
            ),
        ),
        (
            "wt2023",
            (
                "notification",
                "rapid_review",
                "review_completion",
                "ofsted_notification",
                "panel_follow_up",
                "final_report",
            ),
        ),
    ],
)
def test_clock_names_per_regime(regime: str, names: tuple[str, ...]) -> None:
    assert rule_pack(regime).names == names
    assert set(names) <= set(CLOCK_NAMES)


def test_notification_clock() -> None:
    recipient = {"wt2015": "ofsted", "wt2018": "national-panel", "wt2023": "national-panel"}
    for regime, to in recipient.items():
        rule = rule_pack(regime).clock("notification")
        assert rule.start == EventMatch("CaseReferred", field="aware_date")
        assert rule.end == EventMatch(
            "IncidentNotified", where=(Condition("recipients", "contains", to),)
        )
        assert (rule.limit, rule.unit) == (5, "working_days")
        assert rule.justifiable_by == ("NotificationDeferred",)
    assert (
        rule_pack("wt2015")
        .clock("notification")
        .source.startswith("Working Together 2015, chapter 4")
    )
    assert "Children Act 2004 s16C" in rule_pack("wt2023").clock("notification").source


@pytest.mark.parametrize(
    ("regime", "cited", "since"),
    [
        ("wt2015", "Working Together 2015, chapter 4", date(2015, 3, 26)),
        ("wt2018", "Working Together 2018, chapter 4", date(2018, 6, 29)),
        ("wt2023", "Working Together 2023, chapter 5", date(2023, 12, 15)),
    ],
)
def test_every_shipped_rule_cites_its_guidance_and_says_from_when(
    regime: str, cited: str, since: date
) -> None:
    """Sources name the regime's own guidance (wt2023 cites Working Together 2023 itself,
    not 2018), every rule is in force from the regime's start, and a paragraph number not
    yet confirmed is marked "(check)" rather than invented."""
    for rule in rule_pack(regime).clocks:
        assert cited in rule.source, rule.name
        assert rule.effective_from == since and rule.effective_to is None
        assert "paragraph" not in rule.source or "(check)" in rule.source
    if regime == "wt2023":
        # (SI 2018/789 is the regulations both regimes rest on; the guidance is 2023's.)
        assert all("Working Together 2018" not in rule.source for rule in rule_pack(regime).clocks)


def test_wt2015_decision_clocks() -> None:
    pack = rule_pack("wt2015")
    scr = pack.clock("scr_decision")
    assert scr.start == pack.clock("notification").end  # "that IncidentNotified"
    assert scr.end == EventMatch("DecisionMade")  # any outcome
    assert (scr.limit, scr.unit, scr.note) == (1, "calendar_months", "normally")
    assert scr.justifiable_by == ("DecisionDelayed",)
    assert scr.needs_check  # its paragraph number is still to be confirmed
    assert "LSCB Regulations 2006 reg 5" in scr.source

    explain = pack.clock("no_scr_explanation")
    assert explain.start == EventMatch(
        "DecisionMade", where=(Condition("outcome", "equals", "no-review"),)
    )
    assert explain.end == EventMatch(
        "DecisionCommunicated", where=(Condition("to", "contains", "national-panel"),)
    )
    assert (explain.limit, explain.unit) == (14, "calendar_days")
    assert explain.needs_check and "(check)" in explain.source


@pytest.mark.parametrize("regime", ["wt2018", "wt2023"])
def test_rapid_review_clock(regime: str) -> None:
    pack = rule_pack(regime)
    rule = pack.clock("rapid_review")
    assert rule.start == pack.clock("notification").end
    # Ended when sent to the panel (issue 16), the decision shown beside it.
    assert rule.ends == (
        EventMatch("RapidReviewSent"),
        EventMatch("DecisionCommunicated", where=(Condition("to", "contains", "national-panel"),)),
    )
    assert [(m.label, m.match) for m in rule.marks] == [("decided", EventMatch("DecisionMade"))]
    assert (rule.limit, rule.unit) == (15, "working_days")
    assert rule.justifiable_by == ("DecisionDelayed",)
    assert rule.needs_check


@pytest.mark.parametrize(
    ("regime", "end"), [("wt2015", "ReviewCompleted"), ("wt2018", "ReportPublished")]
)
def test_review_completion_clock(regime: str, end: str) -> None:
    rule = rule_pack(regime).clock("review_completion")
    assert rule.start == EventMatch(
        "DecisionMade", where=(Condition("outcome", "equals", "review"),)
    )
    assert rule.end == EventMatch(end)
    assert (rule.limit, rule.unit) == (6, "calendar_months")
    assert rule.justifiable_by == (() if regime == "wt2015" else ("PublicationDeferred",))


def test_which_clocks_are_justifiable_and_by_what() -> None:
    justifiable = {
        (p.regime, c.name): c.justifiable_by
        for p in all_rule_packs().values()
        for c in p.clocks
        if c.justifiable_by
    }
    later = {
        (regime, name): by
        for regime in ("wt2018", "wt2023")
        for name, by in (
            ("notification", ("NotificationDeferred",)),
            ("rapid_review", ("DecisionDelayed",)),
            ("review_completion", ("PublicationDeferred",)),
            ("ofsted_notification", ("NotificationDeferred",)),
        )
    }
    assert justifiable == {
        ("wt2015", "notification"): ("NotificationDeferred",),
        ("wt2015", "scr_decision"): ("DecisionDelayed",),
        **later,
    }


def test_unknown_clock_and_regime() -> None:
    with pytest.raises(KeyError, match="wt2018 has no clock 'scr_decision'"):
        rule_pack("wt2018").clock("scr_decision")
    with pytest.raises(RuleError, match="unknown regime 'wt2010'"):
        rule_pack("wt2010")


def test_describe() -> None:
    assert describe(rule_pack("wt2018").clock("notification")) == (
        "notification: from CaseReferred.aware_date to the first IncidentNotified to "
        "national-panel, 5 working days, lateness justifiable by NotificationDeferred — "
        + rule_pack("wt2018").clock("notification").source
    )
    assert describe(rule_pack("wt2018").clock("final_report")).startswith(
        "final_report: the first FinalReportSent, due 7 working days before the first "
        "ReportPublished, else FinalReportSent.planned_publication — "
    )
    assert "to the first RapidReviewSent or DecisionCommunicated to national-panel" in (
        describe(rule_pack("wt2023").clock("rapid_review"))
    )
    assert describe(rule_pack("wt2015").clock("scr_decision")) == (
        "scr_decision: from the first IncidentNotified to ofsted to the first DecisionMade, "
        "1 calendar month (normally), lateness justifiable by DecisionDelayed, met at its "
        "start if a DecisionMade came before it (decided-before-notification) — "
        + rule_pack("wt2015").clock("scr_decision").source
    )
    assert describe(rule_pack("wt2023").clock("review_completion")) == (
        "review_completion: from the first DecisionMade with outcome review to the first "
        "ReportPublished, 6 calendar months, lateness justifiable by PublicationDeferred, "
        "withdrawn by a later DecisionMade with outcome no-review — "
        + rule_pack("wt2023").clock("review_completion").source
    )
    assert describe(rule_pack("wt2015").clock("no_scr_explanation")).startswith(
        "no_scr_explanation: from the first DecisionMade with outcome no-review to the first "
        "DecisionCommunicated to national-panel, 14 calendar days — "
    )
    for pack in all_rule_packs().values():
        for rule in pack.clocks:
            assert "\n" not in describe(rule)


# --- due dates through the packs ----------------------------------------------------------


def test_scenario_due_dates() -> None:
    # RR-2026-004 (wt2023): aware Mon 9 Feb, notified Fri 13 Feb, decided Fri 6 Mar 2026.
    pack = rule_pack("wt2023")
    cal = pack.working_calendar()
    assert pack.clock("notification").due(d("2026-02-09"), cal) == d("2026-02-16")
    assert pack.clock("rapid_review").due(d("2026-02-13"), cal) == d("2026-03-06")
    assert pack.clock("review_completion").due(d("2026-03-06"), cal) == d("2026-09-06")


def test_wt2015_due_dates_over_month_ends_and_christmas() -> None:
    pack = rule_pack("wt2015")
    # Notified Sat 31 Jan 2026: 1 calendar month, clamped, is Sat 28 Feb 2026.
    assert pack.clock("scr_decision").due(d("2026-01-31"), EW) == d("2026-02-28")
    # Decided not to review Sun 20 Dec 2026: 14 calendar days is Sun 3 Jan 2027.
    assert pack.clock("no_scr_explanation").due(d("2026-12-20"), EW) == d("2027-01-03")
    # Decided to review Mon 31 Aug 2026: 6 months is Feb 2027, clamped to Sun 28 Feb.
    assert pack.clock("review_completion").due(d("2026-08-31"), EW) == d("2027-02-28")


# --- matching records ---------------------------------------------------------------------


NOTIFIED_TO_PANEL = rule_pack("wt2023").clock("notification").end
REVIEW_DECISION = rule_pack("wt2023").clock("review_completion").start


def test_match_needs_the_type_and_every_condition() -> None:
    record = {"type": "IncidentNotified", "occurred_at": "2026-02-13", "recipients": ["dfe"]}
    assert not match(NOTIFIED_TO_PANEL, record)
    assert match(NOTIFIED_TO_PANEL, {**record, "recipients": ["dfe", "national-panel"]})
    assert not match(NOTIFIED_TO_PANEL, {**record, "type": "DecisionCommunicated"})
    assert not match(NOTIFIED_TO_PANEL, {"type": "IncidentNotified", "occurred_at": "2026-02-13"})
    assert not match(NOTIFIED_TO_PANEL, {**record, "recipients": "national-panel"})  # not a list
    assert match(REVIEW_DECISION, {"type": "DecisionMade", "outcome": "review"})
    assert not match(REVIEW_DECISION, {"type": "DecisionMade", "outcome": "other-review"})
    assert match(EventMatch("DecisionMade"), {"type": "DecisionMade", "outcome": "no-review"})


def test_match_with_several_conditions() -> None:
    both = EventMatch(
        "IncidentNotified",
        where=(
            Condition("recipients", "contains", "ofsted"),
            Condition("recipients", "contains", "national-panel"),
        ),
    )
    assert match(both, {"type": "IncidentNotified", "recipients": ["ofsted", "national-panel"]})
    assert not match(both, {"type": "IncidentNotified", "recipients": ["ofsted"]})


def test_equals_does_not_confuse_true_with_one() -> None:
    looked_after = EventMatch("CaseReferred", where=(Condition("looked_after", "equals", True),))
    assert match(looked_after, {"type": "CaseReferred", "looked_after": True})
    assert not match(looked_after, {"type": "CaseReferred", "looked_after": 1})


def test_a_date_field_start_needs_the_field() -> None:
    aware = rule_pack("wt2023").clock("notification").start
    record = {"type": "CaseReferred", "occurred_at": "2026-02-10", "aware_date": "2026-02-09"}
    assert match(aware, record)
    assert event_day(aware, record) == d("2026-02-09")  # the field, not occurred_at
    assert event_day(aware, {**record, "aware_date": d("2026-02-08")}) == d("2026-02-08")
    assert not match(aware, {"type": "CaseReferred", "occurred_at": "2026-02-10"})


def test_event_day_is_the_london_day_of_occurred_at() -> None:
    decided = EventMatch("DecisionMade")
    # BST begins at 01:00 UTC on Sun 29 Mar 2026, so 23:30 UTC on 28 Mar is still 28 Mar.
    assert event_day(decided, {"occurred_at": "2026-03-28T23:30:00+00:00"}) == d("2026-03-28")
    # 23:30 UTC on 1 Jul 2026 is 00:30 BST on 2 Jul.
    assert event_day(decided, {"occurred_at": "2026-07-01T23:30:00+00:00"}) == d("2026-07-02")
    # A wire-form time without an offset is London local time.
    assert event_day(decided, {"occurred_at": "2026-07-01T23:30"}) == d("2026-07-01")


def _decision(day: str, outcome: str) -> dict[str, Any]:
    return {"type": "DecisionMade", "occurred_at": day, "outcome": outcome}


def test_first_match_is_the_earliest_and_a_revisit_does_not_restart() -> None:
    # Decided no-review on 6 Mar, revisited to review on 20 Apr: the decision clock ended
    # on 6 Mar; the review-completion clock starts on 20 Apr (its first matching event).
    records = [
        {"type": "IncidentNotified", "occurred_at": "2026-02-13", "recipients": ["national-panel"]},
        _decision("2026-04-20", "review"),
        _decision("2026-03-06", "no-review"),
    ]
    start = first_match(NOTIFIED_TO_PANEL, records)
    assert start is records[0]
    end = first_match(EventMatch("DecisionMade"), records, on_or_after=d("2026-02-13"))
    assert end is records[2]
    assert first_match(REVIEW_DECISION, records) is records[1]
    assert first_match(EventMatch("ReportPublished"), records) is None


def test_first_match_ignores_events_before_the_start() -> None:
    records = [_decision("2026-02-01", "review"), _decision("2026-03-06", "review")]
    found = first_match(EventMatch("DecisionMade"), records, on_or_after=d("2026-02-13"))
    assert found is records[1]
    # An end on the start day itself counts (day 0).
    same_day = first_match(EventMatch("DecisionMade"), records, on_or_after=d("2026-03-06"))
    assert same_day is records[1]


def test_first_match_breaks_same_day_ties_by_time_then_order() -> None:
    later = _decision("2026-03-06T16:00:00+00:00", "review")
    earlier = _decision("2026-03-06T09:00:00+00:00", "no-review")
    assert first_match(EventMatch("DecisionMade"), [later, earlier]) is earlier
    a, b = _decision("2026-03-06", "review"), _decision("2026-03-06", "no-review")
    assert first_match(EventMatch("DecisionMade"), [a, b]) is a


def test_the_scenarios_clocks_from_its_records() -> None:
    # shared/scenarios/README.md: notification 02-09 -> due 02-16, ended 02-13; rapid review
    # 02-13 -> due 03-06, ended 03-06; review completion 03-06 -> due 09-06, ended 08-28.
    records = [json.loads(line) for line in SCENARIO.read_text().splitlines() if line.strip()]
    pack = rule_pack(records[0]["regime"])
    cal = pack.working_calendar()
    found = {}
    for rule in pack.clocks:
        start = first_match(rule.start, records)
        if start is None:  # a looked-after child's, the panel's and the final report's
            continue
        started = event_day(rule.start, start)
        ends = [(m, first_match(m, records, on_or_after=started)) for m in rule.ends]
        days = [event_day(m, end) for m, end in ends if end is not None]
        assert days, rule.name
        found[rule.name] = (started, rule.due(started, cal), min(days))
    assert found == {
        "notification": (d("2026-02-09"), d("2026-02-16"), d("2026-02-13")),
        "rapid_review": (d("2026-02-13"), d("2026-03-06"), d("2026-03-06")),
        "review_completion": (d("2026-03-06"), d("2026-09-06"), d("2026-08-28")),
    }


@given(
    recipients=st.lists(
        st.sampled_from(["ofsted", "national-panel", "dfe", "local-board"]), max_size=4
    ),
    wanted=st.sampled_from(["ofsted", "national-panel", "dfe"]),
)
def test_contains_is_list_membership(recipients: list[str], wanted: str) -> None:
    rule = EventMatch("IncidentNotified", where=(Condition("recipients", "contains", wanted),))
    record = {"type": "IncidentNotified", "recipients": recipients}
    assert match(rule, record) == (wanted in recipients)


# --- validation -----------------------------------------------------------------------------

GOOD = """
regime = "wt2018"
title = "A test pack"

[[clocks]]
name = "notification"
title = "Notified"
start = { event = "CaseReferred", field = "aware_date" }
end = { event = "IncidentNotified", where = { field = "recipients", contains = "national-panel" } }
limit = 5
unit = "working_days"
source = "somewhere"
"""


def _pack(text: str) -> RulePack:
    return loads_rule_pack(textwrap.dedent(text), origin="test.toml")


def test_a_minimal_pack_loads_with_defaults() -> None:
    pack = _pack(GOOD)
    assert pack.calendar == "england-and-wales"
    rule = pack.clock("notification")
    assert isinstance(rule, ClockRule) and rule.note is None and rule.justifiable_by == ()


def test_where_may_be_a_list_of_conditions() -> None:
    text = GOOD.replace(
        'where = { field = "recipients", contains = "national-panel" }',
        'where = [{ field = "recipients", contains = "national-panel" }, '
        '{ field = "recipients", contains = "ofsted" }]',
    )
    assert len(_pack(text).clock("notification").end.where) == 2


def test_sub_table_form_is_the_same_as_inline() -> None:
    text = GOOD.replace(
        'end = { event = "IncidentNotified", where = { field = "recipients", '
        'contains = "national-panel" } }\n',
        "",
    ) + textwrap.dedent(
        """
        [clocks.end]
        event = "IncidentNotified"
        where = { field = "recipients", contains = "national-panel" }
        """
    )
    assert _pack(text) == _pack(GOOD)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'title = "A test pack"',
            'title = "A test pack"\nversion = 2',
            r"test\.toml: unknown key 'version'",
        ),
        (
            'unit = "working_days"',
            'unit = "working_days"\nlimt = 5',
            r"clocks\[0\]: unknown key 'limt'",
        ),
        ('unit = "working_days"', 'unit = "weeks"', r"clocks\[0\]\.unit: unknown unit 'weeks'"),
        ('unit = "working_days"', 'unit = "working days"', "unknown unit 'working days'"),
        ('name = "notification"', 'name = "notify"', "unknown clock name 'notify'"),
        ('regime = "wt2018"', 'regime = "wt2010"', "unknown regime 'wt2010'"),
        (
            'title = "A test pack"',
            'title = "A test pack"\ncalendar = "wales"',
            "unknown calendar 'wales'",
        ),
        ("limit = 5", "limit = -1", r"clocks\[0\]\.limit: expected a whole number"),
        ("limit = 5", "limit = 5.5", r"clocks\[0\]\.limit: expected a whole number"),
        ("limit = 5", "limit = true", r"clocks\[0\]\.limit: expected a whole number"),
        ("limit = 5", 'limit = "5"', r"clocks\[0\]\.limit: expected a whole number"),
        ('source = "somewhere"', 'source = ""', r"clocks\[0\]\.source: expected non-empty text"),
        ('source = "somewhere"', "", r"clocks\[0\]: missing key 'source'"),
        (
            'event = "CaseReferred"',
            'event = "CaseRefered"',
            r"start\.event: unknown event type 'CaseRefered'",
        ),
        (
            'field = "aware_date"',
            'field = "aware"',
            r"start\.field: CaseReferred has no field 'aware'",
        ),
        ('field = "aware_date"', 'field = "subject"', "CaseReferred.subject is not a date"),
        ('field = "aware_date"', 'field = "aware_date", when = "x"', r"start: unknown key 'when'"),
        (
            'contains = "national-panel"',
            'contains = "national_panel"',
            "'national_panel' is not a value of IncidentNotified.recipients",
        ),
        (
            'contains = "national-panel"',
            'equals = "national-panel"',
            "IncidentNotified.recipients is a list; use contains",
        ),
        (
            'contains = "national-panel"',
            'contains = "x", equals = "y"',
            r"end\.where: give exactly one of equals, contains",
        ),
        (
            'contains = "national-panel"',
            'includes = "national-panel"',
            r"end\.where: unknown key 'includes'",
        ),
        (
            'field = "recipients"',
            'field = "reference"',
            "IncidentNotified.reference is not a list; use equals",
        ),
        (
            'contains = "national-panel"',
            "contains = 1.5",
            "contains: expected text, a whole number or true/false",
        ),
        (
            'unit = "working_days"',
            'unit = "working_days"\njustifiable_by = ["Delay"]',
            r"justifiable_by\[0\]: unknown event type 'Delay'",
        ),
        (
            'unit = "working_days"',
            'unit = "working_days"\njustifiable_by = "DecisionDelayed"',
            "justifiable_by: expected a list",
        ),
    ],
)
def test_invalid_packs_are_rejected_clearly(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(RuleError, match=message):
        _pack(GOOD.replace(old, new, 1))


def test_a_where_list_item_error_names_its_index() -> None:
    text = GOOD.replace(
        'where = { field = "recipients", contains = "national-panel" }',
        'where = [{ field = "recipients", contains = "ofsted" }, { field = "recipients" }]',
    )
    with pytest.raises(RuleError, match=r"clocks\[0\]\.end\.where\[1\]: give exactly one"):
        _pack(text)


def test_a_clock_given_twice_is_rejected() -> None:
    second = GOOD[GOOD.index("[[clocks]]") :]
    with pytest.raises(RuleError, match=r"clocks\[1\]\.name: clock 'notification' given twice"):
        _pack(GOOD + second)


def test_a_pack_without_clocks_is_rejected() -> None:
    with pytest.raises(RuleError, match="missing key 'clocks'"):
        _pack('regime = "wt2018"\ntitle = "x"\n')
    with pytest.raises(RuleError, match="expected at least one"):
        _pack('regime = "wt2018"\ntitle = "x"\nclocks = []\n')


def test_bad_toml_is_rejected() -> None:
    with pytest.raises(RuleError, match=r"test\.toml: not valid TOML"):
        _pack("regime = ")


def test_rule_errors_are_value_errors() -> None:
    assert issubclass(RuleError, ValueError)
