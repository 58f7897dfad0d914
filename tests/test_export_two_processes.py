"""A large store's export makes its timeline rows and its entries' personal-data screen in
a second process (issue 18, :mod:`projections.export.export_timeline`): the bundle is byte
for byte the bundle made in one process, the screen refuses the same first line in the
same words, and an export that fails ends its second process and leaves nothing behind.

The threshold (``PIPELINE_ABOVE``) is set to 0 or out of reach so that the scenario's
small store is exported both ways.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.export import export_timeline, personal_check
from projections.export.bundle import export_bundle, verify_bundle
from projections.export.export_timeline import EntryRows, PipedEntryRows
from projections.export.personal_check import (
    EntryScreen,
    PersonalCheck,
    PersonalDataInBundle,
    scan_file,
)
from tests.conftest import FixedClock, open_ledger
from tests.test_bundle_personal_scan import CASE, OTHER, SEPARATORS, SUMMARIES, WORDS

pytestmark = pytest.mark.usefixtures("fixed_today")


def _files(bundle: Path) -> dict[str, str]:
    """Each file's SHA-256, of a folder or a zip's members."""
    if bundle.is_file():
        with zipfile.ZipFile(bundle) as z:
            return {n.split("/", 1)[1]: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in bundle.iterdir()}


def _export(
    led: Any, out: Path, pipeline: bool, patch: pytest.MonkeyPatch, **options: Any
) -> tuple[Any, dict[str, str]]:
    patch.setattr(export_timeline, "PIPELINE_ABOVE", 0 if pipeline else 10**12)
    made: list[str] = []
    real = export_timeline.entry_rows

    def watched(*args: Any, **kwargs: Any) -> Any:
        rows = real(*args, **kwargs)
        made.append(type(rows).__name__)
        return rows

    patch.setattr("projections.export.bundle.entry_rows", watched)
    summary = export_bundle(led, out, **options)
    assert made == ["PipedEntryRows" if pipeline else "EntryRows"]
    return summary.as_dict(), _files(summary.out)


OPTIONS: list[dict[str, Any]] = [
    {},
    {"cases": [CASE]},
    {"cases": [CASE], "occurred_from": "2026-02-16", "occurred_to": "2026-03-04"},
    {"as_of": "2026-03-01"},
    {"include_personal_data": True},
    {"as_zip": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "whole")
def test_the_bundle_made_in_two_processes_is_the_same_bundle(
    scenario_store: str,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
) -> None:
    led = open_ledger(scenario_store, clock)
    one, one_files = _export(led, tmp_path / "one", False, monkeypatch, **options)
    two, two_files = _export(led, tmp_path / "two", True, monkeypatch, **options)
    assert two_files == one_files
    assert {**two, "out": None} == {**one, "out": None}
    assert verify_bundle(Path(two["out"])).ok
    assert multiprocessing.active_children() == []


def _refusal(rows: EntryRows | PipedEntryRows, refs: list[str]) -> str | None:
    try:
        rows.raise_first(rows.finish(refs))
    except PersonalDataInBundle as exc:
        return str(exc)
    return None


_OPENED: dict[str, Any] = {}


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the store is only read
)
@given(
    st.lists(st.tuples(st.sampled_from([CASE, OTHER]), st.sampled_from(SUMMARIES)), max_size=40),
    st.integers(min_value=1, max_value=12),
)
def test_the_second_process_screens_the_lines_as_this_one_does(
    scenario_store: str,
    tmp_path_factory: pytest.TempPathFactory,
    entries: list[tuple[str, str]],
    batch: int,
) -> None:
    """Lines holding a case's personal values (as old entries may), in batches of any
    size: the same timeline.csv, the same verdict and the same first refusal, word for
    word (on both stores)."""
    if scenario_store not in _OPENED:  # one ledger (one pool) for every example
        _OPENED.clear()
        _OPENED[scenario_store] = open_ledger(scenario_store)
    ledger = _OPENED[scenario_store]
    records = [
        {
            "case": ref,
            "seq": n,
            "type": "ContextRecorded",
            "summary": summary,
            "occurred_at": "2026-02-01",
            "recorded_at": "2026-02-01T09:00:00.000000Z",
            "actor": "=Sam" if n % 3 == 0 else "Sam",
            "hash": f"{n:064x}",
            "prev_hash": f"{n - 1:064x}",
            "position": n,
        }
        for n, (ref, summary) in enumerate(entries, start=1)
    ]
    lines = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in records]
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    here = EntryRows(one / "timeline.csv", EntryScreen(ledger))
    there = PipedEntryRows(ledger, two / "timeline.csv", screening=True)
    for rows in (here, there):
        for start in range(0, len(lines), batch):
            chunk = lines[start : start + batch]
            rows.add(start + 1, b"".join(chunk), chunk, records[start : start + batch])
    assert there.close() == here.close()
    assert (two / "timeline.csv").read_bytes() == (one / "timeline.csv").read_bytes()
    assert there.complete and here.complete
    assert there.first_refusal() == here.first_refusal()
    refs = sorted({r["case"] for r in records})
    assert _refusal(there, refs) == _refusal(here, refs)
    if any(ref == CASE and summary == SUMMARIES[1] for ref, summary in entries):
        assert _refusal(there, refs) is not None  # the plain name is always found
    # timeline.csv, scanned in halves (the first in the second process) or whole.
    check_here, check_there = here.finish(refs), there.finish(refs)
    there.start_timeline_scan(check_there, refs)
    expected = _refused(here.scan_timeline, check_here)
    assert _refused(there.scan_timeline, check_there) == expected
    if any(ref == CASE and summary == SUMMARIES[1] for ref, summary in entries):
        assert expected is not None
    there.end()
    assert multiprocessing.active_children() == []


def test_an_export_failing_in_either_process_ends_the_second_and_leaves_nothing(
    scenario_store: str, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    led = open_ledger(scenario_store, clock)
    monkeypatch.setattr(export_timeline, "PIPELINE_ABOVE", 0)
    out = tmp_path / "out"
    out.mkdir()

    def stop(read: int) -> None:
        raise KeyboardInterrupt  # the user stops it while the entries are read

    monkeypatch.setattr("projections.export.bundle.PROGRESS_EVERY", 1)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(led, out / "stopped", progress=stop)
    assert multiprocessing.active_children() == []

    def broken(record: dict[str, Any]) -> str:
        raise ValueError(f"cannot describe {record['case']}#{record['seq']}")

    monkeypatch.setattr(export_timeline, "describe", broken)  # the second process fails
    with pytest.raises(ValueError, match=r"cannot describe RR-2026-004#1"):
        export_bundle(led, out / "failed")
    assert multiprocessing.active_children() == []
    assert list(out.iterdir()) == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=60),
    st.integers(min_value=1, max_value=40),
)
def test_a_file_scanned_in_two_halves_is_refused_as_scanned_whole(
    tmp_path_factory: pytest.TempPathFactory,
    pieces: list[tuple[str, str]],
    block: int,
) -> None:
    """Split at every line boundary (a value wrapped across it included), in blocks of any
    size: the first half's refusal, else the second's, is the whole file's, word for
    word."""
    check = PersonalCheck()
    check.everywhere.add("name", "Kai Example", dates=False, label="case X, personal.name")
    check.everywhere.add("name", "Zoe Sample", dates=False, label="case Y, personal.name")
    check.values = 2
    path = tmp_path_factory.mktemp("halves") / "timeline.csv"
    data = "".join(w + s for w, s in pieces).encode()
    path.write_bytes(data)
    splits = [i + 1 for i, byte in enumerate(data) if byte == 10] + [0, len(data)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(personal_check, "_BLOCK", block)
        whole = _refused(scan_file, check, path)
        for split in splits:
            first = _refused(scan_file, check, path, end=split)
            second = _refused(scan_file, check, path, start=split)
            assert (first or second) == whole, split
    assert personal_check.split_point(path) in splits


def _refused(call: Any, *args: Any, **kwargs: Any) -> str | None:
    try:
        call(*args, **kwargs)
    except PersonalDataInBundle as exc:
        return str(exc)
    return None
