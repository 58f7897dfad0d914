"""Issue 12, build item 4: bundles whose proofs cannot be switched off.

Every attack the issue names, each run through BOTH verifiers, ``caseledger verify
BUNDLE`` (the real CLI, in-process) and the standalone ``verify.py`` (the shipped copy,
``python3 -I``), which must give the same JSON (every key but ``bundle``) and the same
exit code; bundles come from real stores, SQLite and PostgreSQL, where a store is
involved.  The forger controls the whole bundle but not the store's signing key: after
each change the bundle is made consistent again (``tests/vectors/forge.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from projections.export.bundle import export_bundle
from tests.conftest import FixedClock, invoke, open_ledger, scenario_lines
from tests.test_export import CASE, PYTHON, second_case, standalone_checker
from tests.vectors import forge

OTHER = "RR-2026-005"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = (
    KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
)


def standalone(bundle: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PYTHON, "-I", str(standalone_checker()), str(bundle), *args],
        capture_output=True,
        timeout=120,
        check=False,
    )


def verdicts(bundle: Path, *args: str) -> dict[str, Any]:
    """Both verifiers' verdicts, which must be the same; returns the CLI's."""
    ours = invoke(["verify", str(bundle), "--json", *args])
    theirs = standalone(bundle, "--json", *args)
    assert ours.exit_code == theirs.returncode, (ours, theirs.stderr)
    assert ours.exit_code in (0, 1), ours.stderr
    mine, other = ours.json(), json.loads(theirs.stdout)
    assert mine.keys() == other.keys()
    assert {k: v for k, v in mine.items() if k != "bundle"} == {
        k: v for k, v in other.items() if k != "bundle"
    }
    assert mine["ok"] == (ours.exit_code == 0)
    return dict(mine)


def refused(bundle: Path, *args: str) -> dict[str, Any]:
    result = verdicts(bundle, *args)
    assert result["ok"] is False and result["first_bad"] and result["failure"], result
    return result


@pytest.fixture
def store(store_url: str, clock: FixedClock) -> Any:
    """Two cases, interleaved: the scenario and a copy of it under another reference."""
    led = open_ledger(store_url, clock)
    lines, other = scenario_lines(), second_case(OTHER)
    led.record_lines(lines[:12], led.recorder_for())
    led.record_lines(other[:12], led.recorder_for())
    clock.advance(hours=1)
    led.record_lines(lines[12:], led.recorder_for())
    led.record_lines(other[12:], led.recorder_for())
    return led


def export(led: Any, out: Path, **filters: Any) -> Path:
    """A bundle with a checkpoint signed now (every entry covered)."""
    export_bundle(
        led, out, signing_key=KEY, recorder=led.recorder_for_action("checkpoint"), **filters
    )
    return out


SCOPES: dict[str, dict[str, Any]] = {
    "whole": {},
    "case": {"cases": [CASE]},
    "every-case-by-date": {"occurred_from": "2026-02-01"},
}


# --- the checkpoint cannot be switched off ----------------------------------------------------


@pytest.mark.parametrize("scope", ["whole", "case"])
def test_applies_false_does_not_switch_the_checkpoint_off(
    store: Any, tmp_path: Path, scope: str
) -> None:
    bundle = export(store, tmp_path / "b", **SCOPES[scope])
    assert verdicts(bundle, "--public-key", PUBLIC)["ok"]
    forge.rewrite_decision(bundle, CASE)
    forge.switch_checkpoint_off(bundle)
    seq = forge.decision_seq(bundle, CASE)
    result = refused(bundle, "--public-key", PUBLIC)
    assert result["first_bad"] == ("checkpoint.json" if scope == "whole" else f"{CASE}#{seq}")
    # Without the key the proofs are still checked: the forgery is not even consistent.
    assert refused(bundle)["first_bad"] == result["first_bad"]


@pytest.mark.parametrize("scope", list(SCOPES))
def test_a_rewritten_decision_fails_against_the_checkpoint(
    store: Any, tmp_path: Path, scope: str
) -> None:
    bundle = export(store, tmp_path / "b", **SCOPES[scope])
    forge.rewrite_decision(bundle, CASE)
    result = refused(bundle, "--public-key", PUBLIC)
    if scope == "whole":
        assert result["first_bad"] == "checkpoint.json"
        assert "do not hash to the checkpoint's events root" in result["failure"]
    else:
        assert result["first_bad"] == f"{CASE}#{forge.decision_seq(bundle, CASE)}"
        assert "is not in the signed log" in result["failure"]


@pytest.mark.parametrize("scope", list(SCOPES))
def test_a_stripped_checkpoint_fails_with_a_trusted_key(
    store: Any, tmp_path: Path, scope: str
) -> None:
    bundle = export(store, tmp_path / "b", **SCOPES[scope])
    forge.rewrite_decision(bundle, CASE)
    forge.strip_checkpoint(bundle)
    result = refused(bundle, "--public-key", PUBLIC)
    assert result["first_bad"] == "checkpoint.json"
    assert "carries no signed checkpoint" in result["failure"]
    # Without a key it is internally consistent, and says that that is all it is.
    alone = verdicts(bundle)
    assert alone["ok"] and alone["checkpoint"] is False
    assert alone["verdict"] == "internally consistent only"
    assert {"sender", "signed-log"} <= set(alone["not_checked"])


# --- deletions the checkpoint counts --------------------------------------------------------


@pytest.mark.parametrize("scope", ["whole", "every-case-by-date", "both-cases"])
def test_a_deleted_case_fails_against_the_checkpoint(
    store: Any, tmp_path: Path, scope: str
) -> None:
    filters = {"cases": [CASE, OTHER]} if scope == "both-cases" else SCOPES[scope]
    bundle = export(store, tmp_path / "b", **filters)
    forge.delete_entries(bundle, lambda e: e["case"] == OTHER, drop_cases=True)
    result = refused(bundle, "--public-key", PUBLIC)
    if scope == "both-cases":  # the manifest's selection still names it
        assert result["first_bad"] == OTHER
        assert "in the export's selection but not in the bundle" in result["failure"]
    elif scope == "whole":
        assert result["first_bad"] == "checkpoint.json"
        assert "fewer than the 44 the checkpoint counted" in result["failure"]
    else:
        assert result["first_bad"] == "checkpoint.json"
        assert "a case is missing" in result["failure"]


@pytest.mark.parametrize("scope", ["whole", "case"])
def test_deleted_trailing_entries_fail_against_the_checkpoint(
    store: Any, tmp_path: Path, scope: str
) -> None:
    bundle = export(store, tmp_path / "b", **SCOPES[scope])
    forge.delete_entries(bundle, lambda e: e["case"] == CASE and e["seq"] > 20)
    result = refused(bundle, "--public-key", PUBLIC)
    if scope == "whole":
        assert result["first_bad"] == "checkpoint.json"
    else:
        assert result["first_bad"] == CASE
        assert "entries 21 to 22" in result["failure"] and "signed log" in result["failure"]


def test_entries_after_the_checkpoint_are_proven_newer_and_said_unchecked(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """A checkpoint signed after 12 entries: the later 10 are shown to be newer than it
    (the case's head at the checkpoint is #12) and the verdict says they are unchecked;
    a forger cannot pass a covered entry off as one of them."""
    from ledger.checkpoints.checkpoint import make_checkpoint

    led = open_ledger(store_url, clock)
    lines = scenario_lines()
    led.record_lines(lines[:12], led.recorder_for())
    make_checkpoint(led, KEY, led.recorder_for_action("checkpoint"))
    led.record_lines(lines[12:], led.recorder_for())
    export_bundle(led, tmp_path / "b", cases=[CASE])
    bundle = tmp_path / "b"
    result = verdicts(bundle, "--public-key", PUBLIC)
    assert result["ok"] and result["covered"] == 12 and result["after_checkpoint"] == 10
    assert "entries-after-checkpoint" in result["not_checked"]
    # The forger rewrites entry 12 and drops its proof, as if it were newer.
    forge.rewrite_entry(bundle, CASE, 12, lambda e: e.update(text="rewritten"))
    proofs = forge.proofs_of(bundle)
    assert proofs is not None
    proofs[11] = b'{"index":null}\n'
    forge.write_entries(bundle, forge.entries_of(bundle), proofs)
    failed = refused(bundle, "--public-key", PUBLIC)
    assert failed["first_bad"] == f"{CASE}#12"
    assert "carries no inclusion proof" in failed["failure"]


# --- the root covers every file -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        ("report.html", b"Northshire", b"Southshire"),
        ("timeline.csv", b"DecisionMade", b"DecisionUndone"),
    ],
)
def test_a_change_to_a_file_for_people_fails_the_expected_root(
    store: Any, tmp_path: Path, name: str, old: bytes, new: bytes
) -> None:
    bundle = export(store, tmp_path / "b", cases=[CASE])
    root = verdicts(bundle)["root"]
    assert verdicts(bundle, "--expect-root", root)["ok"]
    forge.edit_file(bundle, name, old, new)
    result = refused(bundle, "--expect-root", root, "--public-key", PUBLIC)
    assert result["first_bad"] == "manifest.json"
    assert f"you expected {root}" in result["failure"]


# --- what a bundle never holds ----------------------------------------------------------------


@pytest.fixture
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """Fresh copies of one bundle (and its zip) of the scenario in an SQLite store."""
    root = tmp_path_factory.mktemp("sealed")
    from datetime import UTC, datetime

    led = open_ledger(str(root / "l.db"), FixedClock(datetime(2026, 9, 1, 9, tzinfo=UTC)))
    led.record_lines(scenario_lines(), led.recorder_for())
    export(led, root / "bundle")
    counter = iter(range(1000))

    def make() -> Path:
        target = root / f"copy{next(counter)}"
        shutil.copytree(root / "bundle", target, symlinks=True)
        return target

    return make


def _zip(folder: Path, out: Path, extra: list[tuple[str, bytes]] | None = None) -> Path:
    """A zip of a folder bundle under one top folder, with extra members first."""
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in extra or []:
            zf.writestr(name, data)
        for path in sorted(folder.iterdir()):
            zf.write(path, f"bundle/{path.name}")
    return out


def test_a_symbolic_link_is_refused(sealed: Callable[[], Path], tmp_path: Path) -> None:
    """report.html replaced by a link to an identical copy elsewhere: same bytes, but a
    link can be re-pointed after checking, so it is refused, not followed."""
    bundle = sealed()
    outside = tmp_path / "elsewhere.html"
    shutil.copy(bundle / "report.html", outside)
    (bundle / "report.html").unlink()
    os.symlink(outside, bundle / "report.html")
    result = refused(bundle)
    assert result["first_bad"] == "report.html" and "symbolic link" in result["failure"]


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_duplicate_zip_member_is_refused(sealed: Callable[[], Path], tmp_path: Path) -> None:
    """Two members named bundle/report.html: an unzip tool may show the first (forged),
    a checker read the last (genuine).  Refused."""
    bundle = sealed()
    target = _zip(bundle, tmp_path / "b.zip", [("bundle/report.html", b"<p>forged</p>")])
    result = refused(target)
    assert result["first_bad"] == "bundle/report.html" and "more than once" in result["failure"]


def test_dot_dot_and_absolute_paths_are_refused(sealed: Callable[[], Path], tmp_path: Path) -> None:
    # A manifest that lists a file outside the bundle (its hash correct).
    for path in ("../outside.txt", str(tmp_path / "outside.txt")):
        bundle = sealed()
        (tmp_path / "outside.txt").write_text("outside")
        (bundle.parent / "outside.txt").write_text("outside")
        manifest = forge.manifest_of(bundle)
        manifest["files"].append({"path": path, "sha256": "0" * 64, "bytes": 7})
        forge.reseal(bundle, manifest)
        result = refused(bundle)
        assert result["first_bad"] == "manifest.json"
        assert repr(path) in result["failure"] and "refused" in result["failure"]
    # A zip member that climbs out.
    target = _zip(sealed(), tmp_path / "b.zip", [("bundle/../evil.txt", b"x")])
    result = refused(target)
    assert result["first_bad"] == "bundle/../evil.txt" and "'..'" in result["failure"]


def test_an_unlisted_file_is_refused(sealed: Callable[[], Path], tmp_path: Path) -> None:
    bundle = sealed()
    (bundle / "notes.txt").write_text("a different story")
    assert refused(bundle)["first_bad"] == "notes.txt"
    bundle = sealed()
    (bundle / "sub").mkdir()
    (bundle / "sub" / "notes.txt").write_text("hidden")
    result = refused(bundle)
    assert result["first_bad"] == "sub" and "folder" in result["failure"]
    target = _zip(sealed(), tmp_path / "b.zip", [("elsewhere/notes.txt", b"x")])
    assert refused(target)["first_bad"] == "elsewhere/notes.txt"


# --- usage: no bundle at all, a closed pipe ----------------------------------------------------


def test_a_path_that_is_no_bundle_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "plain.txt").write_text("hello")
    for path in (tmp_path / "missing", tmp_path / "empty", tmp_path / "plain.txt"):
        ours = invoke(["verify", str(path), "--json"])
        theirs = standalone(path, "--json")
        assert ours.exit_code == theirs.returncode == 2, (ours, theirs.stderr)
        assert "Traceback" not in ours.stderr + theirs.stderr.decode()
        assert ours.stdout == "" and theirs.stdout == b""
    bad_key = invoke(["verify", str(tmp_path / "empty"), "--public-key", "xyz"])
    assert bad_key.exit_code == 2 and standalone(tmp_path, "--public-key", "xyz").returncode == 2
    since = invoke(["verify", str(tmp_path / "empty"), "--since", str(tmp_path / "plain.txt")])
    assert since.exit_code == 2 and "--since" in since.stderr


def test_verify_py_into_a_closed_pipe_raises_nothing(sealed: Callable[[], Path]) -> None:
    """``python3 verify.py BUNDLE | head``: the reader is gone before it writes."""
    bundle = sealed()
    for args in ([], ["--json"]):
        proc = subprocess.Popen(
            [PYTHON, "-I", str(standalone_checker()), str(bundle), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0
        assert b"BrokenPipeError" not in err and b"Traceback" not in err, err


# --- the CLI, end to end ----------------------------------------------------------------------


def test_export_signing_key_then_verify_with_the_published_key(
    scenario_store: str, tmp_path: Path
) -> None:
    """caseledger keys signing; export --signing-key; verify --public-key: every entry is
    proven in the fresh checkpoint, and the printed root is the one verify checks."""
    key_file = tmp_path / "sign.pem"
    made = invoke(["keys", "signing", "--out", str(key_file)])
    assert made.exit_code == 0, made.stderr
    public = made.stdout.split("public key:")[1].split()[0]
    done = invoke(
        ["--store", scenario_store, "export", CASE, "--out", str(tmp_path / "b"),
         "--signing-key", str(key_file), "--json"]
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    summary = done.json()
    assert summary["checkpoint"] is True and summary["covered"] == summary["events"] == 22
    result = verdicts(tmp_path / "b", "--public-key", public, "--expect-root", summary["root"])
    assert result["ok"] and result["covered"] == 22 and result["after_checkpoint"] == 0
    assert result["verdict"] == (
        "proven in the log signed by the key you trust and matches what you were given"
    )
    assert {"checkpoint-signature-trusted", "checkpoint-inclusion", "expected-root"} <= set(
        result["checked"]
    )
    # A later export without the key carries the checkpoint the register now holds.
    plain = invoke(["--store", scenario_store, "export", "--out", str(tmp_path / "later")])
    assert plain.exit_code == 0, plain.stderr
    assert "signed checkpoint: 22 of the 22 entries" in plain.stdout
    assert verdicts(tmp_path / "later", "--public-key", public)["ok"]


def test_a_checkpoint_without_a_cases_tree_still_proves_each_entry(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """A version 2 checkpoint with only the brief's trees (no ``cases``): a subset still
    proves each entry in the signed log, and says it could not check the case heads."""
    from ledger.checkpoints.checkpoint import make_checkpoint
    from ledger.integrity.canonical import canonical_json

    led = open_ledger(store_url, clock)
    led.record_lines(scenario_lines(), led.recorder_for())
    full = make_checkpoint(led, KEY, led.recorder_for_action("checkpoint"))
    brief = {k: v for k, v in full.items() if k not in ("cases", "signature")}
    brief["signature"] = KEY.sign(canonical_json(brief)).hex()
    led.record_checkpoint(brief, led.recorder_for_action("checkpoint"))
    export_bundle(led, tmp_path / "b", cases=[CASE])
    bundle = tmp_path / "b"
    result = verdicts(bundle, "--public-key", PUBLIC)
    assert result["ok"] and result["covered"] == 22
    assert "checkpoint-inclusion" in result["checked"]
    assert "checkpoint-case-heads" not in result["checked"]
    assert "case-heads-at-checkpoint" in result["not_checked"]
    forge.rewrite_decision(bundle, CASE)
    assert refused(bundle, "--public-key", PUBLIC)["first_bad"] == f"{CASE}#19"
