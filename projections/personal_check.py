"""The export's check that a bundle without personal data holds none.

Before a bundle says that no personal value is in any of its files, the exporter reads
the personal values recorded for its cases and looks for them, by the one rule of
:mod:`ledger.personal_screen`, in every file it wrote:

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

from ledger.errors import LedgerError, StoreUnavailable
from ledger.personal_screen import Screen

_TAG = re.compile(r"<[^>]*>")
#: Deletes every ASCII character that is not a letter or a digit (``str.translate``).
_NOT_ALNUM = {c: None for c in range(128) if not chr(c).isalnum()}


class PersonalDataInBundle(LedgerError):
    """A file of the bundle would hold a personal value of a case (exit code 1)."""

    exit_code = 1


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

    squashed: set[str] = field(default_factory=set)
    """Every needle of every case, its letters and digits run together (the quick test)."""

    def could_hold(self, text: str) -> bool:
        """Whether ``text`` could hold a personal value: always for text that is not
        ASCII or holds a JSON escape (the full screen decides), else whether its letters
        and digits, lower case and run together, contain a value's."""
        if not text.isascii() or "\\u" in text:
            return True
        run = text.lower().translate(_NOT_ALNUM)
        return any(needle in run for needle in self.squashed)

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
            check.squashed.update(
                "".join(c for c in needle if c.isalnum()) for needle in screen.needles
            )
            check.everywhere.add(
                row.field, value, dates=False, label=f"case {ref}, personal.{row.field}"
            )
            check.values += 1
    return check


def scan_file(check: PersonalCheck, path: Path) -> None:
    """Fail if a file of the bundle holds a personal value (see the module's rule).

    The file is read a line at a time (a bundle may be gigabytes), and a line is folded
    and screened in full only when it could hold a value: its ASCII letters and digits,
    run together, contain one of the values' (:meth:`PersonalCheck.could_hold`)."""
    if not check.made or not check.values:
        return
    if path.name == "events.jsonl":
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not check.could_hold(_json_text(line)):
                    continue
                record = orjson.loads(line)
                screen = check.by_case.get(record.get("case"))
                found = screen.hit_body(record) if screen else None
                if found is not None:
                    where, personal_field = found
                    ref = f"{record['case']}#{record.get('seq')}"
                    _refuse(
                        f"events.jsonl line {number} ({ref}), field {where}, holds "
                        f"{personal_field} of case {record['case']}"
                    )
        return
    previous = ""
    with path.open("rb") as lines:
        for raw in lines:
            text = raw.decode("utf-8", errors="replace")
            if path.suffix == ".html":
                text = html.unescape(_TAG.sub(" ", text))
            window = previous + " " + text  # a value may run across a line break
            previous = text
            if check.could_hold(window):
                held = check.everywhere.hit(window)
                if held is not None:
                    _refuse(f"{path.name} holds {held}")


def scan_bytes(check: PersonalCheck, name: str, data: bytes) -> None:
    """:func:`scan_file` for a file not yet written (the manifest)."""
    if check.made and check.values:
        found = check.everywhere.hit(data.decode("utf-8", errors="replace"))
        if found is not None:
            _refuse(f"{name} holds {found}")


#: JSON's escapes of white space, which would otherwise run a letter into a value.
_JSON_SPACES = (b"\\n", b"\\r", b"\\t")


def _json_text(line: bytes) -> str:
    """A line of ``events.jsonl`` as text for the quick test: its escaped line breaks and
    tabs made spaces (another escape, ``\\uXXXX``, leaves the line to the full screen)."""
    for escape in _JSON_SPACES:
        line = line.replace(escape, b" ")
    return line.decode("utf-8", errors="replace")


def _refuse(where: str) -> None:
    raise PersonalDataInBundle(
        f"the bundle would hold a personal value: {where}. Nothing was exported. The "
        "entry was recorded before the ledger refused personal values in the hashed "
        "record (or written around it); an export that includes personal data "
        "(--include-personal-data) is still possible, or ask the store's operator."
    )
