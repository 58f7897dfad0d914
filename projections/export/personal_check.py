"""The export's check that a bundle without personal data holds none.

Before a bundle says that no personal value is in any of its files, the exporter reads
the personal values recorded for its cases and looks for them, by the one rule of
:mod:`ledger.domain.personal_screen`, in every file it wrote:

- ``events.jsonl``: every string of each entry's hashed body, for the values of that
  entry's case, exactly as recording screens an entry (structured dates left out);
- every other file (``report.html`` with its tags removed and its characters unescaped,
  ``timeline.csv``, ``VERIFY.md``, ``checkpoint.json``, ``proofs.jsonl``, ``verify.py``,
  ``manifest.json``): as text, for every case's values but dates of birth, because these
  files show the ledger's own dates (deadlines, the dates of entries, checked in
  ``events.jsonl``), which a date of birth cannot be told apart from.

A hit fails the export (exit code 1, nothing left behind), naming the file, the case,
the field and the personal field, never the value.  An exporter the database refuses
the values to (PostgreSQL, no ``export-personal``) cannot check; the bundle then says
so instead of claiming it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from ledger.domain.personal_screen import Screen, fold_words
from ledger.errors import LedgerError, StoreUnavailable

_TAG = re.compile(r"<[^>]*>")
#: Deletes every ASCII character that is not a letter or a digit (``str.translate``).
_NOT_ALNUM = bytes(c for c in range(128) if not chr(c).isalnum())
#: A hex digest (a hash, a commitment, a salt) in an entry: no value is written in one.
_HEX = re.compile(rb"[0-9a-f]{32,}")


class PersonalDataInBundle(LedgerError):
    """A file of the bundle would hold a personal value of a case (exit code 1)."""


class _Ledger(Protocol):
    def personal_data(self, ref: str) -> Sequence[Any]: ...


@dataclass
class PersonalCheck:
    """The personal values of a bundle's cases, ready to look for, or why they could not
    be read."""

    by_case: dict[str, Screen] = field(default_factory=dict)
    everywhere: Screen = field(default_factory=Screen)
    values: int = 0
    unreadable: str | None = None

    squashed: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    """Each case's needles with their letters and digits run together (the quick test)."""

    def could_hold(self, ref: str, line: bytes) -> bool:
        """Whether a line of ``events.jsonl`` of case ``ref`` could hold one of its
        values: always for a line that is not ASCII or holds a ``\\u`` escape (the full
        screen decides), else whether its letters and digits, lower case and run
        together, with hex digests taken out, contain one of the case's needles."""
        needles = self.squashed.get(ref)
        if not needles:
            return False
        if not line.isascii() or b"\\u" in line:
            return True
        for escape in _JSON_SPACES:
            line = line.replace(escape, b" ")
        run = _HEX.sub(b" ", line).lower().translate(None, _NOT_ALNUM)
        return any(needle in run for needle in needles)

    @property
    def made(self) -> bool:
        """Whether the check can be made by this exporter."""
        return self.unreadable is None

    def statement(self) -> str:
        """What the manifest, the report and VERIFY.md say about personal data."""
        if not self.made:
            return (
                "Personal data is left out: the entries carry salted commitments only. "
                "This exporter may not read the personal values recorded for these cases "
                f"({self.unreadable}), so it could not check that none of them is in any "
                "file of this bundle; an export by a user allowed export-personal makes "
                "that check."
            )
        return (
            "Personal data is left out: the entries carry salted commitments only. The "
            f"exporter looked for every personal value recorded for these cases "
            f"({self.values}) in every file of this bundle (ignoring case, accents, spaces "
            "and punctuation; names also last word first; dates of birth in every usual "
            "written form in the entries) and found none."
        )


def read_personal_values(ledger: _Ledger, refs: Iterable[str]) -> PersonalCheck:
    """The personal values of the cases, opened as this exporter may; a refusal (or a
    value that cannot be opened) makes the check one that could not be made."""
    check = PersonalCheck()
    for ref in refs:
        try:
            rows = ledger.personal_data(ref)
        except StoreUnavailable as exc:
            return PersonalCheck(unreadable=str(exc).rstrip("."))
        screen = check.by_case[ref] = Screen()
        for row in rows:
            value = orjson.loads(row.value)
            screen.add(row.field, value)
            check.everywhere.add(
                row.field, value, dates=False, label=f"case {ref}, personal.{row.field}"
            )
            check.values += 1
        check.squashed[ref] = tuple(
            {"".join(c for c in n if c.isalnum()).encode() for n in screen.needles}
        )
    return check


def scan_file(check: PersonalCheck, path: Path) -> None:
    """Fail if a file of the bundle holds a personal value (see the module's rule).

    The file is read a line at a time (a bundle may be gigabytes).  An entry of
    ``events.jsonl`` is screened in full only when its line could hold one of its case's
    values (:meth:`PersonalCheck.could_hold`); every other file's lines are screened with
    the line before them, so that a value wrapped across a line break is found."""
    if not check.made or not check.values:
        return
    if path.name == "events.jsonl":
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                record = orjson.loads(line)
                ref = record.get("case")
                if not isinstance(ref, str) or not check.could_hold(ref, line):
                    continue
                found = check.by_case[ref].hit_body(record)
                if found is not None:
                    where, personal_field = found
                    _refuse(
                        f"events.jsonl line {number} ({ref}#{record.get('seq')}), field "
                        f"{where}, holds {personal_field} of case {ref}"
                    )
        return
    screen = check.everywhere
    span = screen.longest
    tail: list[str] = []  # the previous line's last words, where a wrapped value begins
    with path.open("rb") as lines:
        for raw in lines:
            text = raw.decode("utf-8", errors="replace")
            if path.suffix == ".html":
                text = html.unescape(_TAG.sub(" ", text))
            words = fold_words(text)
            held = screen.hit_words(words) or (
                screen.hit_words(tail + words[:span]) if tail else None
            )
            if held is not None:
                _refuse(f"{path.name} holds {held}")
            tail = words[-span:]


def scan_bytes(check: PersonalCheck, name: str, data: bytes) -> None:
    """:func:`scan_file` for a file not yet written (the manifest)."""
    if check.made and check.values:
        found = check.everywhere.hit(data.decode("utf-8", errors="replace"))
        if found is not None:
            _refuse(f"{name} holds {found}")


#: JSON's escapes of white space, which would otherwise run a letter into a value.
_JSON_SPACES = (b"\\n", b"\\r", b"\\t")


def _refuse(where: str) -> None:
    raise PersonalDataInBundle(
        f"the bundle would hold a personal value: {where}. Nothing was exported. The "
        "entry was recorded before the ledger refused personal values in the hashed "
        "record (or written around it); an export that includes personal data "
        "(include_personal_data) is still possible, or ask the store's operator.",
        code="personal-value-in-bundle",
        params={"where": where},
    )
