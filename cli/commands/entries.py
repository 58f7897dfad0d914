"""One command per event type for people (``refer``, ``request-info``, ``decide`` ...).

The commands are generated from the catalogue's pydantic models: each field becomes an
option, the options are assembled into one wire-form line, and the line goes through
exactly the same validation and recording as ``caseledger record``, so the two can
never disagree.  Lists are repeated options; nested objects take ``key=value`` pairs
or ``@file.json``.

Every option is optional at the click level (help marks the required ones), so one run
reports every missing and every bad option at once, each named by its option
(``--rationale``), never as "line 1": the catalogue's field names are mapped to option
names in one place, :func:`on_options`, for every command.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args, get_origin

import orjson
import typer
from pydantic import BaseModel

from cli.commands.record import ROLE_HELP, problems_as_json, show_receipts
from cli.common import app, ledger
from ledger.application import validate_lines
from ledger.catalogue.models import FACTORS, MAX_LINE_BYTES
from ledger.catalogue.registry import KINDS, EventKind
from ledger.errors import InputError, each_problem, gathered

#: The command of each event type (``"DecisionMade"``: ``"decide"``), from the registry.
COMMAND_NAMES: Final[Mapping[str, str]] = {kind.name: kind.command for kind in KINDS}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
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


def _kind(annotation: Any) -> str:
    """How a field is entered at the command line."""
    core, _ = _unwrap(annotation)
    origin = get_origin(core)
    if core is bool:
        return "bool"
    if origin is list:
        (item,) = get_args(core)
        item_core, _ = _unwrap(item)
        if isinstance(item_core, type) and issubclass(item_core, BaseModel):
            return "object-list"
        return "list"
    if origin is dict or (isinstance(core, type) and issubclass(core, BaseModel)):
        return "mapping"
    return "scalar"


def _choices(annotation: Any) -> list[str]:
    core, _ = _unwrap(annotation)
    if get_origin(core) is list:
        core, _ = _unwrap(get_args(core)[0])
    if get_origin(core) is Literal:
        return [str(a) for a in get_args(core)]
    return []


def _help_for(name: str, annotation: Any, required: bool, kind: str) -> str:
    parts = []
    choices = _choices(annotation)
    if choices:
        parts.append("one of " + ", ".join(choices))
    core, _ = _unwrap(annotation)
    if core is date:
        parts.append("a date, YYYY-MM-DD")
    if kind == "bool":
        parts.append("yes or no" + (" (or unknown)" if not required else ""))
    if kind == "list":
        parts.append("repeat the option for each item")
    if kind == "mapping":
        if name == "criteria":
            parts.append(
                "repeat as name=finding:reason (finding met, not-met or unclear), or @file.json"
            )
        elif name == "factors":
            parts.append("repeat as factor=text (" + ", ".join(FACTORS) + "), or @file.json")
        else:
            parts.append("repeat as key=value (values in JSON where not plain text), or @file.json")
    if kind == "object-list":
        parts.append("repeat as 'title|ref' or 'title|ref|sha256', or @file.json")
    if required:
        parts.append("required")
    return "; ".join(parts) or name


def _parse_bool(value: str, field: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("yes", "y", "true", "1"):
        return True
    if lowered in ("no", "n", "false", "0"):
        return False
    if lowered in ("unknown", "null", "none", ""):
        return None
    raise InputError(f"{value!r} is not yes or no", field=field)


def _load_json_file(spec: str, field: str) -> Any:
    """The JSON of an ``@file`` option value, read up to the size of one input line
    (so ``@/dev/zero`` cannot make the command read for ever)."""
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


def _parse_mapping(items: list[str], field: str) -> dict[str, Any]:
    if len(items) == 1 and items[0].startswith("@"):
        value = _load_json_file(items[0], field)
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


def _parse_sources(items: list[str], field: str) -> list[Any]:
    if len(items) == 1 and items[0].startswith("@"):
        value = _load_json_file(items[0], field)
        return value if isinstance(value, list) else [value]
    sources = []
    for item in items:
        parts = item.split("|")
        if len(parts) not in (2, 3):
            raise InputError(f"{item!r} is not 'title|ref' or 'title|ref|sha256'", field=field)
        source = {"title": parts[0], "ref": parts[1]}
        if len(parts) == 3:
            source["sha256"] = parts[2]
        sources.append(source)
    return sources


def option_name(field: str) -> str:
    """The command-line option of a catalogue field: ``decided_by`` is ``--decided-by``."""
    return "--" + field.replace("_", "-")


_PATH_PART = re.compile(r"[^.\[\]]+")


def on_options(error: InputError, options: dict[str, str]) -> InputError:
    """The problems of a one-entry command's line, each named by its option (``options``
    maps a field to its option, in the command's order) and placed on no line; a
    nested field keeps its inner part (``--criteria harm.reason``)."""
    named: list[tuple[int, InputError]] = []
    order = {field: i for i, field in enumerate(options)}
    for problem in each_problem(error):
        parts = _PATH_PART.findall((problem.field or "").replace(".[key]", ""))
        top = parts[0] if parts else ""
        code, params = problem.code, problem.params  # kept for the CLI's own words
        if top not in options:  # not an option (type, actor): the reason says it all
            named.append((-1, InputError(problem.reason, code=code, params=params)))
            continue
        inner = ".".join(f"item {int(p) + 1}" if p.isdigit() else p for p in parts[1:])
        field = f"{options[top]} {inner}" if inner else options[top]
        named.append(
            (order[top], InputError(problem.reason, field=field, code=code, params=params))
        )
    named.sort(key=lambda item: item[0])
    return gathered([problem for _, problem in named])


def _assemble(
    event_type: str, case: str, options: dict[str, Any], kinds: dict[str, str]
) -> tuple[dict[str, Any], list[InputError]]:
    """The one wire-form line the options give, and the problems of the options whose
    value cannot even be read (left out of the line)."""
    line: dict[str, Any] = {"type": event_type, "case": case}
    problems: list[InputError] = []
    for name, value in options.items():
        if value is None or value == []:
            continue
        kind = kinds[name]
        try:
            if kind == "bool":
                line[name] = _parse_bool(value, name)
            elif kind == "mapping":
                line[name] = _parse_mapping(value, name)
            elif kind == "object-list":
                line[name] = _parse_sources(value, name)
            else:
                line[name] = value
        except InputError as exc:
            problems.append(exc)
    return line, problems


def _validated(line: dict[str, Any], unread: list[InputError], options: dict[str, str]) -> Any:
    """The line validated, or every problem of the options at once (those that could not
    be read, and the catalogue's for the rest, without repeating a field)."""
    parsed, found = validate_lines([orjson.dumps(line)])
    unread_fields = {p.field for p in unread}
    problems = [
        *unread,
        *(p for e in found.found for p in each_problem(e) if p.field not in unread_fields),
    ]
    if problems:
        raise on_options(gathered(problems), options)
    return parsed


def _build_command(event_kind: EventKind, target: typer.Typer) -> None:
    """Add to ``target`` the command that records one entry of ``event_kind``."""
    event_type, model = event_kind.name, event_kind.model
    fields = [
        (name, info) for name, info in model.model_fields.items() if name not in ("type", "case")
    ]
    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter(
            "case",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[
                str, typer.Argument(help="The case reference, e.g. SCR-2026-001.")
            ],
        ),
    ]
    kinds: dict[str, str] = {}
    options = {"case": "CASE", **{name: option_name(name) for name, _ in fields}}
    options["role"] = "--role"
    for name, info in fields:
        kind = _kind(info.annotation)
        kinds[name] = kind
        required = info.is_required() and name != "occurred_at"
        opt = options[name]
        help_text = _help_for(name, info.annotation, required, kind)
        if name == "occurred_at":
            help_text = (
                "when it happened: YYYY-MM-DD or YYYY-MM-DDTHH:MM (Europe/London); default now"
            )
        py_type: Any = (
            list[str] | None if kind in ("list", "mapping", "object-list") else str | None
        )
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    py_type, typer.Option(opt, help=help_text, show_default=False)
                ],
            )
        )
    for name, annotation, default in (
        ("role", Annotated[str | None, typer.Option("--role", help=ROLE_HELP)], None),
        (
            "as_json",
            Annotated[bool, typer.Option("--json", help="Print JSON for programs.")],
            False,
        ),
    ):
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )

    def command(ctx: typer.Context, case: str, **given: Any) -> None:
        role = given.pop("role")
        as_json = given.pop("as_json")
        with problems_as_json(as_json):
            line, unread = _assemble(event_type, case, given, kinds)
            parsed = _validated(line, unread, options)  # before the store is opened
            led = ledger(ctx, create=True)
            try:
                receipts = led.record(parsed, led.recorder_for(role))
            except InputError as exc:
                raise on_options(exc, options) from None
        show_receipts(receipts, as_json)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = event_kind.help
    command.__name__ = event_kind.command.replace("-", "_")
    target.command(
        event_kind.command,
        epilog=f"Example: {event_kind.usage}  |  The same entry as JSON: caseledger record FILE",
        rich_help_panel="Record one entry",
    )(command)


def add_entry_commands(target: typer.Typer, kinds: Iterable[EventKind]) -> None:
    """Add one entry command per kind to ``target``, in the order given."""
    for kind in kinds:
        _build_command(kind, target)


add_entry_commands(app, KINDS)
