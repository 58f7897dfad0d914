"""Every mistake listed in one run (issue 13 item 14), on both stores.

``record`` runs every line through validation and then through the checks against its
case, going on after a failing line (which changes nothing later lines are checked
against), lists up to 100 problems with line, field and reason, and writes nothing.
The one-entry commands list every missing and every bad option at once, named by the
option, never as "line 1".
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.commands.entries import COMMAND_NAMES, option_name
from ledger.catalogue.models import MODELS_BY_TYPE
from ledger.errors import MAX_REPORTED_PROBLEMS
from tests.conftest import CliResult, open_ledger, scenario_lines

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]
CASE = "RR-2026-004"
DECISION_LINE = 19


def count(url: str) -> int:
    """How many entries the store holds."""
    led = open_ledger(url)
    try:
        return int(led.count_events())
    finally:
        led.close()


def scenario() -> list[dict[str, Any]]:
    """The shared scenario RR-2026-004 as objects, one per line (22)."""
    return [orjson.loads(line) for line in scenario_lines()]


def as_input(lines: list[dict[str, Any]]) -> bytes:
    """JSON Lines of the objects."""
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def problems_of(stderr: str) -> list[tuple[int, str]]:
    """``(line, field)`` of every problem a refusal listed on standard error."""
    return [
        (int(m.group(1)), m.group(2)) for m in re.finditer(r"line (\d+), field `([^`]+)`", stderr)
    ]


def refused(result: CliResult) -> None:
    """Exit 2 with a message and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


# --- record: every bad line ------------------------------------------------------------


def test_record_lists_validation_and_case_problems_in_one_run(store_url: str, cli: Cli) -> None:
    lines = scenario()
    lines[1]["occurred_at"] = "2026-01-01"  # before the incident: a check against the case
    lines[6]["colour"] = "red"  # not a field: validation
    del lines[DECISION_LINE - 1]["rationale"]  # required: validation
    lines[19]["occurred_at"] = "2099-01-01"  # in the future: a check against the case
    result = cli(["--store", store_url, "record", "-"], stdin=as_input(lines))
    refused(result)
    assert problems_of(result.stderr) == [
        (2, "occurred_at"),
        (7, "colour"),
        (DECISION_LINE, "rationale"),
        (20, "occurred_at"),
    ]
    assert "4 problems; nothing was written" in result.stderr
    assert count(store_url) == 0


def test_lines_of_a_refused_referral_say_why(store_url: str, cli: Cli) -> None:
    other = {**scenario()[0], "case": "RR-2026-001"}
    for name, change in (("a case check", {"regime": "wt2015"}), ("validation", {"summary": " "})):
        lines = scenario()
        lines[0].update(change)
        result = cli(["--store", store_url, "record", "-"], stdin=as_input([*lines, other]))
        refused(result)
        found = problems_of(result.stderr)
        assert found[0] == (1, "regime" if "regime" in change else "summary"), name
        assert found[1:] == [(n, "case") for n in range(2, 23)], name
        assert (
            result.stderr.count(f"case {CASE} does not exist (its referral at line 1 was refused)")
            == 21
        )
        assert "line 23" not in result.stderr  # the other case's referral is fine
        assert count(store_url) == 0


def test_a_refused_line_changes_nothing_later_lines_are_checked_against(
    store_url: str, cli: Cli
) -> None:
    referral, notified = scenario()[:2]
    request = {
        "type": "InformationRequested",
        "case": CASE,
        "occurred_at": "2026-02-13",
        "agency": "Northshire Police",
        "asked_for": "minimum-data",
        "request_id": "R1",
    }
    reply = {
        "type": "InformationReceived",
        "case": CASE,
        "occurred_at": "2026-02-18",
        "agency": "Northshire Police",
        "request_id": "R1",
        "involved": False,
        "summary": "No contact.",
    }
    lines = [
        referral,
        {**request, "occurred_at": "2026-01-01"},  # refused: before the incident
        request,  # R1 again: fine, as the refused request never happened
        reply,  # answers the second request
        {**notified, "occurred_at": "2099-01-01"},  # refused too, and listed
    ]
    result = cli(["--store", store_url, "record", "-"], stdin=as_input(lines))
    refused(result)
    assert problems_of(result.stderr) == [(2, "occurred_at"), (5, "occurred_at")]
    assert count(store_url) == 0


def test_at_most_100_problems_then_a_count_of_the_other_lines(
    store_url: str, cli: Cli, tmp_path: Path
) -> None:
    context = {"type": "ContextRecorded", "case": CASE, "topic": "other", "summary": "s"}
    lines = [scenario()[0], *({**context, "colour": i} for i in range(150))]
    path = tmp_path / "many.jsonl"
    path.write_bytes(as_input(lines))
    result = cli(["--store", store_url, "record", str(path)])
    refused(result)
    assert len(problems_of(result.stderr)) == MAX_REPORTED_PROBLEMS == 100
    assert "... and 50 more lines with problems" in result.stderr
    as_json = cli(["--store", store_url, "record", str(path), "--json"])
    refused(as_json)
    body = as_json.json()
    assert len(body["problems"]) == 100 and body["more_lines"] == 50
    assert body["problems"][0] == {
        "line": 2,
        "field": "colour",
        "reason": "is not a field of a ContextRecorded entry",
    }
    assert [p["line"] for p in body["problems"]] == list(range(2, 102))
    assert count(store_url) == 0


def test_record_json_lists_every_problem_for_programs(store_url: str, cli: Cli) -> None:
    lines = scenario()
    lines[19]["occurred_at"] = "2026-01-01"  # after the decision: nothing depends on them
    lines[21]["colour"] = "red"
    result = cli(["--store", store_url, "record", "-", "--json"], stdin=as_input(lines))
    refused(result)
    assert result.json() == {
        "problems": [
            {
                "line": 20,
                "field": "occurred_at",
                "reason": "2026-01-01 is before the case's incident_date 2026-02-06",
            },
            {"line": 22, "field": "colour", "reason": "is not a field of a ReportPublished entry"},
        ],
        "more_lines": 0,
    }
    assert "line 20, field `occurred_at`" in result.stderr  # people still read the message
    assert count(store_url) == 0


def test_a_clean_record_after_a_refused_one_stores_everything(store_url: str, cli: Cli) -> None:
    lines = scenario()
    lines[6]["colour"] = "red"
    refused(cli(["--store", store_url, "record", "-"], stdin=as_input(lines)))
    del lines[6]["colour"]
    ok = cli(["--store", store_url, "record", "-", "--json"], stdin=as_input(lines))
    assert ok.exit_code == 0, ok.stderr
    assert len(ok.json()) == 22 and count(store_url) == 22


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    broken=st.dictionaries(
        st.integers(min_value=2, max_value=22),
        st.sampled_from(["colour", "occurred_at"]),
        min_size=1,
        max_size=8,
    )
)
def test_every_broken_line_is_listed(store_url: str, cli: Cli, broken: dict[int, str]) -> None:
    """Whichever lines are broken, in validation (a field that is not one) or against
    the case (a date before the incident), each is listed with its field; a line not
    broken is listed only after a broken one (it depended on a refused entry); nothing
    is written."""
    lines = scenario()
    for number, how in broken.items():
        lines[number - 1][how] = "red" if how == "colour" else "2026-01-01"
    result = cli(["--store", store_url, "record", "-"], stdin=as_input(lines))
    refused(result)
    found = problems_of(result.stderr)
    assert {(n, f) for n, f in found if n in broken} == set(broken.items())
    assert all(n > min(broken) for n, f in found if n not in broken)
    assert count(store_url) == 0


# --- one-entry commands: every option at once ------------------------------------------


def required_options(event_type: str) -> list[str]:
    """The options a one-entry command cannot do without (from the catalogue)."""
    model = MODELS_BY_TYPE[event_type]
    return [
        option_name(name)
        for name, info in model.model_fields.items()
        if info.is_required() and name not in ("type", "case", "occurred_at")
    ]


def test_decide_without_options_lists_every_missing_option(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "decide", CASE])
    refused(result)
    for option in ("--outcome", "--decided-by", "--criteria", "--rationale"):
        assert f"field `{option}`: is required" in result.stderr, result.stderr
    assert "line 1" not in result.stderr
    assert "field `rationale`" not in result.stderr
    assert count(scenario_store) == 22


def test_bad_values_and_missing_options_are_listed_together(scenario_store: str, cli: Cli) -> None:
    result = cli(
        [
            "--store",
            scenario_store,
            "refer",
            "RR-2026-777",
            "--regime",
            "wt2099",
            "--incident-date",
            "2026-02-30",
            "--looked-after",
            "perhaps",
            "--personal",
            "no-equals-sign",
            "--json",
        ]
    )
    refused(result)
    problems = result.json()["problems"]
    fields = [p["field"] for p in problems]
    for option in ("--regime", "--incident-date", "--looked-after", "--personal"):
        assert option in fields, fields
    for option in ("--subject", "--aware-date", "--harm", "--summary", "--route"):
        assert option in fields, fields
    assert all(p["line"] is None for p in problems)
    assert "line 1" not in result.stderr
    assert count(scenario_store) == 22


def test_checks_against_the_case_are_named_by_option(scenario_store: str, cli: Cli) -> None:
    base = ["--store", scenario_store]
    unknown = cli([*base, "add-context", "RR-2026-999", "--topic", "other", "--summary", "s"])
    refused(unknown)
    assert "field `CASE`: case RR-2026-999 is unknown" in unknown.stderr
    partial = cli(
        [
            *base,
            "decide",
            CASE,
            "--outcome",
            "no-review",
            "--decided-by",
            "Northshire County Council",
            "--criteria",
            "abuse_or_neglect=met:Injuries were non-accidental.",
            "--rationale",
            "Criteria not met.",
            "--occurred-at",
            "2026-03-06",
        ]
    )
    refused(partial)
    assert "field `--criteria child_died`" in partial.stderr, partial.stderr
    assert "line 1" not in partial.stderr
    assert count(scenario_store) == 22


def test_help_still_marks_the_required_options(cli: Cli) -> None:
    shown = cli(["decide", "--help"]).stdout
    assert re.search(r"--rationale\s.*required", shown), shown


@pytest.mark.parametrize("event_type", list(MODELS_BY_TYPE))
def test_every_command_lists_all_its_missing_options(event_type: str, cli: Cli) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "never.db"
        result = cli(["--store", str(store), COMMAND_NAMES[event_type], CASE])
        missing = required_options(event_type)
        if not missing:
            return  # nothing is required: the entry is complete without options
        refused(result)
        for option in missing:
            assert f"field `{option}`: is required" in result.stderr, result.stderr
        assert "line " not in result.stderr
        assert not store.exists()  # options are checked before the store is opened


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_missing_options_are_each_named(cli: Cli, data: st.DataObject) -> None:
    """Give some required options any text and leave the others out: every one left out
    is named by its option, and no message speaks of a line."""
    event_type = data.draw(
        st.sampled_from([t for t in MODELS_BY_TYPE if required_options(t)]), label="type"
    )
    required = required_options(event_type)
    given_options = data.draw(st.lists(st.sampled_from(required), unique=True), label="given")
    values = data.draw(
        st.lists(
            st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
            min_size=len(given_options),
            max_size=len(given_options),
        ),
        label="values",
    )
    args = [a for option, value in zip(given_options, values, strict=True) for a in (option, value)]
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "never.db"
        result = cli(["--store", str(store), COMMAND_NAMES[event_type], CASE, *args])
        assert "Traceback" not in result.stderr
        left_out = [o for o in required if o not in given_options]
        if left_out:
            refused(result)
            for option in left_out:
                assert f"field `{option}`: is required" in result.stderr, result.stderr
            assert not store.exists()
        assert not re.search(r"(^|\n)(error: |  )line \d", result.stderr), result.stderr
