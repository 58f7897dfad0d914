"""The known-answer vectors (``tests/vectors/``): both verifiers give exactly the
expected verdict on every good and tampered bundle (the good ones' bundle roots, the
tampered ones' first failures), so a second implementation of the format can be checked
against the same files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import invoke
from tests.test_export import PYTHON, standalone_checker

VECTORS = Path(__file__).resolve().parent / "vectors"
EXPECTED: list[dict[str, Any]] = json.loads((VECTORS / "expected.json").read_text())
FIELDS = (
    "ok",
    "verdict",
    "first_bad",
    "failure",
    "root",
    "events",
    "covered",
    "after_checkpoint",
    "checked",
    "not_checked",
)


def _id(vector: dict[str, Any]) -> str:
    return vector["bundle"] + (
        "+" + "+".join(a[:12] for a in vector["args"]) if vector["args"] else ""
    )


@pytest.mark.parametrize("vector", EXPECTED, ids=[_id(v) for v in EXPECTED])
def test_both_verifiers_give_the_expected_verdict(vector: dict[str, Any]) -> None:
    bundle = VECTORS / "bundles" / vector["bundle"]
    ours = invoke(["verify", str(bundle), "--json", *vector["args"]])
    theirs = subprocess.run(
        [PYTHON, "-I", str(standalone_checker()), str(bundle), "--json", *vector["args"]],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert ours.exit_code == theirs.returncode == vector["exit"], (ours, theirs.stderr)
    if vector["exit"] == 2:
        assert ours.stdout == "" and theirs.stdout == b""
        return
    for verdict in (ours.json(), json.loads(theirs.stdout)):
        assert {k: verdict[k] for k in FIELDS} == {k: vector[k] for k in FIELDS}


def test_the_vectors_cover_every_attack_and_both_forms() -> None:
    names = {v["bundle"] for v in EXPECTED}
    assert {"good-whole-signed", "good-whole-signed.zip", "good-case", "good-empty"} <= names
    for attack in (
        "applies-false",
        "stripped-checkpoint",
        "rewritten-decision-case",
        "deleted-case-whole",
        "deleted-trailing-case",
        "report-only",
        "symlink",
        "dup-zip-member.zip",
        "dotdot-manifest",
        "unlisted-file",
    ):
        (found,) = [v for v in EXPECTED if v["bundle"] == attack]
        assert found["exit"] == 1 and found["ok"] is False and found["first_bad"]
    good = [v for v in EXPECTED if v["bundle"].startswith("good-")]
    assert all(v["ok"] and len(v["root"]) == 64 for v in good)


def test_the_test_key_is_the_published_one() -> None:
    key = serialization.load_pem_private_key(
        (VECTORS / "keys" / "test-signing-key.pem").read_bytes(), password=None
    )
    public = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert public.hex() == (VECTORS / "keys" / "test-public-key.hex").read_text().strip()


@pytest.mark.parametrize(
    "name", ["good-case", "good-date", "proof-flipped", "covered-claimed-after", "good-whole"]
)
def test_worker_processes_give_the_same_verdict_with_proofs(
    name: str,
) -> None:
    """Large bundles are checked by worker processes; the proofs beside them are read in
    order in this one, so the verdict is the sequential one."""
    import projections.export.verify as bundle_verify

    bundle = VECTORS / "bundles" / name
    public = (VECTORS / "keys" / "test-public-key.hex").read_text().strip()
    sequential = bundle_verify.verify_bundle(bundle, workers=1, trusted_key=public).as_dict()
    parallel = bundle_verify.verify_bundle(
        bundle, workers=3, trusted_key=public, chunk_bytes=1500
    ).as_dict()
    assert parallel == sequential
    assert sequential["ok"] is name.startswith("good-")
