"""The mistakes fuzzing found (issue 13 item 15), each a plain test on both stores.

Every one exits 2 (4 for a store that cannot be opened) with one clear line on standard
error naming the field, no traceback, and nothing written: extreme or impossible dates
and offsets in ``occurred_at`` of a record line and in every date option of every
command; ``--criteria`` from a folder, a missing file or ``/dev/null``; keys into a
missing folder; checkpoint files whose whole-number fields are text, fractions, huge,
negative or booleans; policy files without an admin role, not TOML, or of the wrong
shape.  The property test in ``tests/test_cli_fuzz.py`` keeps every other option so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import CliResult, open_ledger, scenario_lines

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

Cli = Callable[..., CliResult]
CASE = "RR-2026-004"

#: Dates and times no one can mean, as a user or a program might still type them.
BAD_MOMENTS = [
    "0001-01-01",
    "9999-12-31",
    "9999-12-31T23:59:59-23:59",
    "2026-03-01T12:00+24:00",  # beyond any real offset
    "2026-03-01T12:00-25:30",
    "2026-03-01T12:00+14:01",
    "2026-03-01T23:59:60",  # a leap second: Python has none
    "2026-03-01T23:59:60Z",
    "10000-01-01",
    "-0001-01-01",
    "2026-02-30",
    "2026-03-01" + "0" * 5000,  # very long
    "2026-03-01\x00",  # a NUL byte
    "٢٠٢٦-٠٣-٠١",  # Arabic-Indic digits
    "２０２６-０３-０１",  # fullwidth digits
    "2026-03-01T12:00:00.1234567",  # seven fraction digits
]

#: Every date option of every command that reads the record, as (command, option).
QUERY_OPTIONS: list[tuple[list[str], str]] = [
    (["status"], "--as-of"),
    (["status"], "--on"),
    (["status", CASE], "--on"),
    (["timeline", CASE], "--as-of"),
    (["timeline", CASE], "--on"),
    (["why", CASE], "--as-of"),
    (["why", CASE], "--on"),
    (["clocks"], "--on"),
    (["clocks", CASE], "--as-of"),
    (["quality", CASE], "--on"),
    (["quality", CASE], "--as-of"),
    (["delays", "--from", "CaseReferred", "--to", "DecisionMade"], "--on"),
    (["delays", "--from", "CaseReferred", "--to", "DecisionMade"], "--as-of"),
    (["due"], "--on"),
    (["due"], "--as-of"),
    (["export", "--out", "{out}"], "--from"),
    (["export", "--out", "{out}"], "--to"),
    (["export", "--out", "{out}"], "--as-of"),
]

#: Every date option of the one-entry commands, with the options that make the rest valid.
ENTRY_OPTIONS: list[tuple[list[str], str]] = [
    (["add-context", CASE, "--topic", "other", "--summary", "Noted."], "--occurred-at"),
    (
        ["request-info", CASE, "--agency", "Northshire ICB", "--asked-for", "records"],
        "--due",
    ),
    (
        ["delay-decision", CASE, "--reason", "Police disclosure.", "--approved-by", "Chair"],
        "--expected-by",
    ),
    (["correct", CASE, "--corrects", f"{CASE}#7", "--reason", "Wrong."], "--changes"),
    (
        [
            "refer",
            "RR-2026-099",
            "--regime",
            "wt2023",
            "--subject",
            "Child Q (RR-2026-099)",
            "--aware-date",
            "2026-02-09",
            "--harm",
            "serious-harm",
            "--abuse-or-neglect",
            "suspected",
            "--home-area",
            "Northshire",
            "--referrer",
            "Northshire Police",
            "--route",
            "statutory",
            "--summary",
            "Infant admitted.",
        ],
        "--incident-date",
    ),
]


def written(url: str) -> tuple[int, int]:
    """How many events and register entries the store holds."""
    led = open_ledger(url)
    try:
        return int(led.count_events()), len(led.register_entries())
    finally:
        led.close()


def refused(result: CliResult, *needles: str) -> None:
    """Exit 2, one line on standard error holding every needle, and no traceback."""
    shown = (result.exit_code, result.stdout, result.stderr)
    assert result.exit_code == 2, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert len(result.stderr.strip().splitlines()) == 1, shown
    for needle in needles:
        assert needle in result.stderr, shown


#: The values tried on PostgreSQL too: the dates are parsed by the same code whatever the
#: store, so what PostgreSQL adds is that it too writes nothing and answers with the field,
#: which one value of each kind (out of range, a bad offset, a leap second, very long, a
#: NUL, other digits) shows.
POSTGRES_MOMENTS = [
    "9999-12-31",
    "2026-03-01T12:00+24:00",
    "2026-03-01T23:59:60Z",
    "2026-03-01" + "0" * 5000,
    "2026-03-01\x00",
    "２０２６-０３-０１",
]


def test_an_impossible_time_in_every_date_option_exits_2(
    scenario_store: str, cli: Cli, tmp_path: Path
) -> None:
    """Each query's time options, each one-entry command's date options and a record
    line's ``occurred_at`` refuse each value with the field named, writing nothing (every
    value on SQLite, one of each kind on PostgreSQL)."""
    before = written(scenario_store)
    out = tmp_path / "bundle"
    values = POSTGRES_MOMENTS if "://" in scenario_store else BAD_MOMENTS
    for value in values:
        for command, option in QUERY_OPTIONS:
            args = [a.replace("{out}", str(out)) for a in command]
            refused(cli(["--store", scenario_store, *args, option, value]), f"`{option}`")
            assert not out.exists()
        for command, option in ENTRY_OPTIONS:
            given = f"occurred_at={value}" if option == "--changes" else value
            field = "--changes occurred_at" if option == "--changes" else option
            refused(cli(["--store", scenario_store, *command, option, given]), f"`{field}`")
        line = {**orjson.loads(scenario_lines()[6]), "occurred_at": value}
        path = tmp_path / "line.jsonl"
        path.write_bytes(orjson.dumps(line) + b"\n")
        refused(cli(["--store", scenario_store, "record", str(path)]), "line 1", "`occurred_at`")
    assert set(POSTGRES_MOMENTS) <= set(BAD_MOMENTS)
    assert written(scenario_store) == before


@pytest.mark.parametrize("value", ["2026-03-01T12:00+14:00", "2026-03-01T12:00-12:00"])
def test_the_extreme_real_offsets_are_accepted(scenario_store: str, cli: Cli, value: str) -> None:
    """Kiribati's +14:00 and Baker Island's -12:00 are real offsets: not refused (the
    scenario was recorded on 1 September 2026, so only ``--on`` is tried this early)."""
    for command in (["status", CASE, "--on", value], ["why", CASE, "--on", value]):
        result = cli(["--store", scenario_store, *command, "--json"])
        assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("@/", "is a folder"),
        ("@{missing}", "does not exist"),
        ("@/dev/null", "not valid JSON"),
        ("@{junk}", "not valid JSON"),
    ],
)
def test_criteria_from_a_file_that_is_not_one_exits_2(
    scenario_store: str, cli: Cli, tmp_path: Path, spec: str, reason: str
) -> None:
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"\xff\xfe{not json")
    spec = spec.format(missing=tmp_path / "missing.json", junk=junk)
    before = written(scenario_store)
    result = cli(
        [
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
            "--criteria",
            spec,
        ]
    )
    refused(result, "`--criteria`", reason)
    assert written(scenario_store) == before


@pytest.mark.parametrize("kind", ["new", "signing"])
def test_a_key_into_a_missing_folder_exits_2_and_makes_no_folder(
    cli: Cli, tmp_path: Path, kind: str
) -> None:
    target = tmp_path / "missing" / "folder" / "key"
    refused(cli(["keys", kind, "--out", str(target)]), "`--out`", "cannot be written")
    assert not (tmp_path / "missing").exists()


BAD_WHOLE_NUMBERS: list[Any] = ["75", 7.5, 10**26, -1, True, None]


def _checkpoint(url: str, cli: Cli, tmp_path: Path) -> dict[str, Any]:
    key = tmp_path / "sign.pem"
    assert cli(["keys", "signing", "--out", str(key)]).exit_code == 0
    result = cli(["--store", url, "checkpoint", "--signing-key", str(key), "--json"])
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = result.json()
    document.pop("witnesses", None)
    return document


@pytest.mark.parametrize("field", ["version", "events.size", "last_position", "count"])
def test_a_checkpoint_file_with_a_bad_whole_number_exits_2(
    scenario_store: str, cli: Cli, tmp_path: Path, field: str
) -> None:
    """``verify --since FILE`` and ``checkpoint --witness FILE`` read whole-number fields
    that are text, fractions, huge, negative, booleans or null: exit 2 with the field."""
    good = _checkpoint(scenario_store, cli, tmp_path)
    key = tmp_path / "sign.pem"
    before = written(scenario_store)
    for bad in BAD_WHOLE_NUMBERS:
        document = orjson.loads(orjson.dumps(good))
        *parents, last = field.split(".")
        node = document
        for name in parents:
            node = node[name]
        node[last] = bad
        path = tmp_path / "cp.json"
        import json  # orjson refuses integers beyond 64 bits; a user's file may hold them

        path.write_text(json.dumps(document))
        refused(cli(["--store", scenario_store, "verify", "--since", str(path)]), f"`{field}`")
        witness = ["checkpoint", "--signing-key", str(key), "--witness", str(path)]
        refused(cli(["--store", scenario_store, *witness]), f"`{field}`")
        assert written(scenario_store) == before


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'[roles.chair]\nrecord = ["DecisionMade"]\n', "[roles.admin]"),
        (b"not = toml = at all\n", "is not TOML"),
        (b"roles = 1\n", "[roles.NAME]"),
        (b"[roles.admin]\nactions = 3\n", "roles.admin.actions"),
        (b"\xff\xfe[roles]", "cannot read the policy file"),
        (b"", "[roles.NAME]"),
    ],
    ids=["no-admin", "not-toml", "roles-not-a-table", "actions-not-a-list", "binary", "empty"],
)
def test_a_policy_file_that_cannot_be_used_exits_2(
    scenario_store: str, cli: Cli, tmp_path: Path, text: bytes, reason: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(text)
    before = written(scenario_store)
    result = cli(["--store", scenario_store, "policy", "set", str(path), "--reason", "New."])
    refused(result, "`FILE`", reason, "policy.toml")
    assert written(scenario_store) == before


@pytest.mark.parametrize("where", ["folder", "missing"])
def test_a_policy_path_that_is_no_file_exits_2(
    scenario_store: str, cli: Cli, tmp_path: Path, where: str
) -> None:
    path = tmp_path if where == "folder" else tmp_path / "missing.toml"
    result = cli(["--store", scenario_store, "policy", "set", str(path), "--reason", "New."])
    refused(result, "`FILE`", "cannot read the policy file")


@pytest.mark.parametrize("kind", ["new", "signing"])
def test_a_key_file_name_the_system_cannot_hold_exits_2(
    cli: Cli, tmp_path: Path, kind: str
) -> None:
    """Found by the fuzzer: ``Path.exists`` raised "File name too long" (a traceback)."""
    long_name = str(tmp_path / ("a" * 300))
    refused(cli(["keys", kind, "--out", long_name]), "`--out`", "cannot be written")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["folder", "missing-folder", "too-long"])
def test_checkpoint_out_an_unwritable_place_exits_2_and_signs_nothing(
    scenario_store: str, cli: Cli, tmp_path: Path, where: str
) -> None:
    """Found by the fuzzer: the checkpoint was recorded, then writing ``--out`` raised."""
    key = tmp_path / "sign.pem"
    assert cli(["keys", "signing", "--out", str(key)]).exit_code == 0
    out = {
        "folder": tmp_path,
        "missing-folder": tmp_path / "missing" / "cp.json",
        "too-long": tmp_path / ("c" * 300),
    }[where]
    before = written(scenario_store)
    result = cli(
        ["--store", scenario_store, "checkpoint", "--signing-key", str(key), "--out", str(out)]
    )
    refused(result, "`--out`", "cannot be written")
    assert written(scenario_store) == before
    assert not (tmp_path / "missing").exists()


def test_checkpoint_out_a_new_file_holds_the_checkpoint(
    scenario_store: str, cli: Cli, tmp_path: Path
) -> None:
    """The file opened before signing is written once the checkpoint is recorded; an
    older file in its place is replaced whole."""
    key = tmp_path / "sign.pem"
    assert cli(["keys", "signing", "--out", str(key)]).exit_code == 0
    out = tmp_path / "cp.json"
    out.write_bytes(b"x" * 10_000)
    args = ["--store", scenario_store, "checkpoint", "--signing-key", str(key), "--out", str(out)]
    assert cli([*args, "--json"]).exit_code == 0
    lodged = orjson.loads(out.read_bytes())
    assert lodged["events"]["size"] == len(scenario_lines())


def test_quality_rules_of_binary_junk_exits_2(
    scenario_store: str, cli: Cli, tmp_path: Path
) -> None:
    """Found by the fuzzer: a ``--rules`` file that is not UTF-8 raised UnicodeDecodeError."""
    rules = tmp_path / "rules.toml"
    rules.write_bytes(b"\xf8\xff junk")
    result = cli(["--store", scenario_store, "quality", CASE, "--rules", str(rules)])
    refused(result, "cannot be read")


def test_checkpoint_to_a_witness_store_that_is_no_database_exits_4(
    scenario_store: str, cli: Cli, tmp_path: Path
) -> None:
    """Found by the fuzzer: ``--witness-store`` naming a file of junk raised
    ``sqlite3.DatabaseError``; it exits 4 (a store that cannot be opened), signing nothing."""
    key = tmp_path / "sign.pem"
    assert cli(["keys", "signing", "--out", str(key)]).exit_code == 0
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 16)
    before = written(scenario_store)
    args = ["checkpoint", "--signing-key", str(key), "--witness-store", str(junk)]
    result = cli(["--store", scenario_store, *args])
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "witness store" in result.stderr
    assert written(scenario_store) == before
    assert junk.read_bytes() == bytes(range(256)) * 16


def test_checkpoint_out_dev_null_is_written(scenario_store: str, cli: Cli, tmp_path: Path) -> None:
    """Found by the fuzzer: ``--out /dev/null`` cannot be truncated (EINVAL)."""
    key = tmp_path / "sign.pem"
    assert cli(["keys", "signing", "--out", str(key)]).exit_code == 0
    args = ["checkpoint", "--signing-key", str(key), "--out", "/dev/null"]
    result = cli(["--store", scenario_store, *args])
    assert result.exit_code == 0, result.stderr


def test_record_from_a_file_name_too_long_exits_2(scenario_store: str, cli: Cli) -> None:
    """Found by the fuzzer: ``Path.is_file`` raised "File name too long"."""
    result = cli(["--store", scenario_store, "record", "r" * 20001])
    refused(result, "`FILE`", "cannot be read")


@pytest.mark.parametrize("out", ["/", ".", ".."])
def test_an_export_to_a_place_with_no_name_of_its_own_exits_2(
    scenario_store: str, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str
) -> None:
    """Found by the fuzzer: ``export --out / --zip`` raised ValueError ("has an empty
    name"); ``--out . --zip`` wrote a zip beside the current folder. Both exit 2."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    refused(cli(["--store", scenario_store, "export", "--out", out, "--zip"]), "`--out`")
    assert list(here.iterdir()) == [] and not list(tmp_path.glob("*.zip"))
