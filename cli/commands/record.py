"""Recording commands: ``record``, ``schema`` and ``verify`` of the store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import app, counting_progress, emit_json, err, ledger, out

if TYPE_CHECKING:
    from ledger.api import Recorded
from ledger.errors import InputError, StoreUnavailable, UsageError, problem_list

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

ROLE_HELP = (
    "Record under this of your enrolled roles (business-unit by default; chair, "
    "safeguarding-partner, agency, ...). Who you are comes from the store: your login "
    "name (SQLite) or your database user (PostgreSQL)."
)


def show_receipts(recorded: Recorded, as_json: bool) -> None:
    """Print what was stored: refs and hashes."""
    if as_json:
        emit_json(recorded.to_json())
        return
    receipts = recorded.receipts
    table = Table(title=f"Recorded {len(receipts)} entr{'y' if len(receipts) == 1 else 'ies'}")
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
            emit_json(problem_list(exc))
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
    transaction, or none and every problem is listed: line, field and reason."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger.api import record_file

    with problems_as_json(as_json):  # the file is read before the store is opened
        recorded = record_file(lambda: ledger(ctx, create=True), file, role=role)
    show_receipts(recorded, as_json)


@app.command(epilog="Example: caseledger schema > input-line.schema.json")
def schema() -> None:
    """Print the JSON Schema of one input line (the event catalogue)."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger.api import entry_schema

    emit_json(entry_schema())


@app.command(
    epilog="Examples: caseledger verify  |  caseledger verify --since checkpoint.json  |  "
    "caseledger verify bundle/ --expect-root HEX --json"
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
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
) -> None:
    """Check the record: re-hash every chain in the store, or check an export bundle.

    Exit code 1 names the first entry that does not verify."""
    if since is not None and bundle is not None:
        raise UsageError(
            "--since checks the store against a lodged checkpoint; it does not apply to a "
            "bundle (check a bundle with --public-key and --expect-root instead)",
            field="--since",
        )
    if since is not None:
        # lazy: checkpoints (Ed25519, Merkle) cost ~12 ms at start-up
        from ledger.checkpoints.checkpoint import read_checkpoint, trusted_key_hex, verify_since

        trusted = trusted_key_hex(public_key)
        lodged = read_checkpoint(since / "head.json" if since.is_dir() else since)
        led = ledger(ctx)
        store_result = led.verify()
        cp_result = verify_since(led, lodged, trusted)
        ok = store_result.ok and cp_result.ok
        payload = {
            "ok": ok,
            "events": store_result.events,
            "first_bad": store_result.first_bad or cp_result.first_bad,
            "reason": store_result.reason or cp_result.reason,
            "proof": "consistency",
            "signature": cp_result.signature,
            "checkpoint": cp_result.as_dict(),
            "store": led.location.describe(),
        }
        trees = ", ".join(
            f"{name} {v.old_size}→{v.new_size} ({v.proof_nodes} proof nodes)"
            for name, v in cp_result.trees.items()
        )
        summary = (
            f"the store ({store_result.events} entries) verifies and extends the checkpoint: "
            f"{trees}; signature {cp_result.signature}"
            if ok
            else f"DOES NOT VERIFY at {payload['first_bad']}: {payload['reason']}"
        )
        if not store_result.ok and not cp_result.ok:
            summary += f"; against the checkpoint, at {cp_result.first_bad}: {cp_result.reason}"
    elif bundle is not None:
        payload, ok, summary = _verify_bundle(
            bundle, since, public_key, expect_root, expect_manifest
        )
    else:
        # lazy: the index check costs ~20 ms beyond the index at start-up
        from projections.queries.index_trust import check_index

        led = ledger(ctx)
        with counting_progress("verifying", led.count_events(), not as_json) as progress:
            store_result = led.verify(progress)
        # The cross-case index is checked against the fold of the verified events only.
        index = None
        if store_result.ok:
            with counting_progress("checking the index", store_result.cases, not as_json) as p:
                index = check_index(led, p)
        ok = store_result.ok and (index is None or index.ok)
        first_bad = store_result.first_bad or (index.first_bad if index is not None else None)
        reason = store_result.reason or (index.reason if index is not None else None)
        payload = {
            "ok": ok,
            "events": store_result.events,
            "cases": store_result.cases,
            "register_entries": store_result.register_entries,
            "first_bad": first_bad,
            "reason": reason,
            "store": led.location.describe(),
            "index": index.as_dict() if index is not None else None,
        }
        summary = (
            f"verified {store_result.events} entries in {store_result.cases} cases and "
            f"{store_result.register_entries} register entries: every hash and chain link "
            f"holds; {index.summary() if index is not None else ''}"
            if ok
            else f"DOES NOT VERIFY at {first_bad}: {reason}"
        )
    if as_json:
        emit_json(payload)
    elif ok:
        out.print(f"[green]ok[/green] {escape(summary)}")
    else:
        err.print(f"[bold red]FAILED[/] {escape(summary)}")
    if not ok:
        raise typer.Exit(1)


def _verify_bundle(
    bundle: str,
    since: Path | None,
    public_key: str | None,
    expect_root: str | None,
    expect_manifest: str | None,
) -> tuple[dict[str, Any], bool, str]:
    """``verify BUNDLE``: the bundle's verdict.  Given ``--public-key`` the checkpoint is
    always applied (a bundle without one fails); a path that is no bundle is exit 2."""
    if since is not None:
        raise UsageError(
            "--since checks the store against a lodged checkpoint; a bundle carries its own "
            "checkpoint: give --public-key (the signer's key) to check the bundle against it",
            field="--since",
        )
    for name, value in (
        ("--public-key", public_key),
        ("--expect-root", expect_root),
        ("--expect-manifest-sha256", expect_manifest),
    ):
        if value is not None and not _HEX64.match(value.lower()):
            raise UsageError(f"{name} must be 64 hexadecimal characters", field=name)
    # lazy: the bundle verifier costs ~12 ms at start-up
    from projections.export.verify import verify_bundle

    result = verify_bundle(
        Path(bundle),
        expect_root=expect_root,
        expect_manifest_sha256=expect_manifest,
        trusted_key=public_key,
    )
    return result.as_dict(), result.ok, result.summary()


__all__ = ["StoreUnavailable", "problems_as_json", "record", "schema", "show_receipts", "verify"]
