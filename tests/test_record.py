"""Recording from the CLI: the scenario stores 22 entries, personal data never enters an
event body, and every kind of bad input exits 2 with the store unchanged (both stores)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import SCENARIO, CliResult, open_ledger, scenario_lines

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")


def count(url: str) -> int:
    led = open_ledger(url)
    try:
        return int(led.count_events())
    finally:
        led.close()


def write_lines(path: Path, lines: list[Any]) -> str:
    path.write_bytes(
        b"\n".join(x if isinstance(x, bytes) else orjson.dumps(x) for x in lines) + b"\n"
    )
    return str(path)


def test_scenario_records_22_entries(store_url: str, cli: Callable[..., CliResult]) -> None:
    result = cli(["--store", store_url, "record", str(SCENARIO), "--json"])
    assert result.exit_code == 0, result.stderr
    receipts = result.json()
    assert [r["ref"] for r in receipts] == [f"RR-2026-004#{n}" for n in range(1, 23)]
    assert all(len(r["hash"]) == 64 for r in receipts)
    assert count(store_url) == 22
    led = open_ledger(store_url)
    records = led.case_records("RR-2026-004")
    assert records[0]["prev_hash"] == "0" * 64
    for before, after in itertools.pairwise(records):
        assert after["prev_hash"] == before["hash"]
    assert records[2]["request_id"]  # assigned by the ledger when absent
    bodies = b"".join(orjson.dumps(r) for r in records)
    assert b"Kai Example" not in bodies and b"2025-08-14" not in bodies
    personal = {row.field: orjson.loads(row.value) for row in led.personal_data("RR-2026-004")}
    assert personal == {"name": "Kai Example", "date_of_birth": "2025-08-14"}
    led.close()


def test_personal_data_absent_from_raw_event_table_bytes(sqlite_url: str, cli: Any) -> None:
    assert cli(["--store", sqlite_url, "record", str(SCENARIO)]).exit_code == 0
    with sqlite3.connect(sqlite_url) as conn:
        for table in ("stored_events", "stored_snapshots"):
            blob = b"".join(bytes(row[0]) for row in conn.execute(f"SELECT state FROM {table}"))
            assert b"Kai Example" not in blob and b"2025-08-14" not in blob
        # They live in the personal-data table only, sealed with the case's key.
        values = b"".join(bytes(r[0]) for r in conn.execute("SELECT value FROM personal_data"))
        assert values and b"Kai Example" not in values
    led = open_ledger(sqlite_url)
    assert b'"Kai Example"' in [r.value for r in led.personal_data("RR-2026-004")]


def test_record_from_stdin(store_url: str, cli: Any) -> None:
    result = cli(["--store", store_url, "record", "-", "--json"], stdin=SCENARIO.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert len(result.json()) == 22


REFERRAL = orjson.loads(scenario_lines()[0])
NOTIFIED = orjson.loads(scenario_lines()[1])
DECISION = orjson.loads(scenario_lines()[18])


def _bad_inputs() -> dict[str, tuple[list[Any], int, str]]:
    """name -> (lines, bad line number, field named in the message)."""
    later = [orjson.loads(x) for x in scenario_lines()[1:10]]
    return {
        "wrong type": ([REFERRAL, {**NOTIFIED, "type": "IncidentNotifed"}], 2, "type"),
        "missing field": ([{k: v for k, v in REFERRAL.items() if k != "harm"}], 1, "harm"),
        "unknown case": ([{**NOTIFIED, "case": "RR-2026-999"}], 1, "case"),
        "unknown field": ([REFERRAL, {**NOTIFIED, "colour": "red"}], 2, "colour"),
        "carries recorded_at": (
            [REFERRAL, {**NOTIFIED, "recorded_at": "2026-02-13T00:00:00Z"}],
            2,
            "recorded_at",
        ),
        "carries seq": ([REFERRAL, {**NOTIFIED, "seq": 2}], 2, "seq"),
        "carries hash": ([{**REFERRAL, "hash": "0" * 64}], 1, "hash"),
        "forward reference": (
            [REFERRAL, NOTIFIED, {**DECISION, "relied_on": ["RR-2026-004#9"]}],
            3,
            "relied_on[0]",
        ),
        "foreign reference": (
            [REFERRAL, NOTIFIED, {**DECISION, "relied_on": ["SCR-2015-001#1"]}],
            3,
            "relied_on[0]",
        ),
        "criteria of the wrong regime": (
            [
                REFERRAL,
                NOTIFIED,
                {
                    **DECISION,
                    "criteria": {
                        **DECISION["criteria"],
                        "agency_concern": {"finding": "met", "reason": "r"},
                    },
                },
            ],
            3,
            "criteria.agency_concern",
        ),
        "malformed JSON on line 7 of 10": (
            [REFERRAL, *later[:5], b'{"type": "ContextRecorded", "case": ', *later[5:8]],
            7,
            "",
        ),
        "occurred before the incident": (
            [REFERRAL, {**NOTIFIED, "occurred_at": "2026-01-01"}],
            2,
            "occurred_at",
        ),
        "occurred in the future": (
            [REFERRAL, {**NOTIFIED, "occurred_at": "2099-01-01"}],
            2,
            "occurred_at",
        ),
        "aware before incident": ([{**REFERRAL, "aware_date": "2026-02-01"}], 1, "aware_date"),
        "review without nature": (
            [REFERRAL, {k: v for k, v in DECISION.items() if k not in ("nature", "relied_on")}],
            2,
            "nature",
        ),
        "missing criterion": (
            [
                REFERRAL,
                {
                    **{k: v for k, v in DECISION.items() if k != "relied_on"},
                    "criteria": {"abuse_or_neglect": DECISION["criteria"]["abuse_or_neglect"]},
                },
            ],
            2,
            "criteria.child_died",
        ),
        "a float": ([{**REFERRAL, "personal": {"weight": 3.5}}], 1, "personal"),
        "not an object": ([b"[1, 2, 3]"], 1, ""),
        "duplicate referral": ([REFERRAL, REFERRAL], 2, "case"),
        "answer to an unknown request": (
            [
                REFERRAL,
                {
                    "type": "InformationReceived",
                    "case": "RR-2026-004",
                    "occurred_at": "2026-02-18",
                    "agency": "Police",
                    "request_id": "R9",
                    "involved": True,
                    "summary": "s",
                },
            ],
            2,
            "request_id",
        ),
    }


@pytest.mark.parametrize("name", list(_bad_inputs()))
def test_bad_input_exits_2_and_writes_nothing(
    name: str, store_url: str, cli: Any, tmp_path: Path
) -> None:
    lines, bad_line, field = _bad_inputs()[name]
    # A good case already in the store, to show nothing at all is added.
    assert (
        cli(
            ["--store", store_url, "record", "-"],
            stdin=scenario_lines()[0].replace(b"RR-2026-004", b"RR-2026-001") + b"\n",
        ).exit_code
        == 0
    )
    before = count(store_url)
    result = cli(["--store", store_url, "record", write_lines(tmp_path / "in.jsonl", lines)])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert f"line {bad_line}" in result.stderr
    if field:
        assert f"field `{field}`" in result.stderr
    assert "Traceback" not in result.stderr
    assert count(store_url) == before


def test_closed_case_takes_only_corrections(store_url: str, cli: Any, tmp_path: Path) -> None:
    closed = {
        "type": "CaseClosed",
        "case": "RR-2026-004",
        "occurred_at": "2026-02-10",
        "reason": "Referred in error.",
    }
    after = {
        "type": "ContextRecorded",
        "case": "RR-2026-004",
        "occurred_at": "2026-02-11",
        "topic": "other",
        "summary": "s",
    }
    fix = {
        "type": "EntryCorrected",
        "case": "RR-2026-004",
        "corrects": "RR-2026-004#1",
        "changes": {"summary": "Corrected summary."},
        "reason": "Typo.",
    }
    path = write_lines(tmp_path / "a.jsonl", [REFERRAL, closed])
    assert cli(["--store", store_url, "record", path]).exit_code == 0
    result = cli(["--store", store_url, "record", write_lines(tmp_path / "b.jsonl", [after])])
    assert result.exit_code == 2 and "closed" in result.stderr
    assert (
        cli(["--store", store_url, "record", write_lines(tmp_path / "c.jsonl", [fix])]).exit_code
        == 0
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"colour": "red"}, "changes.colour"),
        ({"harm": "bad"}, "changes.harm"),
        ({"case": "X-1"}, "changes.case"),
        ({"occurred_at": "2001-01-01"}, "changes.occurred_at"),
    ],
)
def test_corrections_change_only_valid_fields(
    changes: dict[str, Any], field: str, store_url: str, cli: Any, tmp_path: Path
) -> None:
    assert cli(["--store", store_url, "record", str(SCENARIO)]).exit_code == 0
    fix = {
        "type": "EntryCorrected",
        "case": "RR-2026-004",
        "corrects": "RR-2026-004#1",
        "changes": changes,
        "reason": "r",
    }
    result = cli(["--store", store_url, "record", write_lines(tmp_path / "f.jsonl", [fix])])
    assert result.exit_code == 2
    assert f"field `{field}`" in result.stderr
    assert count(store_url) == 22


def test_correcting_a_correction_is_refused(store_url: str, cli: Any, tmp_path: Path) -> None:
    fix = {
        "type": "EntryCorrected",
        "case": "RR-2026-004",
        "corrects": "RR-2026-004#1",
        "changes": {"summary": "New."},
        "reason": "r",
    }
    fix2 = {**fix, "corrects": "RR-2026-004#2"}
    path = write_lines(tmp_path / "f.jsonl", [REFERRAL, fix, fix2])
    result = cli(["--store", store_url, "record", path])
    assert (
        result.exit_code == 2
        and "line 3" in result.stderr
        and "itself a correction" in result.stderr
    )


def test_one_command_per_event_type(store_url: str, cli: Any) -> None:
    base = ["--store", store_url]
    referred = cli(
        [
            *base,
            "refer",
            "SCR-2015-007",
            "--regime",
            "wt2015",
            "--subject",
            "Child M",
            "--incident-date",
            "2017-03-01",
            "--aware-date",
            "2017-03-02",
            "--occurred-at",
            "2017-03-02",
            "--harm",
            "death",
            "--abuse-or-neglect",
            "known",
            "--home-area",
            "Eastborough",
            "--referrer",
            "Eastborough CSC",
            "--route",
            "statutory",
            "--summary",
            "Death of a toddler.",
            "--personal",
            "name=Mia Example",
            "--json",
        ]
    )
    assert referred.exit_code == 0, referred.stderr
    me = open_ledger(store_url).identity()
    enrolled = cli(
        [*base, "users", "add", me, "--role", "admin", "--role", "business-unit", "--role", "chair"]
    )
    assert enrolled.exit_code == 0, enrolled.stderr
    decided = cli(
        [
            *base,
            "decide",
            "SCR-2015-007",
            "--occurred-at",
            "2017-03-20",
            "--outcome",
            "review",
            "--decided-by",
            "LSCB chair",
            "--criteria",
            "abuse_or_neglect=met:Known neglect",
            "--criteria",
            "child_died=met:Child died",
            "--criteria",
            "seriously_harmed=not-met:Died",
            "--criteria",
            "agency_concern=unclear:To be explored",
            "--rationale",
            "Reg 5 (1)(a) met.",
            "--nature",
            "SCR, systems methodology",
            "--factors",
            "media=Local press interest",
            "--relied-on",
            "SCR-2015-007#1",
            "--role",
            "chair",
            "--json",
        ]
    )
    assert decided.exit_code == 0, decided.stderr
    assert decided.json()[0]["ref"] == "SCR-2015-007#2"
    stored = open_ledger(store_url).case_records("SCR-2015-007")[1]
    assert stored["criteria"]["agency_concern"] == {
        "finding": "unclear",
        "reason": "To be explored",
    }
    assert stored["factors"] == {"media": "Local press interest"}
    assert stored["role"] == "chair"
    bad = cli(
        [
            *base,
            "decide",
            "SCR-2015-007",
            "--outcome",
            "review",
            "--decided-by",
            "X",
            "--criteria",
            "abuse_or_neglect=met",
            "--rationale",
            "r",
            "--nature",
            "n",
        ]
    )
    assert bad.exit_code == 2 and "field `--criteria`" in bad.stderr
    wrong_bool = cli(
        [
            *base,
            "receive-info",
            "SCR-2015-007",
            "--agency",
            "Police",
            "--involved",
            "perhaps",
            "--summary",
            "s",
        ]
    )
    assert wrong_bool.exit_code == 2 and "field `--involved`" in wrong_bool.stderr


def test_schema_is_a_discriminated_union_of_every_type(cli: Any) -> None:
    from ledger.catalogue.models import EVENT_TYPES

    schema = cli(["schema"]).json()
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(schema["discriminator"]["mapping"]) == set(EVENT_TYPES)
    decision = schema["$defs"]["DecisionMade"]
    assert decision["additionalProperties"] is False
    assert {"outcome", "decided_by", "criteria", "rationale"} <= set(decision["required"])


def test_unreachable_store_exits_4(cli: Any, tmp_path: Path) -> None:
    missing = cli(["--store", str(tmp_path / "no" / "such" / "dir.db"), "verify"])
    assert missing.exit_code == 4 and "does not exist" in missing.stderr
    pg = cli(["--store", "postgresql://nobody@127.0.0.1:1/none", "verify"])
    assert pg.exit_code == 4 and "Traceback" not in pg.stderr


def test_required_null_field_is_kept_and_correctable(
    store_url: str, cli: Any, tmp_path: Path
) -> None:
    """``agrees: null`` (the peer gave no view) is stored, so a correction validates."""
    received = {
        "type": "PeerChallengeReceived",
        "case": "RR-2026-004",
        "occurred_at": "2026-03-05",
        "peer": "Chair, Westmoor",
        "agrees": None,
        "advice": "Consider the panel's view.",
    }
    fix = {
        "type": "EntryCorrected",
        "case": "RR-2026-004",
        "corrects": "RR-2026-004#2",
        "changes": {"advice": "Consider the national panel's view."},
        "reason": "Wording.",
    }
    path = write_lines(tmp_path / "p.jsonl", [REFERRAL, received, fix])
    result = cli(["--store", store_url, "record", path])
    assert result.exit_code == 0, result.stderr
    stored = open_ledger(store_url).case_records("RR-2026-004")[1]
    assert "agrees" in stored and stored["agrees"] is None


def test_schema_name_with_capitals_is_refused_clearly(cli: Any) -> None:
    result = cli(
        ["--store", "postgresql://postgres@127.0.0.1:5432/test?schema=Northshire", "status"]
    )
    assert result.exit_code == 2 and "lower-case" in result.stderr


def test_snapshots_give_the_same_case_as_a_full_replay(store_url: str) -> None:
    """Snapshots (every 50 entries, taken from the saved aggregate) restore exactly the
    state a replay of every entry gives, and recording carries on from them."""
    from ledger.application import project_case
    from ledger.domain.case import case_id

    led = open_ledger(store_url)
    who = led.recorder_for()
    led.record_lines([scenario_lines()[0]], who)
    context = {
        "type": "ContextRecorded",
        "case": "RR-2026-004",
        "occurred_at": "2026-02-20",
        "topic": "other",
    }
    n = 1
    for size in (7, 60, 1, 49, 30):  # batches that cross multiples of 50 in different ways
        batch = [orjson.dumps({**context, "summary": f"entry {n + i}"}) for i in range(size)]
        led.record_lines(batch, who)
        n += size
    snapshots = list(led.snapshots.get(case_id("RR-2026-004")))
    assert [s.originator_version for s in snapshots] == [68, 118]  # 1+7+60, then +1+49
    from_snapshot = led.repository.get(case_id("RR-2026-004"), projector_func=project_case)
    replayed = project_case(None, led.events.get(case_id("RR-2026-004")))
    assert from_snapshot.version == replayed.version == 148
    for name in ("head_hash", "last_recorded_at", "types", "open_requests", "regime", "closed"):
        assert getattr(from_snapshot, name) == getattr(replayed, name), name
    led.record_lines([orjson.dumps({**context, "summary": "after"})], who)
    assert led.verify().ok
