"""``projections.api`` answers what the read commands print: each function's ``to_json()``
is the command's ``--json``, on both stores, so a web view or a digest calling the Python
API sees what the CLI shows (issue 14 item 1).  And what moved down from the CLI holds
there: the clock status filter, ``delays`` of one case, the verdict on a store or a bundle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.catalogue.models import LONDON
from ledger.errors import InputError, UsageError
from projections import api
from tests.conftest import CliResult, open_ledger

#: The scenario is recorded at the fixed clock; "now" for the CLI is pinned after it.
pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]
CASE = "RR-2026-004"
WHEN = {"as_of": "2026-11-30", "on": "2026-11-30"}
OPTIONS = ["--as-of", WHEN["as_of"], "--on", WHEN["on"]]

#: (the command's arguments, the facade call that must answer the same).
ASKED: list[tuple[list[str], Callable[[Any], Any]]] = [
    (["status", CASE, *OPTIONS], lambda led: api.status(led, CASE, **WHEN)),
    (
        ["status", *OPTIONS, "--stage", "decided"],
        lambda led: api.status(led, stage="decided", **WHEN),
    ),
    (["timeline", CASE, *OPTIONS], lambda led: api.timeline(led, CASE, **WHEN)),
    (["why", CASE, *OPTIONS], lambda led: api.why(led, CASE, **WHEN)),
    (
        ["clocks", CASE, *OPTIONS, "--all"],
        lambda led: api.clocks(led, CASE, include_not_started=True, **WHEN),
    ),
    (
        ["clocks", "--on", "2026-03-10", "--status", "met"],
        lambda led: api.clocks(led, on="2026-03-10", status=["met"]),
    ),
    (
        ["delays", "--from", "CaseReferred", "--to", "DecisionMade", *OPTIONS],
        lambda led: api.delays(led, from_type="CaseReferred", to_type="DecisionMade", **WHEN),
    ),
    (
        [
            "delays",
            "--from",
            "IncidentNotified",
            "--to",
            "DecisionMade",
            "--case",
            CASE,
            "--over",
            "3",
        ],
        lambda led: api.delays(
            led, from_type="IncidentNotified", to_type="DecisionMade", case=CASE, over=3
        ),
    ),
    (["due", *OPTIONS], lambda led: api.due(led, **WHEN)),
    (
        ["due", "--on", "2026-02-18", "--within", "2", "--kind", "reply", "--case", CASE],
        lambda led: api.due(led, on="2026-02-18", within=2, kind="reply", case=CASE),
    ),
    (["quality", CASE, *OPTIONS], lambda led: api.quality(led, CASE, **WHEN)),
    (["rules", "wt2023"], lambda led: api.rules("wt2023")),
    (["verify"], lambda led: api.verify(led)),
]


@pytest.mark.parametrize(("args", "ask"), ASKED, ids=[" ".join(a[:3]) for a, _ in ASKED])
def test_each_answer_is_what_the_command_prints(
    scenario_store: str, cli: Cli, args: list[str], ask: Callable[[Any], Any]
) -> None:
    printed = cli(["--store", scenario_store, *args, "--json"])
    assert printed.exit_code == 0, printed.stderr
    answer = ask(open_ledger(scenario_store))
    assert orjson.loads(orjson.dumps(answer.to_json())) == printed.json()


def test_the_clock_status_filter_lives_in_the_api(scenario_store: str) -> None:
    led = open_ledger(scenario_store)
    every = api.clocks(led, CASE, on="2026-03-10", include_not_started=True)
    met = api.clocks(led, CASE, on="2026-03-10", status=["met"])
    assert met.shown == tuple(s for s in every.states if s.status == "met")
    assert met.states == every.states
    with pytest.raises(UsageError, match="'lost' is not a clock status"):
        api.clocks(led, status=["lost"])


def test_delays_of_one_case(scenario_store: str) -> None:
    led = open_ledger(scenario_store)
    one = api.delays(led, from_type="CaseReferred", to_type="DecisionMade", case=CASE)
    every = api.delays(led, from_type="CaseReferred", to_type="DecisionMade")
    assert one.intervals == every.intervals
    before = api.delays(
        led, from_type="CaseReferred", to_type="DecisionMade", case=CASE, on="2026-01-01"
    )
    assert before.intervals == ()
    with pytest.raises(UsageError, match="case RR-2099-001 is unknown"):
        api.delays(led, from_type="CaseReferred", to_type="DecisionMade", case="RR-2099-001")


def test_one_verdict_for_a_store_and_for_its_bundle(
    scenario_store: str, cli: Cli, tmp_path: Path
) -> None:
    led = open_ledger(scenario_store)
    store = api.verify(led)
    assert store.ok and store.events == 22 and store.first_bad is None
    assert store.index is not None and store.index.ok
    summary = api.export(led, [CASE], out_path=tmp_path / "bundle")
    assert summary.to_json()["events"] == 22
    bundle = api.verify(None, tmp_path / "bundle", expect_root=summary.root)
    printed = cli(["verify", str(tmp_path / "bundle"), "--expect-root", summary.root, "--json"])
    assert bundle.ok and bundle.to_json() == printed.json()
    wrong = api.verify(None, tmp_path / "bundle", expect_root="0" * 64)
    assert not wrong.ok and wrong.first_bad is not None and "DOES NOT VERIFY" in wrong.summary()
    with pytest.raises(UsageError, match="lodged checkpoint") as refused:
        api.verify(led, tmp_path / "bundle", since=tmp_path / "checkpoint.json")
    assert refused.value.field == "since"
    wrong_way = cli(["verify", str(tmp_path / "bundle"), "--since", str(tmp_path / "c.json")])
    assert wrong_way.exit_code == 2 and "--since checks the store" in wrong_way.stderr


def test_times_are_the_command_lines_forms_or_aware_datetimes(scenario_store: str) -> None:
    led = open_ledger(scenario_store)
    day = api.status(led, CASE, on="2026-02-24")
    moment = api.status(led, CASE, on=datetime(2026, 2, 24, 23, 59, 59, 999999, tzinfo=LONDON))
    assert day.on == moment.on and day.to_json() == moment.to_json()
    with pytest.raises(UsageError, match="must be aware") as refused:
        api.why(led, CASE, as_of=datetime(2026, 3, 10))
    assert refused.value.field == "as_of"


def test_a_mistaken_option_is_named_before_the_store_is_opened() -> None:
    """Given an opener, a function checks its options first (as the CLI did before the
    facade): a bad option is exit 2 even where no store is."""
    opened: list[bool] = []

    def opener() -> Any:
        opened.append(True)
        raise AssertionError("the store was opened")

    with pytest.raises(UsageError, match="not a clock status"):
        api.clocks(opener, status=["lost"])
    with pytest.raises(UsageError, match="not an event type"):
        api.delays(opener, from_type="Bogus", to_type="DecisionMade")
    with pytest.raises(UsageError, match="must be auto, full or index"):
        api.export(opener, out_path="bundle", report="bogus")
    with pytest.raises(InputError, match="cannot be read"):
        api.verify(opener, since="no-such-checkpoint.json")
    assert opened == []
