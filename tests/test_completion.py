"""Shell completion (issue 15, item 5): the tab key offers case references (from the store's
cross-case index, never creating or writing anything, a missing store offering nothing),
entry types, clock statuses, stages, regimes and the entry fields' vocabularies.

Each test runs the real ``caseledger`` through click's completion machinery, as the
script ``caseledger --install-completion`` installs does: ``_CASELEDGER_COMPLETE`` with
the words typed (``COMP_WORDS``) and the word being completed (``COMP_CWORD``).  Typer
names its instructions ``complete_bash`` (click's own are ``bash_complete``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from projections import api as read
from projections.index.case_index import index_recorder
from projections.index.sealing import Sealer
from tests.conftest import FixedClock, open_ledger, scenario_lines
from tests.terminal import child_env, piped


def offered(words: str, env: dict[str, str] | None = None) -> list[str]:
    """What bash is offered after ``words`` (the last word is the one being completed;
    end ``words`` with a space to complete a new word)."""
    count = len(words.split()) - (0 if words.endswith(" ") else 1)
    shell = child_env(_CASELEDGER_COMPLETE="complete_bash", COMP_WORDS=words)
    shell["COMP_CWORD"] = str(count)
    shell.update(env or {})
    done = piped([], env=shell)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout.split()


def _store_with_cases(store_url: str, clock: FixedClock) -> None:
    """The scenario's case and two more, and the index built (as any query builds it)."""
    led = open_ledger(store_url, clock)
    first = scenario_lines()[0]
    more = [first.replace(b"RR-2026-004", ref) for ref in (b"RR-2025-017", b"SCR-2019-003")]
    led.record_lines([*scenario_lines(), *more], led.recorder_for())
    read.reindex(led)
    led.close()


def _index_exists(store_url: str) -> bool:
    led = open_ledger(store_url)
    return index_recorder(led, Sealer(led.ledger_mapper.cipher)).tables_exist()


def test_case_references_from_the_index(store_url: str, clock: FixedClock) -> None:
    _store_with_cases(store_url, clock)
    assert offered(f"caseledger --store {store_url} why ") == [
        "RR-2025-017",
        "RR-2026-004",
        "SCR-2019-003",
    ]
    assert offered(f"caseledger --store {store_url} timeline RR-2026") == ["RR-2026-004"]
    assert offered(f"caseledger --store {store_url} status RR-") == ["RR-2025-017", "RR-2026-004"]
    # --store after the command, as people type it, and the store from the environment
    assert offered(f"caseledger clocks --store {store_url} SCR") == ["SCR-2019-003"]
    assert offered("caseledger quality SCR", env={"CASELEDGER_STORE": store_url}) == [
        "SCR-2019-003"
    ]
    # an entry command's CASE, an option's case, an export's cases
    assert offered(f"caseledger --store {store_url} decide RR-2025") == ["RR-2025-017"]
    assert offered(f"caseledger --store {store_url} delays --case SCR") == ["SCR-2019-003"]
    assert offered(f"caseledger --store {store_url} due --case RR-2026") == ["RR-2026-004"]
    assert offered(f"caseledger --store {store_url} export RR-2026-004 SCR") == ["SCR-2019-003"]
    led = open_ledger(store_url)
    assert read.case_refs(led, "rr-2025") == ("RR-2025-017",)  # the facade: any letter case
    assert read.case_refs(led) == ("RR-2025-017", "RR-2026-004", "SCR-2019-003")


def test_a_missing_store_offers_nothing_and_creates_nothing(tmp_path: Path, pg_url: str) -> None:
    missing = tmp_path / "nowhere.db"
    assert offered(f"caseledger --store {missing} why RR") == []
    assert not missing.exists()
    assert offered(f"caseledger --store {pg_url} why RR") == []
    assert offered(f"caseledger --store {tmp_path} why RR") == []  # a folder, not a store
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    assert offered(f"caseledger --store {unreachable} why RR") == []


def test_an_index_not_built_offers_nothing_and_is_not_built(
    store_url: str, clock: FixedClock
) -> None:
    led = open_ledger(store_url, clock)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.close()
    assert not _index_exists(store_url)
    assert offered(f"caseledger --store {store_url} why RR") == []
    assert not _index_exists(store_url)  # a completion never writes


def test_the_store_file_is_not_changed_by_completion(sqlite_url: str, clock: FixedClock) -> None:
    _store_with_cases(sqlite_url, clock)
    before = Path(sqlite_url).read_bytes()
    assert offered(f"caseledger --store {sqlite_url} why RR-2026") == ["RR-2026-004"]
    assert Path(sqlite_url).read_bytes() == before
    with sqlite3.connect(sqlite_url) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM case_index").fetchone()
    assert count == 3


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (
            "caseledger delays --from Information",
            ["InformationRequested", "InformationReceived", "InformationDeclined"],
        ),
        (
            "caseledger delays --from IncidentNotified --to Decision",
            ["DecisionDelayed", "DecisionMade", "DecisionCommunicated"],
        ),
        (
            "caseledger clocks --status ",
            ["not-started", "running", "met", "overdue", "late", "withdrawn"],
        ),
        ("caseledger clocks --status o", ["overdue"]),
        ("caseledger due --kind ", ["clock", "reply"]),
        ("caseledger status --stage de", ["decided"]),
        (
            "caseledger status --stage ",
            [
                "referred",
                "notified",
                "gathering-information",
                "discussed",
                "recommended",
                "decided",
                "rapid-review-sent",
                "under-review",
                "completed",
                "final-report-sent",
                "publication-deferred",
                "published",
                "closed",
            ],
        ),
        ("caseledger status --regime wt20", ["wt2015", "wt2018", "wt2023"]),
        ("caseledger rules wt2023", ["wt2023"]),
        (
            "caseledger decide RR-2026-004 --outcome ",
            ["review", "no-review", "other-review", "national-review-referral"],
        ),
        ("caseledger discuss RR-2026-004 --forum r", ["rapid-review-meeting"]),
        ("caseledger notify RR-2026-004 --recipients o", ["ofsted", "other-area"]),
        ("caseledger receive-info RR-2026-004 --involved ", ["yes", "no"]),
        ("caseledger challenge-received RR-2026-004 --agrees ", ["yes", "no", "unknown"]),
    ],
)
def test_vocabularies(words: str, expected: list[str], tmp_path: Path) -> None:
    assert offered(words, env={"CASELEDGER_STORE": str(tmp_path / "none.db")}) == expected
    assert not (tmp_path / "none.db").exists()


def test_free_text_offers_nothing_of_its_own(tmp_path: Path) -> None:
    """A field with no vocabulary (a summary, a name) has no completion of its own."""
    env: dict[str, Any] = {"CASELEDGER_STORE": str(tmp_path / "none.db")}
    assert offered("caseledger discuss RR-2026-004 --summary Me", env=env) == []
