"""The write side's facade (``ledger.api``) on both stores: refused input opens no store,
an entry's fields typed or given in Python record the same, a tracker import blocked by a
bad row still returns its report (with the refusal to raise), and a dry run's missing
store is an empty one that is never created."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ledger import api
from ledger.application import CaseLedger
from ledger.errors import InputError, each_problem

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
REFERRAL = orjson.loads(
    (ROOT / "ledger" / "data" / "demo" / "rr-2026-004.jsonl").read_bytes().splitlines()[0]
)


@pytest.fixture
def led(store_url: str) -> Iterator[CaseLedger]:
    opened = api.open_store(store_url, create=True)
    try:
        yield opened
    finally:
        opened.close()


def _never() -> CaseLedger:
    raise AssertionError("the store was opened for input that is refused")


def test_refused_input_opens_no_store(tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        api.record_entry(_never, "DecisionMade", "RR-2026-004", outcome="review")
    assert {p.field for p in each_problem(refused.value)} >= {"decided_by", "rationale"}
    with pytest.raises(InputError, match="is not a file"):
        api.record_file(_never, tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="cannot read the policy file"):
        api.set_policy(_never, tmp_path / "missing.toml", reason="r")
    with pytest.raises(InputError, match="does not exist"):
        api.import_tracker(_never, tmp_path / "t.csv", mapping=tmp_path / "missing.toml")


def test_an_entry_typed_or_given_in_python_records_the_same(led: CaseLedger) -> None:
    cases = ("RR-2026-101", "RR-2026-102")
    api.record_lines(led, [orjson.dumps({**REFERRAL, "case": case}) for case in cases])
    given = {"occurred_at": "2026-02-18", "agency": "Northshire ICB", "summary": "Seen twice."}
    typed = api.record_entry(
        led, "InformationReceived", cases[0], involved="yes", sources=["GP letter|doc-7"], **given
    )
    python = api.record_entry(
        lambda: led,
        "InformationReceived",
        cases[1],
        involved=True,
        sources=[{"title": "GP letter", "ref": "doc-7"}],
        **given,
    )
    assert [r.ref for r in typed.receipts + python.receipts] == [f"{c}#2" for c in cases]
    first, second = (led.case_records(case)[-1] for case in cases)
    for field in ("involved", "sources", "agency", "occurred_at"):
        assert first[field] == second[field]
    assert first["involved"] is True


def test_a_blocked_import_returns_its_report_and_writes_nothing(led: CaseLedger) -> None:
    """The sample's delays name decision-makers this store has not enrolled: those rows
    are bad, so nothing is written unless the other rows are to be recorded anyway."""
    before = led.count_events()
    blocked = api.import_tracker(
        led, EXAMPLES / "tracker-sample.csv", mapping=EXAMPLES / "tracker-mapping.toml"
    )
    report = blocked.to_json()
    assert blocked.blocked and not report["written"] and report["bad"]
    assert led.count_events() == before
    refusal = blocked.refusal()
    assert isinstance(refusal, InputError) and "nothing was written" in refusal.reason
    skipped = api.import_tracker(
        led,
        EXAMPLES / "tracker-sample.csv",
        mapping=EXAMPLES / "tracker-mapping.toml",
        skip_bad_rows=True,
    )
    assert skipped.refusal() is None and skipped.receipts
    assert led.count_events() == before + len(skipped.receipts)
    assert len(skipped.to_json()["bad"]) == len(report["bad"])


def test_a_dry_run_reads_a_missing_store_as_empty_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "never.db"
    empty = api.open_store(str(missing), vacant_as_empty=True)
    try:
        trial = api.import_tracker(
            empty,
            EXAMPLES / "tracker-sample.csv",
            mapping=EXAMPLES / "tracker-mapping.toml",
            dry_run=True,
            skip_bad_rows=True,
        )
        assert trial.to_json()["events"] and not trial.receipts
    finally:
        empty.close()
    assert not missing.exists()


def test_every_entry_command_records_through_record_entry() -> None:
    from ledger.importing.entry_form import ENTRY_COMMANDS

    for command in ENTRY_COMMANDS.values():
        assert api.CLI_COMMANDS[command] is api.record_entry
