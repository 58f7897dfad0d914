"""Recording for people (issue 15, item 5): ``record`` of a large file follows its phases
with a progress bar at a terminal and ends with a summary (entries per case and per type)
instead of one row per entry, ``--json`` unchanged; at a terminal a one-entry command
asks for the required options left out, offering the catalogue's choices, then shows
every problem at once; a script (pipes, or ``--json``) is never asked anything.

The terminal tests run the real ``caseledger`` in a child process at a pseudo-terminal
(``tests/terminal.py``); child processes run at the real date, so they are
``real_clock`` and record only 2026 dates (in the past from now on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger import api
from ledger.errors import InputError
from tests.conftest import FixedClock, open_ledger, scenario_lines
from tests.terminal import Terminal, piped


def referrals(count: int, year: int = 2026) -> list[bytes]:
    """``count`` referrals of new cases (the scenario's, with other references)."""
    first = scenario_lines()[0]
    return [first.replace(b"RR-2026-004", f"RR-{year}-{n:05d}".encode()) for n in range(count)]


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


# --- the facade: progress and summary --------------------------------------------------------


def test_progress_follows_each_phase_per_batch_not_per_line(
    store_url: str, clock: FixedClock
) -> None:
    led = open_ledger(store_url, clock)
    told: list[tuple[str, int, int | None]] = []
    recorded = api.record_lines(
        led, referrals(2500), progress=lambda what, done, total: told.append((what, done, total))
    )
    assert len(recorded.receipts) == 2500
    assert [t for t in told if t[0] == "validating"] == [
        ("validating", 1000, 2500),
        ("validating", 2000, 2500),
        ("validating", 2500, 2500),
    ]
    assert [t for t in told if t[0] == "checking"] == [
        ("checking", 0, 2500),
        ("checking", 1000, 2500),
        ("checking", 2000, 2500),
        ("checking", 2500, 2500),
    ]
    assert told[-2:] == [("saving", 0, None), ("saving", 1, 1)]
    phases = [what for what, _, _ in told]
    assert phases == sorted(phases, key=["validating", "checking", "saving"].index)


def test_refused_input_tells_no_saving(store_url: str, clock: FixedClock) -> None:
    led = open_ledger(store_url, clock)
    told: list[str] = []
    lines = [*referrals(3), b'{"type": "CaseClosed", "case": "RR-2099-1", "reason": "x"}']
    with pytest.raises(InputError):
        api.record_lines(led, lines, progress=lambda what, done, total: told.append(what))
    assert "validating" in told and "saving" not in told
    assert led.count_events() == 0


def test_the_summary_counts_entries_per_case_and_type(store_url: str, clock: FixedClock) -> None:
    led = open_ledger(store_url, clock)
    lines = [*scenario_lines(), *referrals(3, year=2025)]
    summary = api.record_lines(led, lines).summary()
    assert summary.entries == 25
    assert summary.by_case == (
        ("RR-2026-004", 22),
        ("RR-2025-00000", 1),
        ("RR-2025-00001", 1),
        ("RR-2025-00002", 1),
    )
    by_type = dict(summary.by_type)
    assert by_type["CaseReferred"] == 4
    assert sum(by_type.values()) == 25
    # in the catalogue's order: the referral first
    assert summary.by_type[0] == ("CaseReferred", 4)
    assert (summary.first_ref, summary.last_ref) == ("RR-2026-004#1", "RR-2025-00002#1")
    stored = {r["command_id"] for r in led.case_records("RR-2026-004")}
    assert stored == {summary.command_id}
    assert summary.to_json()["by_case"]["RR-2026-004"] == 22


# --- the command's output ---------------------------------------------------------------


@pytest.mark.usefixtures("fixed_today")
def test_a_large_record_prints_a_summary_and_json_is_unchanged(
    store_url: str, cli: Any, tmp_path: Path
) -> None:
    big = write(tmp_path / "big.jsonl", [*scenario_lines(), *referrals(30, year=2025)])
    shown = cli(["--store", store_url, "record", str(big)])
    assert shown.exit_code == 0, shown.stderr
    text = shown.stdout
    assert "Recorded 52 entries in 31 cases" in text
    assert "first RR-2026-004#1, last RR-2025-00029#1" in text
    assert "RR-2026-004" in text and "22" in text
    assert "and 16 more" in text  # fifteen cases by name, the other sixteen counted
    assert "CaseReferred" in text and "DecisionMade" in text
    led = open_ledger(store_url)
    (command_id,) = {r["command_id"] for r in led.case_records("RR-2026-004")}
    assert command_id in text
    assert led.case_records("RR-2026-004")[0]["hash"] not in text  # no row per entry
    more = write(tmp_path / "more.jsonl", referrals(25, year=2024))
    as_json = cli(["--store", store_url, "record", str(more), "--json"])
    assert as_json.exit_code == 0, as_json.stderr
    receipts = as_json.json()
    assert [r["ref"] for r in receipts] == [f"RR-2024-{n:05d}#1" for n in range(25)]
    assert all(set(r) == {"ref", "hash", "recorded_at"} for r in receipts)


@pytest.mark.usefixtures("fixed_today")
def test_a_few_entries_keep_one_row_each(store_url: str, cli: Any, tmp_path: Path) -> None:
    twenty = write(tmp_path / "twenty.jsonl", scenario_lines()[:20])
    shown = cli(["--store", store_url, "record", str(twenty)])
    assert shown.exit_code == 0, shown.stderr
    led = open_ledger(store_url)
    records = led.case_records("RR-2026-004")
    assert len(records) == 20
    assert "Recorded 20 entries" in shown.stdout
    assert "per case" not in shown.stdout
    for record in records:
        assert record["hash"] in shown.stdout


# --- at a terminal, and in a script --------------------------------------------------------


@pytest.mark.real_clock
def test_a_progress_bar_at_a_terminal_and_none_in_a_pipe(store_url: str, tmp_path: Path) -> None:
    big = write(tmp_path / "big.jsonl", referrals(2500))
    at_terminal = Terminal(["--store", store_url, "record", str(big)])
    code, shown = at_terminal.finish()
    assert code == 0, shown
    for phase in ("validating", "checking", "saving"):
        assert phase in shown
    assert "2500/2500" in shown
    assert "Recorded 2,500 entries in 2,500 cases" in shown
    script = piped(
        ["--store", store_url, "record", str(write(tmp_path / "b.jsonl", referrals(30, 2025)))]
    )
    assert script.returncode == 0, script.stderr
    assert "validating" not in script.stderr and "━" not in script.stderr
    assert "Recorded 30 entries" in script.stdout


def _referred(store_url: str) -> None:
    led = open_ledger(store_url)
    led.record_lines(scenario_lines()[:1], led.recorder_for())
    led.close()


@pytest.mark.real_clock
def test_a_terminal_asks_for_what_is_missing_offering_the_choices(store_url: str) -> None:
    _referred(store_url)
    term = Terminal(["--store", store_url, "discuss", "RR-2026-004", "--occurred-at", "2026-02-20"])
    asked = term.expect(r"--forum.*: $")
    assert "discuss needs --forum, --attendees, --summary" in asked
    assert "one of scr-subgroup, rapid-review-meeting, board, other" in asked
    term.answer("board-meeting")  # not offered: asked again at once
    again = term.expect(r"--forum.*: $")
    assert "'board-meeting' is not one of" in again
    term.answer("rapid-review-meeting")
    assert "empty to finish" in term.expect(r"--attendees item 1.*: $")
    term.answer("Northshire Police")
    term.expect(r"--attendees item 2.*: $")
    term.answer("Northshire ICB")
    term.expect(r"--attendees item 3.*: $")
    term.answer("")
    term.expect(r"--summary.*: $")
    term.answer("Rapid review meeting held.")
    code, shown = term.finish()
    assert code == 0, shown
    assert "Recorded 1 entry" in shown and "RR-2026-004#2" in shown
    led = open_ledger(store_url)
    entry = led.case_records("RR-2026-004")[1]
    assert entry["type"] == "DiscussionHeld"
    assert entry["forum"] == "rapid-review-meeting"
    assert entry["attendees"] == ["Northshire Police", "Northshire ICB"]
    assert entry["summary"] == "Rapid review meeting held."


@pytest.mark.real_clock
def test_answers_are_checked_together_and_every_problem_shown(store_url: str) -> None:
    _referred(store_url)
    term = Terminal(
        ["--store", store_url, "receive-info", "RR-2026-004", "--occurred-at", "2026-02-20"]
    )
    term.expect(r"--agency.*: $")
    term.answer("")  # left out
    assert "one of yes, no" in term.expect(r"--involved.*: $")
    term.answer("")
    term.expect(r"--summary.*: $")
    term.answer(" ")  # blank text: left out too
    code, shown = term.finish()
    assert code == 2, shown
    assert "3 problems; nothing was written" in shown
    for option in ("--agency", "--involved", "--summary"):
        assert f"field `{option}`" in shown
    assert open_ledger(store_url).count_events() == 1


@pytest.mark.real_clock
def test_a_script_and_json_are_never_asked(store_url: str) -> None:
    _referred(store_url)
    args = ["--store", store_url, "discuss", "RR-2026-004", "--occurred-at", "2026-02-20"]
    script = piped(args, stdin=b"board\nPolice\n\nSummary.\n")
    assert script.returncode == 2, script.stderr
    assert "needs" not in script.stdout and "needs" not in script.stderr
    assert "3 problems; nothing was written" in script.stderr
    for option in ("--forum", "--attendees", "--summary"):
        assert f"field `{option}`" in script.stderr
    term = Terminal([*args, "--json"])
    code, shown = term.finish()
    assert code == 2, shown
    assert "needs" not in shown
    problems = orjson.loads(shown[shown.index("{") : shown.rindex("}") + 1])["problems"]
    assert [p["field"] for p in problems] == ["--forum", "--attendees", "--summary"]
    assert open_ledger(store_url).count_events() == 1
