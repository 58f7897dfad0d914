"""The export's personal-data check, made fast (issue 18), refuses exactly what it refused.

The entries are screened as the export writes them (:class:`EntryScreen`, one case's lines
of a batch tested together first) instead of by reading ``events.jsonl`` back, and every
other file is scanned a block at a time; the hex digests are found without the regular
expression.  Each of these is compared here with what it replaces: the same verdict and
the same first refusal, word for word, on varied inputs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.domain.personal_screen import fold_words
from projections.export import personal_check
from projections.export.personal_check import (
    EntryScreen,
    PersonalCheck,
    PersonalDataInBundle,
    read_personal_values,
    scan_file,
)
from tests.conftest import open_ledger

CASE = "RR-2026-004"  # the scenario: personal name "Kai Example", born 2025-08-14
OTHER = "RR-2026-001"
_HEX = re.compile(rb"[0-9a-f]{32,}")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"f", b"0", b"9", b"x", b" ", b'"', b"\n"]), max_size=200))
def test_hex_digests_are_dropped_as_the_expression_drops_them(parts: list[bytes]) -> None:
    data = b"".join(parts) + b"0123456789abcdef" * 3  # and one long run, at the end
    for sample in (data, data[::-1], b"".join(parts)):
        assert personal_check._drop_hex(sample) == _HEX.sub(b" ", sample)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(max_codepoint=127), max_size=200))
def test_ascii_text_is_folded_as_the_screen_folds_it(text: str) -> None:
    folded = text.encode().translate(personal_check._ASCII_FOLD).decode("ascii")
    assert folded.split() == fold_words(text)


#: A tag as the line-by-line scan removed it, from a line read alone.
_TAG_IN_A_LINE = re.compile(r"<[^>]*>")


def _reference_scan(check: PersonalCheck, path: Path) -> None:
    """The scan of a file other than events.jsonl as it was: a line at a time, each
    with the line before."""
    screen = check.everywhere
    span = screen.longest
    tail: list[str] = []
    with path.open("rb") as lines:
        for raw in lines:
            text = raw.decode("utf-8", errors="replace")
            if path.suffix == ".html":
                text = personal_check.html.unescape(_TAG_IN_A_LINE.sub(" ", text))
            words = fold_words(text)
            held = screen.hit_words(words) or (
                screen.hit_words(tail + words[:span]) if tail else None
            )
            if held is not None:
                personal_check._refuse(f"{path.name} holds {held}")
            tail = words[-span:]


def _refusal(call: Any, *args: Any) -> str | None:
    try:
        call(*args)
    except PersonalDataInBundle as exc:
        return str(exc)
    return None


WORDS = ["Kai", "Example", "kai", "EXAMPLE", "Zoe", "Sample", "seen", "with", "K", "ai"]
SEPARATORS = [" ", "\n", "\r\n", ", ", "-", "\n\n", "<b>", "</b>\n", "&amp;", "é "]
SEPARATORS += ['<a title="', '">', "<span\nclass=x>", "&#10;", "&eacute;", "\u00a0", "\xff<"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=60),
    st.sampled_from(["timeline.csv", "report.html", "case-RR-2026-004.html", "VERIFY.md"]),
    st.integers(min_value=1, max_value=40),
)
# An unclosed tag holding the name, closed on the next line: no tag to a line read alone.
@example([("seen", '<a title="'), ("Kai", " "), ("Example", '\n">\n')], "case-RR-1.html", 40)
@example([("seen", '<a title="'), ("Kai", " "), ("Example", '\n">\n')], "report.html", 3)
def test_a_file_is_refused_as_line_by_line_it_was(
    tmp_path_factory: pytest.TempPathFactory,
    pieces: list[tuple[str, str]],
    name: str,
    block: int,
) -> None:
    """Blocks of any size (down to a few bytes, so that lines and values fall across
    them), ASCII or not, HTML or not: the same verdict and the same words."""
    check = PersonalCheck()
    check.everywhere.add("name", "Kai Example", dates=False, label="case X, personal.name")
    check.everywhere.add("name", "Zoe Sample", dates=False, label="case Y, personal.name")
    check.values = 2
    path = tmp_path_factory.mktemp("scan") / name
    path.write_bytes("".join(w + s for w, s in pieces).encode())
    expected = _refusal(_reference_scan, check, path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(personal_check, "_BLOCK", block)
        assert _refusal(scan_file, check, path) == expected


SUMMARIES = [
    "Met the family at home.",
    "Kai Example moved to Westmoor.",
    "Kai\nExample moved.",
    "KAI-EXAMPLE moved.",
    "Kaï Exämple moved.",
    "She said: \u201ckai example\u201d.",
    "Born 14/08/2025, the file says.",
    "kaiexample" + "0123456789abcdef" * 4,
    "Annual review with the school.",
    "0123456789abcdef" * 4 + " Kai",
]


_OPENED: dict[str, Any] = {}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the store is only read
)
@given(
    st.lists(st.tuples(st.sampled_from([CASE, OTHER]), st.sampled_from(SUMMARIES)), max_size=40),
    st.integers(min_value=1, max_value=12),
)
def test_entries_screened_as_written_are_refused_as_the_written_file_was(
    scenario_store: str,
    tmp_path_factory: pytest.TempPathFactory,
    entries: list[tuple[str, str]],
    batch: int,
) -> None:
    """EntryScreen, given the lines in batches of any size, refuses the same first line
    with the same words as scan_file reading events.jsonl (on both stores)."""
    if scenario_store not in _OPENED:  # one ledger (one pool) for every example
        _OPENED.clear()
        _OPENED[scenario_store] = open_ledger(scenario_store)
    ledger = _OPENED[scenario_store]
    records = []
    for position, (ref, summary) in enumerate(entries, start=1):
        record = {
            "case": ref,
            "seq": position,
            "type": "ContextRecorded",
            "summary": summary,
            "hash": f"{position:064x}",
            "prev_hash": f"{position - 1:064x}",
            "position": position,
        }
        records.append(record)
    lines = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in records]
    path = tmp_path_factory.mktemp("entries") / "events.jsonl"
    path.write_bytes(b"".join(lines))
    refs = sorted({r["case"] for r in records})
    written = read_personal_values(ledger, refs)
    expected = _refusal(scan_file, written, path)
    screen = EntryScreen(ledger)
    for start in range(0, len(lines), batch):
        chunk = records[start : start + batch]
        screen.screen(start + 1, [r["case"] for r in chunk], lines[start : start + batch], chunk)
    check = screen.finish(refs)
    assert screen.complete
    assert check.values == written.values and check.everywhere.needles == written.everywhere.needles
    assert _refusal(screen.raise_first, check) == expected
    if any(ref == CASE and summary == SUMMARIES[1] for ref, summary in entries):
        assert expected is not None  # the plain name is always found
