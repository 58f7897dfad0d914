"""``record`` validates each line as it checks it (one line's model at a time), with
the same refusals, in the same words and line order, as validating every line first."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ledger.application import validate_lines
from ledger.errors import InputError, problem_list
from tests.conftest import open_ledger, scenario_lines

CASE = "RR-2026-004"


def note(summary: str) -> bytes:
    line = {"type": "ContextRecorded", "case": CASE, "topic": "other", "summary": summary}
    return orjson.dumps(line)


def test_only_referrals_are_validated_before_the_checks() -> None:
    referral = scenario_lines()[0]
    escaped = note("A note").replace(b"ContextRecorded", b"Context\\u0052ecorded")
    parsed, problems = validate_lines([note("A note"), b"", referral, escaped], later=True)
    assert [p.line for p in parsed] == [1, 3, 4]
    assert [p._event is not None for p in parsed] == [False, True, True]
    assert not problems.found
    assert parsed[0].event.case == CASE  # validated when asked for


def refusal(led: Any, lines: list[bytes]) -> list[dict[str, Any]]:
    with pytest.raises(InputError) as caught:
        led.record_lines(lines, led.recorder_for())
    return list(problem_list(caught.value)["problems"])


def test_a_line_before_its_refused_referral_says_why(sqlite_url: str, clock: Any) -> None:
    """A line of a case whose referral, further down, is refused still says so; bad
    lines before and after good ones are all reported, in line order; nothing is
    written."""
    referral = orjson.loads(scenario_lines()[0])
    del referral["regime"]
    led = open_ledger(sqlite_url, clock)
    led.record_lines(
        [scenario_lines()[0].replace(CASE.encode(), b"RR-2026-777")], led.recorder_for()
    )
    problems = refusal(
        led,
        [
            note("Before its referral."),
            b"not json",
            orjson.dumps(referral),
            note("After its referral.").replace(b'"topic":"other"', b'"topic":"nonsense"'),
        ],
    )
    assert [p["line"] for p in problems] == [1, 2, 3, 4]
    assert (
        problems[0]["reason"] == f"case {CASE} does not exist (its referral at line 3 was refused)"
    )
    assert problems[1]["reason"].startswith("not valid JSON")
    assert problems[2]["field"] == "regime"
    assert problems[3]["field"] == "topic"
    assert led.count_events() == 1
