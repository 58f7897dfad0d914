"""Tables that fit, for people (issue 15, item 4): at 80 columns no case reference, date
or status is cut, piped output breaks no word, clocks are named in words for people and
by name for programs, ``status`` lists open cases the most urgent first, ``--csv`` says
what ``--json`` says, and ``timeline`` / ``why`` give texts whole with ``--full``.

The store holds long references (``RR-2026-0004-NORTHSHIRE``) and a long agency name, on
both stores; the CLI runs as a user runs it, at ``COLUMNS=80``, both as a terminal
(``TTY_COMPATIBLE=1``, which rich reads when it prints) and piped."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import orjson
import pytest

from tests.conftest import CliResult, open_ledger, scenario_lines

LONG_AGENCY = "Northshire Children's Social Care and Early Help Partnership Service"
OVERDUE = "RR-2026-0001-WESTMOOR-EAST"
"""Notified on 3 February: its rapid review is overdue on 10 March, and so is the reply
of the agency with the long name."""
SOON = "RR-2026-0009-SOUTHBRIDGE"
"""Referred on 9 March: its notification is due on 16 March."""
LATER = "RR-2026-0004-NORTHSHIRE"
"""The shared scenario: decided on 6 March, its review due in September."""
CLOSED = "RR-2026-0003-NORTHSHIRE-CLOSED"
"""Referred in error and closed."""
ON = "2026-03-10"
OPEN_CASES = (OVERDUE, SOON, LATER)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def desk_lines() -> list[bytes]:
    """Four cases with long references, one of them closed."""
    lines = [
        line.replace(b"RR-2026-004", LATER.encode()) for line in scenario_lines() if line.strip()
    ]
    referral = orjson.loads(scenario_lines()[0])

    def referred(case: str, day: str) -> dict[str, Any]:
        return {
            **referral,
            "case": case,
            "occurred_at": day,
            "incident_date": day,
            "aware_date": day,
            "subject": f"Child ({case})",
        }

    events: list[dict[str, Any]] = [
        referred(OVERDUE, "2026-02-02"),
        {
            "type": "IncidentNotified",
            "case": OVERDUE,
            "occurred_at": "2026-02-03",
            "recipients": ["national-panel"],
            "reference": "SIN-1",
        },
        {
            "type": "InformationRequested",
            "case": OVERDUE,
            "occurred_at": "2026-02-03",
            "agency": LONG_AGENCY,
            "asked_for": "minimum-data",
            "due": "2026-02-20",
        },
        referred(SOON, "2026-03-09"),
        referred(CLOSED, "2026-02-02"),
        {
            "type": "CaseClosed",
            "case": CLOSED,
            "occurred_at": "2026-02-04",
            "reason": "referred in error: the child lives in another area",
        },
    ]
    return lines + [orjson.dumps(e) for e in events]


@pytest.fixture
def desk(store_url: str, cli: Any, fixed_today: Any) -> str:
    """A store holding the four cases, recorded through the CLI."""
    done = cli(["--store", store_url, "record", "-"], stdin=b"\n".join(desk_lines()))
    assert done.exit_code == 0, done.stderr
    return store_url


def run(cli: Any, store: str, *args: str, terminal: bool, columns: int = 80) -> CliResult:
    """The command at ``columns`` wide, as a terminal or piped."""
    env = {"COLUMNS": str(columns), "TTY_COMPATIBLE": "1" if terminal else "0"}
    result: CliResult = cli(["--store", store, *args], env=env)
    assert result.exit_code == 0, result.stderr
    return CliResult(result.exit_code, ANSI.sub("", result.stdout), result.stderr)


def lines_fit(text: str, columns: int) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > columns]
    assert not too_wide, too_wide


# --- at 80 columns --------------------------------------------------------------------


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_status_at_80_columns_shows_every_reference_and_stage_whole(
    desk: str, cli: Any, terminal: bool
) -> None:
    shown = run(cli, desk, "status", "--on", ON, terminal=terminal).stdout
    lines_fit(shown, 80)
    assert "…" not in shown
    for row in cli(["--store", desk, "status", "--on", ON, "--json"]).json():
        line = next(line for line in shown.splitlines() if row["case"] in line)
        assert row["stage"] in line.split()  # the stage on the case's line, whole
    assert "2026-03-16" in shown and "2026-09-06" in shown  # next deadlines, whole
    every = run(cli, desk, "status", "--on", ON, "--all", terminal=terminal).stdout
    lines_fit(every, 80)
    assert all(case in every for case in (*OPEN_CASES, CLOSED))


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_clocks_at_80_columns_show_every_reference_date_and_status_whole(
    desk: str, cli: Any, terminal: bool
) -> None:
    shown = run(cli, desk, "clocks", "--on", ON, terminal=terminal).stdout
    lines_fit(shown, 80)
    assert "…" not in shown
    clocks = cli(["--store", desk, "clocks", "--on", ON, "--json"]).json()
    assert {c["case"] for c in clocks} == {*OPEN_CASES, CLOSED}
    for clock in clocks:
        # The case's line with this due date carries its status, whole.
        line = next(
            line for line in shown.splitlines() if clock["case"] in line and clock["due"] in line
        )
        assert clock["status"] in line.split()
    one = run(cli, desk, "clocks", LATER, "--on", ON, terminal=terminal).stdout
    lines_fit(one, 80)
    for clock in cli(["--store", desk, "clocks", LATER, "--on", ON, "--json"]).json():
        for day in (clock["started"], clock["due"], clock["ended"]):
            assert day is None or day in one


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_due_at_80_columns_shows_every_reference_date_and_agency_whole(
    desk: str, cli: Any, terminal: bool
) -> None:
    shown = run(cli, desk, "due", "--on", ON, terminal=terminal).stdout
    lines_fit(shown, 80)
    assert "…" not in shown
    deadlines = cli(["--store", desk, "due", "--on", ON, "--json"]).json()
    assert {d["case"] for d in deadlines} == set(OPEN_CASES)  # the closed case left out
    for deadline in deadlines:  # each on a line of its own with its due day, both whole
        assert any(
            deadline["case"] in line and deadline["due"] in line for line in shown.splitlines()
        ), deadline
    words = " ".join(shown.split())
    for word in LONG_AGENCY.split():  # the agency to chase, no word of it cut
        assert f" {word} " in words
    assert "rapid review" in shown and "rapid_review" not in shown
    assert "rapid_review" in {d["clock"] for d in deadlines}


def test_a_narrow_terminal_leaves_out_columns_and_says_which(desk: str, cli: Any) -> None:
    wide = run(cli, desk, "status", "--on", ON, terminal=True, columns=200).stdout
    narrow = run(cli, desk, "status", "--on", ON, terminal=True).stdout
    assert "regime" in wide and "Not shown" not in wide
    assert "Not shown at 80 columns: regime" in " ".join(narrow.split())


def test_one_case_at_80_columns_shows_the_long_agency_without_cutting_a_word(
    desk: str, cli: Any
) -> None:
    shown = run(cli, desk, "status", OVERDUE, "--on", ON, terminal=True).stdout
    lines_fit(shown, 80)
    assert "…" not in shown
    words = " ".join(shown.split())
    for word in LONG_AGENCY.split():
        assert f" {word} " in words
    assert "2026-02-20" in shown and "12 working days" in shown


def test_piped_output_wider_than_the_console_breaks_no_word(desk: str, cli: Any) -> None:
    # 30 columns cannot hold a reference and a stage: the table is wider, never cut.
    shown = run(cli, desk, "status", "--on", ON, terminal=False, columns=30).stdout
    assert "…" not in shown
    for case in OPEN_CASES:
        assert case in shown
    assert "gathering-information" in shown


# --- clock names ----------------------------------------------------------------------


def test_clocks_are_named_in_words_for_people_and_by_name_in_json(desk: str, cli: Any) -> None:
    for args in (("clocks", "--on", ON), ("status", "--on", ON), ("status", OVERDUE, "--on", ON)):
        text = run(cli, desk, *args, terminal=False, columns=200).stdout
        assert "rapid review" in text, args
        assert "rapid_review" not in text and "review_completion" not in text, args
    assert "rapid_review" in {c["clock"] for c in cli(["--store", desk, "clocks", "--json"]).json()}
    one = cli(["--store", desk, "status", OVERDUE, "--on", ON, "--json"]).json()
    assert one["overdue"] == ["rapid_review"]
    rules = cli(["rules", "wt2023", "--json"]).json()
    assert {r["clock"]: r["clock_words"] for r in rules}["rapid_review"] == "rapid review"


# --- the order of status --------------------------------------------------------------


def test_status_lists_open_cases_the_most_urgent_first(desk: str, cli: Any) -> None:
    base = ["--store", desk, "status"]

    def cases(*args: str) -> list[str]:
        return [r["case"] for r in cli([*base, *args, "--json"]).json()]

    # Overdue first, then the soonest next deadline (16 March before September).
    assert cases("--on", ON) == [OVERDUE, SOON, LATER]
    assert cases("--on", ON, "--sort", "ref") == sorted(OPEN_CASES)
    assert cases("--on", ON, "--all", "--sort", "ref") == sorted((*OPEN_CASES, CLOSED))
    assert cases("--on", ON, "--stage", "closed") == [CLOSED]
    # From the index (today: the scenario is published, the other two overdue): the
    # overdue cases, by reference, then the case with nothing due.
    assert cases() == [OVERDUE, SOON, LATER]
    assert cases("--sort", "ref") == sorted(OPEN_CASES)
    assert CLOSED in cases("--all")
    text = run(cli, desk, "status", "--on", ON, terminal=False, columns=200).stdout
    order = [text.index(case) for case in (OVERDUE, SOON, LATER)]
    assert order == sorted(order)


def test_an_order_that_is_none_is_refused(desk: str, cli: Any) -> None:
    refused = cli(["--store", desk, "status", "--sort", "soonest"])
    assert refused.exit_code == 2
    assert "--sort" in refused.stderr and "urgency, ref" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_facade_orders_and_leaves_closed_cases_out(desk: str) -> None:
    from projections import api

    led = open_ledger(desk)
    assert [r["case"] for r in api.status(led, on=ON).rows] == [OVERDUE, SOON, LATER]
    every = api.status(led, on=ON, sort="ref", include_closed=True)
    assert [r["case"] for r in every.rows] == sorted((*OPEN_CASES, CLOSED))


# --- --csv ----------------------------------------------------------------------------


def parsed(result: CliResult) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_status_csv_says_what_json_says(desk: str, cli: Any) -> None:
    base = ["--store", desk, "status", "--on", ON, "--all"]
    rows = parsed(cli([*base, "--csv"]))
    answers = cli([*base, "--json"]).json()
    assert [r["case"] for r in rows] == [a["case"] for a in answers]
    for row, answer in zip(rows, answers, strict=True):
        assert row["stage"] == answer["stage"]
        assert row["regime"] == answer["regime"]
        assert row["overdue"].split() == answer["overdue"]
        assert int(row["open_requests"]) == len(answer["open_requests"])
        overdue = [r for r in answer["open_requests"] if r["overdue"]]
        assert int(row["overdue_requests"]) == len(overdue)
        decision = answer["decision"] or {}
        assert row["decision"] == (decision.get("outcome") or "")
        assert row["decided_on"] == (decision.get("occurred_at") or "")
        deadline = answer["next_deadline"] or {}
        assert row["next_deadline"] == (deadline.get("clock") or "")
        assert row["next_deadline_due"] == (deadline.get("due") or "")
    one = parsed(cli(["--store", desk, "status", OVERDUE, "--on", ON, "--csv"]))
    assert [r["case"] for r in one] == [OVERDUE]
    both = cli(["--store", desk, "status", "--csv", "--json"])
    assert both.exit_code == 2 and "--csv" in both.stderr


def test_clocks_csv_says_what_json_says(desk: str, cli: Any) -> None:
    base = ["--store", desk, "clocks", "--on", ON]
    rows = parsed(cli([*base, "--csv"]))
    answers = cli([*base, "--json"]).json()
    assert len(rows) == len(answers) > 0
    for row, answer in zip(rows, answers, strict=True):
        for key in ("case", "clock", "status", "regime", "unit"):
            assert row[key] == answer[key]
        for key in ("started", "due", "ended", "days_over", "days_left"):
            assert row[key] == ("" if answer[key] is None else str(answer[key]))
        assert row["justified"] == ("true" if answer["justified"] else "false")
    one = parsed(cli(["--store", desk, "clocks", LATER, "--on", ON, "--csv", "--status", "met"]))
    assert {r["case"] for r in one} == {LATER} and {r["status"] for r in one} == {"met"}


# --- --full ---------------------------------------------------------------------------


def test_timeline_and_why_give_texts_whole_with_full(desk: str, cli: Any) -> None:
    from projections import api

    led = open_ledger(desk)
    short = api.timeline(led, LATER)
    whole = api.timeline(led, LATER, full=True)
    cut = [e for e in short.entries if short.what(e).endswith("…")]
    assert cut, "the scenario has an entry too long for one line"
    entry = cut[0]
    text = whole.what(entry)
    assert not text.endswith("…") and text.startswith(short.what(entry)[:-1])

    wide = {"COLUMNS": "2000"}  # one line per entry: the text is found in one piece
    shortened = cli(["--store", desk, "timeline", LATER], env=wide).stdout
    full = cli(["--store", desk, "timeline", LATER, "--full"], env=wide).stdout
    assert text not in shortened and text in full

    why_whole = api.why(led, LATER, full=True)
    why_short = api.why(led, LATER)
    known = why_whole.answer.known_then
    long_ones = [e for e in known if why_short.what(e).endswith("…")]
    assert long_ones
    words = why_whole.what(long_ones[0])
    assert words in cli(["--store", desk, "why", LATER, "--full"], env=wide).stdout
    assert words not in cli(["--store", desk, "why", LATER], env=wide).stdout
