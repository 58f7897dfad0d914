"""The lower layers speak the domain, the CLI speaks the command line (issue 14 item 4).

``ledger`` and ``projections`` raise errors naming a field by its domain name (the
parameter of the Python API that carried it, or an entry's field) with a reason in domain
words; the CLI alone turns them into exit codes, names its options for the fields, and
words the refusals whose help is a command or an option."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.common import CLI_REASONS, exit_code, in_cli_words
from ledger import errors
from ledger.checkpoints.checkpoint import load_signing_key
from ledger.errors import (
    ConflictError,
    InputError,
    InputErrors,
    LedgerError,
    StoreUnavailable,
    UsageError,
)
from ledger.store.locations import parse_store
from projections.export.bundle import export_bundle
from projections.fold.when import parse_as_of, parse_on
from tests.conftest import CliResult, open_ledger, scenario_lines

ROOT = Path(__file__).resolve().parent.parent
STANDALONE_VERIFIER = ROOT / "projections" / "data" / "verify.py"
NOW = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def _refused(call: Any, *args: Any, **kwargs: Any) -> InputError:
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- below the CLI: domain fields and words ------------------------------------------------


def test_enrolling_with_an_unknown_role_names_the_role_field(store_url: str) -> None:
    led = open_ledger(store_url)
    led.record_lines(scenario_lines()[:1], led.recorder_for())
    refused = _refused(led.enrol, "jsmith", ["nonsense"], led.recorder_for("admin"))
    assert refused.field == "role"
    assert _refused(led.recorder_for, "nonsense").field == "role"
    agency = _refused(led.enrol, "police", ["agency"], led.recorder_for("admin"))
    assert agency.field == "agency" and "--" not in agency.reason


def test_times_and_stores_name_their_parameters() -> None:
    assert _refused(parse_as_of, "2026-13-01", NOW).field == "as_of"
    assert _refused(parse_on, "yesterday", NOW).field == "on"
    assert _refused(parse_store, "x://y").field == "store"
    missing = _refused(load_signing_key, None)
    assert missing.field == "signing_key" and "--" not in missing.reason


def test_an_export_names_its_parameters(sqlite_url: str, tmp_path: Path) -> None:
    led = open_ledger(sqlite_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    bad_time = _refused(export_bundle, led, tmp_path / "b", as_of="nonsense")
    assert bad_time.field == "as_of"
    reversed_period = _refused(
        export_bundle, led, tmp_path / "b", occurred_from="2026-05-01", occurred_to="2026-01-01"
    )
    assert reversed_period.field == "occurred_from" and "--" not in reversed_period.reason
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "letter.txt").write_text("keep me")
    taken = _refused(export_bundle, led, tmp_path / "taken")
    assert taken.field == "out_path" and "--replace" not in taken.reason


def test_no_error_class_below_the_cli_carries_an_exit_code() -> None:
    for cls in (LedgerError, InputError, InputErrors, UsageError, ConflictError, StoreUnavailable):
        assert not hasattr(cls, "exit_code"), cls


# --- the CLI: option names, its own words, exit codes --------------------------------------


def test_the_cli_still_names_its_options(store_url: str, cli: Any) -> None:
    assert cli(["--store", store_url, "record", "-"], stdin=scenario_lines()[0]).exit_code == 0
    refused: CliResult = cli(["--store", store_url, "users", "add", "x", "--role", "nonsense"])
    assert refused.exit_code == 2 and "field `--role`: roles must be some of" in refused.stderr
    agency = cli(["--store", store_url, "users", "add", "x", "--role", "agency"])
    assert "field `--agency`: a user with the agency role needs --agency NAME" in agency.stderr
    as_of = cli(["--store", store_url, "status", "--as-of", "2026-13-01"])
    assert as_of.exit_code == 2 and "field `--as-of`" in as_of.stderr
    as_json = cli(["--store", store_url, "record", "-", "--role", "nonsense", "--json"])
    assert as_json.exit_code == 2
    assert [p["field"] for p in orjson.loads(as_json.stdout)["problems"]] == ["--role"]
    wrong_store = cli(["--store", "x://y", "status"])
    assert wrong_store.exit_code == 2 and "field `--store`" in wrong_store.stderr
    delays = cli(["--store", store_url, "delays", "--from", "Nope", "--to", "DecisionMade"])
    assert delays.exit_code == 2 and "field `--from`: 'Nope' is not an event type" in delays.stderr


def test_recording_under_a_role_not_enrolled(store_url: str, cli: Any) -> None:
    """The ledger says which roles the recorder has; the CLI adds the option to choose."""
    led = open_ledger(store_url)
    led.record_lines(scenario_lines()[:1], led.recorder_for())
    refused = _refused(led.record_lines, scenario_lines()[1:2], led.recorder_for("chair"))
    assert refused.field == "role" and refused.reason.endswith("choose one of those roles")
    told = cli(["--store", store_url, "record", "-", "--role", "chair"], stdin=scenario_lines()[1])
    assert told.exit_code == 2, told.stderr
    assert "field `--role`: " in told.stderr and "choose one of those with --role" in told.stderr


def test_a_field_of_a_document_is_not_taken_for_an_option(
    sqlite_url: str, cli: Any, tmp_path: Path
) -> None:
    """A checkpoint file's ``store`` and ``public_key`` are its own fields, not the
    ``--store`` and ``--public-key`` of ``verify``."""
    assert cli(["--store", sqlite_url, "record", "-"], stdin=scenario_lines()[0]).exit_code == 0
    lodged = {"version": 1, "count": 0, "root": "0" * 64, "signature": "0" * 128}
    for name, value in (("public_key", "xyz"), ("store", 5)):
        document = {**lodged, "public_key": "0" * 64, name: value}
        path = tmp_path / "cp.json"
        path.write_bytes(orjson.dumps(document))
        result = cli(["--store", sqlite_url, "verify", "--since", str(path)])
        assert result.exit_code == 2 and f"field `{name}`: " in result.stderr, result.stderr


def test_the_cli_words_a_refusal_with_its_commands() -> None:
    missing = _refused(load_signing_key, None)
    told = in_cli_words(missing)
    assert isinstance(told, InputError) and told.reason == CLI_REASONS["no-signing-key"]
    assert "give --signing-key FILE" in str(told) and "caseledger keys signing" in str(told)
    assert exit_code(missing) == 2


def test_each_error_class_has_the_exit_code_of_cli_md() -> None:
    assert exit_code(InputError("x")) == 2
    assert exit_code(UsageError("x")) == 2
    assert exit_code(InputErrors([InputError("x"), InputError("y")])) == 2
    assert exit_code(ConflictError("x")) == 3
    assert exit_code(StoreUnavailable("x")) == 4
    assert exit_code(LedgerError("x")) == 1


def test_every_code_the_ledger_gives_has_the_clis_words() -> None:
    """A code below the CLI with no wording in the CLI would fall back, silently, to the
    ledger's words: every ``code="..."`` literal has its entry, and every entry a use."""
    given: set[str] = set()
    for path in _lower_layer_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "code":
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    given.add(node.value.value)
    assert given == set(CLI_REASONS)


# --- so that option names cannot creep back --------------------------------------------------


def _lower_layer_sources() -> list[Path]:
    return [
        path
        for package in ("ledger", "projections")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != STANDALONE_VERIFIER  # its own program, with its own options
    ]


def test_no_string_below_the_cli_starts_with_an_option_name() -> None:
    found = []
    for path in _lower_layer_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if text.startswith("--") and text[2:3].isalpha():
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:40]!r}")
    assert not found, "option names below the CLI:\n" + "\n".join(found)


def test_the_errors_module_names_no_exit_code() -> None:
    assert "exit_code" not in Path(errors.__file__).read_text(encoding="utf-8")
