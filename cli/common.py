"""What every command shares: the typer app, the store option, output and errors.

Commands stay thin: parse, call the Python API, render.  Errors a user can cause are
:class:`ledger.errors.LedgerError`; :func:`run` turns them into a message on standard
error and the exit code of ``cli.md``, never a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

import typer
import typer.core

# The consoles are cli.consoles' (re-exported: every command imports them from here).
from cli.arguments import hoisted
from cli.consoles import LazyConsole as LazyConsole
from cli.consoles import disclose_rules as disclose_rules
from cli.consoles import emit_csv as emit_csv
from cli.consoles import err as err
from cli.consoles import escape as escape
from cli.consoles import fitted_width as fitted_width
from cli.consoles import out as out
from ledger.errors import (
    ConflictError,
    InputError,
    InputErrors,
    LedgerError,
    StoreUnavailable,
    UsageError,
)

if TYPE_CHECKING:
    from ledger.application import CaseLedger

_INVOKED: list[Any] = []
"""The groups and the command this invocation runs, outermost first (by
:class:`CommandGroup`): the parameters whose option names an error's fields become."""


class CommandGroup(typer.core.TyperGroup):
    """A command group that remembers the command it runs, so that an error from below
    can be told in that command's option names (:func:`in_cli_words`).  Every group of
    the app is one (``typer.Typer(cls=CommandGroup)``)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        _INVOKED.extend(c for c in (self, command) if c is not None and c not in _INVOKED)
        return name, command, rest


#: The help of the options every question shares (``status``, ``why``, ``clocks``, ``due``...).
AS_OF_HELP: Final = (
    "The record as it stood at T: only entries recorded up to T count. YYYY-MM-DD (the end "
    "of that day, Europe/London) or an ISO 8601 date and time (with an offset, or "
    "Europe/London). Default: now."
)
ON_HELP: Final = (
    "The world as at D: only entries that happened (occurred_at) up to D count, and running "
    "clocks are measured to D. Same forms as --as-of. Default: now."
)
JSON_HELP: Final = "Print JSON for programs (and nothing else on standard output)."

app = typer.Typer(
    cls=CommandGroup,
    name="caseledger",
    help=(
        "An immutable, verifiable ledger of the decisions that follow a child's death or "
        "serious harm: whether to hold a case review, on what information, by whom, and "
        "on time or not."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Session:
    """Per-invocation state: the store URL and the opened ledger."""

    store: str | None
    ledger: CaseLedger | None = field(default=None)

    def open(self, create: bool = False, vacant_as_empty: bool = False) -> CaseLedger:
        """Open the store once, on first use by a command; only a command that records
        passes ``create`` (a query on a store that is not there exits 4, creating
        nothing).  ``vacant_as_empty`` (a dry run) answers from an empty store in memory
        where none exists yet, so checking a first import creates nothing either."""
        if self.ledger is None:
            # lazy: the write side's application (catalogue, domain, store) costs ~110 ms,
            # which `caseledger --help` and a command's --help do not need
            from ledger.application import open_store

            self.ledger = open_store(self.store, create=create, vacant_as_empty=vacant_as_empty)
            _OPEN_LEDGERS.append(self.ledger)
        return self.ledger


_OPEN_LEDGERS: list[CaseLedger] = []


def close_open_ledgers() -> None:
    """Close the stores this invocation opened (connections go back to the server)."""
    while _OPEN_LEDGERS:
        _OPEN_LEDGERS.pop().close()


STORE_HELP = (
    "The store: a file path or sqlite:///path (SQLite, created by the first recording "
    "command), or "
    "postgresql://user[:password]@host[:port]/dbname. Default: caseledger.db here."
)


@app.callback()
def main(
    ctx: typer.Context,
    store: str | None = typer.Option(
        None, "--store", envvar="CASELEDGER_STORE", help=STORE_HELP, show_envvar=True
    ),
) -> None:
    """caseledger: the record of case-review decisions, as it stood on any date."""
    ctx.obj = Session(store)


def session(ctx: typer.Context) -> Session:
    """The invocation's session (set by the app callback)."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Session)
    return obj


def ledger(
    ctx: typer.Context, *, create: bool = False, vacant_as_empty: bool = False
) -> CaseLedger:
    """Open (once) and return the ledger for this invocation.  ``create=True`` is the
    one mark of a command that may create a new store (recording commands, ``users
    add``, ``policy set``); every other command only opens a store that exists
    (``vacant_as_empty``: or none, as an empty one, for a dry run)."""
    return session(ctx).open(create=create, vacant_as_empty=vacant_as_empty)


def emit_json(value: Any) -> None:
    """Print JSON for programs on standard output, and nothing else."""
    import orjson  # lazy: loading its library costs ~10 ms of a cold `--help`

    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


#: The help of ``--rules FILE`` on every command that judges clocks, written once.
RULES_HELP = (
    "A local clock rules file ([[clocks]] tables with a regime) laid over the shipped rule "
    "packs, or $CASELEDGER_RULES; every answer judged with it says so (docs/clocks.md, "
    '"Rules that change").'
)
RULES_ENV = "CASELEDGER_RULES"


def fail_usage(reason: str, field: str | None = None) -> None:
    """Stop with exit code 2 and a clear message."""
    raise UsageError(reason, field=field)


_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Text with every control or bidirectional character written as an escape
    (``\\x1b``), so a message quoting what a user gave cannot drive the terminal."""
    return _UNSAFE.sub(lambda m: "\\" + f"u{ord(m.group()):04x}", text)


def _undecodable(argv: list[str]) -> str | None:
    """The first argument that is not valid UTF-8 (the shell passed raw bytes), if any."""
    for number, arg in enumerate(argv, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return f"argument {number} ({terminal_safe(ascii(arg))}) is not valid UTF-8 text"
    return None


EXIT_CODES: Final[dict[type[LedgerError], int]] = {
    InputError: 2,
    ConflictError: 3,
    StoreUnavailable: 4,
    LedgerError: 1,
}
"""The exit code of each kind of error (``cli.md``); an error has that of the nearest of
these classes it is an instance of (a failed verification, a refused witness: 1)."""


def exit_code(error: LedgerError) -> int:
    """The exit code ``cli.md`` gives ``error``."""
    return next(EXIT_CODES[c] for c in type(error).__mro__ if c in EXIT_CODES)


CLI_REASONS: Final[dict[str, str]] = {
    "cannot-act-as": (
        "the database refuses to act as {user}: the server's login role must be a member "
        "of {user}'s role (GRANT ... TO the login; docs/hosting.md)"
    ),
    "no-signing-key": (
        "checkpoints are signed: give --signing-key FILE or set CASELEDGER_SIGNING_KEY "
        "(make a key with: caseledger keys signing --out FILE)"
    ),
    "not-a-key-file": (
        "{path} is not a caseledger key (expected a base64 AES-256 key; "
        "make one with: caseledger keys new --out FILE)"
    ),
    "not-enrolled": (
        "{actor} is not enrolled in this store; an admin can enrol them "
        "with: caseledger users add {actor} --role ROLE"
    ),
    "not-enrolled-as": (
        "{actor} is enrolled as {roles}, not {role}; choose one of those with --role"
    ),
    "agency-needed": "a user with the agency role needs --agency NAME",
    "no-approver": (
        "{why}; a {kind} in a case under {regime} is approved only by a user enrolled as "
        "{roles} (nobody enrolled may; an admin enrols the decision-maker with: "
        "caseledger users add NAME --role {role})"
    ),
    "client-policy": (
        "{env} is no longer read: a store's policy is part of its record. An admin changes "
        "it with: caseledger policy set FILE --reason TEXT (unset {env} to go on)"
    ),
    "no-store": (
        "there is no caseledger store at {where}: nothing was created (only recording "
        "commands and `caseledger demo` create a store; check --store or CASELEDGER_STORE)"
    ),
    "period-reversed": "--from is after --to",
    "bad-rows-blocked": (
        "{bad} {rows} of {tracker} cannot be imported (listed above); nothing was written. "
        "Fix them in the tracker or the mapping, or pass --skip-bad-rows to record the "
        "other rows."
    ),
    "since-with-bundle": (
        "--since checks the store against a lodged checkpoint; it does not apply to a "
        "bundle (check a bundle with --public-key and --expect-root instead)"
    ),
    "filter-with-case": (
        "--stage and --regime filter the list of every case; give no CASE with them"
    ),
    "not-an-earlier-bundle": (
        "{out} is not an earlier caseledger bundle ({why_not}), so --replace does not "
        "replace it; nothing was changed: choose a new name"
    ),
    "bundle-file-exists": (
        "{out} already exists; choose a new file name, or --replace an earlier bundle"
    ),
    "bundle-folder-taken": (
        "{out} already exists and is not an empty folder; choose a new folder, or "
        "--replace an earlier bundle"
    ),
    "personal-value-in-bundle": (
        "the bundle would hold a personal value: {where}. Nothing was exported. The entry "
        "was recorded before the ledger refused personal values in the hashed record (or "
        "written around it); an export that includes personal data "
        "(--include-personal-data) is still possible, or ask the store's operator."
    ),
}
"""How the CLI words the refusals (by the ledger's ``code``) whose help is a command or
an option: the ledger says what is wrong in its own words, the CLI says what to type."""


def _parameter_names() -> dict[str, str]:
    """Each parameter of the running command (and of its groups) by its Python name: the
    option that sets it (``as_of``: ``--as-of``), or an argument's metavar (``CASE``)."""
    names: dict[str, str] = {}
    for command in _INVOKED:
        for param in command.params:
            if param.name and param.opts:
                option = param.param_type_name == "option"
                names[param.name] = param.opts[0] if option else param.name.upper()
    return names


def _cli_reason(error: LedgerError) -> str | None:
    """The CLI's wording of a refusal with a ``code``, or None to keep the ledger's (no
    code, or a wording that needs a value the error does not give)."""
    template = CLI_REASONS.get(error.code or "")
    try:
        return template.format_map(error.params) if template is not None else None
    except (KeyError, IndexError, ValueError):
        return None


def _problem_in_cli_words(problem: InputError, names: dict[str, str]) -> InputError:
    if isinstance(problem, InputErrors):
        worded = [_problem_in_cli_words(p, names) for p in problem.problems]
        return InputErrors(worded, more_lines=problem.more_lines)
    reason = _cli_reason(problem) or problem.reason
    field = problem.field
    if field is not None and problem.line is None and problem.within is None:
        field = names.get(field, field)  # not a field of an input line or a document
    if reason == problem.reason and field == problem.field:
        return problem
    return problem.restated(reason, field)


def input_in_cli_words(error: InputError) -> InputError:
    """Bad input as this command tells it (:func:`in_cli_words`), still an input error:
    for ``--json``'s list of problems too."""
    return _problem_in_cli_words(error, _parameter_names())


def in_cli_words(error: LedgerError) -> LedgerError:
    """``error`` as this command tells it: a field that is one of the command's
    parameters named by its option (``role``: ``--role``), and a refusal with a ``code``
    of :data:`CLI_REASONS` worded with the command or option that helps."""
    if isinstance(error, InputError):
        return input_in_cli_words(error)
    reason = _cli_reason(error)
    if reason is None:
        return error
    return LedgerError(reason, code=error.code, params=error.params)


def fit_consoles() -> None:
    """Size both consoles from ``COLUMNS`` as it is now (rich reads it only when a console
    is built): a run in a process that ran others (the demo's tour, the tests) fits the
    width it is given, not the one the first run saw.  A console not built yet is
    fitted when it is (:class:`LazyConsole`)."""
    width = fitted_width()
    for console in (out, err):
        if isinstance(console, LazyConsole) and not console.is_built():
            continue
        # rich's width setter; None (typed int there) means "ask the terminal", as at start
        console.width = cast(int, width)


def run(argv: list[str] | None = None, *, group: Callable[..., Any] | None = None) -> None:
    """The console entry point: each of the ledger's errors told in the command's words
    (:func:`in_cli_words`) and ended with ``cli.md``'s exit code (:data:`EXIT_CODES`).

    Usage errors found by typer already exit 2 with typer's own message.  Arguments that
    are not UTF-8 are refused first, and no message sends a control character raw.
    ``group`` is the click group to run instead of the whole app (:mod:`cli.start`'s root
    help, built without importing the commands).
    """
    outer = _INVOKED[:]  # a run inside a command (the demo's tour) gives it back after
    _INVOKED.clear()
    fit_consoles()
    try:
        args = sys.argv[1:] if argv is None else list(argv)
        undecodable = _undecodable(args)
        if undecodable is not None:
            raise UsageError(undecodable)
        (group or app)(args=hoist_store(args), prog_name="caseledger")
    except LedgerError as exc:
        show_error(in_cli_words(exc))
        raise SystemExit(exit_code(exc)) from None
    except BrokenPipeError:
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        err.print("interrupted: nothing more was written")
        raise SystemExit(130) from None
    finally:
        close_open_ledgers()
        _INVOKED[:] = outer


def show_error(exc: LedgerError) -> None:
    """A refusal on standard error: one line, or for several problems a count and one
    indented line each (line, field, reason)."""
    if isinstance(exc, InputErrors):
        count = len(exc.problems)
        more = f" (and {exc.more_lines} more lines)" if exc.more_lines else ""
        err.print(f"[bold red]error:[/] {count} problems{more}; nothing was written:")
        for line in str(exc).splitlines():
            err.print(f"  {escape(terminal_safe(line))}")
        return
    err.print(f"[bold red]error:[/] {escape(terminal_safe(str(exc)))}")


def hoist_store(args: list[str]) -> list[str]:
    """``--store`` is the app's option, but people write it after the command too
    (``caseledger status --store X``): move it to the front, where typer reads it.
    Nothing after ``--`` is touched."""
    front, rest = hoisted(args)
    return front + rest


def debug_enabled() -> bool:
    """``CASELEDGER_DEBUG=1`` shows internal tracebacks (never needed by users)."""
    return os.environ.get("CASELEDGER_DEBUG") == "1"


@contextmanager
def phase_progress(enabled: bool) -> Iterator[Callable[[str, int, int | None], None]]:
    """A transient progress bar on standard error for each phase of a long operation
    (``projections.api``'s ``progress``: what, done, total); silent for programs
    (``--json``) and pipes."""
    if not enabled or not err.is_terminal:
        yield lambda what, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def advance(what: str, done: int, total: int | None) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield advance
