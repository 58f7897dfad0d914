"""The two verifiers agree on bundles changed at random: every key of ``--json`` but
``bundle``, whatever a tamperer does to a subset bundle with inclusion proofs (a byte of
any file, resealed or not; any value of the manifest or of a proof line replaced)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.export.verify import verify_bundle
from tests.test_export import PYTHON, standalone_checker
from tests.vectors import forge

VECTORS = Path(__file__).resolve().parent / "vectors" / "bundles"
PUBLIC = (VECTORS.parent / "keys" / "test-public-key.hex").read_text().strip()
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 50),
    st.sampled_from(["", "x", "0" * 64, "inclusion", "whole", "../x", "/etc/passwd"]),
    st.lists(st.integers(0, 30), max_size=3),
    st.just({}),
)


def agree(bundle: Path) -> dict[str, Any]:
    ours = verify_bundle(bundle, trusted_key=PUBLIC).as_dict()
    proc = subprocess.run(
        [PYTHON, "-I", str(standalone_checker()), str(bundle), "--json", "--public-key", PUBLIC],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == (0 if ours["ok"] else 1), proc.stderr
    theirs = json.loads(proc.stdout)
    ours.pop("bundle")
    theirs.pop("bundle")
    assert ours == theirs
    return ours


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*at, i))
    return out


def _set(root: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        root = root[key]
    root[path[-1]] = value


@pytest.mark.parametrize("source", ["good-date", "good-case"])
@SETTINGS
@given(data=st.data())
def test_a_replaced_manifest_value(
    source: str, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    bundle = tmp_path_factory.mktemp("m") / "b"
    shutil.copytree(VECTORS / source, bundle)
    manifest = forge.manifest_of(bundle)
    path = data.draw(st.sampled_from(_paths(manifest)[1:]), label="path")
    _set(manifest, path, data.draw(VALUES, label="value"))
    _reseal_what_can_be(bundle, manifest)
    agree(bundle)


def _reseal_what_can_be(bundle: Path, manifest: dict[str, Any]) -> None:
    """Reseal the files a malformed manifest still names, and the manifest itself."""
    import hashlib

    import orjson

    for entry in manifest.get("files") or [] if isinstance(manifest.get("files"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            path = bundle / entry["path"]
            if path.is_file() and path.resolve().parent == bundle.resolve():
                entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
                entry["bytes"] = path.stat().st_size
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    (bundle / "manifest.json").write_bytes(data)
    (bundle / "manifest.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  manifest.json\n")


@pytest.mark.parametrize("name", ["events.jsonl", "proofs.jsonl", "checkpoint.json"])
@SETTINGS
@given(data=st.data())
def test_a_flipped_byte(
    name: str, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    bundle = tmp_path_factory.mktemp("f") / "b"
    shutil.copytree(VECTORS / "good-date", bundle)
    raw = bytearray((bundle / name).read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1), label="offset")
    raw[at] ^= data.draw(st.integers(1, 255), label="xor")
    (bundle / name).write_bytes(bytes(raw))
    if data.draw(st.booleans(), label="resealed"):
        forge.reseal(bundle)
    assert agree(bundle)["ok"] is False
