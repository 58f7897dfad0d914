"""Delegated partners (wt2023): ``not-all-partners-decided`` counts a delegate in force on
the decision's date as the partner they act for, and only then; on both stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import CliResult, FixedClock
from tests.test_clocks import decided, event, notified, ok, record, referral

pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]

NURSE = "Director of Nursing"
DEPUTY = "A. Patel, Deputy Director"


def delegation(case: str, partner: str, delegate: str, start: str, end: str | None) -> Any:
    fields: dict[str, Any] = {"partner": partner, "delegate": delegate, "from": start}
    if end is not None:
        fields["to"] = end
    return event("PartnersDelegated", case, start, **fields)


def case_with(case: str, day: str, decided_by: list[str]) -> list[dict[str, Any]]:
    return [
        referral(case, "2026-01-05"),
        notified(case, "2026-01-06"),
        delegation(case, "health", NURSE, "2026-01-06", "2026-01-31"),
        decided(case, day, decided_by=decided_by),
    ]


def test_a_delegate_in_force_counts_as_the_partner(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    record(
        store_url,
        clock,
        case_with("DEL-1", "2026-01-20", ["Northshire County Council", NURSE, "Northshire Police"]),
    )
    assert "not-all-partners-decided" not in ok(cli, store_url, "why", "DEL-1")["flags"]


def test_a_delegate_out_of_force_does_not_count_and_is_named(
    store_url: str, clock: FixedClock, cli: Cli
) -> None:
    # Decided on 2026-02-02, after the delegation ended on 2026-01-31.
    record(
        store_url,
        clock,
        case_with("DEL-2", "2026-02-02", ["Northshire County Council", NURSE, "Northshire Police"]),
    )
    answer = ok(cli, store_url, "why", "DEL-2")
    assert "not-all-partners-decided" in answer["flags"]
    text = " ".join(cli(["--store", store_url, "why", "DEL-2"]).stdout.split())
    assert "but not health nor a delegate of theirs in force" in text
    assert f"Not in force on 2026-02-02: {NURSE} for health (DEL-2#3" in text
    # Without any delegation the same names are missing health too, with no delegation said.
    record(
        store_url,
        clock,
        [
            referral("DEL-3", "2026-01-05"),
            decided("DEL-3", "2026-01-20", decided_by=["Northshire County Council", NURSE]),
        ],
    )
    assert "not-all-partners-decided" in ok(cli, store_url, "why", "DEL-3")["flags"]


def test_the_flag_names_the_delegation_used(store_url: str, clock: FixedClock, cli: Cli) -> None:
    # The local authority's delegate in force counts; the police are still missing.
    events = [
        referral("DEL-4", "2026-01-05"),
        notified("DEL-4", "2026-01-06"),
        delegation("DEL-4", "local-authority", DEPUTY, "2026-01-06", None),
        decided("DEL-4", "2026-01-20", decided_by=[DEPUTY, "Northshire ICB"]),
    ]
    record(store_url, clock, events)
    assert "not-all-partners-decided" in ok(cli, store_url, "why", "DEL-4")["flags"]
    text = " ".join(cli(["--store", store_url, "why", "DEL-4"]).stdout.split())
    assert "but not the police" in text
    assert f"Delegation counted: {DEPUTY} for local-authority (DEL-4#3, from 2026-01-06)" in text
