"""The lifecycle after the decision and the learning (issue 16, parts 1-3, write side).

Each of the eight entry types is recorded through its one-entry command on both stores
and read back (the timeline's wording, the stage, the stored fields, the JSON Schema);
the rules that span entries refuse with exit code 2, the option named and nothing
written: a rapid review under wt2015, a final report or a deferred publication without a
decision to review or dated before itself, a delegation outside wt2023, a transfer to the
area already responsible, a theme given twice, the child's name in free text, an approval
by someone who may not approve; corrections of these types obey the same rules, and on
PostgreSQL the database refuses an approval the client did not check.

Why one module: the tests share one store set-up (the scenario until its decision, a
partner enrolled) and the tables of the eight types' commands; split, each part would
repeat them.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ledger.catalogue.models import CRITERIA
from ledger.domain.case import case_id
from ledger.errors import StoreUnavailable
from projections.fold.case_view import STAGES, stage_of
from tests.conftest import CliResult, open_ledger, person, scenario_lines

pytestmark = pytest.mark.usefixtures("fixed_today")

CASE = "RR-2026-004"
PARTNER = "partner.patel"


def _scenario_until_decided() -> list[bytes]:
    """The shared scenario up to the decision communicated (stage ``decided``)."""
    lines = scenario_lines()
    kinds = [orjson.loads(line)["type"] for line in lines]
    return lines[: kinds.index("DecisionCommunicated") + 1]


def _referral(case: str, regime: str, incident: str, aware: str) -> dict[str, Any]:
    """The scenario's referral for another case, regime and dates."""
    first = orjson.loads(scenario_lines()[0])
    return {
        **first,
        "case": case,
        "subject": f"Child K ({case})",
        "regime": regime,
        "incident_date": incident,
        "aware_date": aware,
        "occurred_at": aware,
    }


def _other_cases() -> list[bytes]:
    """A wt2015 case, a wt2018 case decided no-review and a wt2023 case not yet decided."""
    decision = orjson.loads(next(line for line in scenario_lines() if b'"DecisionMade"' in line))
    decision.pop("relied_on", None)
    assert set(decision["criteria"]) == set(CRITERIA["wt2018"])
    return [
        orjson.dumps(e)
        for e in (
            _referral("SCR-2017-001", "wt2015", "2017-05-01", "2017-05-02"),
            _referral("RR-2020-001", "wt2018", "2020-05-01", "2020-05-04"),
            {
                **decision,
                "case": "RR-2020-001",
                "occurred_at": "2020-05-20",
                "outcome": "no-review",
            },
            _referral("RR-2026-010", "wt2023", "2026-04-01", "2026-04-02"),
        )
    ]


def _store(url: str, *more: bytes) -> str:
    """A store holding the scenario until its decision (and ``more``), with a lead
    safeguarding partner enrolled to approve."""
    led = open_ledger(url)
    led.record_lines([*_scenario_until_decided(), *more], led.recorder_for())
    led.enrol(PARTNER, ["safeguarding-partner"], led.recorder_for("admin"))
    led.close()
    return url


def _written(url: str) -> int:
    led = open_ledger(url)
    try:
        return int(led.count_events())
    finally:
        led.close()


def _ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def _refused(result: CliResult, *needles: str) -> None:
    """Exit 2, one line of error naming every needle, no traceback."""
    shown = (result.exit_code, result.stdout, result.stderr)
    assert result.exit_code == 2, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert len(result.stderr.strip().splitlines()) == 1, shown
    for needle in needles:
        assert needle in result.stderr, shown


# --- each type through its command, read back -----------------------------------------

#: Per type: its command's arguments, the timeline's words for it, the fields stored,
#: and the stage of the decided scenario case after it.
# fmt: off
ENTRIES: list[tuple[str, list[str], str, dict[str, Any], str]] = [
    ("RapidReviewSent",
     ["send-rapid-review", "--to", "national-panel", "--reference", "RR-0412",
      "--occurred-at", "2026-03-09"],
     "Rapid review sent to national-panel",
     {"to": ["national-panel"], "reference": "RR-0412"},
     "rapid-review-sent"),
    ("FinalReportSent",
     ["send-final-report", "--to", "national-panel", "--to", "secretary-of-state",
      "--planned-publication", "2026-09-15", "--occurred-at", "2026-08-20"],
     "Final report sent to national-panel, secretary-of-state; publication planned",
     {"to": ["national-panel", "secretary-of-state"], "planned_publication": "2026-09-15"},
     "final-report-sent"),
    ("PublicationDeferred",
     ["defer-publication", "--reason", "The trial starts in October", "--trigger",
      "criminal-proceedings", "--expected-by", "2027-01-31", "--approved-by", PARTNER,
      "--occurred-at", "2026-08-21"],
     "Publication deferred (criminal-proceedings) to 2027-01-31: The trial starts in October",
     {"trigger": "criminal-proceedings", "expected_by": "2027-01-31", "approved_by": PARTNER},
     "publication-deferred"),
    ("NotificationDeferred",
     ["defer-notification", "--reason", "First treated as an accident", "--approved-by",
      PARTNER, "--occurred-at", "2026-02-13"],
     "Notification late, with reason: First treated as an accident",
     {"reason": "First treated as an accident", "approved_by": PARTNER},
     "decided"),
    ("PartnersDelegated",
     ["delegate-partner", "--partner", "health", "--delegate",
      "Director of Nursing, Northshire ICB", "--from", "2026-01-01", "--occurred-at",
      "2026-02-10"],
     "health delegated to Director of Nursing, Northshire ICB from 2026-01-01",
     {"partner": "health", "delegate": "Director of Nursing, Northshire ICB",
      "from": "2026-01-01"},
     "decided"),
    ("ResponsibilityTransferred",
     ["transfer", "--to-area", "Westmoor", "--reason", "The child lived in Westmoor",
      "--accepted-by", "Westmoor Safeguarding Partnership", "--occurred-at", "2026-03-10"],
     "Responsibility transferred to Westmoor: The child lived in Westmoor",
     {"to_area": "Westmoor", "accepted_by": "Westmoor Safeguarding Partnership"},
     "decided"),
    ("ThemesRecorded",
     ["record-themes", "--themes", "bruising-in-non-mobile-infants", "--themes",
      "information-sharing", "--occurred-at", "2026-03-11"],
     "Themes: bruising-in-non-mobile-infants, information-sharing",
     {"themes": ["bruising-in-non-mobile-infants", "information-sharing"]},
     "decided"),
    ("LearningRecorded",
     ["record-learning", "--summary", "A bruise at 10 weeks was not escalated",
      "--recommendations", "Adopt the bruising protocol", "--themes",
      "bruising-in-non-mobile-infants", "--occurred-at", "2026-03-12"],
     "A bruise at 10 weeks was not escalated",
     {"recommendations": ["Adopt the bruising protocol"],
      "themes": ["bruising-in-non-mobile-infants"]},
     "decided"),
]
# fmt: on


@pytest.mark.parametrize(
    ("kind", "args", "words", "stored", "stage"), ENTRIES, ids=[e[0] for e in ENTRIES]
)
def test_each_entry_is_recorded_by_its_command_and_read_back(
    store_url: str,
    cli: Any,
    kind: str,
    args: list[str],
    words: str,
    stored: dict[str, Any],
    stage: str,
) -> None:
    url = _store(store_url)
    command, *options = args
    receipt = _ok(cli(["--store", url, command, CASE, *options, "--json"])).json()
    assert len(receipt) == 1 and receipt[0]["ref"] == f"{CASE}#{len(_scenario_until_decided()) + 1}"
    record = open_ledger(url).case_records(CASE)[-1]
    assert record["type"] == kind and {k: record[k] for k in stored} == stored
    timeline = _ok(cli(["--store", url, "timeline", CASE], env={"COLUMNS": "400"})).stdout
    (row,) = [line for line in timeline.splitlines() if kind in line]
    assert words in row and receipt[0]["ref"].split("#")[1] in row
    status = _ok(cli(["--store", url, "status", CASE, "--json"])).json()
    assert status["stage"] == stage


def test_the_json_schema_and_the_reference_list_every_new_type(cli: Any) -> None:
    from pathlib import Path

    schema = _ok(cli(["schema"])).stdout
    reference = (Path(__file__).resolve().parents[1] / "docs/reference/events.md").read_text()
    for kind, *_ in ENTRIES:
        assert f'"{kind}"' in schema, kind
        assert kind in reference, kind


# --- stages ---------------------------------------------------------------------------


def test_the_stages_after_the_decision_keep_the_earlier_ones() -> None:
    decided = {"CaseReferred", "DecisionMade"}
    assert stage_of(decided, "review") == "decided"
    assert stage_of(decided | {"RapidReviewSent"}, "review") == "rapid-review-sent"
    assert stage_of(decided | {"RapidReviewSent"}, None) == "referred"
    reviewing = decided | {"RapidReviewSent", "ReviewerCommissioned"}
    assert stage_of(reviewing, "review") == "under-review"
    assert stage_of(reviewing | {"ReviewCompleted"}, "review") == "completed"
    sent = reviewing | {"ReviewCompleted", "FinalReportSent"}
    assert stage_of(sent, "review") == "final-report-sent"
    assert stage_of(sent | {"PublicationDeferred"}, "review") == "publication-deferred"
    assert stage_of(sent | {"PublicationDeferred", "ReportPublished"}, "review") == "published"
    assert (
        STAGES.index("decided")
        < STAGES.index("rapid-review-sent")
        < STAGES.index("under-review")
        < STAGES.index("completed")
        < STAGES.index("final-report-sent")
        < STAGES.index("publication-deferred")
        < STAGES.index("published")
    )
    # entries that tell who decides, where, and what was learnt move no case
    others = {
        "NotificationDeferred",
        "PartnersDelegated",
        "ResponsibilityTransferred",
        "ThemesRecorded",
        "LearningRecorded",
    }
    assert stage_of(decided | others, "no-review") == "decided"


# --- what the rules refuse ------------------------------------------------------------

#: Per refusal: the command and its arguments, then what the one line of error names.
# fmt: off
REFUSALS: list[tuple[list[str], tuple[str, ...]]] = [
    (["send-rapid-review", "SCR-2017-001", "--to", "national-panel"],
     ("under wt2015, which has no rapid review", "RapidReviewSent", "wt2018 or wt2023")),
    (["delegate-partner", "RR-2020-001", "--partner", "police", "--delegate", "Chief Inspector",
      "--from", "2020-05-04"],
     ("under wt2018", "only under wt2023", "PartnersDelegated")),
    (["send-final-report", "RR-2026-010", "--to", "national-panel", "--planned-publication",
      "2026-11-01", "--occurred-at", "2026-10-01"],
     ("a FinalReportSent follows a decision to review", "it has no decision before it")),
    (["send-final-report", "RR-2020-001", "--to", "national-panel", "--planned-publication",
      "2021-11-01", "--occurred-at", "2021-10-01"],
     ("a FinalReportSent follows", "its decision in force then is no-review")),
    (["defer-publication", "RR-2026-010", "--reason", "Trial pending", "--trigger",
      "criminal-proceedings", "--expected-by", "2027-01-31", "--approved-by", PARTNER],
     ("a PublicationDeferred follows a decision to review",)),
    (["send-final-report", CASE, "--to", "national-panel", "--planned-publication",
      "2026-08-15", "--occurred-at", "2026-08-20"],
     ("`--planned-publication`", "before the entry's own occurred_at day 2026-08-20")),
    (["defer-publication", CASE, "--reason", "Trial pending", "--trigger", "other",
      "--expected-by", "2026-08-01", "--approved-by", PARTNER, "--occurred-at", "2026-08-20"],
     ("`--expected-by`", "2026-08-01 is before the entry's own occurred_at day")),
    (["defer-publication", CASE, "--reason", "Trial pending", "--trigger",
      "criminal-proceedings", "--expected-by", "2027-01-31", "--approved-by", "bu.officer"],
     ("`--approved-by`", "approved only by a user enrolled as safeguarding-partner")),
    (["defer-notification", CASE, "--reason", "Late", "--approved-by", "The partners"],
     ("`--approved-by`", "NotificationDeferred", "safeguarding-partner")),
    (["transfer", CASE, "--to-area", "NORTHSHIRE ", "--reason", "Moved", "--accepted-by",
      "Northshire Safeguarding Partnership"],
     ("`--to-area`", "already the responsibility of Northshire (its home_area)")),
    (["record-themes", CASE, "--themes", "neglect", "--themes", "escalation", "--themes",
      "neglect"],
     ("`--themes item 3`", "neglect is already given as themes[0]")),
    (["record-learning", CASE, "--summary", "Protocol gap", "--themes", "escalation",
      "--themes", "escalation"],
     ("`--themes item 2`", "give each theme once")),
    (["record-learning", CASE, "--summary", "Kai Example was not seen by a doctor"],
     ("`--summary`", "personal.name")),
    (["record-learning", CASE, "--summary", "Seen on 14/08/2025 only",
      "--recommendations", "Ask about KAI-EXAMPLE's care"],
     ("`--summary`", "personal.date_of_birth")),
]
# fmt: on


def test_the_rules_refuse_with_the_option_named_and_nothing_written(
    store_url: str, cli: Any
) -> None:
    url = _store(store_url, *_other_cases())
    before = _written(url)
    for args, needles in REFUSALS:
        _refused(cli(["--store", url, *args]), *needles)
    assert _written(url) == before
    # a transfer moves responsibility: the next one must name yet another area
    _ok(
        cli(
            [
                "--store",
                url,
                "transfer",
                CASE,
                "--to-area",
                "Westmoor",
                "--reason",
                "Moved",
                "--accepted-by",
                "Westmoor SP",
                "--occurred-at",
                "2026-03-10",
            ]
        )
    )
    _refused(
        cli(
            [
                "--store",
                url,
                "transfer",
                CASE,
                "--to-area",
                "westmoor",
                "--reason",
                "Again",
                "--accepted-by",
                "Westmoor SP",
                "--occurred-at",
                "2026-03-11",
            ]
        ),
        "`--to-area`",
        f"already the responsibility of Westmoor (transferred by {CASE}#",
    )
    # ... and back home is another area again
    _ok(
        cli(
            [
                "--store",
                url,
                "transfer",
                CASE,
                "--to-area",
                "Northshire",
                "--reason",
                "Back",
                "--accepted-by",
                "Northshire SP",
                "--occurred-at",
                "2026-03-12",
            ]
        )
    )


def test_a_batch_sees_its_own_earlier_lines(store_url: str, cli: Any, tmp_path: Any) -> None:
    """A decision to review and the final report in one ``record`` run: the report
    follows the decision recorded a line before it (and a wt2015 rapid review in the
    same run refuses the whole run)."""
    url = _store(store_url, *_other_cases())
    decision = orjson.loads(next(line for line in scenario_lines() if b'"DecisionMade"' in line))
    decision.pop("relied_on", None)
    lines = [
        {**decision, "case": "RR-2026-010", "occurred_at": "2026-05-01"},
        {
            "type": "FinalReportSent",
            "case": "RR-2026-010",
            "occurred_at": "2026-10-01",
            "to": ["national-panel"],
            "planned_publication": "2026-10-20",
        },
    ]
    path = tmp_path / "lines.jsonl"
    rapid = {"type": "RapidReviewSent", "case": "SCR-2017-001", "to": ["national-panel"]}
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in [*lines, rapid]))
    before = _written(url)
    result = cli(["--store", url, "record", str(path)])
    assert result.exit_code == 2 and "line 3" in result.stderr, result.stderr
    assert "no rapid review" in result.stderr and "line 2" not in result.stderr
    assert _written(url) == before
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    _ok(cli(["--store", url, "record", str(path)]))
    assert [r["type"] for r in open_ledger(url).case_records("RR-2026-010")][-2:] == [
        "DecisionMade",
        "FinalReportSent",
    ]


# --- corrections of these types ---------------------------------------------------------


def test_corrections_obey_the_same_rules_and_may_change_from(store_url: str, cli: Any) -> None:
    url = _store(store_url)
    for args in (
        [
            "delegate-partner",
            CASE,
            "--partner",
            "health",
            "--delegate",
            "Director of Nursing",
            "--from",
            "2026-01-01",
            "--occurred-at",
            "2026-02-10",
        ],
        [
            "transfer",
            CASE,
            "--to-area",
            "Westmoor",
            "--reason",
            "Moved",
            "--accepted-by",
            "Westmoor SP",
            "--occurred-at",
            "2026-03-10",
        ],
        [
            "send-final-report",
            CASE,
            "--to",
            "national-panel",
            "--planned-publication",
            "2026-09-15",
            "--occurred-at",
            "2026-08-20",
        ],
        [
            "record-themes",
            CASE,
            "--themes",
            "neglect",
            "--themes",
            "escalation",
            "--occurred-at",
            "2026-03-11",
        ],
    ):
        _ok(cli(["--store", url, *args]))
    refs = {r["type"]: r["case"] + "#" + str(r["seq"]) for r in open_ledger(url).case_records(CASE)}

    def correct(kind: str, *changes: str) -> CliResult:
        words = [w for change in changes for w in ("--changes", change)]
        return cli(
            [
                "--store",
                url,
                "correct",
                CASE,
                "--corrects",
                refs[kind],
                *words,
                "--reason",
                "Corrected from the minutes",
            ]
        )

    before = _written(url)
    _refused(
        correct("FinalReportSent", "planned_publication=2026-08-01"),
        "`--changes planned_publication`",
        "before the entry's own occurred_at day",
    )
    _refused(
        correct("FinalReportSent", "occurred_at=2026-03-01"),
        "`--changes occurred_at`",
        "follows a decision to review",
    )
    _refused(
        correct("ResponsibilityTransferred", "to_area=Northshire"),
        "`--changes to_area`",
        "already the responsibility of Northshire",
    )
    _refused(
        correct("ThemesRecorded", 'themes=["neglect", "neglect"]'),
        "`--changes themes",
        "neglect is already given as themes[0]",
    )
    _refused(correct("PartnersDelegated", "reason=x"), "`--changes reason`")
    assert _written(url) == before
    # the delegation's `from` (a Python keyword, the catalogue's name) can be corrected
    _ok(correct("PartnersDelegated", "from=2026-02-01", "to=2026-12-31"))
    last = open_ledger(url).case_records(CASE)[-1]
    assert last["type"] == "EntryCorrected" and last["corrects"] == refs["PartnersDelegated"]
    assert last["changes"] == {"from": "2026-02-01", "to": "2026-12-31"}
    _refused(correct("PartnersDelegated", "from=2027-01-05"), "`--changes", "before it begins")
    # a correction that keeps the rules is accepted, and read on the timeline
    _ok(correct("FinalReportSent", "planned_publication=2026-10-01"))
    timeline = _ok(cli(["--store", url, "timeline", CASE], env={"COLUMNS": "400"})).stdout
    assert "publication planned for 2026-10-01" in timeline


# --- approval on PostgreSQL: the database's own check -------------------------------------


@pytest.mark.real_clock
def test_the_database_refuses_a_deferred_publication_no_approver_approved(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer with the documented grants can neither INSERT an entry itself nor, calling
    caseledger_append directly, store a PublicationDeferred approved by someone the
    policy does not let approve it; a client that skips its approval check is refused too.
    The lead partner's approval goes through, kept as provenance."""
    import psycopg

    import ledger.application.recording as recording
    from tests.test_db_authority import _call_append, _next_context

    led = open_ledger(pg_url)
    led.record_lines(_scenario_until_decided(), led.recorder_for())
    writer, chair, partner = (
        person(pg_url, "bu.officer"),
        person(pg_url, "chair.smith"),
        person(pg_url, "partner.patel"),
    )
    led.enrol(writer.name, ["business-unit"], led.recorder_for("admin"))
    led.enrol(chair.name, ["chair"], led.recorder_for("admin"))  # approves under wt2015 only
    led.enrol(partner.name, ["safeguarding-partner"], led.recorder_for("admin"))
    before = led.count_events()

    def deferral(approved_by: str) -> dict[str, Any]:
        body = _next_context(led, writer, "business-unit")
        for name in ("topic", "summary"):
            del body[name]
        body.update(
            type="PublicationDeferred",
            reason="Trial pending",
            trigger="criminal-proceedings",
            expected_by="2027-01-31",
            approved_by=approved_by,
        )
        return body

    schema = pg_url.partition("?schema=")[2]
    body = deferral(chair.name)
    with psycopg.connect(writer.url.partition("?schema=")[0], autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                f'INSERT INTO "{schema}".caseledger_events '
                "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                (case_id(CASE), body["seq"], body["type"], orjson.dumps(body)),
            )
    for nobody in (chair.name, writer.name, "The partners"):
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match="may not approve a PublicationDeferred"
        ):
            _call_append(
                writer, pg_url, deferral(nobody), approval="PublicationDeferred", approved_by=nobody
            )
    # the envelope hiding the approval the entry needs
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="differs from the one checked"):
        _call_append(writer, pg_url, deferral(partner.name))
    # the ledger's own write path with its approval check removed
    line = {
        "type": "PublicationDeferred",
        "case": CASE,
        "occurred_at": "2026-08-20",
        "reason": "Trial pending",
        "trigger": "criminal-proceedings",
        "expected_by": "2027-01-31",
    }
    with monkeypatch.context() as patched:
        patched.setattr(recording, "check_approval", lambda policy, users, event, *a: event)
        with pytest.raises(StoreUnavailable, match="may not approve a PublicationDeferred"):
            led.record_lines(
                [orjson.dumps({**line, "approved_by": chair.name})], led.recorder_for()
            )
    assert led.count_events() == before
    _call_append(
        writer,
        pg_url,
        deferral(partner.name),
        approval="PublicationDeferred",
        approved_by=partner.name,
    )
    assert [r["approved_by"] for r in led.recorder.iter_provenance()][-1] == partner.name
    assert led.verify().ok
    # nor may a correction hand the deferral's approval to someone who may not approve
    deferred = led.case_records(CASE)[-1]
    assert deferred["type"] == "PublicationDeferred"
    correction = {
        "type": "EntryCorrected",
        "case": CASE,
        "reason": "crafted",
        "corrects": f"{CASE}#{deferred['seq']}",
        "changes": {"approved_by": chair.name},
    }
    with monkeypatch.context() as patched:
        patched.setattr(recording, "check_approval", lambda policy, users, event, *a: event)
        with pytest.raises(StoreUnavailable, match="may not approve a PublicationDeferred"):
            led.record_lines([orjson.dumps(correction)], led.recorder_for())
    assert led.verify().ok


@pytest.mark.real_clock
def test_the_database_screens_learning_a_client_did_not_screen(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reviewer (who may not read the personal values) with the client's screen
    removed cannot write the child's name or date of birth into a LearningRecorded's
    summary or recommendations: the database's own screen refuses it."""
    from ledger.application import CaseLedger

    owner = open_ledger(pg_url)
    owner.record_lines(_scenario_until_decided(), owner.recorder_for())
    reviewer = person(pg_url, "a.reviewer")
    owner.enrol(reviewer.name, ["reviewer"], owner.recorder_for("admin"))
    monkeypatch.setattr(CaseLedger, "_refuse_personal_in_text", lambda *args: None)
    before = owner.count_events()
    learning = {
        "type": "LearningRecorded",
        "case": CASE,
        "occurred_at": "2026-08-01",
        "summary": "Escalation failed",
        "themes": ["escalation"],
    }
    writing = reviewer.ledger()
    for given in (
        {"summary": "KAI EXAMPLE was not seen"},
        {"recommendations": ["See the baby born 14 August 2025 weekly"]},
    ):
        with pytest.raises(StoreUnavailable, match="database's screen"):
            writing.record_lines(
                [orjson.dumps({**learning, **given})], reviewer.recorder("reviewer")
            )
    assert owner.count_events() == before
    writing.record_lines([orjson.dumps(learning)], reviewer.recorder("reviewer"))
    assert owner.count_events() == before + 1


def test_themes_are_offered_from_the_vocabulary() -> None:
    """At the tab key and at a terminal's prompt, the themes options offer the
    vocabulary kept as data (read only then)."""
    import typer.main

    from cli.commands.prompts import Asked
    from cli.main import app
    from ledger.catalogue.fields import themes_vocabulary
    from ledger.catalogue.models import LearningRecorded, ThemesRecorded

    root = typer.main.get_command(app)
    for command in ("record-themes", "record-learning"):
        click_command = root.commands[command]  # type: ignore[attr-defined]
        (option,) = [p for p in click_command.params if "--themes" in p.opts]
        with click_command.make_context(command, ["RR-2026-004"]) as ctx:
            shown = [item.value for item in option.shell_complete(ctx, "bru")]
        assert shown == ["bruising-in-non-mobile-infants"], command
    for model in (ThemesRecorded, LearningRecorded):
        info = model.model_fields["themes"]
        asked = Asked.of("themes", "--themes", "list", info.annotation)
        assert asked.offered == tuple(themes_vocabulary()) and "neglect" in asked.offered
