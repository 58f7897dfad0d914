"""The vocabulary the QM2 rules read, kept as data (``projections/data/quality.toml``,
replaceable per deployment through ``CASELEDGER_QUALITY_RULES``): the key agencies and
their name patterns, what counts as minimum data, local-learning topics, challenge phrases
and the negations that cancel them; read and checked into a :class:`QualityConfig`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

#: The environment variable that points at a replacement for the shipped data file.
CONFIG_ENV: Final = "CASELEDGER_QUALITY_RULES"

#: Free-text fields searched for challenge phrases (question 6).
TEXT_FIELDS: Final = ("summary", "rationale", "reasons", "reason", "note", "question", "advice")


# --- configuration ------------------------------------------------------------------


class QualityConfigError(ValueError):
    """A quality data file that cannot be used, naming the file and the key."""


def normalise_text(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").casefold()


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any phrase as whole words, case-insensitively."""
    parts = sorted({normalise_text(p) for p in phrases if p.strip()}, key=len, reverse=True)
    if not parts:
        return re.compile(r"(?!x)x")  # matches nothing
    body = "|".join(re.escape(p) for p in parts)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


#: Words that negate a sentence of free text (QM2 q6): whole words, and "n't" endings.
DEFAULT_NEGATIONS: Final[tuple[str, ...]] = (
    "no",
    "not",
    "n't",
    "never",
    "without",
    "nor",
    "neither",
    "none",
    "nobody",
    "cannot",
    "declined",
    "refused",
    "against",
)

#: Where a sentence (or clause joined by a semicolon) of free text ends.
_SENTENCE_BREAK: Final = re.compile(r"[.;!?\n]+")


def _negation_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any negation: a whole word, or a word ending in "n't"."""
    listed = sorted({normalise_text(w).strip() for w in words if w.strip()}, key=len, reverse=True)
    endings = [w for w in listed if w.startswith("n'")]
    plain = [w for w in listed if not w.startswith("n'")]
    parts = []
    if plain:
        parts.append(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in plain) + r")(?!\w)")
    if endings:
        parts.append(r"\w(?:" + "|".join(re.escape(w) for w in endings) + r")(?!\w)")
    return re.compile("|".join(parts)) if parts else re.compile(r"(?!x)x")


@dataclass(frozen=True)
class KeyAgency:
    """One key agency: a short key, a title for people, and the name patterns it matches."""

    key: str
    title: str
    patterns: tuple[str, ...]
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _phrase_pattern(self.patterns))

    def matches(self, name: str) -> bool:
        """Whether an agency name (e.g. "Northshire ICB") is this key agency."""
        return bool(self._regex.search(normalise_text(name)))


@dataclass(frozen=True)
class QualityConfig:
    """The data the QM2 rules read (``projections/data/quality.toml``)."""

    key_agencies: tuple[KeyAgency, ...]
    minimum_data: frozenset[str]
    local_learning_topics: frozenset[str]
    learning_factors: tuple[str, ...]
    challenge_phrases: tuple[str, ...]
    origin: str = "<string>"
    negations: tuple[str, ...] = DEFAULT_NEGATIONS
    _challenge: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _negation: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_challenge", _phrase_pattern(self.challenge_phrases))
        object.__setattr__(self, "_negation", _negation_pattern(self.negations))

    def mentions_challenge(self, text: str) -> bool:
        """Whether free text mentions independent challenge in a sentence with no
        negation (a negated mention is never evidence)."""
        return self.challenge_mention(text) == "considered"

    def challenge_mention(self, text: str) -> Literal["considered", "negated", "none"]:
        """How free text mentions independent challenge: ``considered`` when a sentence
        names it and holds no negation (:attr:`negations`), ``negated`` when every
        sentence that names it also negates something ("no peer challenge was sought",
        "the scrutineer was not asked"), ``none`` when no sentence names it.

        Deliberately cautious: a sentence that both names challenge and negates anything
        does not count, so a negation can never turn into evidence.
        """
        found: Literal["considered", "negated", "none"] = "none"
        for sentence in _SENTENCE_BREAK.split(normalise_text(text)):
            if not self._challenge.search(sentence):
                continue
            if self._negation.search(sentence):
                found = "negated"
                continue
            return "considered"
        return found

    def key_agencies_of(self, name: str) -> list[KeyAgency]:
        """The key agencies an agency name matches (usually one, possibly none)."""
        return [a for a in self.key_agencies if a.matches(name)]


_CONFIG_KEYS: Final = {
    "key_agencies",
    "minimum_data",
    "local_learning_topics",
    "learning_factors",
    "challenge_phrases",
    "negations",
}


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise QualityConfigError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def parse_config(data: Mapping[str, Any], origin: str = "<string>") -> QualityConfig:
    """Validate a decoded quality data file; :class:`QualityConfigError` names the key."""
    unknown = sorted(set(data) - _CONFIG_KEYS)
    if unknown:
        raise QualityConfigError(
            f"{origin}: unknown key {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(_CONFIG_KEYS))}"
        )
    raw_agencies = data.get("key_agencies")
    if not isinstance(raw_agencies, list) or not raw_agencies:
        raise QualityConfigError(f"{origin}: key_agencies: give at least one [[key_agencies]]")
    agencies: list[KeyAgency] = []
    for i, item in enumerate(raw_agencies):
        where = f"{origin}: key_agencies[{i}]"
        if not isinstance(item, dict) or set(item) - {"key", "title", "patterns"}:
            raise QualityConfigError(f"{where}: expected a table of key, title and patterns")
        key, title = item.get("key"), item.get("title")
        if not isinstance(key, str) or not key.strip():
            raise QualityConfigError(f"{where}.key: expected non-empty text")
        if not isinstance(title, str) or not title.strip():
            raise QualityConfigError(f"{where}.title: expected non-empty text")
        patterns = _strings(item.get("patterns"), f"{where}.patterns")
        if not patterns:
            raise QualityConfigError(f"{where}.patterns: give at least one pattern")
        agencies.append(KeyAgency(key, title, patterns))
    keys = [a.key for a in agencies]
    if len(set(keys)) != len(keys):
        raise QualityConfigError(f"{origin}: key_agencies: a key is given twice")

    def strings(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        return _strings(data[name], f"{origin}: {name}") if name in data else default

    return QualityConfig(
        key_agencies=tuple(agencies),
        minimum_data=frozenset(
            strings("minimum_data", ("minimum-data", "chronology", "summary", "records"))
        ),
        local_learning_topics=frozenset(
            strings("local_learning_topics", ("previous-learning", "local-priority"))
        ),
        learning_factors=strings("learning_factors", ("learning", "previous_learning")),
        challenge_phrases=strings("challenge_phrases", ()),
        origin=origin,
        negations=strings("negations", DEFAULT_NEGATIONS),
    )


def loads_config(text: str, origin: str = "<string>") -> QualityConfig:
    """Parse a quality data file given as TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise QualityConfigError(f"{origin}: not valid TOML: {exc}") from None
    return parse_config(data, origin)


def load_config(path: Path | str) -> QualityConfig:
    """Load a quality data file from disk."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL byte
        raise QualityConfigError(f"{file}: cannot be read: {exc}") from None
    return loads_config(text, origin=str(file))


@cache
def _shipped_config() -> QualityConfig:
    text = (resources.files("projections") / "data" / "quality.toml").read_text(encoding="utf-8")
    return loads_config(text, origin="quality.toml")


def default_config() -> QualityConfig:
    """``$CASELEDGER_QUALITY_RULES`` if set, else the shipped ``quality.toml``."""
    path = os.environ.get(CONFIG_ENV)
    if path:
        return load_config(path)
    return _shipped_config()
