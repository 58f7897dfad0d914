"""Hostile input never hangs, crashes or slips through (issue 12 item 7, issue 13 items 1
and 3), on both stores, through the real CLI where a user would meet it.

Each refusal exits 2 with the line, the field and the reason, and the store is unchanged:
duplicate JSON keys at any depth; oversize lines, texts, lists and personal values;
control and bidirectional characters; blank text; dates that cannot be (a future referral,
a regime not in force); extreme dates and offsets in records and in every time option;
an ``.xlsx`` zip bomb or a sheet declaring a million rows; malformed policy files;
``--criteria @/`` and key files in a missing folder.
"""

from __future__ import annotations

import tomllib
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.common import exit_code
from ledger.catalogue import models as catalogue
from ledger.domain.policy import parse_policy
from ledger.errors import InputError
from tests.conftest import CliResult, FixedClock, open_ledger, scenario_lines

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]
CASE = "RR-2026-004"
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
MAPPING = EXAMPLES / "tracker-mapping.toml"
SAMPLE_XLSX = EXAMPLES / "tracker-sample.xlsx"

REFERRAL: dict[str, Any] = orjson.loads(scenario_lines()[0])
CLOSE = {"type": "CaseClosed", "case": CASE, "occurred_at": "2026-08-01", "reason": "Done."}
DECISION: dict[str, Any] = orjson.loads(scenario_lines()[18])


def count(url: str) -> int:
    led = open_ledger(url)
    try:
        return int(led.count_events())
    finally:
        led.close()


def record_text(cli: Cli, url: str, text: bytes, tmp_path: Path) -> CliResult:
    path = tmp_path / "input.jsonl"
    path.write_bytes(text)
    return cli(["--store", url, "record", str(path)])


def refused(result: CliResult, *needles: str) -> None:
    """Exit 2, a message on standard error with every needle, and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def line(**changes: Any) -> bytes:
    return orjson.dumps({**CLOSE, **changes})


# --- duplicate keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b'{"type":"CaseClosed","case":"RR-2026-004","reason":"a","reason":"b"}', "reason"),
        (  # a pretty-printed line goes through the careful path
            b'{"type": "CaseClosed", "case": "RR-2026-004", "case": "RR-2026-005", "reason": "a"}',
            "case",
        ),
        (
            b'{"type":"CaseClosed","case":"RR-2026-004","reason":"a",'
            b'"sources":[{"title":"t","ref":"r"},{"title":"t","ref":"r","ref":"s"}]}',
            "sources[1].ref",
        ),
    ],
)
def test_duplicate_keys_are_refused_at_any_depth(
    scenario_store: str, cli: Cli, tmp_path: Path, text: bytes, field: str
) -> None:
    before = count(scenario_store)
    result = record_text(cli, scenario_store, scenario_lines()[1] + b"\n" + text, tmp_path)
    refused(result, f"line 2, field `{field}`", "more than once")
    assert count(scenario_store) == before


def test_a_duplicate_criterion_of_a_decision_is_refused(
    scenario_store: str, cli: Cli, tmp_path: Path
) -> None:
    decision = orjson.dumps({k: v for k, v in DECISION.items() if k != "relied_on"})
    reason = b'"reason":"Injuries non-accidental."'
    twice = decision.replace(
        b'"abuse_or_neglect":{',
        b'"abuse_or_neglect":{"finding":"not-met",' + reason + b'},"abuse_or_neglect":{',
        1,
    )
    assert twice != decision
    result = record_text(cli, scenario_store, twice, tmp_path)
    refused(result, "line 1, field `criteria.abuse_or_neglect`", "more than once")


# --- sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (line(reason="x" * (catalogue.MAX_LINE_BYTES + 1)), ("line 1", "at most 1048576 bytes")),
        (line(reason="x" * 20_001), ("field `reason`", "at most 20000 characters")),
        (line(note="y" * 20_001), ("field `note`", "at most 20000 characters")),
        (
            line(sources=[{"title": "t", "ref": f"r{i}"} for i in range(101)]),
            ("field `sources`", "holds 101 items", "at most 100"),
        ),
        (
            orjson.dumps({**DECISION, "relied_on": [f"{CASE}#1"] * 1001}),
            ("field `relied_on`", "at most 1000"),
        ),
        (
            orjson.dumps({**DECISION, "decided_by": ["A Partner"] * 101}),
            ("field `decided_by`", "at most 100"),
        ),
        (
            orjson.dumps({**REFERRAL, "case": "RR-2026-900", "personal": {"name": "n" * 1000}}),
            ("field `personal.name`", "each personal value is at most 1000"),
        ),
        (
            orjson.dumps(
                {**REFERRAL, "case": "RR-2026-900", "personal": {f"k{i}": 1 for i in range(21)}}
            ),
            ("field `personal`", "at most 20"),
        ),
        (
            orjson.dumps({**REFERRAL, "case": "RR-2026-900", "subject": "s" * 201}),
            ("field `subject`", "at most 200 characters"),
        ),
        (
            b'{"type":"CaseClosed","case":"RR-2026-004","reason":"r","note":'
            + b"[" * 300
            + b"]" * 300
            + b"}",
            ("line 1", "nest more than 254 levels"),
        ),
    ],
)
def test_oversize_input_is_refused_with_the_cap(
    scenario_store: str, cli: Cli, tmp_path: Path, text: bytes, needles: tuple[str, ...]
) -> None:
    before = count(scenario_store)
    refused(record_text(cli, scenario_store, text, tmp_path), *needles)
    assert count(scenario_store) == before


# --- control characters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("reason", "ok\x00", "U+0000"),
        ("reason", "red \x1b[31m text", "U+001B"),
        ("reason", "csi \x9b1m", "U+009B"),
        ("reason", "ok\x7f", "U+007F"),
        ("reason", "abc\u202edcba", "U+202E"),
        ("note", "isolate \u2066x\u2069", "U+2066"),
        ("reason", "carriage\rreturn", "U+000D"),
    ],
)
def test_control_and_bidi_characters_are_refused_in_text(
    scenario_store: str, cli: Cli, tmp_path: Path, field: str, value: str, code: str
) -> None:
    before = count(scenario_store)
    result = record_text(cli, scenario_store, line(**{field: value}), tmp_path)
    refused(result, f"field `{field}`", code, "control characters")
    assert value not in result.stderr  # the character itself never reaches the terminal
    assert count(scenario_store) == before


def test_names_are_one_line_but_prose_may_hold_tabs_and_newlines(
    scenario_store: str, cli: Cli, tmp_path: Path
) -> None:
    name = orjson.dumps({**REFERRAL, "case": "RR-2026-901", "referrer": "Police\nForce"})
    refused(record_text(cli, scenario_store, name, tmp_path), "field `referrer`", "U+000A")
    prose = line(reason="First line.\n\tSecond line, indented.")
    result = record_text(cli, scenario_store, prose, tmp_path)
    assert result.exit_code == 0, result.stderr


def test_control_characters_are_refused_in_personal_values(
    scenario_store: str, cli: Cli, tmp_path: Path
) -> None:
    text = orjson.dumps({**REFERRAL, "case": "RR-2026-902", "personal": {"name": "Zoe\x1b]0;"}})
    refused(record_text(cli, scenario_store, text, tmp_path), "personal.name", "U+001B")
    assert count(scenario_store) == len(scenario_lines())


# --- blank text ---------------------------------------------------------------------------


def _text_fields() -> list[tuple[str, str]]:
    """Every (event type, field) whose value is free text or a name, from the models."""
    found = []
    for kind, model in catalogue.MODELS_BY_TYPE.items():
        schema = model.model_json_schema()
        for name, spec in schema["properties"].items():
            options = spec.get("anyOf", [spec])
            if any(
                o.get("pattern")
                in (catalogue.TEXT_PATTERN, catalogue.NAME_PATTERN, catalogue.SUBJECT_PATTERN)
                for o in options
            ):
                found.append((kind, name))
    return found


def test_every_free_text_field_of_the_catalogue_refuses_blank() -> None:
    fields = _text_fields()
    # the fields issue 13 names, and the nested ones, are among them
    for expected in [
        ("DecisionMade", "rationale"),
        ("InformationReceived", "summary"),
        ("DecisionDelayed", "reason"),
        ("EntryCorrected", "reason"),
        ("CaseClosed", "note"),
        ("CaseReferred", "subject"),
    ]:
        assert expected in fields
    assert len(fields) > 50
    defs = catalogue.input_schema()["$defs"]
    assert defs["Finding"]["properties"]["reason"]["pattern"] == catalogue.TEXT_PATTERN
    for blank in ("", " ", "\n\t ", "\u00a0", "\u3000"):
        for kind, name in fields:
            adapter = catalogue.field_adapter(kind, name)
            with pytest.raises(Exception, match="pattern"):
                adapter.validate_python(blank)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**DECISION, "rationale": "   "}, "rationale"),
        (
            {
                **DECISION,
                "criteria": {
                    **DECISION["criteria"],
                    "child_died": {"finding": "not-met", "reason": " \t"},
                },
            },
            "criteria.child_died.reason",
        ),
        ({**CLOSE, "reason": ""}, "reason"),
        ({**CLOSE, "note": "\n"}, "note"),
        (
            {
                "type": "DecisionDelayed",
                "case": CASE,
                "reason": " ",
                "expected_by": "2026-09-01",
                "approved_by": "Partners",
            },
            "reason",
        ),
        (
            {
                "type": "EntryCorrected",
                "case": CASE,
                "corrects": f"{CASE}#2",
                "changes": {"occurred_at": "2026-02-12"},
                "reason": "  ",
            },
            "reason",
        ),
        (
            {
                "type": "EntryCorrected",
                "case": CASE,
                "corrects": f"{CASE}#9",
                "changes": {"summary": " "},
                "reason": "Typo.",
            },
            "changes.summary",
        ),
    ],
)
def test_blank_text_is_refused(
    scenario_store: str, cli: Cli, tmp_path: Path, event: dict[str, Any], field: str
) -> None:
    event = {k: v for k, v in event.items() if k != "relied_on"}
    before = count(scenario_store)
    result = record_text(cli, scenario_store, orjson.dumps(event), tmp_path)
    refused(result, f"field `{field}`", "blank")
    assert count(scenario_store) == before


def test_the_schema_shows_the_limits_and_the_not_blank_rule(cli: Cli) -> None:
    result = cli(["schema"])
    assert result.exit_code == 0
    schema = result.json()
    defs = schema["$defs"]
    rationale = defs["DecisionMade"]["properties"]["rationale"]
    assert rationale["maxLength"] == catalogue.MAX_TEXT_CHARS
    assert rationale["pattern"] == catalogue.TEXT_PATTERN
    sources = defs["CaseClosed"]["properties"]["sources"]["anyOf"][0]
    assert sources["maxItems"] == catalogue.MAX_LIST_ITEMS
    assert "transitional" in defs["CaseReferred"]["properties"]
    page = (Path(__file__).resolve().parents[1] / "docs/reference/events.md").read_text()
    assert "not blank" in page and "at most 20000 characters" in page


# --- dates that cannot be -----------------------------------------------------------------


def _referral(case: str, **changes: Any) -> bytes:
    return orjson.dumps({**REFERRAL, "case": case, **changes})


@pytest.mark.parametrize("field", ["incident_date", "aware_date"])
def test_a_future_referral_date_is_refused_by_the_ledger_clock(store_url: str, field: str) -> None:
    clock = FixedClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    led = open_ledger(store_url, clock)
    dates = {"incident_date": "2026-02-27", "aware_date": "2026-02-28", "occurred_at": "2026-03-01"}
    dates[field] = dates["occurred_at"] = "2026-03-02"
    if field == "incident_date":
        dates["aware_date"] = "2026-03-02"
    with pytest.raises(InputError) as caught:
        led.record_lines([_referral("RR-2026-700", **dates)], led.recorder_for())
    assert caught.value.field in ("incident_date", "aware_date")
    assert "in the future (today is 2026-03-01)" in str(caught.value)
    assert led.count_events() == 0
    clock.advance(days=1)  # the next day it has happened
    led.record_lines([_referral("RR-2026-700", **dates)], led.recorder_for())
    assert led.count_events() == 1


def test_a_future_referral_date_is_refused_on_the_command_line(
    store_url: str, cli: Cli, tmp_path: Path
) -> None:
    text = _referral("RR-2150-001", incident_date="2150-01-01", aware_date="2150-01-02")
    refused(record_text(cli, store_url, text, tmp_path), "field `incident_date`", "future")
    assert count(store_url) == 0


def test_a_correction_cannot_move_a_referral_into_the_future(
    scenario_store: str, cli: Cli, tmp_path: Path
) -> None:
    correction = {
        "type": "EntryCorrected",
        "case": CASE,
        "corrects": f"{CASE}#1",
        "changes": {"aware_date": "2150-01-01"},
        "reason": "Typed the wrong date.",
    }
    result = record_text(cli, scenario_store, orjson.dumps(correction), tmp_path)
    refused(result, "field `changes.aware_date`", "future")


@pytest.mark.parametrize(
    ("regime", "incident", "aware", "ok"),
    [
        ("wt2015", "2026-02-06", "2026-02-09", False),  # an SCR for a 2026 incident
        ("wt2018", "2026-02-06", "2026-02-09", False),
        ("wt2023", "2016-02-06", "2016-02-09", False),  # before Working Together 2023
        ("wt2015", "2016-02-06", "2016-02-09", True),
        ("wt2015", "2019-01-10", "2019-01-11", True),  # both, in the 2018-19 transition
        ("wt2018", "2019-01-10", "2019-01-11", True),
        ("wt2018", "2018-06-20", "2018-07-02", True),  # in force when the LA became aware
        ("wt2023", "2024-02-01", "2024-02-02", True),
    ],
)
def test_a_regime_not_in_force_is_refused_unless_transitional(
    store_url: str, regime: str, incident: str, aware: str, ok: bool
) -> None:
    led = open_ledger(store_url)
    dates = {"regime": regime, "incident_date": incident, "aware_date": aware, "occurred_at": aware}
    if ok:
        led.record_lines([_referral("RR-1", **dates)], led.recorder_for())
        assert led.count_events() == 1
        return
    with pytest.raises(InputError) as caught:
        led.record_lines([_referral("RR-1", **dates)], led.recorder_for())
    assert caught.value.field == "regime"
    assert f"{regime} was not in force on the incident date {incident}" in str(caught.value)
    assert "transitional: true" in str(caught.value)
    assert led.count_events() == 0
    led.record_lines([_referral("RR-1", **dates, transitional=True)], led.recorder_for())
    assert led.entry("RR-1", 1)["transitional"] is True


# --- extreme dates and offsets ------------------------------------------------------------

EXTREME = [
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00+23:59",
    "9999-12-31T23:59-23:59",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999",
    "2026-06-01T12:00+15:00",
]
QUERIES = [
    ["status"],
    ["status", CASE],
    ["timeline", CASE],
    ["why", CASE],
    ["clocks"],
    ["quality", CASE],
    ["delays", "--from", "CaseReferred", "--to", "DecisionMade"],
    ["due"],
    ["export", "--out", "OUT"],
]


@pytest.mark.parametrize("command", QUERIES, ids=lambda c: c[0])
def test_extreme_times_in_options_exit_2_with_the_reason(
    scenario_store: str, cli: Cli, tmp_path: Path, command: list[str]
) -> None:
    """Each extreme value in each time option of the query is refused with the field and
    the reason (one store per query, every option and value tried against it)."""
    for option in ("--as-of", "--on"):
        if command[0] == "export" and option == "--on":
            option = "--from"  # export takes --from/--to for the world time
        for value in EXTREME:
            args = [str(tmp_path / "bundle") if a == "OUT" else a for a in command]
            result = cli(["--store", scenario_store, *args, option, value])
            refused(result, f"field `{option}`")
            reason = "dates the ledger works with" in result.stderr or "time zone" in result.stderr
            assert reason, (option, value, result.stderr)
            assert not (tmp_path / "bundle").exists()


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31T23:59-23:59"])
def test_export_to_an_extreme_time_exits_2(
    scenario_store: str, cli: Cli, tmp_path: Path, value: str
) -> None:
    result = cli(["--store", scenario_store, "export", "--out", str(tmp_path / "b"), "--to", value])
    refused(result, "field `--to`")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"occurred_at": "0001-01-01"}, "occurred_at"),
        ({"occurred_at": "9999-12-31T23:59-23:59"}, "occurred_at"),
        ({"occurred_at": "2026-06-01T12:00+23:59"}, "occurred_at"),
    ],
)
def test_extreme_occurred_at_is_refused(
    scenario_store: str, cli: Cli, tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    refused(record_text(cli, scenario_store, line(**changes), tmp_path), f"field `{field}`")
    assert count(scenario_store) == len(scenario_lines())


def test_extreme_dates_in_date_options_of_one_entry_commands(scenario_store: str, cli: Cli) -> None:
    result = cli(
        [
            "--store",
            scenario_store,
            "request-info",
            CASE,
            "--agency",
            "Northshire ICB",
            "--asked-for",
            "records",
            "--due",
            "0001-01-01",
        ]
    )
    refused(result, "field `--due`", "1900-01-01 to 2199-12-31")
    result = cli(
        [
            "--store",
            scenario_store,
            "correct",
            CASE,
            "--corrects",
            f"{CASE}#2",
            "--changes",
            "occurred_at=9999-12-31T23:59-23:59",
            "--reason",
            "Wrong.",
        ]
    )
    refused(result, "field `--changes occurred_at`", "time zone")
    assert count(scenario_store) == len(scenario_lines())


# --- files given on the command line -----------------------------------------------------


def test_criteria_from_a_folder_or_an_endless_file_exit_2(scenario_store: str, cli: Cli) -> None:
    base = [
        "--store",
        scenario_store,
        "decide",
        CASE,
        "--outcome",
        "no-review",
        "--decided-by",
        "Partners",
        "--rationale",
        "Reasons.",
    ]
    refused(cli([*base, "--criteria", "@/"]), "field `--criteria`", "is a folder")
    refused(cli([*base, "--criteria", "@/dev/zero"]), "field `--criteria`", "larger than")
    assert count(scenario_store) == len(scenario_lines())


@pytest.mark.parametrize("kind", ["new", "signing"])
def test_keys_into_a_missing_folder_exit_2(cli: Cli, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "missing" / "folder" / "x"
    refused(cli(["keys", kind, "--out", str(target)]), "field `--out`", "cannot be written")
    assert not target.parent.exists()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('[roles.chair]\nrecord = ["DecisionMade"]', "[roles.admin]"),
        ("[roles.admin]\nactions = []", "[roles.admin]"),
        ('[roles.admin]\nactions = "users"', "roles.admin.actions must be a list of strings"),
        (
            '[roles.admin]\nactions = ["users"]\n[roles.chair]\nrecord = "DecisionMade"',
            "roles.chair.record must be a list of strings",
        ),
        ('[roles.admin]\nactions = ["users"]\nown_agency = "no"', "must be true or false"),
        ('[roles.admin]\nactions = ["users"]\nregimes = ["wt1999"]', "unknown ['wt1999']"),
        ('[roles.admin]\nactions = ["users"]\ndescription = 3', "must be a string"),
        ("roles = 1", "a policy needs a [roles.NAME] table"),
    ],
)
def test_malformed_policy_files_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_policy(tomllib.loads(text), "my-policy.toml")
    assert reason in str(caught.value) and "my-policy.toml" in str(caught.value)


# --- spreadsheets -------------------------------------------------------------------------


def _rewrite_xlsx(tmp_path: Path, change: Callable[[str, bytes], bytes], **extra: bytes) -> Path:
    """A copy of the sample tracker with its members changed (and extra members added)."""
    target = tmp_path / "tracker.xlsx"
    with (
        zipfile.ZipFile(SAMPLE_XLSX) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in source.infolist():
            out.writestr(info.filename, change(info.filename, source.read(info.filename)))
        for name, data in extra.items():
            out.writestr(name, data)
    return target


def _import(cli: Cli, url: str, path: Path) -> CliResult:
    return cli(["--store", url, "import-tracker", str(path), "--mapping", str(MAPPING)])


def test_an_xlsx_zip_bomb_is_refused_before_it_is_opened(
    store_url: str, cli: Cli, tmp_path: Path
) -> None:
    def pad(name: str, data: bytes) -> bytes:
        if name == "xl/worksheets/sheet1.xml":  # 40 MiB of white space, ~40 KiB zipped
            return data.replace(b"<sheetData>", b"<sheetData>" + b" " * (40 * 1_048_576), 1)
        return data

    bomb = _rewrite_xlsx(tmp_path, pad)
    assert bomb.stat().st_size < 1_048_576
    started = datetime.now(UTC)
    refused(_import(cli, store_url, bomb), "expands", "times")
    assert (datetime.now(UTC) - started).total_seconds() < 10
    assert count(store_url) == 0


def test_an_xlsx_declaring_a_huge_sheet_is_refused(
    store_url: str, cli: Cli, tmp_path: Path
) -> None:
    def huge(name: str, data: bytes) -> bytes:
        if name == "xl/worksheets/sheet1.xml":
            start = data.index(b"<dimension ")
            end = data.index(b"/>", start) + 2
            return data[:start] + b'<dimension ref="A1:XFD1048576"/>' + data[end:]
        return data

    path = _rewrite_xlsx(tmp_path, huge)
    refused(_import(cli, store_url, path), "declares 1048576 rows", "at most 100000")
    assert count(store_url) == 0


def test_an_xlsx_with_a_far_away_cell_and_no_dimension_is_bounded(
    store_url: str, cli: Cli, tmp_path: Path
) -> None:
    def far(name: str, data: bytes) -> bytes:
        if name == "xl/worksheets/sheet1.xml":
            start = data.index(b"<dimension ")
            end = data.index(b"/>", start) + 2
            data = data[:start] + data[end:]
            cell = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
            return data.replace(b"</sheetData>", cell + b"</sheetData>", 1)
        return data

    path = _rewrite_xlsx(tmp_path, far)
    started = datetime.now(UTC)
    refused(_import(cli, store_url, path), "more than")
    assert (datetime.now(UTC) - started).total_seconds() < 30
    assert count(store_url) == 0


# --- a property over hostile lines --------------------------------------------------------

CONTROL = st.sampled_from(
    [chr(c) for c in [*range(0, 9), *range(11, 32), 127, *range(128, 160)]]
    + [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
)
BLANK = st.text(alphabet=" \t\n\u00a0\u2003\u3000", max_size=5)
EXTREME_TIME = st.sampled_from(EXTREME) | st.builds(
    lambda y, off: f"{y:04d}-01-01T00:00{off}",
    st.sampled_from([1, 2, 1899, 2200, 9999]),
    st.sampled_from(["", "Z", "+23:59", "-23:59", "+14:01"]),
)


def _with_control(text: str, char: str, at: int) -> str:
    at = at % (len(text) + 1)
    return text[:at] + char + text[at:]


HOSTILE = st.one_of(
    st.sampled_from(["reason", "note"]).flatmap(
        lambda field: st.builds(lambda v: line(**{field: v}), BLANK)
    ),
    st.builds(lambda c, i: line(reason=_with_control("A reason.", c, i)), CONTROL, st.integers()),
    st.builds(lambda c, i: line(note=_with_control("A note.", c, i)), CONTROL, st.integers()),
    st.builds(lambda t: line(occurred_at=t), EXTREME_TIME),
    st.builds(lambda n: line(reason="x" * n), st.integers(20_001, 40_000)),
    st.builds(
        lambda key, value: line()[:-1] + b',"' + key.encode() + b'":' + orjson.dumps(value) + b"}",
        st.sampled_from(["type", "case", "reason", "occurred_at"]),
        st.sampled_from(["CaseClosed", CASE, "Again.", "2026-08-02"]),
    ),
    st.builds(
        lambda day: _referral("RR-2026-950", aware_date=day, incident_date=day),
        st.sampled_from(["2999-01-01", "2199-12-31", "0001-01-01", "9999-12-31"]),
    ),
    st.builds(
        lambda regime: _referral("RR-2026-951", regime=regime),
        st.sampled_from(["wt2015", "wt2018"]),
    ),
)


def test_hostile_lines_are_refused_cleanly_and_change_nothing(scenario_store: str) -> None:
    led = open_ledger(scenario_store)
    before = led.count_events()
    recorder = led.recorder_for()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(HOSTILE)
    def attempt(text: bytes) -> None:
        with pytest.raises(InputError) as caught:
            led.record_lines([text], recorder)
        assert exit_code(caught.value) == 2
        message = str(caught.value)
        assert message.startswith("line 1")
        assert not any(0x80 <= ord(c) < 0xA0 or (ord(c) < 0x20 and c != "\n") for c in message)
        assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in message)
        assert led.count_events() == before

    attempt()


# --- what reaches the terminal -----------------------------------------------------------


def test_no_message_sends_a_control_character_raw(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "status", "X\x1b[2J\u202e"])
    refused(result, "X\\u001b[2J\\u202e")
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr


def test_an_argument_that_is_not_utf8_exits_2(scenario_store: str, cli: Cli) -> None:
    result = cli(["--store", scenario_store, "status", "X\udc9b"])  # the byte 0x9b
    refused(result, "argument 4", "is not valid UTF-8")


def test_a_tracker_cell_with_windows_line_breaks_imports(
    store_url: str, cli: Cli, tmp_path: Path
) -> None:
    import csv
    import io

    with (EXAMPLES / "tracker-sample.csv").open(newline="", encoding="utf-8") as handle:
        grid = list(csv.reader(handle))
    summary = grid[0].index("Summary")
    grid[1][summary] = "First line.\r\nSecond line."
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(grid)
    path = tmp_path / "tracker.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    from tests.test_tracker import enrol_decision_makers

    enrol_decision_makers(cli, store_url)  # the sample's delay needs its chair enrolled
    result = _import(cli, store_url, path)
    assert result.exit_code == 0, result.stderr
