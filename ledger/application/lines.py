"""Input lines, validated against the catalogue before anything is checked against a case:
a line too long, not JSON, repeating a key, assigning a ledger field or not matching its
event type's model is refused with the field and the reason (every bad line reported)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from ledger.catalogue.models import (
    ASSIGNED_FIELDS,
    MAX_LINE_BYTES,
    MAX_NESTING,
    MODELS_BY_TYPE,
    NAME_PATTERN,
    SUBJECT_PATTERN,
    SUBJECT_RULE,
    TEXT_PATTERN,
    CaseReferred,
    Envelope,
    InputLine,
    text_problem,
)
from ledger.domain.case import Case
from ledger.errors import InputError, InputErrors, gathered


class ParsedLine:
    """One validated input line, before it is checked against its case.

    Given the line's ``text`` too, the validated model can be :meth:`released` once the
    line is checked and its row built (a large record then holds no model per line
    until its commit), and is validated again from the text if it is asked for later
    (a retried write checks every line again)."""

    __slots__ = ("_event", "line", "text")

    def __init__(self, line: int, event: Envelope | None, text: bytes | None = None) -> None:
        self.line = line
        self._event: Envelope | None = event
        self.text = text

    @property
    def event(self) -> Envelope:
        """The validated event (validated again from the text after :meth:`release`, or
        first validated here for a line read by ``validate_lines(..., later=True)``:
        then an :class:`InputError` says why the line is not valid)."""
        if self._event is None:
            assert self.text is not None  # released only when it has its text
            self._event = parse_line(self.text)
        return self._event

    def release(self) -> None:
        """Let the validated model go when it can be made again from the text."""
        if self.text is not None:
            self._event = None

    def __repr__(self) -> str:
        return f"ParsedLine(line={self.line}, event={self._event!r})"


@dataclass
class LineProblems:
    """Every problem found in a record's lines, and the line of each case's refused
    referral: a refused line changes nothing later lines are checked against, so lines
    of a case whose referral was refused say so rather than only "unknown case"."""

    found: list[InputError] = dataclasses.field(default_factory=list)
    refused_referrals: dict[str, int] = dataclasses.field(default_factory=dict)

    def copy(self) -> LineProblems:
        """The same problems, to add to afresh (a retried write checks every line again)."""
        return LineProblems(list(self.found), dict(self.refused_referrals))

    def invalid(self, exc: InputError, line: int, text: bytes) -> None:
        """A line that failed validation (noted as a refused referral if it is one)."""
        self.found.append(exc.at_line(line))
        referred = _referral_case(text)
        if referred is not None:
            self.refused_referrals.setdefault(referred, line)

    def refuse(self, item: ParsedLine, case: Case | None, exc: InputError) -> None:
        """A valid line that failed the checks against its case (``case``: its state
        before the line, None when it does not exist)."""
        ref = item.event.case
        if case is None and isinstance(item.event, CaseReferred):
            self.refused_referrals.setdefault(ref, item.line)
        elif case is None and exc.field == "case" and ref in self.refused_referrals:
            exc = InputError(
                f"case {ref} does not exist (its referral at line "
                f"{self.refused_referrals[ref]} was refused)",
                field="case",
            )
        self.found.append(exc.at_line(item.line))

    def raise_if_any(self) -> None:
        """Refuse the whole input, listing the problems in line order (up to a limit)."""
        if self.found:
            raise gathered(self.found)


def validate_lines(
    lines: Iterable[str | bytes], *, later: bool = False
) -> tuple[list[ParsedLine], LineProblems]:
    """Every non-blank line validated against the catalogue: the valid ones, and the
    problems of all the others (validation goes on after a bad line).

    With ``later``, only referrals (and lines with an escape, which could spell one)
    are validated here, so that every refused referral is known before any line is
    checked, as the checks' words need; every other line
    is kept as its text and validated when it is checked (:attr:`ParsedLine.event`), so
    a large record holds one line's model at a time rather than every line's."""
    parsed: list[ParsedLine] = []
    problems = LineProblems()
    for number, raw in enumerate(lines, start=1):
        text = raw.encode() if isinstance(raw, str) else raw
        if not text.strip():
            continue
        if later and b"CaseReferred" not in text and b"\\" not in text:  # no escaped type
            parsed.append(ParsedLine(number, None, text))
            continue
        try:
            parsed.append(ParsedLine(number, parse_line(text), text))
        except InputError as exc:
            problems.invalid(exc, number, text)
    return parsed, problems


def _referral_case(text: bytes) -> str | None:
    """The case a line that failed validation would have opened, if it is a referral."""
    if len(text) > MAX_LINE_BYTES:
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and data.get("type") == "CaseReferred":
        case = data.get("case")
        return case if isinstance(case, str) else None
    return None


def parse_line(text: bytes) -> Envelope:
    """Validate one JSON line against the catalogue; raise :class:`InputError` if bad.

    A line is refused before it is parsed when it is longer than
    :data:`~ledger.catalogue.models.MAX_LINE_BYTES`, and after when an object in it repeats a
    key (JSON parsers keep the last silently, so what was written and what is recorded
    would differ).
    """
    if len(text) > MAX_LINE_BYTES:
        raise InputError(
            f"the line is {len(text)} bytes; a line holds at most {MAX_LINE_BYTES} bytes "
            f"({MAX_LINE_BYTES // 1_048_576} MiB)"
        )
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError("each line must be one JSON object (an event)")
    _refuse_duplicate_keys(text, data)
    for name in ASSIGNED_FIELDS:
        if name in data:
            raise InputError(f"{name} is assigned by the ledger and cannot be given", field=name)
    kind = data.get("type")
    if kind is None:
        raise InputError("every event needs a type", field="type")
    if not isinstance(kind, str) or kind not in MODELS_BY_TYPE:
        raise InputError(
            f"{_shown(kind)} is not an event type; the types are {', '.join(MODELS_BY_TYPE)}",
            field="type",
        )
    try:
        return InputLine.validate_json(text)
    except ValidationError as exc:
        raise describe_validation(exc, kind) from None


class _Members(dict[str, Any]):
    """A parsed JSON object that remembers the keys it was given more than once."""

    repeated: tuple[str, ...] = ()


def _members(pairs: list[tuple[str, Any]]) -> _Members:
    obj = _Members(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        repeated: list[str] = []
        for key, _ in pairs:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        obj.repeated = tuple(repeated)
    return obj


def _refuse_duplicate_keys(text: bytes, data: dict[str, Any]) -> None:
    """Refuse a line in which any object, at any depth, repeats a key.

    Re-encoding what was parsed can only shorten a line (orjson writes no white space
    and the shortest escapes), and a repeated key is dropped from what was parsed; so a
    line that re-encodes to its own length has no repeated key, which is the case for
    every line a program writes compactly.  (Fractional numbers, which can re-encode
    longer, are refused anyway.)  Only the other lines are parsed again, keeping every
    key, to find the repeated one and where it is.
    """
    try:
        if len(orjson.dumps(data)) >= len(text.strip()):
            return
    except TypeError:
        raise InputError(
            f"objects and lists nest more than {MAX_NESTING} levels deep in this line"
        ) from None
    import json  # the standard parser, for its hook that sees every key

    try:
        pairs = json.loads(text, object_pairs_hook=_members)
    except (ValueError, RecursionError):
        return  # orjson accepted it; anything the standard parser refuses has no pairs
    found = _first_repeated(pairs, "")
    if found is not None:
        path, key = found
        raise InputError(
            f"the key {_shown(key)} is given more than once in one object; "
            "each field may appear only once",
            field=path or None,
        )


def _first_repeated(value: Any, path: str) -> tuple[str, str] | None:
    """The path of the first repeated key inside a value parsed by :func:`_members`."""
    if isinstance(value, _Members):
        if value.repeated:
            key = value.repeated[0]
            return (f"{path}.{key}" if path else key), key
        for key, item in value.items():
            found = _first_repeated(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_repeated(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _shown(value: Any) -> str:
    """A value quoted for a message: escaped (no control character reaches a terminal)
    and shortened."""
    shown = repr(value)
    return shown if len(shown) < 60 else shown[:57] + "...'"


def describe_validation(exc: ValidationError, kind: str) -> InputError:
    """Turn pydantic's errors into messages naming the field and the reason: one per
    field (an :class:`InputErrors` when several fields are wrong)."""
    problems: dict[str | None, InputError] = {}
    for error in exc.errors(include_url=False):
        problem = _describe_error(error, kind)
        problems.setdefault(problem.field, problem)
    found = list(problems.values())
    return found[0] if len(found) == 1 else InputErrors(found)


def _describe_error(error: Any, kind: str) -> InputError:
    """One of pydantic's errors as a message naming the field and the reason."""
    loc = [str(p) for p in error["loc"]]
    if loc and loc[0] == kind:
        loc = loc[1:]
    field = ".".join(loc) or None
    kind_article = f"an {kind}" if kind[0] in "AEIOU" else f"a {kind}"
    error_type = error["type"]
    given = error.get("input")
    context = error.get("ctx") or {}
    if error_type == "missing":
        reason = f"is required for {kind_article} entry"
    elif error_type == "extra_forbidden":
        reason = f"is not a field of {kind_article} entry"
    elif error_type == "string_pattern_mismatch" and context.get("pattern") == SUBJECT_PATTERN:
        return InputError(SUBJECT_RULE, field=field)
    elif error_type == "string_pattern_mismatch" and context.get("pattern") in (
        TEXT_PATTERN,
        NAME_PATTERN,
    ):
        assert isinstance(given, str)
        return InputError(
            text_problem(given, name=context.get("pattern") == NAME_PATTERN), field=field
        )
    elif error_type == "string_too_long":
        size = len(given) if isinstance(given, str) else "too many"
        return InputError(
            f"is {size} characters long; it may hold at most "
            f"{context.get('max_length')} characters",
            field=field,
        )
    elif error_type == "too_long":
        return InputError(
            f"holds {context.get('actual_length')} items; it may hold at most "
            f"{context.get('max_length')}",
            field=field,
        )
    else:
        message = error["msg"].replace("Input should be", "must be")
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if ": " in message and field is None and message.split(":", 1)[0].isidentifier():
            field, message = message.split(": ", 1)
        elif ": " in message and field is not None and message.startswith(field + "."):
            field, message = message.split(": ", 1)  # e.g. personal.name: ...
        reason = message
        if error_type not in ("model_type",) and isinstance(given, (str, int, bool)):
            reason = f"{reason} (given {_shown(given)})"
    return InputError(reason, field=field)
