"""The tamper battery (issue 5): every change to a bundle is caught by both checkers.

Each test copies a pristine bundle of the scenario (with personal data, so that
``personal.jsonl`` is tampered with too), changes it, and runs ``caseledger verify``'s
checker (:func:`projections.export.verify_bundle`) and the standalone ``verify.py`` (the
shipped copy, with the system ``python3 -I``).  Both must fail, agree on the first
failure, and name it (a file, a line, an entry or a case).

Two kinds of tamperer: a careless one changes a file and nothing else (the manifest's
SHA-256 of the file gives it away); a careful one also rewrites the manifest's hashes
and ``manifest.sha256`` ("resealed"), so only the content checks (entry hashes, chain
links, gaps, counts, the Merkle root, the commitments) can catch it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.integrity.merkle import merkle_root
from projections.export.bundle import export_bundle, verify_bundle
from tests.conftest import FixedClock, open_ledger, scenario_lines
from tests.test_export import CASE, both_verdicts, reseal, run_standalone

FILES = (
    "events.jsonl",
    "personal.jsonl",
    "timeline.csv",
    "report.html",
    "VERIFY.md",
    "verify.py",
    "manifest.json",
    "manifest.sha256",
)
REF = re.compile(r"^[A-Za-z0-9_/-]{1,40}#[0-9]+( personal\.[a-z_0-9]+)?$")
FLIPS = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One bundle of the scenario with personal data, made once (checked clean)."""
    from datetime import UTC, datetime

    root = tmp_path_factory.mktemp("pristine")
    clock = FixedClock(datetime(2026, 9, 1, 9, 0, tzinfo=UTC))
    led = open_ledger(str(root / "ledger.db"), clock)
    lines = scenario_lines()
    led.record_lines(lines[:12], led.recorder_for())
    clock.advance(hours=1)
    led.record_lines(lines[12:], led.recorder_for())
    export_bundle(led, root / "bundle", include_personal_data=True)
    export_bundle(led, root / "bundle.zip", include_personal_data=True)
    led.close()
    ours, _ = both_verdicts(root / "bundle")
    assert ours["ok"]
    ours, _ = both_verdicts(root / "bundle.zip")
    assert ours["ok"]
    yield root


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Callable[[], Path]:
    """A fresh copy of the pristine bundle folder per call."""
    counter = iter(range(1_000_000))

    sha = (pristine / "bundle" / "manifest.sha256").read_text().split()[0]
    (tmp_path / "pristine-sha").write_text(sha)
    (tmp_path / "copies").mkdir()

    def make() -> Path:
        target = tmp_path / "copies" / f"b{next(counter)}"
        shutil.copytree(pristine / "bundle", target)
        return target

    return make


def failed(bundle: Path) -> dict[str, Any]:
    """Both checkers' verdict on a tampered bundle: failed, agreed, with a name."""
    ours, _ = both_verdicts(bundle)
    assert ours["ok"] is False, ours
    assert ours["first_bad"], ours
    assert ours["failure"], ours
    return ours


def caught_by_the_manifest_hash_given_separately(bundle: Path) -> None:
    """``timeline.csv`` and ``report.html`` are reading aids: their integrity is the
    manifest's SHA-256, so a resealed edit stands on its own terms and is caught by
    comparing the manifest's SHA-256 with the one the sender gave by another route."""
    original = (bundle.parent.parent / "pristine-sha").read_text().strip()
    assert verify_bundle(bundle).ok
    ours = verify_bundle(bundle, expect_manifest_sha256=original).as_dict()
    theirs = run_standalone(bundle, "--expect-manifest-sha256", original)
    assert ours["ok"] is theirs["ok"] is False
    assert ours["first_bad"] == theirs["first_bad"] == "manifest.json"
    assert ours["failure"] == theirs["failure"]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# --- one byte, anywhere -------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
@FLIPS
@given(data=st.data())
def test_flipping_any_byte_of_any_file_is_caught(
    copy: Callable[[], Path], name: str, data: st.DataObject
) -> None:
    bundle = copy()
    path = bundle / name
    raw = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1), label="offset")
    mask = data.draw(st.integers(1, 255), label="xor")
    raw[at] ^= mask
    path.write_bytes(bytes(raw))
    result = failed(bundle)
    if name == "manifest.sha256":
        assert result["first_bad"] in ("manifest.sha256", "manifest.json")
    elif name == "events.jsonl":
        assert result["first_bad"].startswith("events.jsonl") or REF.match(result["first_bad"])
    else:
        assert result["first_bad"] == name


@pytest.mark.parametrize("name", ["events.jsonl", "personal.jsonl"])
@FLIPS
@given(data=st.data())
def test_flipping_a_byte_is_caught_even_when_resealed(
    copy: Callable[[], Path], name: str, data: st.DataObject
) -> None:
    """The careful tamperer rewrites the manifest: the content checks still catch it."""
    bundle = copy()
    path = bundle / name
    raw = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1), label="offset")
    mask = data.draw(st.integers(1, 255), label="xor")
    raw[at] ^= mask
    path.write_bytes(bytes(raw))
    reseal(bundle)
    result = failed(bundle)
    assert result["first_bad"] != "manifest.json" or "Merkle" in result["failure"]


def test_every_single_byte_of_a_small_file_is_caught(copy: Callable[[], Path]) -> None:
    """Exhaustively, for the smallest files: every position, one bit."""
    for name in ("manifest.sha256", "personal.jsonl"):
        size = len((copy() / name).read_bytes())
        for at in range(0, size, 11):
            bundle = copy()
            path = bundle / name
            raw = bytearray(path.read_bytes())
            raw[at] ^= 0x01
            path.write_bytes(bytes(raw))
            failed(bundle)
            shutil.rmtree(bundle)


# --- lines: delete, swap, duplicate, truncate ----------------------------------------------

LINE_FILES = ("events.jsonl", "personal.jsonl", "timeline.csv")


@pytest.mark.parametrize("resealed", [False, True], ids=["careless", "resealed"])
@pytest.mark.parametrize("name", LINE_FILES)
@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_deleting_a_line_is_caught(
    copy: Callable[[], Path], name: str, which: str, resealed: bool
) -> None:
    bundle = copy()
    path = bundle / name
    lines = lines_of(path)
    index = {"first": 0, "middle": len(lines) // 2, "last": len(lines) - 1}[which]
    del lines[index]
    path.write_bytes(b"".join(lines))
    if resealed:
        reseal(bundle)
        if name == "timeline.csv":
            return caught_by_the_manifest_hash_given_separately(bundle)
    result = failed(bundle)
    if not resealed:
        assert (
            result["first_bad"] == name
            or result["first_bad"].startswith(name)
            or REF.match(result["first_bad"])
        )


@pytest.mark.parametrize("resealed", [False, True], ids=["careless", "resealed"])
@pytest.mark.parametrize(("a", "b"), [(0, 1), (3, 4), (2, 17), (20, 21)])
def test_swapping_two_entries_is_caught(
    copy: Callable[[], Path], a: int, b: int, resealed: bool
) -> None:
    bundle = copy()
    path = bundle / "events.jsonl"
    lines = lines_of(path)
    lines[a], lines[b] = lines[b], lines[a]
    path.write_bytes(b"".join(lines))
    if resealed:
        reseal(bundle)
    result = failed(bundle)
    assert REF.match(result["first_bad"]) or result["first_bad"] == "events.jsonl"


def test_swapping_personal_lines_is_caught(copy: Callable[[], Path]) -> None:
    bundle = copy()
    path = bundle / "personal.jsonl"
    lines = lines_of(path)
    assert len(lines) == 2
    path.write_bytes(lines[1] + lines[0])
    assert failed(bundle)["first_bad"] == "personal.jsonl"


@pytest.mark.parametrize("resealed", [False, True], ids=["careless", "resealed"])
@pytest.mark.parametrize("name", LINE_FILES)
@pytest.mark.parametrize("index", [0, 9, -1])
def test_duplicating_a_line_is_caught(
    copy: Callable[[], Path], name: str, index: int, resealed: bool
) -> None:
    bundle = copy()
    path = bundle / name
    lines = lines_of(path)
    at = index % len(lines)
    lines.insert(at + 1, lines[at])
    path.write_bytes(b"".join(lines))
    if resealed:
        reseal(bundle)
        if name == "timeline.csv":
            return caught_by_the_manifest_hash_given_separately(bundle)
    failed(bundle)


@pytest.mark.parametrize("name", FILES)
@FLIPS
@given(data=st.data())
def test_truncating_any_file_is_caught(
    copy: Callable[[], Path], name: str, data: st.DataObject
) -> None:
    bundle = copy()
    path = bundle / name
    raw = path.read_bytes()
    keep = data.draw(st.integers(0, len(raw) - 1), label="keep")
    path.write_bytes(raw[:keep])
    failed(bundle)


@FLIPS
@given(data=st.data())
def test_truncating_events_is_caught_even_when_resealed(
    copy: Callable[[], Path], data: st.DataObject
) -> None:
    bundle = copy()
    path = bundle / "events.jsonl"
    raw = path.read_bytes()
    keep = data.draw(st.integers(0, len(raw) - 1), label="keep")
    path.write_bytes(raw[:keep])
    reseal(bundle)
    failed(bundle)


def test_truncating_events_at_a_line_end_is_caught_when_resealed(
    copy: Callable[[], Path],
) -> None:
    """Cut cleanly after entry 20: every remaining line is intact, yet the count, the
    head and the Merkle root give it away."""
    bundle = copy()
    path = bundle / "events.jsonl"
    path.write_bytes(b"".join(lines_of(path)[:20]))
    reseal(bundle)
    result = failed(bundle)
    assert result["first_bad"] == "events.jsonl"
    assert "holds 20 entries" in result["failure"]


# --- the manifest -------------------------------------------------------------------------


def _edit_manifest(bundle: Path, edit: Callable[[dict[str, Any]], None], fix_sha: bool) -> None:
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    edit(manifest)
    data = json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n"
    (bundle / "manifest.json").write_bytes(data)
    if fix_sha:
        digest = hashlib.sha256(data).hexdigest()
        (bundle / "manifest.sha256").write_text(f"{digest}  manifest.json\n")


def _flip_hex(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


@pytest.mark.parametrize("fix_sha", [False, True], ids=["careless", "resealed"])
def test_editing_the_manifest_root_is_caught(copy: Callable[[], Path], fix_sha: bool) -> None:
    bundle = copy()

    def edit(m: dict[str, Any]) -> None:
        m["merkle"]["root"] = _flip_hex(m["merkle"]["root"])

    _edit_manifest(bundle, edit, fix_sha)
    result = failed(bundle)
    assert result["first_bad"] == "manifest.json"
    if fix_sha:
        assert "Merkle root" in result["failure"]
    else:
        assert "manifest.sha256" in result["failure"]


@pytest.mark.parametrize(
    ("edit", "first_bad"),
    [
        (lambda m: m["cases"][CASE]["head"].update(seq=21), CASE),
        (lambda m: m["cases"][CASE].update(events=21), CASE),
        (lambda m: m["cases"][CASE]["gaps"].append([30, 31]), CASE),
        (lambda m: m["events"].update(count=23), "events.jsonl"),
        (lambda m: m["files"][0].update(sha256="0" * 64), "events.jsonl"),
        (lambda m: m["files"].pop(2), "timeline.csv"),
        (lambda m: m["personal_data"].update(included=False), "manifest.json"),
        (lambda m: m["personal_data"].update(values=3), "personal.jsonl"),
        (lambda m: m.update(format="something-else/9"), "manifest.json"),
    ],
    ids=[
        "head",
        "case-count",
        "invented-gap",
        "event-count",
        "file-hash",
        "unlisted-file",
        "personal-flag",
        "personal-count",
        "format",
    ],
)
def test_editing_the_manifest_is_caught_even_when_resealed(
    copy: Callable[[], Path], edit: Callable[[dict[str, Any]], None], first_bad: str
) -> None:
    bundle = copy()
    _edit_manifest(bundle, edit, fix_sha=True)
    assert failed(bundle)["first_bad"] == first_bad


def test_a_claimed_gap_cannot_hide_a_deleted_entry(copy: Callable[[], Path]) -> None:
    """Delete entry 9 and declare the hole as a gap: the gap checks out, but the count,
    the head and the Merkle root no longer match the chain the manifest commits to...
    unless the forger rewrites those too, in which case only the root sent separately
    (``--expect-root``) catches it."""
    bundle = copy()
    path = bundle / "events.jsonl"
    original_root = verify_bundle(bundle).root
    assert original_root is not None
    path.write_bytes(b"".join(line for i, line in enumerate(lines_of(path)) if i != 8))
    reseal(bundle)
    result = failed(bundle)  # the hole is not a listed gap
    assert result["first_bad"] == f"{CASE}#10"
    assert "9 to 9" in result["failure"]

    hashes = [json.loads(line)["hash"] for line in lines_of(path)]

    def forge(m: dict[str, Any]) -> None:
        # A gap needs filters that leave entries out: the forger claims one.
        m["filters"]["occurred_from"] = {"given": "2000-01-01", "instant": "2000-01-01T00:00"}
        m["cases"][CASE]["gaps"] = [[9, 9]]
        m["cases"][CASE]["events"] = 21
        m["events"]["count"] = 21
        m["merkle"]["root"] = merkle_root(hashes)
        m["merkle"]["size"] = 21

    _edit_manifest(bundle, forge, fix_sha=True)
    reseal(bundle)
    # A self-consistent forgery verifies on its own terms ...
    assert verify_bundle(bundle).ok
    assert run_standalone(bundle)["ok"]
    # ... but not against the root the sender gave by another route.
    ours = verify_bundle(bundle, expect_root=original_root).as_dict()
    theirs = run_standalone(bundle, "--expect-root", original_root)
    assert ours["ok"] is theirs["ok"] is False
    assert ours["first_bad"] == theirs["first_bad"] == "manifest.json"


# --- files: removed, added ----------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in FILES if n != "manifest.json"])
def test_removing_a_file_is_caught(copy: Callable[[], Path], name: str) -> None:
    bundle = copy()
    (bundle / name).unlink()
    assert failed(bundle)["first_bad"] == name


def test_removing_the_manifest_is_caught(copy: Callable[[], Path]) -> None:
    bundle = copy()
    (bundle / "manifest.json").unlink()
    assert failed(bundle)["first_bad"] == "manifest.json"


def test_adding_a_file_is_caught(copy: Callable[[], Path]) -> None:
    bundle = copy()
    (bundle / "report-corrected.html").write_text("<p>a different story</p>")
    assert failed(bundle)["first_bad"] == "report-corrected.html"


# --- a zip bundle ---------------------------------------------------------------------------


@FLIPS
@given(data=st.data())
def test_flipping_a_byte_of_a_zip_bundle_is_caught(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    raw = bytearray((pristine / "bundle.zip").read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1), label="offset")
    raw[at] ^= data.draw(st.integers(1, 255), label="xor")
    target = tmp_path_factory.mktemp("zip") / "bundle.zip"
    target.write_bytes(bytes(raw))
    try:
        with zipfile.ZipFile(target) as zf:
            if zf.testzip() is None and _same_members(zf, pristine / "bundle.zip"):
                return  # the flip hit zip metadata that changes no member's bytes
    except Exception:  # damaged: the checkers must say so
        pass
    failed(target)


def _same_members(zf: zipfile.ZipFile, original: Path) -> bool:
    with zipfile.ZipFile(original) as other:
        if sorted(zf.namelist()) != sorted(other.namelist()):
            return False
        return all(zf.read(n) == other.read(n) for n in other.namelist())


def test_a_zip_with_an_extra_member_is_caught(pristine: Path, tmp_path: Path) -> None:
    target = tmp_path / "bundle.zip"
    shutil.copy(pristine / "bundle.zip", target)
    with zipfile.ZipFile(target, "a") as zf:
        zf.writestr("bundle/notes.txt", "added later")
    assert failed(target)["first_bad"] == "notes.txt"


# --- the parallel check gives the sequential verdict -----------------------------------------


def _flip(offset: int) -> Callable[[Path], None]:
    def tamper(bundle: Path) -> None:
        path = bundle / "events.jsonl"
        raw = bytearray(path.read_bytes())
        raw[offset % len(raw)] ^= 0x20
        path.write_bytes(bytes(raw))

    return tamper


def _lines_edit(edit: Callable[[list[bytes]], list[bytes]], seal: bool) -> Callable[[Path], None]:
    def tamper(bundle: Path) -> None:
        path = bundle / "events.jsonl"
        path.write_bytes(b"".join(edit(lines_of(path))))
        if seal:
            reseal(bundle)

    return tamper


PARALLEL_CASES: dict[str, Callable[[Path], None]] = {
    "pristine": lambda bundle: None,
    "flip-early": _flip(40),
    "flip-middle": _flip(6000),
    "flip-late": _flip(-30),
    "delete-resealed": _lines_edit(lambda ls: ls[:5] + ls[6:], True),
    "swap-resealed": _lines_edit(lambda ls: [ls[1], ls[0], *ls[2:]], True),
    "duplicate-resealed": _lines_edit(lambda ls: [*ls[:12], ls[11], *ls[12:]], True),
    "truncate-mid-line": _lines_edit(lambda ls: [*ls[:-1], ls[-1][:40]], True),
    "truncate-resealed": _lines_edit(lambda ls: ls[:15], True),
}


@pytest.mark.parametrize("name", list(PARALLEL_CASES))
def test_checking_in_worker_processes_gives_the_same_verdict(
    copy: Callable[[], Path], name: str
) -> None:
    """Large bundles are checked by worker processes, in byte ranges of whole lines; the
    verdict, the first failure and the count must be the sequential ones."""
    bundle = copy()
    PARALLEL_CASES[name](bundle)
    sequential = verify_bundle(bundle, workers=1).as_dict()
    parallel = verify_bundle(bundle, workers=3, chunk_bytes=1500).as_dict()  # many ranges
    assert parallel == sequential
    assert (sequential["ok"] is True) == (name == "pristine")
