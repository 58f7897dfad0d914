"""A cold ``caseledger why``, ``timeline``, ``status``, ``due``, ``clocks`` or ``delays``
without typer: their plain forms parsed from a generated table.

typer 0.29 coerces every parameter through a pydantic ``TypeAdapter``: importing typer and
its adapters costs more than the whole of issue 18's budget for a cold ``why`` (6x a cold
``python -c pass``).  The read commands of :data:`cli.command_index.FAST_COMMANDS` (a table
``python -m cli.reference`` generates from the real typer commands, and ``--check``
checks) are parsed here when they are given in a plain form: the root's ``--store`` (or
``CASELEDGER_STORE``), the command's one argument, and each of its options at most once
(one that typer lets be repeated, as often as given), as ``--opt VALUE``,
``--opt=VALUE`` or a flag, in any order.  Anything else (a help, an
unknown or repeated option, a value that starts with ``-``, ``--``, a missing or second
argument, completion, text that is not UTF-8) is left to typer, and so is every error the
command meets: :func:`answer` then gives up before printing anything, and typer runs the
command again from the start, so every message and exit code is typer's own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from cli.arguments import hoisted
from cli.command_index import FAST_COMMANDS, ROOT_OPTIONS, FastCommand, ParsedOption

if TYPE_CHECKING:
    from ledger.application import CaseLedger

COMPLETING = "_CASELEDGER_COMPLETE"
"""Set by the shell when it asks for completions (click's protocol): typer answers."""


class FastCall(NamedTuple):
    """A command the fast path runs: its name and its parameters by their Python names
    (every option of the table: its value, None where not given, a flag True or False)."""

    command: str
    params: dict[str, Any]


def _option_in(arg: str, options: dict[str, ParsedOption]) -> tuple[ParsedOption, str | None]:
    """The option ``arg`` spells (``--opt`` or ``--opt=VALUE``) and its inline value;
    KeyError if it is none of ``options``."""
    name, equals, value = arg.partition("=")
    return options[name], (value if equals else None)


def parse(args: list[str], environ: dict[str, str] | None = None) -> FastCall | None:
    """The fast call these arguments make, or None for typer to parse them (any form
    this parser does not take exactly as typer would)."""
    env = os.environ if environ is None else environ
    if COMPLETING in env:
        return None
    front, rest = hoisted(args)
    command = next((c for c in FAST_COMMANDS if rest[:1] == [c.name]), None)
    if command is None:
        return None
    root = _parsed(front, {o.opt: o for o in ROOT_OPTIONS}, None)
    own = _parsed(rest[1:], {o.opt: o for o in command.options}, command)
    if root is None or own is None:
        return None
    for values, options in ((root, ROOT_OPTIONS), (own, command.options)):
        for option in options:
            if values[option.name] is None and option.envvar is not None:
                values[option.name] = env.get(option.envvar) or None  # click: empty is unset
            value = values[option.name]
            if value is None and option.required:
                return None  # typer says it is missing, in its words
            if value is None or option.flag or option.multiple or option.kind == "text":
                continue
            if option.kind == "path":
                values[option.name] = Path(value)  # as typer gives it
            elif value.isascii() and value.isdigit():
                values[option.name] = int(value)  # digits only: every other form is typer's
            else:
                return None
    return FastCall(command.name, {**own, **root})


def _parsed(
    args: list[str], options: dict[str, ParsedOption], command: FastCommand | None
) -> dict[str, Any] | None:
    """Each option's value (and, for a command, its argument's) from ``args``, or None
    if any of them is not in a form this parser takes exactly as typer does."""
    values: dict[str, Any] = {o.name: (False if o.flag else o.default) for o in options.values()}
    seen: set[str] = set()
    argument: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            try:
                option, inline = _option_in(arg, options)
            except KeyError:
                return None  # a help, --, an option typer knows and this table not
            if option.name in seen and not option.multiple:
                return None
            seen.add(option.name)
            if option.flag:
                if inline is not None:
                    return None
                values[option.name] = True
            elif inline is not None or (i + 1 < len(args) and not args[i + 1].startswith("-")):
                if inline is None:
                    inline = args[i + 1]
                    i += 1
                if option.multiple:
                    values[option.name] = [*(values[option.name] or []), inline]
                else:
                    values[option.name] = inline
            else:
                return None
        elif command is None or command.argument is None or argument is not None:
            return None  # the root takes no argument here; a command one, or none
        else:
            argument = arg
        i += 1
    if command is not None and command.argument is not None:
        if argument is None and command.required:
            return None
        values[command.argument] = argument
    return values


def _plain_text(args: list[str]) -> bool:
    """Whether every argument is UTF-8 text (else typer's run refuses it, in its words)."""
    try:
        for arg in args:
            arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: The parameters of a fast command that are the CLI's (where to read, how to print), not
#: its facade's: every other one is passed to the facade function of the same name.
_CLI_ONLY = frozenset({"store", "as_json", "as_csv"})


class _GiveUp(Exception):
    """The fast path met an error: typer runs the command again and tells it."""


def answer(call: FastCall) -> None:
    """Run the command as :mod:`cli.commands.queries` does (``why``, ``timeline`` or
    ``status``); :class:`_GiveUp` on any of the ledger's errors, before anything is
    printed (but the transient bar of an index catching up, on standard error)."""
    # lazy: the store and the read side (~150 ms at start-up), once the arguments are plain
    from ledger.application.reading import open_reader
    from ledger.errors import LedgerError
    from projections import api

    p = call.params
    if call.command not in ("why", "timeline", "status", "due", "clocks", "delays"):
        raise _GiveUp(call.command)  # a command added to the table runs here only once written
    if p.get("as_csv") and p["as_json"]:
        raise _GiveUp("--json and --csv")  # typer's command refuses it, in its words
    led = None

    def opened() -> CaseLedger:
        nonlocal led
        if led is None:
            led = open_reader(p["store"])
        return cast("CaseLedger", led)

    try:
        # every parameter but the CLI's own is the facade's, by the same name
        asked = {name: value for name, value in p.items() if name not in _CLI_ONLY}
        ask = getattr(api, call.command)
        report: Any
        if call.command == "status":
            # lazy: rich's progress bar (~10 ms) is imported only for a large backlog
            from cli.commands.status_views import index_progress

            with index_progress() as progress:
                report = ask(opened, progress=progress, **asked)
        else:
            report = ask(opened, **asked)  # opened once the options are found good
    except LedgerError as exc:
        raise _GiveUp from exc
    finally:
        if led is not None:
            led.close()
    _show(call, report)


def _show(call: FastCall, report: Any) -> None:
    """Print the answer as the typer command does."""
    p = call.params
    if call.command in ("due", "clocks") or (
        call.command == "status" and not (p["as_json"] and p["case"] is not None)
    ):
        # lazy: the consoles (rich, ~40 ms once used) only for local rules' disclosure
        from cli.consoles import disclose_rules

        disclose_rules(report.local_rules, to_stderr=p["as_json"] or p["as_csv"])
    if p["as_json"]:
        # cli.common.emit_json's bytes; cli.common imports typer
        import orjson  # lazy: only the JSON answer needs it

        sys.stdout.buffer.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
        return
    if p.get("as_csv"):
        # lazy: the consoles' module (~1 ms) only for a CSV answer
        from cli.consoles import emit_csv

        emit_csv(report.csv_rows())
        return
    # lazy: rich's panels and the CLI's consoles (~60 ms at start-up), for people only
    from cli.commands.assessment_views import show_clocks, show_delays
    from cli.commands.case_views import show_timeline, show_why
    from cli.commands.desk_views import show_due
    from cli.commands.status_views import show_status, show_statuses

    if call.command == "delays":
        show_delays(report)
    elif call.command == "clocks":
        shown, states = list(report.shown), list(report.states)
        show_clocks(shown, states, p["case"], report.as_of, report.on)
    elif call.command == "due":
        show_due(report)
    elif call.command == "why":
        show_why(report, report.as_of, report.on)
    elif call.command == "timeline":
        show_timeline(report)
    elif p["case"] is not None:
        show_status(report.to_json(), report.as_of, report.on)
    else:
        show_statuses(report.to_json(), report.as_of, report.on)


def run_fast(args: list[str]) -> bool:
    """Run these arguments on the fast path; False if typer must (nothing was printed)."""
    call = parse(args)
    if call is None or not _plain_text(args):
        return False
    try:
        answer(call)
    except _GiveUp:
        return False
    except BrokenPipeError:
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        # lazy: the console (rich, ~60 ms at start-up) only to say so, as cli.common.run does
        from cli.consoles import err

        err.print("interrupted: nothing more was written")
        raise SystemExit(130) from None
    return True
