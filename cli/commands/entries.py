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
command.
"""

from __future__ import annotations

import inspect
from datetime import date
from typing import Annotated, Any, Literal, get_args, get_origin

import typer

from cli.commands.record import ROLE_HELP, problems_as_json, show_receipts
from cli.common import app, ledger
from ledger.catalogue.models import FACTORS, MODELS_BY_TYPE, Envelope
from ledger.errors import InputError, each_problem, gathered
from ledger.importing.entry_form import ENTRY_COMMANDS, field_kind, unwrap

COMMAND_NAMES = ENTRY_COMMANDS
"""The command of each entry type (kept under its old name for programs)."""

EXAMPLES: dict[str, str] = {
    "CaseReferred": (
        "caseledger refer SCR-2026-001 --regime wt2023 --subject 'Child A' "
        "--incident-date 2026-05-01 --aware-date 2026-05-02 --harm serious-harm "
        "--abuse-or-neglect suspected --home-area Northshire --referrer 'Northshire Police' "
        "--route statutory --summary 'Infant admitted with head injury.' "
        "--personal name='A Example' --personal date_of_birth=2025-11-03"
    ),
    "InformationRequested": (
        "caseledger request-info SCR-2026-001 --agency 'Northshire Police' "
        "--asked-for minimum-data --due 2026-05-12"
    ),
    "InformationReceived": (
        "caseledger receive-info SCR-2026-001 --agency 'Northshire Police' --involved yes "
        "--summary 'Two call-outs in 2025.'"
    ),
    "DiscussionHeld": (
        "caseledger discuss SCR-2026-001 --forum rapid-review-meeting "
        "--attendees 'Northshire Police' --attendees 'Northshire ICB' --summary 'Facts agreed.'"
    ),
    "DecisionMade": (
        "caseledger decide SCR-2026-001 --outcome review --decided-by 'Northshire County "
        "Council' --criteria abuse_or_neglect=met:'Injuries non-accidental' ... "
        "--rationale 'Reg 11 (a) met.' --nature 'LCSPR, systems method' "
        "--factors learning='Protocol gap' --relied-on SCR-2026-001#4   "
        "(or --criteria @criteria.json)"
    ),
    "DecisionDelayed": (
        "caseledger delay-decision SCR-2026-001 --reason 'Police disclosure pending' "
        "--expected-by 2026-06-20 --approved-by 'Chair, Northshire LSCB'"
    ),
    "EntryCorrected": (
        "caseledger correct SCR-2026-001 --corrects SCR-2026-001#5 "
        "--changes occurred_at=2026-05-04 --reason 'Typed the wrong date.'"
    ),
}


def _choices(annotation: Any) -> list[str]:
    core, _ = unwrap(annotation)
    if get_origin(core) is list:
        core, _ = unwrap(get_args(core)[0])
    if get_origin(core) is Literal:
        return [str(a) for a in get_args(core)]
    return []


def _help_for(name: str, annotation: Any, required: bool, kind: str) -> str:
    parts = []
    choices = _choices(annotation)
    if choices:
        parts.append("one of " + ", ".join(choices))
    core, _ = unwrap(annotation)
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
        named.append(InputError(problem.reason, field=shown))
    if all(a is b for a, b in zip(named, problems, strict=True)):
        return error
    return gathered(named)


def _build_command(event_type: str, model: type[Envelope]) -> None:
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
    options = {"case": "CASE", **{name: option_name(name) for name, _ in fields}}
    options["role"] = "--role"
    for name, info in fields:
        kind = field_kind(info.annotation)
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
        # lazy: ledger.api (its result types) costs ~5 ms at start-up
        from ledger.api import record_entry

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
    article = "an" if event_type[0] in "AEIOU" else "a"
    command.__doc__ = f"Record {article} {event_type} entry: {(model.__doc__ or '').strip()}"
    command.__name__ = COMMAND_NAMES[event_type].replace("-", "_")
    example = EXAMPLES.get(event_type) or f"caseledger {COMMAND_NAMES[event_type]} CASE ..."
    app.command(
        COMMAND_NAMES[event_type],
        epilog=f"Example: {example}  |  The same entry as JSON: caseledger record FILE",
        rich_help_panel="Record one entry",
    )(command)


for _type, _model in MODELS_BY_TYPE.items():
    _build_command(_type, _model)
