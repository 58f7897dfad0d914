"""``caseledger export``: write an audit bundle that an inspector can check without us.

``caseledger verify BUNDLE`` (in :mod:`cli.commands.record`) checks one.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import RULES_ENV, RULES_HELP, app, emit_json, ledger, out, phase_progress
from cli.completion import complete_case

EPILOG = (
    "Examples: caseledger export RR-2026-004 --out bundle  |  "
    "caseledger export --out all.zip --zip --json  |  "
    "caseledger export RR-2026-004 --as-of 2026-03-06 --out as-decided  |  "
    "caseledger verify bundle"
)


@app.command(epilog=EPILOG)
def export(
    ctx: typer.Context,
    cases: list[str] | None = typer.Argument(
        None,
        help="Case references to export (default: every case in the store).",
        show_default=False,
        autocompletion=complete_case,
    ),
    out_path: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="A new (or empty) folder for the bundle; with --zip, the .zip file to write.",
    ),
    as_zip: bool = typer.Option(False, "--zip", help="Write one .zip file instead of a folder."),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="If --out holds an earlier bundle (only the files its manifest lists), "
        "replace it whole; a folder with any other file is refused, never emptied.",
    ),
    occurred_from: str | None = typer.Option(
        None,
        "--from",
        help="Only entries that happened (occurred_at) at or after this date or time.",
    ),
    occurred_to: str | None = typer.Option(
        None,
        "--to",
        help="Only entries that happened (occurred_at) up to this date (its end) or time.",
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="The record as it stood at T: only entries recorded (recorded_at) up to T.",
    ),
    include_personal_data: bool = typer.Option(
        False,
        "--include-personal-data",
        help="Also export names and dates of birth (personal.jsonl), each checked against "
        "its commitment. Left out by default.",
    ),
    report: str = typer.Option(
        "auto",
        "--report",
        help="report.html: 'full' (every case's decision, reasons, chart, clocks and "
        "QM2: a section per case, or above 50 cases a page per case, case-REF.html, "
        "linked from the overview), 'index' (a list of the cases), or 'auto' (full up "
        "to 1000 cases).",
    ),
    signing_key: Path | None = typer.Option(
        None,
        "--signing-key",
        help="Sign a fresh checkpoint of the store with this Ed25519 key (kept in the "
        "register; needs the checkpoint action) so that every exported entry is proven in "
        "it. Without it the bundle carries the store's latest version 2 checkpoint.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
    rules: Path | None = typer.Option(None, "--rules", envvar=RULES_ENV, help=RULES_HELP),
) -> None:
    """Write an audit bundle: the entries (events.jsonl), a timeline (timeline.csv), a
    report for people (report.html), a manifest of hashes with a Merkle root, and
    instructions and a standalone checker (VERIFY.md, verify.py), with the store's
    signed checkpoint and a proof of each entry in it (checkpoint.json, proofs.jsonl).

    Personal data is left out unless --include-personal-data is given. A bundle of some
    cases, or of a date range, still verifies: left-out entries are listed as gaps.
    """
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    with phase_progress(not as_json) as progress:
        summary = api.export(
            lambda: ledger(ctx),  # opened once the options are found good
            cases,
            out_path=out_path,
            as_zip=as_zip,
            replace=replace,
            occurred_from=occurred_from,
            occurred_to=occurred_to,
            as_of=as_of,
            include_personal_data=include_personal_data,
            report=report,
            signing_key=signing_key,
            progress=progress,
            rules=rules,
        )
    if as_json:
        emit_json(summary.to_json())
        return
    table = Table(title=f"Audit bundle {escape(str(summary.out))}")
    table.add_column("file")
    table.add_column("bytes", justify="right")
    table.add_column("SHA-256")
    for f in summary.files:
        table.add_row(f["path"], str(f["bytes"]), f["sha256"])
    out.print(table)
    n = len(summary.cases)
    out.print(
        f"{summary.events} entries in {n} case{'s' if n != 1 else ''}; "
        f"personal data {'[bold]INCLUDED[/bold]' if summary.personal_data else 'left out'}"
    )
    out.print(f"bundle root      {summary.root}  (every file)")
    out.print(f"entries' root    {summary.events_root}")
    out.print(f"manifest SHA-256 {summary.manifest_sha256}")
    if summary.local_rules is not None:
        out.print(
            f"[bold]{escape(summary.local_rules.disclosure())}[/bold]: recorded in the "
            "manifest and rules.json; verify --shipped-rules fails this bundle"
        )
    if summary.checkpoint:
        out.print(
            f"signed checkpoint: {summary.covered} of the {summary.events} entries are proven "
            "in the store's signed log"
        )
    else:
        out.print(
            "[bold]no signed checkpoint[/bold]: the bundle can be checked against its root "
            "only (export with --signing-key, or sign a checkpoint first)"
        )
    out.print(
        "Send the bundle root to the recipient by a separate route; they check the bundle "
        f"with: caseledger verify {escape(str(summary.out))} --expect-root ROOT (and "
        "--public-key KEY, the signer's published key), or python3 verify.py: see VERIFY.md"
    )


__all__ = ["export"]
