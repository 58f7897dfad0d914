"""What every command shares: the typer app, the store option, output and errors.

Commands stay thin: parse, call the Python API, render.  Errors a user can cause are
:class:`ledger.errors.LedgerError`; :func:`run` turns them into a message on standard
error and the exit code of ``cli.md``, never a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from ledger.application import CaseLedger, open_store
from ledger.errors import InputErrors, LedgerError, UsageError

app = typer.Typer(
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

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


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


def run(argv: list[str] | None = None) -> None:
    """The console entry point: map the ledger's errors to ``cli.md``'s exit codes.

    Usage errors found by typer already exit 2 with typer's own message.  Arguments that
    are not UTF-8 are refused first, and no message sends a control character raw.
    """
    try:
        args = sys.argv[1:] if argv is None else list(argv)
        undecodable = _undecodable(args)
        if undecodable is not None:
            raise UsageError(undecodable)
        app(args=hoist_store(args), prog_name="caseledger")
    except LedgerError as exc:
        show_error(exc)
        raise SystemExit(exc.exit_code) from None
    except BrokenPipeError:
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        err.print("interrupted: nothing more was written")
        raise SystemExit(130) from None
    finally:
        close_open_ledgers()


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
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--store" and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 2
            continue
        if arg.startswith("--store="):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def debug_enabled() -> bool:
    """``CASELEDGER_DEBUG=1`` shows internal tracebacks (never needed by users)."""
    return os.environ.get("CASELEDGER_DEBUG") == "1"


@contextmanager
def counting_progress(label: str, total: int | None, enabled: bool) -> Iterator[Any]:
    """A transient progress bar on standard error for a long operation; yields a
    callback taking the count done.  Silent for programs (``--json``) and pipes."""
    if not enabled or not err.is_terminal:
        yield lambda done: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)
