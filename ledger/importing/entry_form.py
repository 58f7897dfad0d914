"""One entry from its fields as a person types them: the entry commands' options
(``caseledger decide CASE --outcome review ...``), or a web form's inputs.

Each field is given in its Python form (a ``bool``, a ``dict``, a list of source objects)
or as typed: ``yes``/``no`` for a flag, ``key=value`` items or ``@file.json`` for a
mapping (``criteria`` as ``name=finding:reason``), ``title|ref[|sha256]`` items for
sources.  The fields are assembled into one wire-form line that goes through exactly the
validation of ``caseledger record``, so the two can never disagree; every problem of
every field is reported at once, each named by its field (``decided_by``, ``criteria
harm.reason``) in the entry type's field order and placed on no line.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args, get_origin

import orjson
from pydantic import BaseModel

from ledger.application import ParsedLine, validate_lines
from ledger.catalogue.models import MAX_LINE_BYTES, MODELS_BY_TYPE
from ledger.catalogue.registry import KINDS
from ledger.errors import InputError, each_problem, gathered

#: The command that records each entry type at the command line (``caseledger decide``),
#: from the registry of event types.
ENTRY_COMMANDS: Final[Mapping[str, str]] = {kind.name: kind.command for kind in KINDS}


def unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip ``Annotated`` and ``| None``; return the core type and whether optional."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            annotation = args[0] if len(args) == 1 else str
        else:
            return annotation, optional


def choices_of(annotation: Any) -> list[str]:
    """The vocabulary of a field (or of a list field's items): the values of its
    ``Literal``, or none.  The entry commands offer it (prompts, completion) and the web
    forms show it as their choices, so neither can disagree with the catalogue."""
    core, _ = unwrap(annotation)
    if get_origin(core) is list:
        core, _ = unwrap(get_args(core)[0])
    if get_origin(core) is Literal:
        return [str(a) for a in get_args(core)]
    return []


def key_choices_of(annotation: Any) -> list[str]:
    """The vocabulary of a mapping field's keys (``criteria``: the criteria's names), or
    none."""
    core, _ = unwrap(annotation)
    if get_origin(core) is dict:
        return choices_of(get_args(core)[0])
    return []


def field_kind(annotation: Any) -> str:
    """How a field is typed: ``bool``, ``list``, ``mapping``, ``object-list`` or ``scalar``."""
    core, _ = unwrap(annotation)
    origin = get_origin(core)
    if core is bool:
        return "bool"
    if origin is list:
        (item,) = get_args(core)
        item_core, _ = unwrap(item)
        if isinstance(item_core, type) and issubclass(item_core, BaseModel):
            return "object-list"
        return "list"
    if origin is dict or (isinstance(core, type) and issubclass(core, BaseModel)):
        return "mapping"
    return "scalar"


def entry_fields(entry_type: str) -> dict[str, str]:
    """The fields a person gives for an entry type (all but ``type`` and ``case``), in the
    catalogue's order, each with its kind; an unknown type is a usage error."""
    model = MODELS_BY_TYPE.get(entry_type)
    if model is None:
        raise InputError(f"{entry_type!r} is not an entry type of the catalogue", field="type")
    return {
        name: field_kind(info.annotation)
        for name, info in model.model_fields.items()
        if name not in ("type", "case")
    }


def parse_bool(value: Any, field: str) -> bool | None:
    """A flag as typed: yes/no (y, true, 1 / n, false, 0), or unknown (None)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    lowered = str(value).strip().lower()
    if lowered in ("yes", "y", "true", "1"):
        return True
    if lowered in ("no", "n", "false", "0"):
        return False
    if lowered in ("unknown", "null", "none", ""):
        return None
    raise InputError(f"{value!r} is not yes or no", field=field)


def load_json_file(spec: str, field: str) -> Any:
    """The JSON of an ``@file`` value, read up to the size of one input line (so
    ``@/dev/zero`` cannot make the command read for ever)."""
    path = Path(spec[1:])
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_LINE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist", field=field) from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a JSON file", field=field) from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read ({exc.strerror or exc})", field=field) from None
    if len(data) > MAX_LINE_BYTES:
        raise InputError(
            f"{path} is larger than {MAX_LINE_BYTES} bytes, the most one entry may hold",
            field=field,
        )
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc})", field=field) from None


def parse_mapping(items: Any, field: str) -> Any:
    """A mapping as typed (``key=value`` items, or one ``@file.json``), or given as one."""
    if isinstance(items, Mapping):
        return dict(items)
    if isinstance(items, str):
        items = [items]
    if len(items) == 1 and items[0].startswith("@"):
        value = load_json_file(items[0], field)
        if not isinstance(value, dict):
            raise InputError("the file must hold one JSON object", field=field)
        return value
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{item!r} is not of the form key=value", field=field)
        key = key.strip()
        if field == "criteria":
            finding, colon, reason = value.partition(":")
            if not colon:
                raise InputError(
                    f"{item!r}: give the finding and the reason as {key}=met:reason", field=field
                )
            result[key] = {"finding": finding.strip(), "reason": reason.strip()}
        elif field == "factors":
            result[key] = value
        else:
            try:
                result[key] = orjson.loads(value)
                if (
                    isinstance(result[key], (int, float))
                    and not value.strip().lstrip("-").isdigit()
                ):
                    result[key] = value
            except orjson.JSONDecodeError:
                result[key] = value
    return result


def parse_sources(items: Any, field: str) -> list[Any]:
    """Sources as typed (``title|ref`` or ``title|ref|sha256`` items, or one
    ``@file.json``), or given as objects."""
    if isinstance(items, str):
        items = [items]
    if len(items) == 1 and isinstance(items[0], str) and items[0].startswith("@"):
        value = load_json_file(items[0], field)
        return value if isinstance(value, list) else [value]
    sources: list[Any] = []
    for item in items:
        if not isinstance(item, str):
            sources.append(item)
            continue
        parts = item.split("|")
        if len(parts) not in (2, 3):
            raise InputError(f"{item!r} is not 'title|ref' or 'title|ref|sha256'", field=field)
        source = {"title": parts[0], "ref": parts[1]}
        if len(parts) == 3:
            source["sha256"] = parts[2]
        sources.append(source)
    return sources


def assemble(
    entry_type: str, case: str, fields: Mapping[str, Any], kinds: Mapping[str, str]
) -> tuple[dict[str, Any], list[InputError]]:
    """The one wire-form line the fields give, and the problems of the fields whose value
    cannot even be read (left out of the line).  A field given as None or ``[]`` is left
    out; a field that is not one of the type's is passed on for the catalogue to refuse."""
    line: dict[str, Any] = {"type": entry_type, "case": case}
    problems: list[InputError] = []
    for name, value in fields.items():
        if value is None or value == []:
            continue
        kind = kinds.get(name, "scalar")
        try:
            if kind == "bool":
                line[name] = parse_bool(value, name)
            elif kind == "mapping":
                line[name] = parse_mapping(value, name)
            elif kind == "object-list":
                line[name] = parse_sources(value, name)
            else:
                line[name] = value
        except InputError as exc:
            problems.append(exc)
    return line, problems


_PATH_PART = re.compile(r"[^.\[\]]+")


def on_fields(error: InputError, order: Mapping[str, int]) -> InputError:
    """The problems of one entry, each named by its field and placed on no line, in the
    order of ``order`` (a field's position); a nested field keeps its inner part
    (``criteria harm.reason``, ``sources item 2.ref``); a problem of no field of the form
    (``type``, ``actor``) comes first and names none: its reason says it all."""
    named: list[tuple[int, InputError]] = []
    for problem in each_problem(error):
        parts = _PATH_PART.findall((problem.field or "").replace(".[key]", ""))
        top = parts[0] if parts else ""
        if top not in order:
            named.append((-1, InputError(problem.reason)))
            continue
        inner = ".".join(f"item {int(p) + 1}" if p.isdigit() else p for p in parts[1:])
        field = f"{top} {inner}" if inner else top
        named.append((order[top], InputError(problem.reason, field=field)))
    named.sort(key=lambda item: item[0])
    return gathered([problem for _, problem in named])


def field_order(entry_type: str) -> dict[str, int]:
    """Each field's position in the form: ``case``, the type's fields, then ``role``."""
    names = ["case", *entry_fields(entry_type), "role"]
    return {name: i for i, name in enumerate(names)}


def validated_entry(entry_type: str, case: str, fields: Mapping[str, Any]) -> list[ParsedLine]:
    """The entry validated, or every problem of its fields at once (those that could not
    be read, and the catalogue's for the rest, without repeating a field), each named by
    its field (:func:`on_fields`)."""
    kinds = entry_fields(entry_type)
    line, unread = assemble(entry_type, case, fields, kinds)
    parsed, found = validate_lines([orjson.dumps(line)])
    unread_fields = {p.field for p in unread}
    problems = [
        *unread,
        *(p for e in found.found for p in each_problem(e) if p.field not in unread_fields),
    ]
    if problems:
        raise on_fields(gathered(problems), field_order(entry_type))
    return parsed


__all__ = [
    "ENTRY_COMMANDS",
    "assemble",
    "choices_of",
    "entry_fields",
    "field_kind",
    "field_order",
    "key_choices_of",
    "on_fields",
    "parse_bool",
    "parse_mapping",
    "parse_sources",
    "unwrap",
    "validated_entry",
]
