"""The standalone verifier (``projections/data/verify.py``) is a second implementation of
``docs/bundle-format.md``, not a copy of ``projections/export/verify.py`` (issue 14 item 6):
the two share almost no lines of code, the standalone one imports nothing but the standard
library, and its own Merkle proof check agrees with the package's on every tree shape."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrity.merkle import inclusion_proof, merkle_root
from projections.export.verify import verify_bundle
from tests.test_export import PYTHON, standalone_checker
from tests.vectors import forge

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors" / "bundles"
#: The in-package verifier: ``projections.export.verify`` and the modules of its steps.
IN_PACKAGE = sorted((ROOT / "projections" / "export").glob("verify*.py"))
#: At most this many lines of at least MIN_LENGTH characters may be the same in both.
MOST_SHARED = 20
MIN_LENGTH = 30


def significant_lines(path: Path) -> list[str]:
    """The lines that say something: white space folded, no blank, comment, import or
    punctuation-only line, at least MIN_LENGTH characters."""
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = " ".join(raw.split())
        if len(line) < MIN_LENGTH or line.startswith(("#", "import ", "from ")):
            continue
        if re.fullmatch(r"[\W_]*", line):
            continue
        out.append(line)
    return out


def shared_lines(a: Path, b: list[Path]) -> list[str]:
    """The significant lines of ``a`` that stand, the same, in one of ``b``."""
    theirs = {line for path in b for line in significant_lines(path)}
    return [line for line in significant_lines(a) if line in theirs]


def standalone_module() -> Any:
    """The shipped checker, imported as a module."""
    sys.path.insert(0, str(standalone_checker().parent))
    try:
        import verify
    finally:
        sys.path.pop(0)
    return verify


def test_the_two_verifiers_share_almost_no_lines() -> None:
    """A copy-paste between the two verifiers (262 shared lines before issue 14) fails."""
    shared = shared_lines(standalone_checker(), IN_PACKAGE)
    assert len(shared) <= MOST_SHARED, "\n".join(shared)


def test_the_measure_catches_a_copy(tmp_path: Path) -> None:
    """The measure itself can fail: a file made of the in-package verifier's own lines
    counts as sharing them all."""
    copy = tmp_path / "copy.py"
    copy.write_text(
        "\n".join(path.read_text(encoding="utf-8") for path in IN_PACKAGE), encoding="utf-8"
    )
    assert len(shared_lines(copy, IN_PACKAGE)) > MOST_SHARED


def test_the_standalone_verifier_imports_the_standard_library_only() -> None:
    """An inspector runs ``python3 verify.py`` with nothing installed."""
    tree = ast.parse(standalone_checker().read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported, "no import found: the parse is wrong"
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 70), data=st.data())
def test_standalone_inclusion_check_agrees_with_the_package(size: int, data: st.DataObject) -> None:
    """The standalone's own top-down audit-path check accepts exactly the package's
    RFC 9162 proofs: the right leaf at the right index, and nothing moved."""
    verify = standalone_module()
    leaves = [hashlib.sha256(b"%d" % i).digest() for i in range(size)]
    root = merkle_root(leaf.hex() for leaf in leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(leaves, index, size)
    leaf = verify.leaf_node(leaves[index])
    assert verify.proven(leaf, index, size, proof, root)
    other = data.draw(st.integers(-1, size))
    if other != index:
        assert not verify.proven(leaf, other, size, proof, root)
    if proof:
        assert not verify.proven(leaf, index, size, proof[:-1], root)
    assert not verify.proven(leaf, index, size, [*proof, "0" * 64], root)


def both(bundle: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The in-package verdict and the standalone one (``bundle`` key left out)."""
    ours = verify_bundle(bundle).as_dict()
    proc = subprocess.run(
        [PYTHON, "-I", str(standalone_checker()), str(bundle), "--json"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    theirs = json.loads(proc.stdout)
    assert proc.returncode == (0 if theirs["ok"] else 1)
    ours.pop("bundle")
    theirs.pop("bundle")
    return ours, theirs


def test_hex_with_a_trailing_newline_is_no_hash(tmp_path: Path) -> None:
    """Found by comparing the rewrite with the in-package verifier: both used
    ``re.match(r"^[0-9a-f]{64}$")``, which also matches 64 hex digits and a newline, and
    ``bytes.fromhex`` skips the newline, so the old standalone checker passed a resealed
    ``proofs.jsonl`` whose audit path held such a "hash".  Section 2 says 64 lower-case hex
    digits: both refuse the line now, with the same words."""
    bundle = tmp_path / "b"
    shutil.copytree(VECTORS / "good-case-signed", bundle)
    first = json.loads((bundle / "proofs.jsonl").read_bytes().splitlines()[0])["proof"][0]
    forge.edit_file(bundle, "proofs.jsonl", f'"{first}"'.encode(), f'"{first}\\n"'.encode())
    ours, theirs = both(bundle)
    assert ours == theirs
    assert not theirs["ok"]
    assert theirs["first_bad"] == "proofs.jsonl line 1"
    assert theirs["failure"].startswith("must be {")


def test_a_manifest_hash_with_a_trailing_newline_is_malformed(tmp_path: Path) -> None:
    """The same rule in the manifest: ``merkle.root`` of 64 hex digits and a newline is no
    root (before, the in-package verifier read it as one and failed later, elsewhere)."""
    bundle = tmp_path / "b"
    shutil.copytree(VECTORS / "good-unsigned", bundle)
    manifest = forge.manifest_of(bundle)
    manifest["merkle"]["root"] += "\n"
    forge.reseal(bundle, manifest)
    ours, theirs = both(bundle)
    assert ours == theirs
    assert (theirs["first_bad"], theirs["failure"]) == ("manifest.json", "merkle.root is missing")
