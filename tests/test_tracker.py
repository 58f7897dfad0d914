"""``caseledger import-tracker``: the shipped sample converts on both stores, a second run
records nothing new, a bad row is named and nothing of it is written (nothing at all
without --skip-bad-rows), --dry-run writes nothing, .xlsx and .csv give the same entries,
changed rows are reported rather than duplicated, and junk cells never crash the import."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import parse_line
from ledger.errors import InputError
from ledger.importing.tracker import (
    SOURCE_TITLE,
    RowProblem,
    TrackerRow,
    convert_row,
    load_mapping,
    parse_mapping,
    read_tracker,
)
from tests.conftest import CliResult, open_ledger

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
SAMPLE_CSV = EXAMPLES / "tracker-sample.csv"
SAMPLE_XLSX = EXAMPLES / "tracker-sample.xlsx"
MAPPING = EXAMPLES / "tracker-mapping.toml"
SAMPLE_CASES = [
    "NS-SCR-2016-03",
    "NS-SCR-2016-09",
    "NS-SCR-2017-02",
    "NS-SCR-2018-01",
    "NS-RR-2019-02",
    "NS-RR-2020-05",
    "NS-RR-2022-03",
    "NS-RR-2023-07",
    "NS-RR-2024-11",
    "NS-RR-2025-04",
    "NS-RR-2025-09",
    "NS-RR-2026-14",
]
SAMPLE_ENTRIES = 172

Cli = Callable[..., CliResult]


def count(url: str) -> int:
    led = open_ledger(url)
    try:
        return int(led.count_events())
    finally:
        led.close()


def records(url: str, case: str) -> list[dict[str, Any]]:
    led = open_ledger(url)
    try:
        return list(led.case_records(case))
    finally:
        led.close()


#: The decision-makers the sample mapping names as approvers of delays
#: (``[fields.delay_approved_by.by_regime]``): only enrolled ones approve.
DECISION_MAKERS = {
    "Northshire LSCB independent chair": "chair",
    "Northshire safeguarding partners": "safeguarding-partner",
}


def enrol_decision_makers(cli: Cli, url: str) -> None:
    """Enrol the sample's approvers, once, as the user guide tells a business unit to."""
    led = open_ledger(url)
    try:
        enrolled = led.register_state().users
    finally:
        led.close()
    for name, role in DECISION_MAKERS.items():
        if name not in enrolled:
            assert cli(["--store", url, "users", "add", name, "--role", role]).exit_code == 0


def run_import(cli: Cli, url: str, tracker: Path, *extra: str, enrol: bool = True) -> CliResult:
    if enrol:
        enrol_decision_makers(cli, url)
    return cli(["--store", url, "import-tracker", str(tracker), "--mapping", str(MAPPING), *extra])


def sample_grid() -> list[list[str]]:
    with SAMPLE_CSV.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def write_grid(path: Path, grid: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(grid)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def edit(grid: list[list[str]], case: str, column: str, value: str) -> list[list[str]]:
    """A copy of the grid with one cell of one case's row changed."""
    header = grid[0]
    out = [list(row) for row in grid]
    for row in out[1:]:
        if row[0] == case:
            row[header.index(column)] = value
            return out
    raise KeyError(case)


def without_file_name(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines with the file name dropped from their tracker source's ``ref``."""
    out = []
    for line in lines:
        sources = [{**s, "ref": s["ref"].split(" row ")[-1]} for s in line["sources"]]
        out.append({**line, "sources": sources})
    return out


# --- the sample ------------------------------------------------------------------------


def test_sample_converts(store_url: str, cli: Cli) -> None:
    result = run_import(cli, store_url, SAMPLE_CSV, "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["written"] is True and report["bad"] == [] and report["changed"] == []
    assert len(report["recorded"]) == SAMPLE_ENTRIES == count(store_url)
    assert [r["case"] for r in report["rows"]] == SAMPLE_CASES
    assert {r["status"] for r in report["rows"]} == {"new"}

    for case in SAMPLE_CASES:
        stored = records(store_url, case)
        assert stored[0]["type"] == "CaseReferred"
        row = SAMPLE_CASES.index(case) + 2  # the header is row 1
        for record in stored:
            (source,) = record["sources"]
            assert source["title"] == SOURCE_TITLE
            assert source["ref"] == f"tracker-sample.csv row {row}"
            assert len(source["sha256"]) == 64

    # Regimes: by the decision date, by the Regime column, and by the notification date.
    regimes = {c: records(store_url, c)[0]["regime"] for c in SAMPLE_CASES}
    assert regimes["NS-SCR-2016-03"] == "wt2015"
    assert regimes["NS-SCR-2018-01"] == "wt2015"  # the Regime column wins over the rules
    assert regimes["NS-RR-2019-02"] == "wt2018"
    assert regimes["NS-RR-2024-11"] == "wt2023"  # decided 10/12/2024
    assert regimes["NS-RR-2026-14"] == "wt2023"  # no decision yet: notified 05/11/2026

    late = records(store_url, "NS-SCR-2017-02")
    types = [r["type"] for r in late]
    assert types.index("DecisionDelayed") < types.index("DecisionMade")
    decision = next(r for r in late if r["type"] == "DecisionMade")
    assert decision["occurred_at"] == "2017-03-28"
    assert decision["criteria"]["child_died"]["finding"] == "met"
    assert "Inferred at import" in decision["criteria"]["child_died"]["reason"]
    assert decision["criteria"]["agency_concern"] == {
        "finding": "unclear",
        "reason": "Not recorded in the tracker.",
    }
    # The agency that never answered stays an open request.
    asked = {r["agency"] for r in late if r["type"] == "InformationRequested"}
    answered = {r["agency"] for r in late if r["type"] == "InformationReceived"}
    assert asked - answered == {"Northshire Youth Offending Service"}

    not_held = records(store_url, "NS-SCR-2016-09")
    decision = next(r for r in not_held if r["type"] == "DecisionMade")
    assert decision["outcome"] == "no-review" and "nature" not in decision

    blank_referral = records(store_url, "NS-RR-2022-03")[0]
    assert blank_referral["occurred_at"] == blank_referral["aware_date"] == "2022-03-08"
    assert "`Referral date`" in blank_referral["note"]

    verify = cli(["--store", store_url, "verify", "--json"])
    assert verify.exit_code == 0, verify.stderr
    assert verify.json()["ok"] is True


def test_second_run_records_nothing_new(store_url: str, cli: Cli) -> None:
    assert run_import(cli, store_url, SAMPLE_CSV).exit_code == 0
    again = run_import(cli, store_url, SAMPLE_CSV, "--json")
    assert again.exit_code == 0, again.stderr
    report = again.json()
    assert report["recorded"] == [] and report["written"] is False
    assert {r["status"] for r in report["rows"]} == {"imported"}
    # The same tracker saved as .xlsx is the same content: nothing new either.
    xlsx = run_import(cli, store_url, SAMPLE_XLSX)
    assert xlsx.exit_code == 0, xlsx.stderr
    assert "already imported" in xlsx.stdout
    assert count(store_url) == SAMPLE_ENTRIES


def test_dry_run_writes_nothing(store_url: str, cli: Cli) -> None:
    table = run_import(cli, store_url, SAMPLE_CSV, "--dry-run")
    assert table.exit_code == 0, table.stderr
    assert "Would record 172 entries for 12 cases" in table.stdout
    assert "NS-SCR-2016-03" in table.stdout and "ReportPublished" in table.stdout
    as_json = run_import(cli, store_url, SAMPLE_CSV, "--dry-run", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    report = as_json.json()
    assert report["dry_run"] is True and report["recorded"] == []
    assert len(report["events"]) == SAMPLE_ENTRIES
    for line in report["events"]:  # every line is a valid `caseledger record` input line
        parse_line(orjson.dumps(line))
    assert count(store_url) == 0
    # What the dry run shows is what a real run records.
    real = run_import(cli, store_url, SAMPLE_CSV, "--json")
    assert [r["ref"].split("#")[0] for r in real.json()["recorded"]] == [
        line["case"] for line in report["events"]
    ]


def test_xlsx_and_csv_give_the_same_events(store_url: str, cli: Cli) -> None:
    from_csv = run_import(cli, store_url, SAMPLE_CSV, "--dry-run", "--json")
    from_xlsx = run_import(cli, store_url, SAMPLE_XLSX, "--dry-run", "--json")
    assert from_csv.exit_code == from_xlsx.exit_code == 0, from_xlsx.stderr
    csv_lines = from_csv.json()["events"]
    xlsx_lines = from_xlsx.json()["events"]
    assert xlsx_lines[0]["sources"][0]["ref"] == "tracker-sample.xlsx row 2"
    assert without_file_name(csv_lines) == without_file_name(xlsx_lines)
    # Recorded from the workbook, the stored entries are the same too.
    assert run_import(cli, store_url, SAMPLE_XLSX).exit_code == 0
    stored = records(store_url, "NS-RR-2020-05")
    expected = [line for line in csv_lines if line["case"] == "NS-RR-2020-05"]
    assert [r["occurred_at"] for r in stored] == [line["occurred_at"] for line in expected]
    assert [r["type"] for r in stored] == [line["type"] for line in expected]


def test_sample_xlsx_is_built_from_the_csv(tmp_path: Path) -> None:
    """docs/examples/make_xlsx.py rebuilds the shipped workbook byte for byte."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_xlsx", EXAMPLES / "make_xlsx.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target = tmp_path / "rebuilt.xlsx"
    module.build(SAMPLE_CSV, target)
    assert target.read_bytes() == SAMPLE_XLSX.read_bytes()


# --- bad rows ----------------------------------------------------------------------------


def test_malformed_date_writes_nothing_without_skip(
    store_url: str, cli: Cli, tmp_path: Path
) -> None:
    bad = write_grid(
        tmp_path / "tracker.csv",
        edit(sample_grid(), "NS-RR-2019-02", "Decision date", "24/13/2019"),
    )
    result = run_import(cli, store_url, bad)
    assert result.exit_code == 2
    assert "row 6 (NS-RR-2019-02), column `Decision date`" in result.stderr
    assert "'24/13/2019' is not a date" in result.stderr
    assert "nothing was written" in result.stderr
    assert "--skip-bad-rows" in result.stderr
    assert "Traceback" not in result.stderr
    assert count(store_url) == 0

    as_json = run_import(cli, store_url, bad, "--json")
    assert as_json.exit_code == 2
    report = as_json.json()
    assert report["written"] is False and report["recorded"] == []
    assert report["bad"] == [
        {
            "line": 6,
            "case": "NS-RR-2019-02",
            "field": "column `Decision date`",
            "reason": report["bad"][0]["reason"],
        }
    ]
    assert count(store_url) == 0


def test_skip_bad_rows_records_the_others(store_url: str, cli: Cli, tmp_path: Path) -> None:
    bad = write_grid(
        tmp_path / "tracker.csv",
        edit(sample_grid(), "NS-RR-2019-02", "Decision date", "24/13/2019"),
    )
    result = run_import(cli, store_url, bad, "--skip-bad-rows")
    assert result.exit_code == 0, result.stderr
    assert "row 6 (NS-RR-2019-02)" in result.stderr
    assert "Recorded 158 entries for 11 cases" in result.stdout
    assert records(store_url, "NS-RR-2019-02") == []
    assert count(store_url) == SAMPLE_ENTRIES - 14
    # Fixed in the tracker, the row is imported on the next run; the others are skipped.
    fixed = run_import(cli, store_url, SAMPLE_CSV, "--json")
    assert fixed.exit_code == 0, fixed.stderr
    assert {r["ref"].split("#")[0] for r in fixed.json()["recorded"]} == {"NS-RR-2019-02"}
    assert count(store_url) == SAMPLE_ENTRIES


def test_skip_bad_rows_with_nothing_good_exits_2(store_url: str, cli: Cli, tmp_path: Path) -> None:
    grid = sample_grid()
    only_bad = write_grid(
        tmp_path / "tracker.csv",
        edit([grid[0], grid[1]], "NS-SCR-2016-03", "LA aware", "yesterday"),
    )
    result = run_import(cli, store_url, only_bad, "--skip-bad-rows")
    assert result.exit_code == 2
    assert "row 2 (NS-SCR-2016-03), column `LA aware`" in result.stderr
    assert count(store_url) == 0


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("Decision", "Maybe", "'Maybe' is not a known outcome: add it to [fields.outcome.values]"),
        # the mapping derives the regime from the decision date first: a 2099 decision
        # makes a 2016 case wt2023, which was not in force then, and that is named first
        ("Decision date", "01/01/2099", "wt2023 was not in force on the incident date"),
        ("Meeting date", "01/01/2015", "before the case's incident_date"),
        ("LA aware", "01/03/2016", "aware_date"),
        ("Case ref", "NS SCR 2016 03", "is not a case reference"),
        ("Known to", "", "does not say which agencies knew the child"),
    ],
)
def test_bad_rows_are_named_with_their_reason(
    store_url: str, cli: Cli, tmp_path: Path, column: str, value: str, expected: str
) -> None:
    grid = sample_grid()
    bad = write_grid(tmp_path / "tracker.csv", edit(grid, "NS-SCR-2016-03", column, value))
    result = run_import(cli, store_url, bad, "--skip-bad-rows", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    (problem,) = report["bad"]
    assert problem["line"] == 2
    described = f"{problem['field']}: {problem['reason']}"
    assert expected in described
    if column != "Case ref":
        assert records(store_url, "NS-SCR-2016-03") == []
    assert len(report["recorded"]) == SAMPLE_ENTRIES - 17


def test_duplicate_case_rows_are_bad(store_url: str, cli: Cli, tmp_path: Path) -> None:
    grid = sample_grid()
    twice = write_grid(tmp_path / "tracker.csv", [*grid, grid[1]])
    result = run_import(cli, store_url, twice)
    assert result.exit_code == 2
    assert "row 14 (NS-SCR-2016-03)" in result.stderr and "also on row 2" in result.stderr
    assert count(store_url) == 0


# --- rows whose case is already in the ledger ------------------------------------------


def test_changed_row_is_reported_not_duplicated(store_url: str, cli: Cli, tmp_path: Path) -> None:
    assert run_import(cli, store_url, SAMPLE_CSV).exit_code == 0
    grid = edit(sample_grid(), "NS-SCR-2016-09", "Decision date", "04/10/2016")
    changed = write_grid(tmp_path / "tracker.csv", grid)
    result = run_import(cli, store_url, changed, "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["recorded"] == []
    (row,) = report["changed"]
    assert row["case"] == "NS-SCR-2016-09" and row["status"] == "changed"
    assert row["differences"] == [
        "NS-SCR-2016-09#11 DecisionMade.occurred_at '2016-10-03' → '2016-10-04'"
    ]
    assert "EntryCorrected" in row["reason"] and row["row_hash"] in row["reason"]
    assert count(store_url) == SAMPLE_ENTRIES

    human = run_import(cli, store_url, changed)
    assert human.exit_code == 0
    assert "not imported: row 3" in human.stderr and "EntryCorrected" in human.stderr

    # The user records the correction, citing the changed row: later imports are quiet.
    correction = {
        "type": "EntryCorrected",
        "case": "NS-SCR-2016-09",
        "corrects": "NS-SCR-2016-09#11",
        "changes": {"occurred_at": "2016-10-04"},
        "reason": "The tracker was corrected: the decision was signed on 4 October.",
        "sources": [{"title": SOURCE_TITLE, "ref": "tracker.csv row 3", "sha256": row["row_hash"]}],
    }
    lines = tmp_path / "correction.jsonl"
    lines.write_bytes(orjson.dumps(correction) + b"\n")
    assert cli(["--store", store_url, "record", str(lines)]).exit_code == 0
    quiet = run_import(cli, store_url, changed, "--json")
    assert quiet.exit_code == 0
    assert {r["status"] for r in quiet.json()["rows"]} == {"imported"}
    assert count(store_url) == SAMPLE_ENTRIES + 1


def test_new_step_in_a_row_is_reported(store_url: str, cli: Cli, tmp_path: Path) -> None:
    grid = sample_grid()
    assert run_import(cli, store_url, SAMPLE_CSV).exit_code == 0
    grid = edit(grid, "NS-RR-2025-09", "Published", "20/04/2026")
    result = run_import(cli, store_url, write_grid(tmp_path / "t.csv", grid), "--json")
    (row,) = result.json()["changed"]
    assert row["differences"] == ["new ReportPublished (2026-04-20)"]
    assert count(store_url) == SAMPLE_ENTRIES


def test_case_recorded_otherwise_is_not_touched(store_url: str, cli: Cli, tmp_path: Path) -> None:
    as_json = run_import(cli, store_url, SAMPLE_CSV, "--dry-run", "--json").json()
    first = dict(as_json["events"][0])
    del first["sources"]
    lines = tmp_path / "first.jsonl"
    lines.write_bytes(orjson.dumps(first) + b"\n")
    assert cli(["--store", store_url, "record", str(lines)]).exit_code == 0
    result = run_import(cli, store_url, SAMPLE_CSV, "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = result.json()["changed"]
    assert row["status"] == "exists" and row["case"] == "NS-SCR-2016-03"
    assert "recorded without this tracker" in row["reason"]
    assert len(records(store_url, "NS-SCR-2016-03")) == 1
    assert count(store_url) == 1 + SAMPLE_ENTRIES - 17


# --- the mapping --------------------------------------------------------------------------


def test_mapping_naming_a_missing_column_exits_2(store_url: str, cli: Cli, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(MAPPING.read_text().replace('"Decision date"', '"Date of decision"'))
    result = cli(
        ["--store", store_url, "import-tracker", str(SAMPLE_CSV), "--mapping", str(mapping)]
    )
    assert result.exit_code == 2
    assert "'Date of decision' (fields.decision_date)" in result.stderr
    assert "did you mean 'Decision date'?" in result.stderr
    assert count(store_url) == 0


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[fields]\ncase = "Ref"\nregime = { default = "wt2018" }\noutcom = "X"\n',
            "did you mean 'outcome'",
        ),
        ('[fields]\nregime = { default = "wt2018" }\n', "which column holds the case reference"),
        ('[fields]\ncase = "Ref"\n', "must say the regime"),
        (
            '[fields]\ncase = "Ref"\nregime = { default = "wt2019" }\n',
            "'wt2019' is not one of wt2015",
        ),
        (
            '[fields]\ncase = "Ref"\nregime = { default = "wt2018" }\n'
            'outcome = { column = "D", values = { "SCR" = "scr" } }\n',
            "'scr' is not one of review",
        ),
        (
            '[fields]\ncase = "Ref"\nregime = { default = "wt2018" }\nagencies_answered = "A"\n',
            "involved_when_not_recorded",
        ),
        (
            '[fields]\ncase = "Ref"\n[regime]\n'
            'rules = [{ before = "2018-13-01", regime = "wt2015" }]\n',
            "YYYY-MM-DD",
        ),
        ('[tracker]\ndate_formats = ["dd/mm/yyyy"]\n[fields]\ncase = "Ref"\n', "not a date format"),
        (
            '[criteria]\ninfer = ["panel_view"]\n[fields]\ncase = "R"\n'
            'regime = { default = "wt2018" }\n',
            "cannot be inferred",
        ),
        ('version = 2\n[fields]\ncase = "Ref"\n', "mapping version 1"),
    ],
)
def test_mapping_errors_are_clear(tmp_path: Path, cli: Cli, toml: str, expected: str) -> None:
    import tomllib

    with pytest.raises(InputError) as caught:
        parse_mapping(tomllib.loads(toml), "m.toml")
    assert expected in caught.value.describe()
    mapping = tmp_path / "m.toml"
    mapping.write_text(toml)
    result = cli(
        [
            "--store",
            str(tmp_path / "l.db"),
            "import-tracker",
            str(SAMPLE_CSV),
            "--mapping",
            str(mapping),
        ]
    )
    assert result.exit_code == 2 and expected in result.stderr.replace("\n", " ")


def test_missing_files_exit_2(tmp_path: Path, cli: Cli) -> None:
    store = str(tmp_path / "l.db")
    no_tracker = cli(["--store", store, "import-tracker", "nope.csv", "--mapping", str(MAPPING)])
    assert no_tracker.exit_code == 2 and "nope.csv is not a file" in no_tracker.stderr
    no_mapping = cli(["--store", store, "import-tracker", str(SAMPLE_CSV), "--mapping", "x.toml"])
    assert no_mapping.exit_code == 2 and "does not exist" in no_mapping.stderr
    not_xlsx = tmp_path / "t.xlsx"
    not_xlsx.write_bytes(b"not a workbook")
    broken = cli(["--store", store, "import-tracker", str(not_xlsx), "--mapping", str(MAPPING)])
    assert broken.exit_code == 2 and "cannot be read as an Excel workbook" in broken.stderr


# --- conversion details -----------------------------------------------------------------------


def _sample_row(number: int = 2) -> dict[str, Any]:
    grid = sample_grid()
    return dict(zip(grid[0], grid[number - 1], strict=True))


def test_excel_cells_and_dated_answers() -> None:
    mapping = load_mapping(MAPPING)
    cells: dict[str, Any] = _sample_row()
    cells["Decision date"] = datetime(2016, 4, 14, 15, 30)  # an Excel date-time cell
    cells["Incident date"] = date(2016, 3, 14)
    cells["Agencies responded"] = (
        "Police (01/04/2016)\nCCG - 04/04/2016; CSC: 31/03/2016; Education"
    )
    cells["Meeting date"] = datetime(2016, 4, 12)
    lines = convert_row(TrackerRow(2, cells), mapping).lines
    decision = next(line for line in lines if line["type"] == "DecisionMade")
    assert decision["occurred_at"] == "2016-04-14T15:30"
    answers = {
        line["agency"]: (line["occurred_at"], line.get("note"))
        for line in lines
        if line["type"] == "InformationReceived"
    }
    assert answers["Northshire Police"] == ("2016-04-01", None)
    assert answers["Northshire CCG"][0] == "2016-04-04"
    assert answers["Northshire Children's Social Care"][0] == "2016-03-31"
    # No date of its own: the meeting date, with a note saying so.
    assert answers["Northshire Education"][0] == "2016-04-12"
    assert "`Meeting date`" in str(answers["Northshire Education"][1])


def test_two_digit_years_and_serial_numbers() -> None:
    import tomllib

    mapping = load_mapping(MAPPING)
    cells = _sample_row()
    cells["Decision date"] = "14/04/16"  # %d/%m/%Y would read the year 16: %d/%m/%y does
    lines = convert_row(TrackerRow(2, cells), mapping).lines
    assert any(line["occurred_at"] == "2016-04-14" for line in lines)
    cells["Decision date"] = 42474  # an Excel serial number (14/04/2016) without a format
    with pytest.raises(RowProblem, match="excel_serial_dates"):
        convert_row(TrackerRow(2, cells), mapping)
    data = tomllib.loads(MAPPING.read_text())
    data["tracker"]["excel_serial_dates"] = True
    lines = convert_row(TrackerRow(2, cells), parse_mapping(data)).lines
    assert any(
        line["occurred_at"] == "2016-04-14" for line in lines if line["type"] == "DecisionMade"
    )


def test_criteria_columns_override_inference() -> None:
    import tomllib

    data = tomllib.loads(MAPPING.read_text())
    data["criteria"]["columns"] = {"agency_concern": "Agency concern"}
    data["criteria"]["reasons"] = {"agency_concern": "Why"}
    mapping = parse_mapping(data)
    cells = {**_sample_row(3), "Agency concern": "No", "Why": "Agencies shared well."}
    decision = next(
        line
        for line in convert_row(TrackerRow(3, cells), mapping).lines
        if line["type"] == "DecisionMade"
    )
    assert decision["criteria"]["agency_concern"] == {
        "finding": "not-met",
        "reason": "Agencies shared well.",
    }
    cells["Agency concern"] = "perhaps"
    with pytest.raises(RowProblem, match=r"\[criteria.values\]"):
        convert_row(TrackerRow(3, cells), mapping)


def test_row_hash_ignores_file_name_and_position() -> None:
    from ledger.importing.tracker import with_sources

    mapping = load_mapping(MAPPING)
    lines = convert_row(TrackerRow(2, _sample_row()), mapping).lines
    a = with_sources(lines, "a.csv", 2)
    b = with_sources(lines, "b.xlsx", 40)
    assert a[0]["sources"][0]["sha256"] == b[0]["sources"][0]["sha256"]
    assert a[0]["sources"][0]["ref"] == "a.csv row 2"


def test_read_tracker_header_row_and_blank_rows(tmp_path: Path) -> None:
    import tomllib

    grid = sample_grid()
    path = write_grid(tmp_path / "t.csv", [["Northshire tracker"], [], grid[0], [], *grid[1:3]])
    data = tomllib.loads(MAPPING.read_text())
    data["tracker"]["header_row"] = 3
    tracker = read_tracker(path, parse_mapping(data))
    assert [row.number for row in tracker.rows] == [5, 6]


# --- junk never crashes ------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", " ", "31/02/2016", "2016-13-01", "00/00/0000", "1/1/1", "??", "N/A"]),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
)
COLUMNS = sample_grid()[0]


@settings(max_examples=300, deadline=None)
@given(
    row=st.integers(min_value=2, max_value=13),
    junk=st.dictionaries(st.sampled_from(COLUMNS), JUNK, min_size=1, max_size=6),
)
def test_junk_cells_convert_or_fail_cleanly(row: int, junk: dict[str, Any]) -> None:
    mapping = load_mapping(MAPPING)
    cells = {**_sample_row(row), **junk}
    try:
        lines = convert_row(TrackerRow(row, cells), mapping).lines
    except RowProblem as problem:
        assert problem.line == row and problem.reason
        return
    assert lines[0]["type"] == "CaseReferred"
    for line in lines:
        try:
            parse_line(orjson.dumps(line))
        except InputError:
            pass  # caught by the import's check on the scratch store, as a bad row


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    row=st.integers(min_value=2, max_value=13),
    junk=st.dictionaries(
        st.sampled_from(COLUMNS),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
        min_size=1,
        max_size=5,
    ),
    write=st.booleans(),
)
def test_junk_through_the_cli_never_crashes(
    store_url: str,
    cli: Cli,
    tmp_path_factory: pytest.TempPathFactory,
    row: int,
    junk: dict[str, str],
    write: bool,
) -> None:
    grid = sample_grid()
    for column, value in junk.items():
        grid[row - 1][grid[0].index(column)] = value
    path = write_grid(tmp_path_factory.mktemp("junk") / "tracker.csv", grid)
    before = count(store_url)
    result = run_import(cli, store_url, path, *([] if write else ["--dry-run"]))
    assert result.exit_code in (0, 2), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if result.exit_code == 2 or not write:
        assert count(store_url) == before


# --- the guide ---------------------------------------------------------------------------------

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "importing.md"


def _blocks(language: str) -> list[str]:
    blocks, current, inside = [], [], False
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if inside:
                blocks.append("\n".join(current))
                current, inside = [], False
            elif line == f"```{language}":
                inside = True
            continue
        if inside:
            current.append(line)
    return blocks


def test_guide_example_runs(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command of the guide's first example works when pasted (store aside)."""
    import shlex

    monkeypatch.chdir(GUIDE.parents[1])
    store = str(tmp_path / "tracker-demo.db")
    commands = [c for c in _blocks("sh")[0].splitlines() if c.startswith("caseledger ")]
    assert len(commands) >= 4
    for command in commands:
        args = shlex.split(command)[1:]
        args[args.index("--store") + 1] = store
        result = cli(args)
        assert result.exit_code == 0, (command, result.stderr)
    assert count(store) == SAMPLE_ENTRIES


def test_guide_mapping_example_is_valid() -> None:
    import tomllib

    (example,) = [b for b in _blocks("toml") if "[fields]" in b]
    mapping = parse_mapping(tomllib.loads(example), "importing.md")
    assert mapping.fields["subject"].default == "Child ({case})"
    assert mapping.criteria_columns == {"agency_concern": "Agency concern?"}


def test_guide_documents_every_field() -> None:
    from ledger.importing.tracker import FIELDS

    text = GUIDE.read_text(encoding="utf-8")
    missing = [name for name in FIELDS if f"`{name}`" not in text]
    assert missing == []


XLSX_JUNK = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.dates(min_value=date(1900, 3, 1), max_value=date(2200, 12, 31)),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(2200, 12, 31)),
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    row=st.integers(min_value=2, max_value=13),
    junk=st.dictionaries(st.sampled_from(COLUMNS), XLSX_JUNK, min_size=1, max_size=5),
)
def test_junk_workbook_cells_never_crash(
    sqlite_url: str,
    cli: Cli,
    tmp_path_factory: pytest.TempPathFactory,
    row: int,
    junk: dict[str, Any],
) -> None:
    from openpyxl import load_workbook

    book = load_workbook(SAMPLE_XLSX)
    sheet = book.worksheets[0]
    for column, value in junk.items():
        sheet.cell(row=row, column=COLUMNS.index(column) + 1, value=value)
    path = tmp_path_factory.mktemp("junk") / "tracker.xlsx"
    book.save(path)
    result = run_import(cli, sqlite_url, path, "--dry-run", "--json")
    assert result.exit_code in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    if result.exit_code == 0:
        assert all(r["status"] == "new" for r in result.json()["rows"])


def test_damaged_workbook_exits_2(tmp_path: Path, cli: Cli) -> None:
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(SAMPLE_XLSX.read_bytes()[:3000])
    result = run_import(cli, str(tmp_path / "l.db"), damaged)
    assert result.exit_code == 2 and "cannot be read" in result.stderr
    assert "Traceback" not in result.stderr
