"""The screen that keeps personal values out of the hashed record.

A case's personal values (``personal`` of its referral, ``changes.personal`` of its
corrections) live outside the hashed body so that exports can leave them out and erasure
can remove them.  This module says, in one place, when a text *holds* one of them, so
that recording (``ledger.application``), the database's check for writers who may not
read the values (``caseledger_personal_screen`` in ``pgauthority.sql``) and the export's
scan of what it wrote (``projections.export.bundle``) apply the same rule:

- **Folding** (:func:`fold_words`): Unicode NFKC, case folded, accents dropped (``Zoë``
  is ``zoe``), then split into words of letters and digits; white space and every other
  character (``.``, ``-``, ``'``, ``/``, ``,`` ...) only separates words.
- **Holding** (:meth:`Screen.hit`): a text holds a value when the value's words, joined,
  equal the text's consecutive words from a word start to a word end, joined: so
  ``Zoe Sample``, ``ZOE SAMPLE``, ``zoe-sample``, ``ZoeSample`` and ``Z. o. e. Sample``
  all hold the name ``Zoe Sample``, and ``Annual`` does not hold the name ``Ann``.
- **Minimum** (:data:`MIN_SCREENED_CHARS`): a value whose folded letters and digits are
  fewer than 3 (an initial such as ``K``, a two-letter part) is not looked for: it would
  match ordinary words and the initials of pseudonyms such as ``Child K``.
- **Names** (a field whose key contains ``name``) are looked for as recorded and with the
  last word first (``Sample, Zoe``).  Single parts of a name are not looked for: a
  surname such as ``Young`` or a given name such as ``May`` would refuse ordinary text.
- **Dates** (a value that reads as a date, e.g. ``2014-03-07``) are looked for in every
  usual written form (:func:`date_forms`), word for word: the separators may be any
  (``07/03/2014`` is ``07-03-2014`` and ``07 03 2014``) but must be there, so that
  ``1/11/2014`` never reads as ``11/1/2014``.
- **Structured dates** (``incident_date``, ``occurred_at``, ``due`` ... holding an ISO
  date) are not free text and are not screened: a child may be harmed on the day of
  birth, and the record must say when.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

MIN_SCREENED_CHARS = 3
"""The fewest folded letters and digits a personal value needs to be looked for."""

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

#: Fields that hold a structured date (not free text), as catalogue fields are named.
DATE_FIELDS = frozenset(
    {"occurred_at", "incident_date", "aware_date", "due", "expected_by", "planned_publication"}
    | {"from", "to"}
)
_ISO_DATE_OR_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T[0-9:.+\-Z]*)?$")
_WORD = re.compile(r"[^\W_]+")
_DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d %B %Y", "%d %b %Y", "%B %d, %Y")


#: ASCII folded as :func:`fold_words` folds it: letters lower-cased, digits kept, every
#: other character (``_`` too, which ``\w`` counts as a letter) a space.
_ASCII_FOLD = bytes(
    ord(chr(c).lower()) if chr(c).isascii() and chr(c).isalnum() else 0x20 for c in range(256)
)


def fold_words(text: str) -> list[str]:
    """The words of a text as the screen compares them: NFKC, case folded, accents
    dropped, split on everything that is not a letter or a digit."""
    if text.isascii():
        # _WORD.findall(text.lower()), six times faster (every entry recorded is folded):
        # what is neither letter nor digit becomes a space, and split() takes the runs
        return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii").split()
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = "".join(
        c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c)
    )
    # composed again, so that a script whose letters decompose into letters (a Hangul
    # syllable into its jamo) keeps its length and its words
    return _WORD.findall(unicodedata.normalize("NFC", stripped))


def folded(text: str) -> str:
    """A text's folded words joined by single spaces (what the database's screen takes)."""
    return " ".join(fold_words(text))


def compact(text: str) -> str:
    """A value as the screen looks for it: its folded words joined with nothing."""
    return "".join(fold_words(text))


def _ordinal(day: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th`` ... ``11th`` ... ``21st`` ... ``31st``."""
    if 11 <= day % 100 <= 13:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th') }"


def date_forms(day: date) -> list[str]:
    """The usual written forms of a date: ISO (``2014-03-07``), day-month-year in
    figures with a four- or two-digit year, with or without leading zeros
    (``07/03/2014``, ``7/3/2014``, ``7.3.14``; any separator folds the same), and in
    words with the month named in full or short, the day as a figure or an ordinal
    (``7 March 2014``, ``7th Mar 2014``, ``March 7, 2014``, ``7th of March 2014``).
    Month-first figures (``03/07/2014``) are left out: in England they read as another
    date, which the record may rightly hold."""
    d, m, y = day.day, day.month, day.year
    days = {f"{d:02d}", str(d)}
    months = {f"{m:02d}", str(m)}
    years = {f"{y:04d}", f"{y % 100:02d}"}
    forms: set[str] = set()
    for dd in days:
        for mm in months:
            forms.add(f"{y:04d}-{mm}-{dd}")
            for yy in years:
                forms.add(f"{dd}/{mm}/{yy}")
    forms.update({f"{y:04d}{m:02d}{d:02d}", f"{d:02d}{m:02d}{y:04d}"})
    names = [MONTHS[m - 1], MONTHS[m - 1][:3]] + (["Sept"] if m == 9 else [])
    for name in names:
        for dd in (*days, _ordinal(d)):
            forms.add(f"{dd} {name} {y:04d}")
            forms.add(f"{name} {dd}, {y:04d}")
            forms.add(f"{dd} of {name} {y:04d}")
    return sorted(forms)


def as_date(value: str) -> date | None:
    """The date a personal value states (ISO, or a usual written form), or None."""
    text = value.strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        pass
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def value_needles(key: str, value: Any, *, dates: bool = True) -> set[str]:
    """:func:`_value_needles`, remembered for a plain string (a case's values are
    screened again by every command that records in it)."""
    if isinstance(value, str):
        return set(_string_needles(key, value, dates))
    return _value_needles(key, value, dates=dates)


@lru_cache(maxsize=4096)
def _string_needles(key: str, value: str, dates: bool) -> frozenset[str]:
    """The needles of one string value (see :func:`_value_needles`)."""
    return frozenset(_value_needles(key, value, dates=dates))


def _value_needles(key: str, value: Any, *, dates: bool = True) -> set[str]:
    """What the screen looks for to find one personal value (``personal.KEY``): each
    string inside it folded, a name also last word first, a date in every form (or, with
    ``dates`` false, not at all); values under :data:`MIN_SCREENED_CHARS` are left out.
    A value's needle is its folded words joined with nothing; a date's, its words joined
    by single spaces."""
    needles: set[str] = set()
    for text in _leaves(value):
        day = as_date(text)
        if day is not None and not dates:
            continue
        forms = date_forms(day) if day is not None else [text]
        words = fold_words(text)
        if day is None and "name" in key and len(words) > 1:
            forms.append(" ".join([words[-1], *words[:-1]]))
        for form in forms:
            if len(compact(form)) >= MIN_SCREENED_CHARS:
                needles.add(folded(form) if day is not None else compact(form))
    return needles


def _leaves(value: Any) -> Iterator[str]:
    """The strings and whole numbers inside a personal value (booleans are not values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)


@dataclass
class Screen:
    """The personal values of one case (or several), ready to look for."""

    needles: dict[str, str] = field(default_factory=dict)
    """Each folded value to look for, to the personal field it comes from."""
    prefixes: set[str] = field(default_factory=set)
    ask_database: bool = False
    """Whether the case's stored values could not be read here, so that the database's
    screen (PostgreSQL) must be asked about the stored ones."""

    def add(self, key: str, value: Any, *, dates: bool = True, label: str = "") -> None:
        """Look for ``personal.KEY``'s value too (dates only if ``dates``); a hit names
        ``label`` (default ``personal.KEY``)."""
        for needle in value_needles(key, value, dates=dates):
            self.needles.setdefault(needle, label or f"personal.{key}")
            self.prefixes.update(needle[:i] for i in range(1, len(needle) + 1))

    def add_all(self, values: dict[str, Any]) -> None:
        """Look for every value of a ``personal`` object."""
        for key, value in values.items():
            self.add(key, value)

    def __bool__(self) -> bool:
        return bool(self.needles)

    def hit(self, text: str) -> str | None:
        """The personal field (``personal.name``) whose value the text holds, or None."""
        if not self.needles:
            return None
        words = fold_words(text)
        if self.prefixes.isdisjoint(words):
            return None  # no value begins at any word: the common case, decided in C
        return self.hit_words(words)

    def hit_words(self, words: list[str], first: int = 0) -> str | None:
        """:meth:`hit` for a text already folded into ``words``, looking only at values
        that begin at word ``first`` or later (a reader of lines uses it to look across
        a line break without screening each line twice)."""
        prefixes = self.prefixes
        needles = self.needles
        for i in range(first, len(words)):
            if words[i] not in prefixes:
                continue  # no value begins with this word, whatever follows it
            for glue in ("", " "):  # a value's words run together; a date's stay apart
                joined = words[i]
                j = i
                while joined in prefixes:
                    if joined in needles:
                        return needles[joined]
                    j += 1
                    if j == len(words):
                        break
                    joined += glue + words[j]
        return None

    @property
    def longest(self) -> int:
        """The most words a value can span (its characters: a word has at least one)."""
        return max((len(n) for n in self.needles), default=0)

    def hit_body(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """``(field of the entry, personal field)`` of the first string of an entry's
        hashed body that holds a personal value, or None."""
        if not self.needles:
            return None  # nothing to look for: no string need be walked
        texts: list[str] = []
        _texts_of(body, _AT_ROOT, texts)
        words = fold_words("\x00".join(texts))
        # No value begins at any word of any string (decided in C), or none is held by
        # the strings' words in a row: the common cases, decided with one fold of all
        # the strings (a NUL only separates words, and folding never joins characters
        # across it, so these are every string's words in order; a value one string
        # holds is held by them in a row, so only a value across two strings could be
        # found here and not below).  Only then is each string walked with its field.
        if self.prefixes.isdisjoint(words) or self.hit_words(words) is None:
            return None
        for path, text in hashed_strings(body):
            found = self.hit(text)
            if found is not None:
                return path, found
        return None


def hashed_strings(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every string of an entry's hashed body that could hold a personal value, with the
    field it is in (``summary``, ``criteria.child_died.reason``, ``attendees[2]``):
    the keys of ``personal`` (chosen freely) included, its commitments (hex) and
    structured dates left out."""
    yield from _walk(body, "")


#: Where :func:`_texts_of` is: at the body's top (or under keys ``""`` from it), in its
#: top-level ``changes``, or anywhere else (the paths :func:`_walk` treats apart).
_ELSEWHERE, _AT_ROOT, _IN_CHANGES = 0, 1, 2


def _texts_of(value: Any, at: int, out: list[str]) -> None:
    """The strings :func:`hashed_strings` yields, in its order, without their fields:
    what a record's screening needs when nothing is found (almost always), without
    formatting a path for every string (a third of recording's screening cost)."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if key in DATE_FIELDS and _ISO_DATE_OR_TIME.match(item):
                    continue
                out.append(item)
            elif key == "personal" and at and isinstance(item, dict):
                out.extend(str(name) for name in item)
            elif isinstance(item, (dict, list)):
                inner = _ELSEWHERE
                if at == _AT_ROOT:  # the path :func:`_walk` gives is the key itself
                    if key == "":
                        inner = _AT_ROOT
                    elif key == "changes":
                        inner = _IN_CHANGES
                _texts_of(item, inner, out)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, (dict, list)):
                _texts_of(item, _ELSEWHERE, out)


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "personal" and isinstance(item, dict) and path in ("", "changes"):
                for name in item:  # the commitments are hex; their keys are chosen names
                    yield f"{where}.{name}", str(name)
                continue
            if key in DATE_FIELDS and isinstance(item, str) and _ISO_DATE_OR_TIME.match(item):
                continue
            yield from _walk(item, where)
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from _walk(item, f"{path}[{number}]")


@dataclass(frozen=True)
class ScreenRow:
    """One salted digest of a folded personal value, kept (on PostgreSQL) where only the
    database's screen function reads it: ``sha256(salt || UTF-8 of the needle)``."""

    case_ref: str
    seq: int
    salt: bytes
    length: int
    digest: bytes


PREFIX_CHARS = MIN_SCREENED_CHARS
"""How many leading characters of a needle its prefix digest covers (kept as a row of
length 0): the database hashes a run of words in full only where its first characters
hash to a kept prefix, so that screening an ordinary entry costs a few hashes a word."""


def screen_rows(case_ref: str, seq: int, key: str, value: Any, salt: bytes) -> list[ScreenRow]:
    """The digests the database keeps to screen texts for one personal value: one per
    needle (its length beside it) and one per needle's first :data:`PREFIX_CHARS`
    characters (length 0)."""
    needles = sorted(value_needles(key, value))
    prefixes = sorted({n[:PREFIX_CHARS] for n in needles})
    return [
        ScreenRow(case_ref, seq, salt, len(n), hashlib.sha256(salt + n.encode()).digest())
        for n in needles
    ] + [
        ScreenRow(case_ref, seq, salt, 0, hashlib.sha256(salt + p.encode()).digest())
        for p in prefixes
    ]


def screen_of(values: Iterable[tuple[str, Any]]) -> Screen:
    """A screen for ``(key, value)`` pairs of personal values."""
    screen = Screen()
    for key, value in values:
        screen.add(key, value)
    return screen
