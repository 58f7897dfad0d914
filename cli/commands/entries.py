"""One command per event type for people (``refer``, ``request-info``, ``decide`` ...).

The commands are generated from the catalogue's pydantic models: each field becomes an
option, and the options go as typed to :func:`ledger.api.record_entry`, which assembles
them into one wire-form line with exactly the validation and recording of ``caseledger
record``, so the two can never disagree.  Lists are repeated options; nested objects take
``key=value`` pairs or ``@file.json``.

Every option is optional at the click level (help marks the required ones), so one run
reports every missing and every bad option at once, each named by its option
(``--rationale``), never as "line 1": the facade names each problem by its field, and
the field names are mapped to option names in one place, :func:`on_options`, for every
command.  At a terminal (never in a script, never with ``--json``) the required options
left out are asked for first, with the choices of a vocabulary offered
(:mod:`cli.commands.prompts`); the shell completes the case and those vocabularies
(:mod:`cli.completion`).
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Annotated, Any, Final

import typer

from cli.commands.prompts import (
    Asked,
    ask_missing,
    at_terminal,
    choices_of,
    complete_theme,
    is_themes,
)
from cli.commands.record import ROLE_HELP, problems_as_json, show_receipts
from cli.common import app, ledger
from cli.completion import complete_case, completing
from ledger.catalogue.models import FACTORS
from ledger.catalogue.registry import KINDS, EventKind
from ledger.errors import InputError, each_problem, gathered
from ledger.importing.entry_form import field_kind, unwrap

#: The command of each event type (``"DecisionMade"``: ``"decide"``), from the registry.
COMMAND_NAMES: Final[Mapping[str, str]] = {kind.name: kind.command for kind in KINDS}


def _help_for(name: str, annotation: Any, required: bool, kind: str) -> str:
    parts = []
    choices = choices_of(annotation)
    if choices:
        parts.append("one of " + ", ".join(choices))
    core, _ = unwrap(annotation)
    if core is date:
        parts.append("a date, YYYY-MM-DD")
    if kind == "bool":
        parts.append("yes or no" + (" (or unknown)" if not required else ""))
    if is_themes(annotation):
        parts.append(
            "a theme of the vocabulary (ledger/data/themes.toml; the shell completes them)"
        )
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


def option_name(field: str) -> str:
    """The command-line option of a catalogue field: ``decided_by`` is ``--decided-by``."""
    return "--" + field.replace("_", "-")


def on_options(error: InputError, options: dict[str, str]) -> InputError:
    """The problems of a one-entry command, each named by its option (``options`` maps a
    field to its option): the facade names them by field (``criteria harm.reason``), in
    the command's order and on no line.  An error naming no field of the command (the
    store, ``--role``) is returned as it is."""
    problems = each_problem(error)
    named: list[InputError] = []
    for problem in problems:
        top, _, inner = (problem.field or "").partition(" ")
        if problem.field is None or top not in options:
            named.append(problem)
            continue
        shown = f"{options[top]} {inner}" if inner else options[top]
        # the code and its values are kept for the CLI's own words (cli.common)
        named.append(
            InputError(problem.reason, field=shown, code=problem.code, params=problem.params)
        )
    if all(a is b for a, b in zip(named, problems, strict=True)):
        return error
    return gathered(named)


def _parameter(field: str) -> str:
    """The Python parameter for a field: a keyword (``PartnersDelegated.from``) gets a ``_``."""
    return f"{field}_" if keyword.iskeyword(field) else field


def field_for(parameter: str) -> str:
    """The field a parameter of :func:`_parameter` stands for."""
    name = parameter.removesuffix("_")
    return name if parameter.endswith("_") and keyword.iskeyword(name) else parameter


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
                str,
                typer.Argument(
                    help="The case reference, e.g. SCR-2026-001.", autocompletion=complete_case
                ),
            ],
        ),
    ]
    options = {"case": "CASE", **{name: option_name(name) for name, _ in fields}}
    options["role"] = "--role"
    asked: list[Asked] = []  # the required options a person at a terminal is asked for
    for name, info in fields:
        kind = field_kind(info.annotation)
        required = info.is_required() and name != "occurred_at"
        opt = options[name]
        prompt = Asked.of(name, opt, kind, info.annotation)
        if required:
            asked.append(prompt)
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
                _parameter(name),
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    py_type,
                    typer.Option(
                        opt,
                        help=help_text,
                        show_default=False,
                        autocompletion=(
                            completing(prompt.choices)
                            if prompt.choices
                            else complete_theme
                            if prompt.themes
                            else None
                        ),
                    ),
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
        given = {field_for(name): value for name, value in given.items()}
        # lazy: ledger.api (its result types) costs ~5 ms at start-up
        from ledger.api import record_entry

        if not as_json and at_terminal():
            given = ask_missing(event_kind.command, asked, given)
        with problems_as_json(as_json):
            try:  # the options are checked before the store is opened
                recorded = record_entry(
                    lambda: ledger(ctx, create=True), event_type, case, role=role, **given
                )
            except InputError as exc:
                raise on_options(exc, options) from None
        show_receipts(recorded, as_json)

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
