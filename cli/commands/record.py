"""Recording commands: ``record``, ``schema`` and ``verify`` of the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import typer
from rich.columns import Columns
from rich.markup import escape
from rich.table import Table

from cli.common import app, emit_json, err, input_in_cli_words, ledger, out, phase_progress
from ledger.errors import InputError, StoreUnavailable, problem_list

if TYPE_CHECKING:
    from ledger.api import Recorded

ROLE_HELP = (
    "Record under this of your enrolled roles (business-unit by default; chair, "
    "safeguarding-partner, agency, ...). Who you are comes from the store: your login "
    "name (SQLite) or your database user (PostgreSQL)."
)


#: Above this many entries, ``record`` prints a summary instead of one row per entry.
SUMMARY_OVER: Final = 20

#: The most cases the summary lists one by one; the others are counted in one row.
SUMMARY_CASES: Final = 15


def _entries(n: int) -> str:
    return f"{n:,} entr{'y' if n == 1 else 'ies'}"


def show_summary(recorded: Recorded) -> None:
    """A large recording for people: entries per case (the first
    :data:`SUMMARY_CASES`, the rest counted) and per entry type, the first and last ref
    and the command id, instead of one row per entry."""
    summary = recorded.summary()
    cases = summary.by_case
    out.print(
        f"[bold]Recorded {_entries(summary.entries)}[/] in {len(cases):,} "
        f"case{'' if len(cases) == 1 else 's'}, all in one command "
        f"({escape(summary.command_id)}): first {escape(summary.first_ref)}, last "
        f"{escape(summary.last_ref)}."
    )
    per_case = Table(title="Entries per case")
    per_case.add_column("case", no_wrap=True)
    per_case.add_column("entries", justify="right")
    for case, count in cases[:SUMMARY_CASES]:
        per_case.add_row(escape(case), f"{count:,}")
    if len(cases) > SUMMARY_CASES:
        rest = cases[SUMMARY_CASES:]
        per_case.add_row(f"[dim]and {len(rest):,} more[/]", f"[dim]{sum(n for _, n in rest):,}[/]")
    per_type = Table(title="Entries per type")
    per_type.add_column("type", no_wrap=True)
    per_type.add_column("entries", justify="right")
    for kind, count in summary.by_type:
        per_type.add_row(kind, f"{count:,}")
    out.print(Columns([per_case, per_type], padding=(0, 4)))


def show_receipts(recorded: Recorded, as_json: bool) -> None:
    """Print what was stored: for programs every receipt (``--json``); for people one
    row per entry (ref, hash, time), or for more than :data:`SUMMARY_OVER` entries a
    summary (:func:`show_summary`)."""
    if as_json:
        emit_json(recorded.to_json())
        return
    receipts = recorded.receipts
    if len(receipts) > SUMMARY_OVER:
        show_summary(recorded)
        return
    table = Table(title=f"Recorded {_entries(len(receipts))}")
    table.add_column("ref")
    table.add_column("hash")
    table.add_column("recorded at (UTC)")
    for r in receipts:
        table.add_row(r.ref, r.hash, r.recorded_at)
    out.print(table)


@contextmanager
def problems_as_json(as_json: bool) -> Iterator[None]:
    """With ``--json``, refused input also prints its problems for programs on standard
    output (``{"problems": [{"line", "field", "reason"}], "more_lines"}``); the message
    still goes to standard error and the exit code is still 2."""
    try:
        yield
    except InputError as exc:
        if as_json:
            emit_json(problem_list(input_in_cli_words(exc)))
        raise


@app.command(
    epilog=(
        "Example: caseledger record entries.jsonl  |  "
        "cat entries.jsonl | caseledger record - --json"
    )
)
def record(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="A JSON Lines file, one event per line; - for stdin."),
    role: str | None = typer.Option(None, "--role", help=ROLE_HELP),
    as_json: bool = typer.Option(
        False,
        "--json",
        help=(
            "Print JSON for programs: the receipts; or, with exit code 2, "
            '{"problems": [{"line", "field", "reason"}], "more_lines"}.'
        ),
    ),
) -> None:
    """Append the events of a JSON Lines file, all or nothing.

    Every line is validated, then checked against its case (a refused line changes
    nothing the later lines are checked against); then all are written in one
    transaction, or none and every problem is listed: line, field and reason.  At a
    terminal a bar follows each phase; more than 20 entries are summed up per case and
    per entry type instead of listed one by one (--json lists every receipt)."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger.api import record_file

    # the file is read before the store is opened; at a terminal a bar follows each phase
    with problems_as_json(as_json), phase_progress(not as_json) as progress:
        recorded = record_file(lambda: ledger(ctx, create=True), file, role=role, progress=progress)
    show_receipts(recorded, as_json)


@app.command(epilog="Example: caseledger schema > input-line.schema.json")
def schema() -> None:
    """Print the JSON Schema of one input line (the event catalogue)."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger.api import entry_schema

    emit_json(entry_schema())


@app.command(
    epilog="Examples: caseledger verify  |  caseledger verify --since checkpoint.json  |  "
    "caseledger verify bundle/ --expect-root HEX --json  |  caseledger verify bundle/ "
    "--shipped-rules"
)
def verify(
    ctx: typer.Context,
    bundle: str | None = typer.Argument(
        None, help="An export bundle (folder or .zip). Without it, the whole store is checked."
    ),
    since: Path | None = typer.Option(
        None,
        "--since",
        help=(
            "A lodged checkpoint file (or a witness folder): also prove, with RFC 9162 "
            "consistency proofs, that the store still extends it."
        ),
    ),
    public_key: str | None = typer.Option(
        None,
        "--public-key",
        help="The checkpoint signer's public key you trust (hex). With BUNDLE the bundle is "
        "always checked against its signed checkpoint, and fails without one.",
    ),
    expect_root: str | None = typer.Option(
        None,
        "--expect-root",
        help="With BUNDLE: the bundle root (over every file) you were sent separately.",
    ),
    expect_manifest: str | None = typer.Option(
        None,
        "--expect-manifest-sha256",
        help="With BUNDLE: the manifest's SHA-256 you were sent separately.",
    ),
    shipped_rules: bool = typer.Option(
        False,
        "--shipped-rules",
        help="With BUNDLE: fail it unless its clocks were judged with the shipped rule "
        "packs (an export made with local rules, --rules, says so and fails).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
) -> None:
    """Check the record: re-hash every chain in the store, or check an export bundle.

    Exit code 1 names the first entry that does not verify."""
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    with phase_progress(not as_json) as progress:
        verdict = api.verify(
            lambda: ledger(ctx),  # opened only for the store, once the options are good
            bundle,
            since=since,
            public_key=public_key,
            expect_root=expect_root,
            expect_manifest=expect_manifest,
            progress=progress,
            shipped_rules=shipped_rules,
        )
    if as_json:
        emit_json(verdict.to_json())
    elif verdict.ok:
        out.print(f"[green]ok[/green] {escape(verdict.summary())}")
    else:
        err.print(f"[bold red]FAILED[/] {escape(verdict.summary())}")
    if not verdict.ok:
        raise typer.Exit(1)


__all__ = [
    "StoreUnavailable",
    "problems_as_json",
    "record",
    "schema",
    "show_receipts",
    "show_summary",
    "verify",
]
