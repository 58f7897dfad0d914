"""Administration: the enrolment register, keys, legal holds, erasure and checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from cli.common import CommandGroup, app, emit_json, err, escape, ledger, out
from cli.completion import complete_case

if TYPE_CHECKING:
    from ledger.api import RegisterEntry

users_app = typer.Typer(
    cls=CommandGroup, help="Who may record what: the enrolment register.", no_args_is_help=True
)
keys_app = typer.Typer(
    cls=CommandGroup,
    help="Make keys: encryption at rest and checkpoint signing.",
    no_args_is_help=True,
)
policy_app = typer.Typer(
    cls=CommandGroup,
    help="The store's policy (who may record what): part of the record.",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users", rich_help_panel="Administration")
app.add_typer(policy_app, name="policy", rich_help_panel="Administration")
app.add_typer(keys_app, name="keys", rich_help_panel="Administration")

JSON = typer.Option(False, "--json", help="Print JSON for programs.")


def _show_entry(entry: RegisterEntry, as_json: bool, sentence: str) -> None:
    if as_json:
        emit_json(entry.to_json())
    else:
        out.print(f"{sentence} (register#{entry.seq}, by {entry.actor})")


@users_app.command(
    "add",
    epilog="Examples: caseledger users add jsmith --role chair  |  caseledger users add "
    "police.liaison --role agency --agency 'Northshire Police'",
)
def users_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The login name (SQLite) or database user (PostgreSQL)."),
    role: list[str] = typer.Option(..., "--role", help="A role; repeat for several."),
    agency: str | None = typer.Option(None, "--agency", help="The agency, for the agency role."),
    as_json: bool = JSON,
) -> None:
    """Enrol a user with one or more roles (replaces their roles if already enrolled)."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    entry = api.add_user(ledger(ctx, create=True), name, role=role, agency=agency)
    _show_entry(entry, as_json, f"enrolled {name} as {', '.join(entry.entry['roles'])}")


@users_app.command("remove", epilog="Example: caseledger users remove jsmith --reason 'Left'")
def users_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user to remove."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the register)."),
    as_json: bool = JSON,
) -> None:
    """Remove a user from the register; their past entries stay as recorded."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    entry = api.remove_user(ledger(ctx), name, reason=reason)
    _show_entry(entry, as_json, f"removed {name}")


@policy_app.command("show", epilog="Example: caseledger policy show --json")
def policy_show(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The policy in force: who may record what, and which register entry recorded it."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    shown = api.show_policy(ledger(ctx))
    if as_json:
        emit_json(shown.to_json())
        return
    table = Table(title=f"Policy in force ({shown.ref or 'the shipped default'})")
    for column in (
        "role",
        "may record",
        "regimes",
        "own agency only",
        "approves",
        "sees",
        "actions",
    ):
        table.add_column(column)
    for role, spec in sorted(shown.policy.roles.items()):  # the rows of ``to_json()``
        table.add_row(
            role,
            ", ".join(sorted(spec.record)) or "-",
            ", ".join(sorted(spec.regimes or [])) or "all",
            "yes" if spec.own_agency else "",
            ", ".join(sorted(spec.approves)) or "-",
            spec.sees,
            ", ".join(sorted(spec.actions)) or "-",
        )
    out.print(table)


@policy_app.command(
    "set",
    epilog="Example: caseledger policy set northshire.toml --reason 'Board decision 2026/14'",
)
def policy_set(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The new policy (TOML, the form of the shipped one)."),
    reason: str = typer.Option(..., "--reason", help="Why it changes (kept in the register)."),
    as_json: bool = JSON,
) -> None:
    """Record a new policy for the store (needs the admin role): a register entry with
    the policy's text and SHA-256, in force from then on."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    # the file is read and checked before the store is opened
    entry = api.set_policy(lambda: ledger(ctx, create=True), file, reason=reason)
    _show_entry(entry, as_json, f"recorded the policy {entry.entry['sha256'][:12]}")


@users_app.command("list", epilog="Example: caseledger users list --json")
def users_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Who is enrolled, with which roles."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    users = api.list_users(ledger(ctx))
    if as_json:
        emit_json(users.to_json())
        return
    table = Table(title="Enrolled users")
    for column in ("user", "roles", "agency", "enrolled by"):
        table.add_column(column)
    for user in users.users:
        table.add_row(user.user, ", ".join(user.roles), user.agency or "", user.ref)
    out.print(table)


@keys_app.command("new", epilog="Example: caseledger keys new --out /secure/caseledger.key")
def keys_new(
    out_file: Path = typer.Option(..., "--out", help="Where to write the key (mode 0600)."),
) -> None:
    """Make an AES-256 key for encryption at rest.

    Use it with CASELEDGER_KEY_FILE when creating a store, and keep a copy safe: without
    it the store cannot be read."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    written = api.new_key(out_file)
    out.print(f"wrote a new key to {written.path}; set CASELEDGER_KEY_FILE={written.path}")


@keys_app.command("signing", epilog="Example: caseledger keys signing --out /secure/sign.pem")
def keys_signing(
    out_file: Path = typer.Option(..., "--out", help="Where to write the private key (0600)."),
) -> None:
    """Make an Ed25519 key for signing checkpoints; prints the public key to publish."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    written = api.new_signing_key(out_file)
    out.print(f"wrote a signing key to {written.path}\npublic key: {written.public_key}")


@app.command(
    "erase-personal",
    rich_help_panel="Administration",
    epilog="Example: caseledger erase-personal SCR-2016-011 --reason 'Retention period ended'",
)
def erase_personal(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="The case reference.", autocompletion=complete_case),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the register)."),
    as_json: bool = JSON,
) -> None:
    """Delete a case's personal data (names, dates of birth) and their salts.

    Every hash still verifies; the register records who erased what and why."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    entry = api.erase_personal(ledger(ctx), case, reason=reason)
    _show_entry(entry, as_json, f"erased {len(entry.entry['fields'])} personal value(s) of {case}")
    if entry.remaining is not None:  # the erasure stands; the files are not clear yet
        err.print(
            f"[yellow]warning:[/] not yet gone from the store's files: {escape(entry.remaining)}"
        )


@app.command(
    "hold",
    rich_help_panel="Administration",
    epilog="Examples: caseledger hold RR-2025-017 --reason 'Judicial review'  |  "
    "caseledger hold RR-2025-017 --release --reason 'Proceedings ended'",
)
def hold(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="The case reference.", autocompletion=complete_case),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the register)."),
    release: bool = typer.Option(False, "--release", help="Release the hold instead."),
    as_json: bool = JSON,
) -> None:
    """Place (or release) a legal hold: personal data cannot be erased while it holds."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    entry = api.hold(ledger(ctx), case, reason=reason, release=release)
    _show_entry(
        entry, as_json, f"released the hold on {case}" if release else f"{case} is on legal hold"
    )


@app.command(
    "checkpoint",
    rich_help_panel="Administration",
    epilog=(
        "Example: caseledger checkpoint --signing-key sign.pem --out cp-2026-11.json "
        "--witness /mnt/partners/caseledger/ --witness-store postgresql://w@host/witness"
    ),
)
def checkpoint(
    ctx: typer.Context,
    signing_key: str | None = typer.Option(
        None, "--signing-key", help="Ed25519 key file (default: CASELEDGER_SIGNING_KEY)."
    ),
    out_file: Path | None = typer.Option(
        None, "--out", help="Also write the checkpoint to this file, to lodge elsewhere."
    ),
    witness: list[Path] = typer.Option(
        [],
        "--witness",
        help=(
            "A witness outside the store: a file (it holds the last checkpoint) or a folder "
            "(head.json plus every checkpoint in checkpoints.jsonl). It refuses a checkpoint "
            "that does not extend the one it holds (exit 1). Repeatable."
        ),
    ),
    witness_store: list[str] = typer.Option(
        [],
        "--witness-store",
        help="A second caseledger store that witnesses the checkpoint likewise. Repeatable.",
    ),
    as_json: bool = JSON,
) -> None:
    """Sign the store's three logs (events, register, personal-data commitments) as RFC
    9162 Merkle trees, and give the checkpoint to its witnesses.

    Each witness first checks a consistency proof from the checkpoint it holds; if any
    refuses, nothing is recorded. Lodge the checkpoint outside the store too; `verify
    --since FILE --public-key HEX` then proves the store still extends it."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger import api

    made = api.checkpoint(
        ledger(ctx),
        signing_key=signing_key,
        out_file=out_file,
        witness=witness,
        witness_store=witness_store,
    )
    if as_json:
        emit_json(made.to_json())
        return
    cp = made.checkpoint
    sizes = ", ".join(f"{cp[t]['size']} {t}" for t in ("events", "register", "personal"))
    out.print(
        f"checkpoint: {sizes}; events root {cp['events']['root']}, signed by "
        f"{cp['public_key'][:16]}…"
        + (f"; written to {out_file}" if out_file else "")
        + "".join(f"\nwitnessed by {r['witness']} ({r['proof']})" for r in made.witnesses)
    )
