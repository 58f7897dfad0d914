"""Delays approved only by the decision-maker (issue 13 item 4).

Only the decision-maker of the case's regime (the LSCB chair under wt2015; the
safeguarding partners under wt2018 and wt2023) approves a delay, and the store's policy
says who that is (``approves``).  A ``DecisionDelayed`` (or a correction of its
``approved_by``) naming anyone else is refused with exit code 2, the field named and
nothing written, whoever records it, on both stores.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.common import in_cli_words
from ledger.domain.policy import (
    APPROVABLE,
    default_policy,
    default_policy_text,
    parse_policy,
    policy_from_text,
)
from ledger.errors import InputError
from tests.conftest import open_ledger, person, scenario_lines

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

CASE = "RR-2026-004"  # wt2023
PARTNER = "Northshire ICB (lead partner)"
CHAIR = "Independent chair, Northshire LSCB"


def _delay(approved_by: str, case: str = CASE, **fields: Any) -> bytes:
    """A DecisionDelayed for the scenario case (before its decision)."""
    return orjson.dumps(
        {
            "type": "DecisionDelayed",
            "case": case,
            "occurred_at": "2026-03-05",
            "reason": "Police chronology awaited.",
            "expected_by": "2026-03-20",
            "approved_by": approved_by,
            **fields,
        }
    )


def _store(store_url: str, clock: Any) -> Any:
    """The scenario recorded, a partner and a chair enrolled; returns the ledger."""
    led = open_ledger(store_url, clock)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.enrol(PARTNER, ["safeguarding-partner"], led.recorder_for("admin"))
    led.enrol(CHAIR, ["chair"], led.recorder_for("admin"))
    return led


def _unchanged(led: Any) -> tuple[int, int]:
    return led.count_events(), len(led.register_entries())


# --- the policy says who approves ---------------------------------------------------------


def test_the_default_policy_says_who_approves_what() -> None:
    policy = default_policy()
    approvable = ["DecisionDelayed", "NotificationDeferred", "PublicationDeferred"]
    assert sorted(APPROVABLE) == approvable
    assert {r: sorted(p.approves) for r, p in policy.roles.items() if p.approves} == {
        "chair": approvable,
        "safeguarding-partner": approvable,
    }
    for kind in approvable:
        assert policy.approving_roles(kind, "wt2015") == ["chair"]
        assert policy.approving_roles(kind, "wt2018") == ["safeguarding-partner"]
        assert policy.approving_roles(kind, "wt2023") == ["safeguarding-partner"]
    document: Any = policy.document()
    assert document["roles"]["chair"]["approves"] == approvable
    assert document["roles"]["business-unit"]["approves"] == []


@pytest.mark.parametrize(
    ("approves", "message"),
    [
        ('["DecisionMade"]', "cannot be approved"),
        ('["NoSuchType"]', "cannot be approved"),
        ('"DecisionDelayed"', "must be a list of strings"),
    ],
)
def test_a_policy_naming_what_cannot_be_approved_is_refused(approves: str, message: str) -> None:
    shipped = 'regimes = ["wt2015"]\napproves = ["DecisionDelayed", "PublicationDeferred", '
    assert shipped in default_policy_text()
    text = re.sub(
        r'regimes = \["wt2015"\]\napproves = \[[^]]*\]',
        f'regimes = ["wt2015"]\napproves = {approves}',
        default_policy_text(),
    )
    with pytest.raises(InputError, match=message):
        policy_from_text(text, "mine.toml")


def test_a_new_policy_must_say_who_approves_delays() -> None:
    text = re.sub(r'approves = \["DecisionDelayed"[^]]*\]\n', "", default_policy_text())
    assert "approves = [" not in text.split("[roles.", 1)[1]
    with pytest.raises(InputError, match="no role approves DecisionDelayed, PublicationDeferred"):
        policy_from_text(text, "mine.toml")


def test_policy_show_lists_approves(store_url: str, cli: Any) -> None:
    assert cli(["--store", store_url, "record", "-"], stdin=scenario_lines()[0]).exit_code == 0
    shown = cli(["--store", store_url, "policy", "show", "--json"]).json()
    assert shown["roles"]["safeguarding-partner"]["approves"] == [
        "DecisionDelayed",
        "NotificationDeferred",
        "PublicationDeferred",
    ]
    assert shown["roles"]["panel-member"]["approves"] == []
    table = cli(["--store", store_url, "policy", "show"])
    assert table.exit_code == 0 and "approves" in table.stdout


# --- the check -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approver", "reason"),
    [
        ("Partners", "'Partners' is not enrolled in this store"),
        (CHAIR, "is enrolled as chair"),  # a chair approves only under wt2015
        ("root-bu", "is enrolled as business-unit"),
        ("panel.jones", "is enrolled as panel-member"),
    ],
)
def test_a_delay_approved_by_someone_who_may_not_approve_is_refused(
    store_url: str, clock: Any, cli: Any, approver: str, reason: str
) -> None:
    led = _store(store_url, clock)
    led.enrol("root-bu", ["business-unit"], led.recorder_for("admin"))
    led.enrol("panel.jones", ["panel-member"], led.recorder_for("admin"))
    before = _unchanged(led)
    with pytest.raises(InputError) as refused:
        led.record_lines([_delay(approver)], led.recorder_for())
    assert refused.value.field == "approved_by"
    assert reason in refused.value.reason
    # the message says who may approve: the role, and the enrolled users who could
    assert "enrolled as safeguarding-partner" in refused.value.reason
    assert repr(PARTNER) in refused.value.reason
    result = cli(["--store", store_url, "record", "-"], stdin=_delay(approver))
    assert result.exit_code == 2 and "field `approved_by`" in result.stderr
    assert "Traceback" not in result.stderr
    assert _unchanged(led) == before


@pytest.mark.real_clock  # the partner's own login role: the server dates its entry
def test_an_enrolled_decision_maker_approves_whoever_records_it(store_url: str, clock: Any) -> None:
    led = _store(store_url, clock)
    # the business unit, on the partner's behalf
    (receipt,) = led.record_lines([_delay(PARTNER)], led.recorder_for())
    assert led.entry(CASE, int(receipt.ref.split("#")[1]))["approved_by"] == PARTNER
    # the partner themself (a real login role on PostgreSQL)
    partner = person(store_url, "partner.patel")
    led.enrol(partner.name, ["safeguarding-partner"], led.recorder_for("admin"))
    mine = partner.ledger()  # the database keeps a non-operator to its own time
    mine.record_lines([_delay(partner.name)], partner.recorder("safeguarding-partner"))
    # a partner recording a delay that someone unenrolled "approved" is refused too
    with pytest.raises(InputError, match="not enrolled") as refused:
        mine.record_lines([_delay("The partners")], partner.recorder("safeguarding-partner"))
    assert refused.value.field == "approved_by"
    assert led.verify().ok


def test_under_wt2015_only_the_chair_approves(store_url: str, clock: Any) -> None:
    led = _store(store_url, clock)
    referral = orjson.loads(scenario_lines()[0])
    referral.update(
        case="SCR-2016-001",
        regime="wt2015",
        incident_date="2016-02-06",
        aware_date="2016-02-09",
        occurred_at="2016-02-09",
    )
    led.record_lines([orjson.dumps(referral)], led.recorder_for())
    with pytest.raises(InputError, match="approved only by a user enrolled as chair") as refused:
        led.record_lines([_delay(PARTNER, case="SCR-2016-001")], led.recorder_for())
    assert repr(CHAIR) in refused.value.reason
    led.record_lines([_delay(CHAIR, case="SCR-2016-001")], led.recorder_for())


def test_a_removed_decision_maker_no_longer_approves(store_url: str, clock: Any) -> None:
    led = _store(store_url, clock)
    led.record_lines([_delay(PARTNER)], led.recorder_for())
    led.remove_user(PARTNER, led.recorder_for("admin"), "left the partnership")
    with pytest.raises(InputError, match="not enrolled") as refused:
        led.record_lines([_delay(PARTNER)], led.recorder_for())
    assert "nobody enrolled may" in refused.value.reason
    assert "enrols the decision-maker as safeguarding-partner" in refused.value.reason
    told = str(in_cli_words(refused.value))  # the CLI names the command that enrols
    assert "caseledger users add NAME --role safeguarding-partner" in told
    assert led.verify().ok  # the earlier delay is not re-judged


def test_the_name_matches_the_enrolment_after_its_normalisation(store_url: str, clock: Any) -> None:
    """Surrounding spaces and Unicode NFC are the enrolment's own rule: the stored entry
    names the user exactly as enrolled.  Letter case is not folded (but suggested)."""
    led = _store(store_url, clock)
    name = "Zoë Partner"  # precomposed ë
    led.enrol(name, ["safeguarding-partner"], led.recorder_for("admin"))
    decomposed = "  " + unicodedata.normalize("NFD", name) + " "
    (receipt,) = led.record_lines([_delay(decomposed)], led.recorder_for())
    assert led.entry(CASE, int(receipt.ref.split("#")[1]))["approved_by"] == name
    with pytest.raises(InputError, match="did you mean 'Zoë Partner'"):
        led.record_lines([_delay("zoë partner")], led.recorder_for())
    assert led.verify().ok


def test_a_policy_without_approves_says_how_to_fix_it() -> None:
    """A store whose recorded policy predates ``approves`` refuses every delay, saying
    the admin must record a policy that names who approves."""
    from ledger.domain.policy import check_approval
    from ledger.domain.register import Enrolment

    old: Any = default_policy().document()
    for spec in old["roles"].values():
        del spec["approves"]
    policy = parse_policy(old, "register#1")
    users = {PARTNER: Enrolment(PARTNER, frozenset({"safeguarding-partner"}), None, "")}
    from ledger.application import parse_line

    event = parse_line(_delay(PARTNER))
    with pytest.raises(InputError, match="no role of this store's policy approves"):
        check_approval(policy, users, event, "wt2023", lambda _seq: None)


# --- corrections obey the same rule --------------------------------------------------------


def _correction(seq: int, **changes: Any) -> bytes:
    return orjson.dumps(
        {
            "type": "EntryCorrected",
            "case": CASE,
            "corrects": f"{CASE}#{seq}",
            "changes": changes,
            "reason": "The approver was mistyped.",
        }
    )


def test_a_correction_of_the_approver_obeys_the_same_rule(
    store_url: str, clock: Any, cli: Any
) -> None:
    led = _store(store_url, clock)
    (receipt,) = led.record_lines([_delay(PARTNER)], led.recorder_for())
    seq = int(receipt.ref.split("#")[1])
    before = _unchanged(led)
    with pytest.raises(InputError, match="not enrolled") as refused:
        led.record_lines([_correction(seq, approved_by="The chair's PA")], led.recorder_for())
    assert refused.value.field == "changes.approved_by"
    result = cli(["--store", store_url, "record", "-"], stdin=_correction(seq, approved_by=CHAIR))
    assert result.exit_code == 2 and "changes.approved_by" in result.stderr
    assert _unchanged(led) == before
    other = "Northshire Police (partner)"
    led.enrol(other, ["safeguarding-partner"], led.recorder_for("admin"))
    (fixed,) = led.record_lines([_correction(seq, approved_by=f" {other}")], led.recorder_for())
    stored = led.entry(CASE, int(fixed.ref.split("#")[1]))
    assert stored["changes"]["approved_by"] == other
    # a correction that leaves the approver alone is not re-judged
    led.record_lines([_correction(seq, expected_by="2026-03-27")], led.recorder_for())
    # nor is the approver of a type that needs none (a request's agency is not an approver)
    assert led.verify().ok


# --- property: only enrolled decision-makers of the regime approve ------------------------

NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp")),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    enrolled=st.dictionaries(
        NAMES,
        st.sets(
            st.sampled_from(["business-unit", "chair", "safeguarding-partner", "panel-member"]),
            min_size=1,
        ),
        max_size=4,
    ),
    named=NAMES,
    regime=st.sampled_from(["wt2015", "wt2018", "wt2023"]),
)
def test_approval_is_exactly_enrolment_in_an_approving_role(
    enrolled: dict[str, set[str]], named: str, regime: str
) -> None:
    from ledger.application import parse_line
    from ledger.domain.policy import check_approval, normalise_user_name
    from ledger.domain.register import Enrolment

    policy = default_policy()
    users = {
        normalise_user_name(u): Enrolment(normalise_user_name(u), frozenset(r), None, "")
        for u, r in enrolled.items()
    }
    try:
        event = parse_line(_delay(named))
    except InputError:
        return  # not a valid name at all: the catalogue refuses it first
    approver = "chair" if regime == "wt2015" else "safeguarding-partner"
    key = normalise_user_name(named)
    allowed = key in users and approver in users[key].roles
    try:
        checked = check_approval(policy, users, event, regime, lambda _seq: None)
    except InputError as exc:
        assert not allowed and exc.field == "approved_by"
        return
    assert allowed and checked.approved_by == key  # type: ignore[attr-defined]


def test_the_shipped_policy_file_is_the_documented_one(tmp_path: Path) -> None:
    """The policy reference shows ``approves`` (docs/security.md names it)."""
    security = (Path(__file__).resolve().parents[1] / "docs" / "security.md").read_text()
    assert "approves" in security


# --- the demo and the tracker import ----------------------------------------------------


def test_the_demo_enrols_the_decision_makers_it_names(tmp_path: Path) -> None:
    from ledger.importing.sample import decision_makers, record_sample

    assert ("Independent chair, Eastborough LSCB", "chair") in decision_makers()
    path = tmp_path / "demo.db"
    record_sample(str(path))
    led = open_ledger(str(path))
    (delay,) = [r for r in led.case_records("SCR-2016-011") if r["type"] == "DecisionDelayed"]
    enrolment = led.register_state().users[delay["approved_by"]]
    assert enrolment.roles == {"chair"}
    assert led.verify().ok


def test_an_imported_delay_needs_an_enrolled_decision_maker(store_url: str, cli: Any) -> None:
    """The tracker's delay row is a bad row, with its column, until the approver it names
    is enrolled as the regime's decision-maker; then the same tracker imports."""
    from tests.test_tracker import DECISION_MAKERS, SAMPLE_CSV, run_import

    refused = run_import(cli, store_url, SAMPLE_CSV, "--json", enrol=False)
    assert refused.exit_code == 2 and "Traceback" not in refused.stderr
    report = refused.json()
    (bad,) = report["bad"]
    assert bad["case"] == "NS-SCR-2017-02" and "DecisionDelayed.approved_by" in bad["field"]
    assert "delay_approved_by" in bad["field"]  # where the mapping gives the approver
    assert "Northshire LSCB independent chair" in bad["reason"]
    assert report["written"] is False
    # enrolled in the wrong role: still bad
    wrong = ["users", "add", "Northshire LSCB independent chair", "--role", "panel-member"]
    assert cli(["--store", store_url, *wrong]).exit_code == 0
    again = run_import(cli, store_url, SAMPLE_CSV, "--json", enrol=False)
    assert again.exit_code == 2 and "enrolled as panel-member" in again.json()["bad"][0]["reason"]
    for name, role in DECISION_MAKERS.items():
        assert cli(["--store", store_url, "users", "add", name, "--role", role]).exit_code == 0
    done = run_import(cli, store_url, SAMPLE_CSV, "--json", enrol=False)
    assert done.exit_code == 0, done.stderr
    assert done.json()["bad"] == []
