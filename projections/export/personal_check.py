"""The export's check that a bundle without personal data holds none.

Before a bundle says that no personal value is in any of its files, the exporter reads
the personal values recorded for its cases and looks for them, by the one rule of
:mod:`ledger.domain.personal_screen`, in every file it wrote:

- ``events.jsonl``: every string of each entry's hashed body, for the values of that
  entry's case, exactly as recording screens an entry (structured dates left out),
  screened while the export writes the entries (:class:`EntryScreen`), not read back;
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from ledger.domain.personal_screen import Screen, fold_words, value_needles
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
        run = _squash(line)
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
            values = _case_values(ledger, ref)
        except StoreUnavailable as exc:
            return PersonalCheck(unreadable=str(exc).rstrip("."))
        _add_case(check, ref, values)
        add_everywhere(check, ref, values)
    return check


def _case_values(ledger: _Ledger, ref: str) -> list[tuple[str, Any]]:
    """``(field, value)`` of each personal value recorded for a case, in the store's order."""
    return [(row.field, orjson.loads(row.value)) for row in ledger.personal_data(ref)]


def _add_case(check: PersonalCheck, ref: str, values: list[tuple[str, Any]]) -> None:
    """The case's own screen (for its entries in ``events.jsonl``) and its quick test."""
    screen = check.by_case[ref] = _case_screen(values)
    check.squashed[ref] = _squashed(screen.needles)


def _case_screen(values: list[tuple[str, Any]]) -> Screen:
    screen = Screen()
    for name, value in values:
        screen.add(name, value)
    return screen


def _squashed(needles: Iterable[str]) -> tuple[bytes, ...]:
    """The needles with their letters and digits run together (the quick test's)."""
    return tuple({"".join(filter(str.isalnum, n)).encode() for n in needles})


def add_everywhere(check: PersonalCheck, ref: str, values: list[tuple[str, Any]]) -> None:
    """The case's values, but dates, in the screen of every other file (a hit names the
    first case added with that value)."""
    for name, value in values:
        check.everywhere.add(name, value, dates=False, label=f"case {ref}, personal.{name}")
        check.values += 1


class EntryScreen:
    """The ``events.jsonl`` half of the check, made while the export writes the entries:
    the same rule and the same first refusal as :func:`scan_file` reading the written
    file, without reading it again or decoding each line again.

    The export hands over each batch of lines it writes (with their decoded records);
    each case's values are read when its first line comes.  The lines of one case in a
    batch are tested together first: their letters and digits, run together as
    :meth:`PersonalCheck.could_hold` runs one line's, are the concatenation of each
    line's, so a batch holding none of the case's needles has no line that could hold
    one; only the lines of a case whose batch does are tested one by one and, where
    they could hold one, screened in full.  The first refusal (the lowest line) is kept
    and raised by :meth:`raise_first` where the export scans its files.

    Memory: each case's values and quick test (a few per case), and one batch; a case's
    full screen (every prefix of every form of its values) is built only when one of its
    lines is screened in full.  If a case's
    values cannot be read (``complete`` false), the export reads them afterwards as
    :func:`read_personal_values` does and scans the written file instead.
    """

    def __init__(self, ledger: _Ledger) -> None:
        self._ledger = ledger
        self._values: dict[str, list[tuple[str, Any]]] = {}
        self._check = PersonalCheck()
        self.complete = True
        self._first: tuple[int, str] | None = None

    def screen(
        self, first_line: int, refs: Sequence[str], lines: Sequence[bytes], records: Sequence[Any]
    ) -> None:
        """Screen a batch: line ``first_line + i`` of ``events.jsonl`` is ``lines[i]``,
        of case ``refs[i]``, decoded as ``records[i]``."""
        if not self.complete or self._first is not None:
            return
        groups: dict[str, list[int]] = {}
        for i, ref in enumerate(refs):
            found = groups.get(ref)
            if found is None:
                groups[ref] = [i]
            else:
                found.append(i)
        check = self._check
        first: tuple[int, str] | None = None
        for ref, members in groups.items():
            if ref not in self._values and not self._read(ref):
                return
            needles = check.squashed.get(ref)
            if not needles:
                continue
            joined = b"".join([lines[i] for i in members])
            if joined.isascii() and b"\\u" not in joined:
                run = _squash(joined)
                if not any(needle in run for needle in needles):
                    continue
            for i in members:
                if first is not None and first_line + i >= first[0]:
                    break
                if not check.could_hold(ref, lines[i]):
                    continue
                screen = check.by_case.get(ref)
                if screen is None:  # built when first needed: most cases never need it
                    screen = check.by_case[ref] = _case_screen(self._values[ref])
                found_in = screen.hit_body(records[i])
                if found_in is not None:
                    where, personal_field = found_in
                    number = first_line + i
                    first = (
                        number,
                        f"events.jsonl line {number} ({ref}#{records[i].get('seq')}), field "
                        f"{where}, holds {personal_field} of case {ref}",
                    )
                    break
        self._first = first

    def _read(self, ref: str) -> bool:
        try:
            values = self._values[ref] = _case_values(self._ledger, ref)
        except StoreUnavailable:
            self.complete = False  # read again afterwards, in the order the check reads
            return False
        needles: set[str] = set()
        for name, value in values:
            needles.update(value_needles(name, value))
        self._check.squashed[ref] = _squashed(needles)
        return True

    def finish(self, refs: Iterable[str]) -> PersonalCheck:
        """The whole check for the exported cases (``refs``, in the manifest's order), as
        :func:`read_personal_values` reads it; the values already read are not read
        again."""
        if not self.complete:
            return read_personal_values(self._ledger, refs)
        check = self._check
        for ref in refs:
            values = self._values.get(ref)
            if values is None:  # after a refusal the batches are no longer screened
                try:
                    values = self._values[ref] = _case_values(self._ledger, ref)
                except StoreUnavailable as exc:
                    return PersonalCheck(unreadable=str(exc).rstrip("."))
            add_everywhere(check, ref, values)
        return check

    @property
    def first(self) -> tuple[int, str] | None:
        """The first line found holding a value of its case (its number) and what the
        refusal says of it, or None."""
        return self._first

    def raise_first(self, check: PersonalCheck) -> None:
        """Refuse the bundle for the first line of ``events.jsonl`` holding a value of
        its case, as :func:`scan_file` would."""
        refuse_entry(check, self._first)


def refuse_entry(check: PersonalCheck, first: tuple[int, str] | None) -> None:
    """Refuse the bundle for ``first`` (:attr:`EntryScreen.first`), the first line of
    ``events.jsonl`` found holding a value of its case, if the check is made."""
    if check.made and check.values and first is not None:
        _refuse(first[1])


def scan_file(check: PersonalCheck, path: Path, *, start: int = 0, end: int | None = None) -> None:
    """Fail if a file of the bundle holds a personal value (see the module's rule).

    The file is read a line at a time (a bundle may be gigabytes).  An entry of
    ``events.jsonl`` is screened in full only when its line could hold one of its case's
    values (:meth:`PersonalCheck.could_hold`); every other file's lines are screened with
    the line before them, so that a value wrapped across a line break is found.

    Lines are read in blocks of about a megabyte.  An ASCII block of a file other than
    ``report.html`` is folded at once (letters lower-cased, every other character a
    space: for ASCII text, :func:`fold_words` exactly) and its words, with the line
    before it, screened together first: that finds every value the line-by-line screen
    would (and values across more lines), so only a block where it finds one is
    screened again line by line, which decides.

    ``start`` and ``end`` (line boundaries) scan only the lines between, as the whole
    scan would scan them (the line before ``start`` carried in), so that two processes
    can scan the two halves of a large file: the first refusal is the first half's, else
    the second's."""
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
    is_html = path.suffix == ".html"
    tail: list[str] = []  # the previous line's last words, where a wrapped value begins
    with path.open("rb") as stream:
        if start:
            tail = fold_words(_line_before(stream, start).decode("utf-8", errors="replace"))
            tail = tail[-span:]
            stream.seek(start)
        for block in _blocks(stream, None if end is None else end - start):
            if not is_html and block.isascii():
                folded = block.translate(_ASCII_FOLD).decode("ascii")
                if screen.hit_words(tail + folded.split()) is None:
                    body = folded[:-1] if folded.endswith("\n") else folded
                    tail = body[body.rfind("\n") + 1 :].split()[-span:]  # its last line's
                    continue
            raws = block.split(b"\n")
            if not raws[-1]:
                raws.pop()  # the block ends with a newline
            for raw in raws:
                text = raw.decode("utf-8", errors="replace")
                if is_html:
                    text = html.unescape(_TAG.sub(" ", text))
                words = fold_words(text)
                held = screen.hit_words(words) or (
                    screen.hit_words(tail + words[:span]) if tail else None
                )
                if held is not None:
                    _refuse(f"{path.name} holds {held}")
                tail = words[-span:]


def _line_before(stream: Any, at: int) -> bytes:
    """The line ending just before byte ``at`` (a line boundary), without its newline."""
    back = _BLOCK
    while True:
        begin = max(0, at - back)
        stream.seek(begin)
        data: bytes = stream.read(at - begin)[:-1]
        cut = data.rfind(b"\n")
        if cut >= 0 or begin == 0:
            return data[cut + 1 :]
        back *= 2


def split_point(path: Path) -> int:
    """A line boundary near the middle of a file (its size if there is none)."""
    with path.open("rb") as stream:
        stream.seek(path.stat().st_size // 2)
        stream.readline()
        return stream.tell()


def _blocks(stream: Any, limit: int | None = None) -> Iterator[bytes]:
    """A binary stream's content in blocks of whole lines (about ``_BLOCK`` bytes each;
    the last one may end without a newline), up to ``limit`` bytes if given."""
    rest = b""
    left = -1 if limit is None else limit
    while left and (block := stream.read(_BLOCK if left < 0 else min(_BLOCK, left))):
        if left > 0:
            left -= len(block)
        block = rest + block
        end = block.rfind(b"\n") + 1
        if end == 0:
            rest = block
            continue
        rest = block[end:]
        yield block[:end]
    if rest:
        yield rest


def scan_bytes(check: PersonalCheck, name: str, data: bytes) -> None:
    """:func:`scan_file` for a file not yet written (the manifest)."""
    if check.made and check.values:
        found = check.everywhere.hit(data.decode("utf-8", errors="replace"))
        if found is not None:
            _refuse(f"{name} holds {found}")


#: JSON's escapes of white space, which would otherwise run a letter into a value.
_JSON_SPACES = (b"\\n", b"\\r", b"\\t")


def refuse_in_file(where: str) -> None:
    """Refuse the bundle: ``where`` (a file and what it holds) would hold a value."""
    _refuse(where)


def _refuse(where: str) -> None:
    raise PersonalDataInBundle(
        f"the bundle would hold a personal value: {where}. Nothing was exported. The "
        "entry was recorded before the ledger refused personal values in the hashed "
        "record (or written around it); an export that includes personal data "
        "(include_personal_data) is still possible, or ask the store's operator.",
        code="personal-value-in-bundle",
        params={"where": where},
    )


#: Blocks of about this many bytes are read from a file to scan.
_BLOCK = 1 << 20
#: ASCII folded as :func:`fold_words` folds ASCII text: letters lower-cased, digits kept,
#: a newline kept, every other byte a space (``bytes.translate``).
_ASCII_FOLD = bytes(
    c + 32 if 65 <= c <= 90 else c if (chr(c).isalnum() and c < 128) or c == 10 else 32
    for c in range(256)
)
#: Hex digits to ``x``, every other byte to ``.`` (to find the hex digests fast).
_HEX_MARKS = bytes(ord("x") if chr(c) in "0123456789abcdef" else ord(".") for c in range(256))
_HEX_RUN = b"x" * 32


def _drop_hex(data: bytes) -> bytes:
    """``_HEX.sub(b" ", data)``: each run of 32 or more lower-case hex digits (a hash, a
    commitment, a salt) replaced by a space, found without the regular expression's
    retrying at every digit."""
    marks = data.translate(_HEX_MARKS)
    at = marks.find(_HEX_RUN)
    if at < 0:
        return data
    pieces = []
    done = 0
    while at >= 0:
        end = marks.find(b".", at)
        if end < 0:
            end = len(data)
        pieces.append(data[done:at])
        done = end
        at = marks.find(_HEX_RUN, end)
    pieces.append(data[done:])
    return b" ".join(pieces)


def _squash(line: bytes) -> bytes:
    """A line's letters and digits, lower case and run together, with JSON's escaped
    white space and the hex digests taken out first (what a needle is looked for in)."""
    for escape in _JSON_SPACES:
        line = line.replace(escape, b" ")
    return _drop_hex(line).lower().translate(None, _NOT_ALNUM)
