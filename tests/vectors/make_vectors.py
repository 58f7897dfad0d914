"""Regenerate the known-answer vectors in ``tests/vectors/bundles/`` and ``expected.json``.

    .venv/bin/python -m tests.vectors.make_vectors

Deterministic: a fixed clock, a fixed recorder name, numbered command ids, the scenario
with its personal data left out (personal-data salts are random), an SQLite store at a
relative path (the checkpoint names it), and the TEST-ONLY signing key in ``keys/``
(never use it for a real store: its private half is published here).  With the same
code, regenerating gives the same bytes.  ``verify.py`` is left out of the vector
bundles (a bundle need not carry it) so that they do not change whenever the checker
does.

Good bundles list their bundle root; tampered ones their expected FIRST failure, written
below by hand and checked against both verifiers before anything is written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization

HERE = Path(__file__).resolve().parent
BUNDLES = HERE / "bundles"
KEYS = HERE / "keys"
EXPECTED = HERE / "expected.json"
CHECKER = HERE.parents[1] / "projections" / "data" / "verify.py"
CASE = "RR-2026-004"
OTHER = "RR-2026-005"
#: A second key, for "signed by another key" (also test-only).
OTHER_KEY = "11" * 32


def test_key() -> Any:
    """The test-only signing key (made from a fixed seed, kept in keys/)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = KEYS / "test-signing-key.pem"
    if not pem.is_file():
        KEYS.mkdir(exist_ok=True)
        key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    public = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    (KEYS / "test-public-key.hex").write_text(public.hex() + "\n")
    return key


def _lines(case: str) -> list[bytes]:
    from tests.conftest import scenario_lines

    out = []
    for line in scenario_lines():
        data = orjson.loads(line)
        data["case"] = case
        data.pop("personal", None)
        if "relied_on" in data:
            data["relied_on"] = [r.replace(CASE, case) for r in data["relied_on"]]
        out.append(orjson.dumps(data))
    return out


def _without_checker(bundle: Path) -> None:
    from tests.vectors import forge

    (bundle / "verify.py").unlink()
    manifest = forge.manifest_of(bundle)
    manifest["files"] = [f for f in manifest["files"] if f["path"] != "verify.py"]
    forge.reseal(bundle, manifest)


def _zip(folder: Path, out: Path, extra: list[tuple[str, bytes]] | None = None) -> None:
    """A stored (uncompressed, so byte-stable) zip under one top folder ``bundle/``."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        members = [
            *(extra or []),
            *((f"bundle/{p.name}", p.read_bytes()) for p in sorted(folder.iterdir())),
        ]
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def make_good(work: Path) -> dict[str, Path]:
    """The good bundles, exported from one store."""
    import ledger.application.recording
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store
    from projections.export.bundle import export_bundle

    # Each command's command_id is a random UUID: number them instead (test code only).
    numbers = iter(range(1, 1 << 30))
    ledger.application.recording.uuid = SimpleNamespace(  # type: ignore[assignment]
        uuid4=lambda: uuid.UUID(int=next(numbers)), UUID=uuid.UUID
    )
    key = test_key()
    moment = [datetime(2026, 9, 1, 9, 0, tzinfo=UTC)]
    led = CaseLedger(parse_store("vectors.db"), clock=lambda: moment[0])
    case, other = _lines(CASE), _lines(OTHER)
    led.record_lines(case[:12], led.recorder_for())
    led.record_lines(other[:10], led.recorder_for())
    out: dict[str, Path] = {}

    def export(name: str, sign: bool = False, **filters: Any) -> None:
        signing = {"signing_key": key, "recorder": led.recorder_for_action("checkpoint")}
        export_bundle(led, work / name, full_report=False, **(signing if sign else {}), **filters)
        out[name] = work / name

    export("good-unsigned")  # the store has no checkpoint yet
    moment[0] = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
    from ledger.checkpoints.checkpoint import make_checkpoint

    make_checkpoint(led, key, led.recorder_for_action("checkpoint"))  # after 22 entries
    moment[0] = datetime(2026, 9, 1, 11, 0, tzinfo=UTC)
    led.record_lines(case[12:], led.recorder_for())
    led.record_lines(other[10:], led.recorder_for())
    export("good-whole")  # 22 entries covered, 22 after the checkpoint
    export("good-case", cases=[CASE])  # 12 covered, 10 after
    moment[0] = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    export("good-whole-signed", sign=True)  # a fresh checkpoint: all 44 covered
    export("good-case-signed", cases=[CASE])
    export("good-date", occurred_from="2026-03-01")
    export("good-empty", occurred_to="2020-01-01")
    led.close()
    for bundle in out.values():
        _without_checker(bundle)
    _zip(out["good-whole-signed"], work / "good-whole-signed.zip")
    out["good-whole-signed.zip"] = work / "good-whole-signed.zip"
    return out


Tamper = Callable[[Path, Path], None]
"""Change a copy of a good bundle (the copy, the vectors' folder)."""


def tampered() -> list[tuple[str, str, Tamper, list[str], str | None, int]]:
    """(name, good source, change, verifier arguments, expected first_bad, exit code)."""
    from tests.vectors import forge

    public = (KEYS / "test-public-key.hex").read_text().strip()
    key = ["--public-key", public]

    def flip_proof(b: Path, _: Path) -> None:
        proofs = forge.proofs_of(b)
        assert proofs is not None
        row = orjson.loads(proofs[4])
        row["proof"][0] = ("0" if row["proof"][0][0] != "0" else "1") + row["proof"][0][1:]
        proofs[4] = orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n"
        forge.write_entries(b, forge.entries_of(b), proofs)

    def claim_after(b: Path, _: Path) -> None:
        proofs = forge.proofs_of(b)
        assert proofs is not None
        proofs[2] = b'{"index":null}\n'
        forge.write_entries(b, forge.entries_of(b), proofs)

    def link(b: Path, _: Path) -> None:
        (b / "report.html").unlink()
        os.symlink("../good-case-signed/report.html", b / "report.html")

    def list_outside(path: str) -> Tamper:
        def change(b: Path, vectors: Path) -> None:
            m = forge.manifest_of(b)
            report = next(f for f in m["files"] if f["path"] == "report.html")
            m["files"].append({**report, "path": path})
            forge.reseal(b, m)

        return change

    def unlisted(b: Path, _: Path) -> None:
        (b / "notes.txt").write_text("a different story\n")

    def format_one(b: Path, _: Path) -> None:
        m = forge.manifest_of(b)
        m["format"] = "caseledger-bundle/1"
        forge.reseal(b, m)

    def not_a_bundle(b: Path, _: Path) -> None:
        shutil.rmtree(b)
        b.mkdir()
        (b / "README.txt").write_text("not a bundle\n")

    return [
        (
            "rewritten-decision-whole",
            "good-whole-signed",
            lambda b, _: forge.rewrite_decision(b, CASE),
            key,
            "checkpoint.json",
            1,
        ),
        (
            "applies-false",
            "good-whole-signed",
            lambda b, _: (forge.rewrite_decision(b, CASE), forge.switch_checkpoint_off(b)) and None,
            key,
            "checkpoint.json",
            1,
        ),
        (
            "rewritten-decision-case",
            "good-case-signed",
            lambda b, _: forge.rewrite_decision(b, CASE),
            key,
            f"{CASE}#19",
            1,
        ),
        (
            "stripped-checkpoint",
            "good-case-signed",
            lambda b, _: forge.strip_checkpoint(b),
            key,
            "checkpoint.json",
            1,
        ),
        (
            "deleted-case-whole",
            "good-whole-signed",
            lambda b, _: forge.delete_entries(b, lambda e: e["case"] == OTHER, drop_cases=True),
            key,
            "checkpoint.json",
            1,
        ),
        (
            "deleted-case-date",
            "good-date",
            lambda b, _: forge.delete_entries(b, lambda e: e["case"] == OTHER, drop_cases=True),
            key,
            "checkpoint.json",
            1,
        ),
        (
            "deleted-trailing-case",
            "good-case-signed",
            lambda b, _: forge.delete_entries(b, lambda e: e["seq"] > 20),
            key,
            CASE,
            1,
        ),
        (
            "report-only",
            "good-case-signed",
            lambda b, _: forge.edit_file(b, "report.html", b"RR-2026-004", b"RR-2026-044"),
            ["--expect-root", "{root:good-case-signed}"],
            "manifest.json",
            1,
        ),
        (
            "timeline-only",
            "good-case-signed",
            lambda b, _: forge.edit_file(b, "timeline.csv", b"DecisionMade", b"DecisionUndone"),
            ["--expect-root", "{root:good-case-signed}"],
            "manifest.json",
            1,
        ),
        (
            "wrong-key",
            "good-whole-signed",
            lambda b, _: None,
            ["--public-key", OTHER_KEY],
            "checkpoint.json",
            1,
        ),
        ("proof-flipped", "good-case-signed", flip_proof, [], f"{CASE}#5", 1),
        ("covered-claimed-after", "good-case-signed", claim_after, [], f"{CASE}#3", 1),
        ("symlink", "good-case-signed", link, [], "report.html", 1),
        (
            "dotdot-manifest",
            "good-case-signed",
            list_outside("../good-case-signed/report.html"),
            [],
            "manifest.json",
            1,
        ),
        (
            "absolute-manifest",
            "good-case-signed",
            list_outside("/etc/hostname"),
            [],
            "manifest.json",
            1,
        ),
        ("unlisted-file", "good-case-signed", unlisted, [], "notes.txt", 1),
        ("format-1", "good-case-signed", format_one, [], "manifest.json", 1),
        ("not-a-bundle", "good-case-signed", not_a_bundle, [], None, 2),
    ]


def run_both(bundle: Path, args: list[str]) -> tuple[int, dict[str, Any] | None]:
    """Both verifiers' verdicts (which must agree), with the exit code."""
    from tests.conftest import invoke

    ours = invoke(["verify", str(bundle), "--json", *args])
    theirs = subprocess.run(
        [sys.executable, "-I", str(CHECKER), str(bundle), "--json", *args],
        capture_output=True,
        check=False,
    )
    assert ours.exit_code == theirs.returncode, (bundle, ours, theirs.stderr)
    if ours.exit_code == 2:
        return 2, None
    mine, other = ours.json(), json.loads(theirs.stdout)
    mine.pop("bundle")
    other.pop("bundle")
    assert mine == other, (bundle, mine, other)
    return ours.exit_code, mine


def main() -> None:
    os.environ["LOGNAME"] = os.environ["USER"] = "vector-recorder"
    if BUNDLES.exists():
        shutil.rmtree(BUNDLES)
    BUNDLES.mkdir(parents=True)
    expected: list[dict[str, Any]] = []
    roots: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        good = make_good(Path(tmp))
        for name, path in good.items():
            target = BUNDLES / name
            (shutil.copy if path.is_file() else shutil.copytree)(path, target)
            code, verdict = run_both(target, [])
            assert code == 0 and verdict is not None, (name, verdict)
            roots[name] = verdict["root"]
            public = (KEYS / "test-public-key.hex").read_text().strip()
            args = ["--public-key", public] if verdict["checkpoint"] else []
            code, trusted = run_both(target, [*args, "--expect-root", verdict["root"]])
            assert code == 0 and trusted is not None, (name, trusted)
            for given, result in (([], verdict), ([*args, "--expect-root", "{root}"], trusted)):
                expected.append(_expectation(name, given, 0, result))
        # Zips of the case bundle that no checker may accept.
        case = BUNDLES / "good-case-signed"
        _zip(case, BUNDLES / "dup-zip-member.zip", [("bundle/report.html", b"<p>forged</p>\n")])
        _zip(case, BUNDLES / "dotdot-zip-member.zip", [("bundle/../evil.txt", b"evil\n")])
        zips = [
            ("dup-zip-member.zip", "bundle/report.html"),
            ("dotdot-zip-member.zip", "bundle/../evil.txt"),
        ]
        for name, first_bad in zips:
            code, verdict = run_both(BUNDLES / name, [])
            assert code == 1 and verdict is not None and verdict["first_bad"] == first_bad
            expected.append(_expectation(name, [], 1, verdict))
        for name, source, change, args, first_bad, exit_code in tampered():
            target = BUNDLES / name
            shutil.copytree(BUNDLES / source, target, symlinks=True)
            change(target, BUNDLES)
            given = [roots[a[6:-1]] if a.startswith("{root:") else a for a in args]
            code, verdict = run_both(target, given)
            assert code == exit_code, (name, code, verdict)
            if verdict is not None:
                assert verdict["first_bad"] == first_bad, (name, verdict)
            expected.append(_expectation(name, given, code, verdict))
    EXPECTED.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {len(expected)} expectations over {len(list(BUNDLES.iterdir()))} bundles")


def _expectation(
    name: str, args: list[str], code: int, verdict: dict[str, Any] | None
) -> dict[str, Any]:
    root = verdict["root"] if verdict and verdict["ok"] else None
    out: dict[str, Any] = {
        "bundle": name,
        "args": [root if a == "{root}" else a for a in args],
        "exit": code,
    }
    if verdict is not None:
        keys = ("ok", "verdict", "first_bad", "failure", "root", "events", "covered")
        out.update({k: verdict[k] for k in keys})
        out.update(after_checkpoint=verdict["after_checkpoint"], checked=verdict["checked"])
        out["not_checked"] = verdict["not_checked"]
    return out


if __name__ == "__main__":
    main()
