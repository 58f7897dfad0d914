"""Clock facts kept in the cross-case index (projections.index.clock_facts): what they answer
equals what the clocks compute from the records, and the kept rows follow the ledger.

* For random histories in every regime, the states and the ``status`` summary read from
  a case's stored facts (its ``spans`` and ``delays`` columns) equal
  :func:`projections.assess.clocks.clock_states` of its records, on any day after its last entry.
* On both stores, ``status`` over every case equals each case folded, before and after
  more entries (the facts of the touched cases are derived again), after a rule-pack
  change (every row is stale), when the query's moment precedes an entry (the case is
  computed from its milestones), and on a store that may only be read.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import UsageError
from projections.assess.calendar import Calendar
from projections.assess.clocks import clock_states, summary_of
from projections.assess.rules import rule_pack
from projections.fold.when import end_of_day, format_instant
from projections.index.clock_answers import rows_from_facts, states_from_facts
from projections.index.clock_facts import (
    CaseClockFacts,
    case_clock_facts,
    state_from_facts,
    summary_from_facts,
)
from tests.conftest import FixedClock, enrol_decision_makers, open_ledger
from tests.test_clocks import _random_cases, record

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

# --- the facts equal the clocks, for random histories -----------------------------------

NATIONAL = {"wt2015": "ofsted", "wt2018": "national-panel", "wt2023": "national-panel"}
KINDS = (
    "IncidentNotified",
    "DecisionMade",
    "DecisionDelayed",
    "DecisionCommunicated",
    "ReviewerCommissioned",
    "ReviewCompleted",
    "ReportPublished",
    "ContextRecorded",
    # issue 16: list ends, marks, lead clocks, 'in' conditions, other justifying entries
    "RapidReviewSent",
    "PanelResponded",
    "FinalReportSent",
    "PublicationDeferred",
    "NotificationDeferred",
)
RESPONSES = ("agree", "disagree", "advice", "request-info")
TIMES = ("", "T00:30:00+00:00", "T09:15:00+01:00", "T23:30:00+00:00")


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], date]:
    """A case's records (corrected form, as the index holds them) and a day to ask on."""
    from ledger.catalogue.models import normalise_occurred_at, occurred_day

    regime = draw(st.sampled_from(sorted(NATIONAL)))
    aware = draw(st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 6, 30)))
    records: list[dict[str, Any]] = [
        {"type": "CaseReferred", "case": "F-1", "seq": 1, "occurred_at": aware.isoformat(),
         "aware_date": aware.isoformat(), "regime": regime,
         "harm": draw(st.sampled_from(["death", "serious-harm"])),
         "looked_after": draw(st.booleans())}
    ]  # fmt: skip
    latest = aware
    for seq, (kind, offset, time, outcome, national, response, planned) in enumerate(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(KINDS),
                    st.integers(0, 400),
                    st.sampled_from(TIMES),
                    st.sampled_from(["review", "no-review", "other-review"]),
                    st.booleans(),
                    st.sampled_from(RESPONSES),
                    st.integers(-10, 60),
                ),
                max_size=10,
            )
        ),
        start=2,
    ):
        day = aware + timedelta(days=offset)
        occurred = normalise_occurred_at(day.isoformat() + time)
        latest = max(latest, occurred_day(occurred))  # the London day
        body: dict[str, Any] = {
            "type": kind,
            "case": "F-1",
            "seq": seq,
            "occurred_at": occurred,
            "outcome": outcome,
            "recipients": [NATIONAL[regime] if national else "dfe", *(["ofsted"] * (seq % 3 == 0))],
            "to": ["national-panel"] if national else ["ofsted" if seq % 2 else "family"],
            "response": response,
            "planned_publication": (day + timedelta(days=planned)).isoformat(),
        }
        if kind == "NotificationDeferred":
            body |= {"reason": f"Reason {seq}", "approved_by": "Council"}
        if kind in ("DecisionDelayed", "PublicationDeferred"):
            body |= {
                "reason": f"Reason {seq}",
                "approved_by": "Chair",
                "expected_by": (day + timedelta(days=20)).isoformat(),
            }
        records.append(body)
    on = latest + timedelta(
        days=draw(st.one_of(st.just(0), st.integers(0, 15), st.integers(0, 500)))
    )
    return regime, records, on


def stored(facts: CaseClockFacts) -> CaseClockFacts:
    """The facts as read back from their columns (JSON round trip of ``delays``)."""
    delays = orjson.loads(orjson.dumps(facts.delays)) if facts.delays is not None else None
    return CaseClockFacts(
        facts.case,
        facts.regime,
        facts.position,
        facts.last_recorded_at,
        facts.until,
        facts.spans,
        delays,
    )


@settings(max_examples=300, deadline=None)
@given(history=histories())
def test_states_from_facts_equal_the_clocks_of_the_records(
    history: tuple[str, list[dict[str, Any]], date],
) -> None:
    regime, records, on = history
    facts = stored(case_clock_facts("F-1", regime, records))
    assert facts.holds(format_instant(end_of_day(on)))
    expected = clock_states("F-1", regime, records, on, include_not_started=True)
    got = states_from_facts(facts, on, include_not_started=True)
    assert [s.as_dict() for s in got] == [s.as_dict() for s in expected]
    assert got == expected  # every field, not only those the JSON shows
    # The JSON rows made without the states (``clocks --json`` over every case): the same
    # keys in the same order and the same values, for each way of asking.
    pack = rule_pack(regime)
    for include_not_started, wanted in [
        (True, ()),
        (False, ()),
        (False, ("met", "late")),
        (True, ("not-started", "overdue")),
    ]:
        rows = rows_from_facts(
            facts, on, pack, include_not_started=include_not_started, wanted=wanted
        )
        asked = [
            s
            for s in expected
            if (include_not_started or s.status != "not-started")
            and (not wanted or s.status in wanted)
        ]
        assert [list(r.items()) for r in rows] == [list(s.as_dict().items()) for s in asked]
    # The JSON of a plain clock (no delay, flag or lead day) is built from a template:
    # the same keys in the same order, the same values, as from every field and property.
    for state in got:
        full = state._full_dict(state.rule)
        assert list(state.as_dict().items()) == list(full.items())
    # Built whole (facts.clocks), the same.
    whole = [
        state_from_facts("F-1", regime, rule, facts.clocks.get(rule.name), on, Calendar())
        for rule in pack.clocks
    ]
    assert [s.as_dict() for s in whole] == [s.as_dict() for s in expected]
    started = [s for s in expected if s.status != "not-started"]
    summary = summary_from_facts(facts, on)
    assert summary == (summary_of(started) if started else None)


@settings(max_examples=100, deadline=None)
@given(history=histories(), before=st.integers(1, 30))
def test_facts_do_not_claim_a_moment_before_their_last_entry(
    history: tuple[str, list[dict[str, Any]], date], before: int
) -> None:
    from ledger.catalogue.models import occurred_day

    regime, records, on = history
    facts = case_clock_facts("F-1", regime, records)
    assert facts.until is not None
    assert facts.holds(facts.until)
    last = max(occurred_day(r["occurred_at"]) for r in records)
    assert not facts.holds(format_instant(end_of_day(last - timedelta(days=before))))
    assert facts.holds(format_instant(end_of_day(on)))


# --- through the index, on both stores --------------------------------------------------

NOW = datetime(2026, 9, 2, 12, tzinfo=UTC)


def folded_statuses(led: Any, now: datetime) -> list[dict[str, Any]]:
    from projections.queries import cases as queries

    return [queries.status(led, case, now=now) for case in sorted(led.case_refs())]


def clock_rows(led: Any) -> dict[str, tuple[int, str]]:
    """``case_clocks``: case -> (last_position, rules)."""
    from projections.index.case_index import CaseIndex

    index = CaseIndex(led)
    rows = index.backend.select_clock_facts(None)
    return {r.case: (r.facts_position, r.rules) for r in rows if r.facts_position is not None}


def test_status_of_every_case_equals_the_folds_as_the_ledger_grows(
    store_url: str, clock: FixedClock
) -> None:
    from projections.index.case_index import CaseIndex
    from projections.index.clock_facts import rules_fingerprint
    from projections.queries import cases as queries

    events = _random_cases(7, 30)
    clock.now = datetime(2026, 8, 31, 12, tzinfo=UTC)
    record(store_url, clock, events)
    led = open_ledger(store_url, clock)
    assert queries.statuses(led, now=NOW) == folded_statuses(led, NOW)
    index = CaseIndex(led)
    kept = clock_rows(led)
    assert len(kept) == 30
    assert {rules for _, rules in kept.values()} == {rules_fingerprint()}
    assert all(position == index.row(case).last_position for case, (position, _) in kept.items())

    # More entries on two cases: only their facts are derived again.
    cases = sorted({e["case"] for e in events})
    clock.now = datetime(2026, 9, 1, 12, tzinfo=UTC)
    record(
        store_url,
        clock,
        [
            {"type": "ContextRecorded", "case": cases[0], "occurred_at": "2026-09-01",
             "topic": "other", "summary": "More context."},
            {"type": "EntryCorrected", "case": cases[1], "occurred_at": "2026-09-01",
             "corrects": f"{cases[1]}#2", "changes": {"occurred_at": "2025-12-01"},
             "reason": "Date mistyped."},
        ],
    )  # fmt: skip
    assert index.refresh_clock_facts() == {}  # nothing is stale before the catch-up
    index.catch_up()
    derived = index.refresh_clock_facts()
    assert sorted(derived) == cases[:2]
    assert queries.statuses(led, now=NOW) == folded_statuses(led, NOW)
    led.close()


def test_a_rule_pack_change_makes_every_row_stale(store_url: str, clock: FixedClock) -> None:
    from projections.index.case_index import CaseIndex
    from projections.index.clock_facts import rules_fingerprint
    from projections.queries import cases as queries

    clock.now = datetime(2026, 8, 31, 12, tzinfo=UTC)
    record(store_url, clock, _random_cases(3, 12))
    led = open_ledger(store_url, clock)
    expected = queries.statuses(led, now=NOW)
    index = CaseIndex(led)
    _set_rules(store_url, "an older rule pack")
    assert len(index.refresh_clock_facts()) == 12
    assert {rules for _, rules in clock_rows(led).values()} == {rules_fingerprint()}
    _set_rules(store_url, "an older rule pack")
    assert queries.statuses(led, now=NOW) == expected
    led.close()


def test_a_moment_before_an_entry_is_computed_from_the_milestones(
    store_url: str, clock: FixedClock
) -> None:
    from projections.assess.clocks import case_clocks
    from projections.index.records import all_clocks
    from projections.queries import cases as queries
    from projections.queries.cases import case_view

    clock.now = datetime(2026, 8, 31, 12, tzinfo=UTC)
    record(store_url, clock, _random_cases(5, 12))
    led = open_ledger(store_url, clock)
    queries.statuses(led, now=NOW)  # the facts are kept
    for moment in (datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2025, 11, 20, tzinfo=UTC)):
        assert queries.statuses(led, now=moment) == folded_statuses(led, moment)
        every = [s.as_dict() for s in all_clocks(led, moment)]
        folded = []
        for case in sorted(led.case_refs()):
            try:
                view = case_view(led, case, None, moment)
            except UsageError:  # not yet referred on that day
                continue
            folded += [s.as_dict() for s in case_clocks(view, moment)]
        assert folded
        assert every == folded
    led.close()


def test_a_read_only_store_answers_from_facts_it_cannot_keep(
    sqlite_url: str, clock: FixedClock, cli: Any
) -> None:
    from projections.queries import cases as queries

    clock.now = datetime(2026, 8, 31, 12, tzinfo=UTC)
    record(sqlite_url, clock, _random_cases(9, 10))
    led = open_ledger(sqlite_url, clock)
    expected = queries.statuses(led, now=datetime.now(UTC))  # the CLI's own clock
    led.close()
    _set_rules(sqlite_url, "an older rule pack")
    # By reference and with closed cases, as the query below the CLI lists them.
    result = cli(
        ["--store", f"file:{sqlite_url}?mode=ro", "status", "--sort", "ref", "--all", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    assert [r["case"] for r in result.json()] == [r["case"] for r in expected]
    assert [(r["overdue"], r["next_deadline"]) for r in result.json()] == [
        (r["overdue"], r["next_deadline"]) for r in expected
    ]
    # In process: the index notes it cannot keep the facts, and answers alike again.
    from projections.index.case_index import CaseIndex

    reader = open_ledger(f"file:{sqlite_url}?mode=ro", clock)
    index = CaseIndex(reader)
    moment = datetime.now(UTC)
    first = queries.statuses(reader, now=moment, index=index)
    assert index.clock_facts_kept is False
    assert queries.statuses(reader, now=moment, index=index) == first
    assert [(r["overdue"], r["next_deadline"]) for r in first] == [
        (r["overdue"], r["next_deadline"]) for r in expected
    ]
    reader.close()
    with sqlite3.connect(sqlite_url) as conn:  # nothing was written
        assert {r[0] for r in conn.execute("SELECT rules FROM case_clocks")} == {
            "an older rule pack"
        }


def _set_rules(url: str, rules: str) -> None:
    """Label every kept row with another rule pack's fingerprint (as an older version of
    the packs would have)."""
    if url.startswith("postgresql://"):
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(
                SQL("UPDATE {}.case_clocks SET rules=%s").format(Identifier(schema)), (rules,)
            )
        return
    with sqlite3.connect(url) as conn:
        conn.execute("UPDATE case_clocks SET rules=?", (rules,))


def test_writers_and_readers_at_once_leave_every_kept_row_current(
    store_url: str, clock: FixedClock
) -> None:
    """Two writers add entries to cases while two readers ask ``status`` and ``clocks``
    over every case (each deriving and keeping stale facts): afterwards every kept row is
    labelled with its case's position and equals the facts derived afresh."""
    import threading

    from projections.assess.clocks import clock_event_types
    from projections.index.case_index import CaseIndex
    from projections.index.clock_facts import case_clock_facts, rules_fingerprint
    from projections.index.records import all_clocks
    from projections.index.rows import milestone_record
    from projections.queries import cases as queries

    events = _random_cases(11, 16)
    clock.now = datetime(2026, 8, 31, 12, tzinfo=UTC)
    record(store_url, clock, events)
    cases = sorted({e["case"] for e in events})
    errors: list[BaseException] = []

    def delays(mine: list[str], round_: int) -> list[dict[str, Any]]:
        return [
            {"type": "DecisionDelayed", "case": case, "occurred_at": "2026-08-30",
             "reason": f"Round {round_}.", "expected_by": "2026-09-30", "approved_by": "Chair"}
            for case in mine
        ]  # fmt: skip

    # The approver enrolled for every regime first: two writers enrolling at once would
    # each give "Chair" only its own cases' role, the later replacing the earlier.
    admin = open_ledger(store_url, clock)
    enrol_decision_makers(admin, delays(cases, 0))
    admin.close()

    def writer(mine: list[str]) -> None:
        try:
            for round_ in range(4):
                record(store_url, clock, delays(mine, round_))
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        own = open_ledger(store_url, clock)
        try:
            for _ in range(4):
                queries.statuses(own, now=NOW)
                all_clocks(own, NOW)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [
        threading.Thread(target=writer, args=(cases[0::2],)),
        threading.Thread(target=writer, args=(cases[1::2],)),
        threading.Thread(target=reader),
        threading.Thread(target=reader),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    led = open_ledger(store_url, clock)
    index = CaseIndex(led)
    facts = index.clock_facts()
    assert queries.statuses(led, now=NOW) == folded_statuses(led, NOW)
    stored = {r.case: r for r in index.backend.select_clock_facts(None)}
    milestones = index.milestones(None, clock_event_types())
    for case in cases:
        row = stored[case]
        assert row.facts_position == row.position and row.rules == rules_fingerprint()
        mine = [milestone_record(m) for m in milestones if m.case == case]
        fresh = case_clock_facts(case, row.regime, mine)
        assert (facts[case].spans, facts[case].delays) == (fresh.spans, fresh.delays)
    # The writers' delays are in (for the cases with a clock a delay can justify).
    assert any(f.delays for f in facts.values())
    led.close()


@settings(max_examples=300, deadline=None)
@given(
    start=st.dates(min_value=date(2012, 1, 1), max_value=date(2032, 12, 31)),
    days=st.integers(1, 400),
    nation=st.sampled_from(["england-and-wales", "scotland", "northern-ireland"]),
)
def test_a_due_date_in_working_days_looked_up_or_by_jumps_equals_the_calendars(
    start: date, days: int, nation: str
) -> None:
    # Every clock's due date is looked up in a list of working days, or found by jumps
    # over weekdays and the bank holidays they cross beyond it (projections.assess.clocks):
    # the same day as counting one day at a time, either way.
    from projections.assess.clocks import _working_days_after, _working_days_jumping

    counted = Calendar(nation).add_working_days(start, days)
    assert _working_days_after(start, days, nation) == counted
    assert _working_days_jumping(start, days, nation) == counted


def test_a_due_date_far_from_the_years_listed_is_found_by_jumps() -> None:
    # The list of working days covers at most _MOST_LISTED_YEARS years: a start a century
    # before the years already listed is answered by jumps, the list kept as it was.
    from projections.assess import clocks

    nation = "scotland"
    recent = clocks._working_days_after(date(2021, 12, 20), 15, nation)
    kept = clocks._WORKING_DAYS[nation]
    assert clocks._working_days_after(date(1901, 12, 20), 15, nation) == Calendar(
        nation
    ).add_working_days(date(1901, 12, 20), 15)
    assert clocks._WORKING_DAYS[nation] is kept
    assert recent == Calendar(nation).add_working_days(date(2021, 12, 20), 15)


def test_the_delay_fields_written_out_are_the_catalogues() -> None:
    """Judging clocks reads which delay fields each entry type has without the models (a
    cold ``status`` imports no pydantic model): exactly what the catalogue's models say."""
    from ledger.catalogue import models
    from projections.assess.clock_states import DELAY_FIELDS, DELAY_FIELDS_OF

    for kind in models.EVENT_TYPES:
        fields = models.MODELS_BY_TYPE[kind].model_fields
        assert DELAY_FIELDS_OF.get(kind, ()) == tuple(n for n in DELAY_FIELDS if n in fields), kind
    assert set(DELAY_FIELDS_OF) <= set(models.EVENT_TYPES)
