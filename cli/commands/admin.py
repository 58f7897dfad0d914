"""Administration: the enrolment register, keys, legal holds, erasure and checkpoints."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import typer
from rich.table import Table

from cli.common import CommandGroup, app, emit_json, in_cli_words, ledger, out
from ledger.domain.policy import read_policy_text
from ledger.errors import StoreUnavailable, UsageError

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
T = TypeVar("T")


def _show_entry(entry: dict[str, Any], as_json: bool, sentence: str) -> None:
    if as_json:
        emit_json(entry)
    else:
        out.print(f"{sentence} (register#{entry['seq']}, by {entry['actor']})")


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
    led = ledger(ctx, create=True)
    entry = led.enrol(name, role, led.recorder_for_action("users"), agency=agency)
    _show_entry(entry, as_json, f"enrolled {name} as {', '.join(entry['roles'])}")


@users_app.command("remove", epilog="Example: caseledger users remove jsmith --reason 'Left'")
def users_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user to remove."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the register)."),
    as_json: bool = JSON,
) -> None:
    """Remove a user from the register; their past entries stay as recorded."""
    led = ledger(ctx)
    entry = led.remove_user(name, led.recorder_for_action("users"), reason)
    _show_entry(entry, as_json, f"removed {name}")


@policy_app.command("show", epilog="Example: caseledger policy show --json")
def policy_show(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The policy in force: who may record what, and which register entry recorded it."""
    state = ledger(ctx).register_state()
    document = state.policy.document()
    shown = {"ref": state.policy_ref, **document}
    if as_json:
        emit_json(shown)
        return
    table = Table(title=f"Policy in force ({state.policy_ref or 'the shipped default'})")
    for column in ("role", "may record", "regimes", "own agency only", "approves", "actions"):
        table.add_column(column)
    for role, spec in sorted(state.policy.roles.items()):  # the rows of ``document``
        table.add_row(
            role,
            ", ".join(sorted(spec.record)) or "-",
            ", ".join(sorted(spec.regimes or [])) or "all",
            "yes" if spec.own_agency else "",
            ", ".join(sorted(spec.approves)) or "-",
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
    text = read_policy_text(str(file))
    led = ledger(ctx, create=True)
    entry = led.set_policy(text, reason, led.recorder_for_action("policy"), str(file))
    _show_entry(entry, as_json, f"recorded the policy {entry['sha256'][:12]}")


@users_app.command("list", epilog="Example: caseledger users list --json")
def users_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Who is enrolled, with which roles."""
    state = ledger(ctx).register_state()
    rows: list[dict[str, Any]] = [
        {"user": e.user, "roles": sorted(e.roles), "agency": e.agency, "ref": e.ref}
        for e in sorted(state.users.values(), key=lambda e: e.user)
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Enrolled users")
    for column in ("user", "roles", "agency", "enrolled by"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["user"], ", ".join(row["roles"]), row["agency"] or "", row["ref"])
    out.print(table)


@keys_app.command("new", epilog="Example: caseledger keys new --out /secure/caseledger.key")
def keys_new(
    out_file: Path = typer.Option(..., "--out", help="Where to write the key (mode 0600)."),
) -> None:
    """Make an AES-256 key for encryption at rest.

    Use it with CASELEDGER_KEY_FILE when creating a store, and keep a copy safe: without
    it the store cannot be read."""
    # lazy: checkpoints (Ed25519, Merkle) cost ~12 ms at start-up
    from ledger.checkpoints.checkpoint import write_new_key_file

    write_new_key_file(out_file, base64.b64encode(os.urandom(32)) + b"\n")
    out.print(f"wrote a new key to {out_file}; set CASELEDGER_KEY_FILE={out_file}")


@keys_app.command("signing", epilog="Example: caseledger keys signing --out /secure/sign.pem")
def keys_signing(
    out_file: Path = typer.Option(..., "--out", help="Where to write the private key (0600)."),
) -> None:
    """Make an Ed25519 key for signing checkpoints; prints the public key to publish."""
    # lazy: checkpoints (Ed25519, Merkle) cost ~12 ms at start-up
    from ledger.checkpoints.checkpoint import new_signing_key

    public = new_signing_key(out_file)
    out.print(f"wrote a signing key to {out_file}\npublic key: {public}")


@app.command(
    "erase-personal",
    rich_help_panel="Administration",
    epilog="Example: caseledger erase-personal SCR-2016-011 --reason 'Retention period ended'",
)
def erase_personal(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="The case reference."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the register)."),
    as_json: bool = JSON,
) -> None:
    """Delete a case's personal data (names, dates of birth) and their salts.

    Every hash still verifies; the register records who erased what and why."""
    led = ledger(ctx)
    entry = led.erase_personal(case, reason, led.recorder_for_action("erase-personal"))
    _show_entry(entry, as_json, f"erased {len(entry['fields'])} personal value(s) of {case}")


@app.command(
    "hold",
    rich_help_panel="Administration",
    epilog="Examples: caseledger hold RR-2025-017 --reason 'Judicial review'  |  "
    "caseledger hold RR-2025-017 --release --reason 'Proceedings ended'",
)
def hold(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="The case reference."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the register)."),
    release: bool = typer.Option(False, "--release", help="Release the hold instead."),
    as_json: bool = JSON,
) -> None:
    """Place (or release) a legal hold: personal data cannot be erased while it holds."""
    led = ledger(ctx)
    who = led.recorder_for_action("hold")
    if release:
        entry = led.release_hold(case, reason, who)
        _show_entry(entry, as_json, f"released the hold on {case}")
    else:
        entry = led.place_hold(case, reason, who)
        _show_entry(entry, as_json, f"{case} is on legal hold")


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
    # lazy: checkpoints (Ed25519, Merkle) cost ~12 ms; the witnesses cost ~13 ms at start-up
    from ledger.checkpoints.checkpoint import load_signing_key
    from ledger.checkpoints.witness import (
        FileWitness,
        StoreWitness,
        Witness,
        checkpoint_to_witnesses,
    )

    led = ledger(ctx)
    key = load_signing_key(signing_key)
    witnesses: list[Witness] = [FileWitness(p) for p in witness]
    stores: list[StoreWitness] = []
    lodged = _open_out(out_file) if out_file is not None else None  # before anything is signed
    try:
        for url in witness_store:
            stores.append(_open_witness_store(url, StoreWitness))
        witnesses.extend(stores)
        cp, reports = checkpoint_to_witnesses(
            led, key, led.recorder_for_action("checkpoint"), witnesses
        )
    except BaseException:
        if lodged is not None:
            lodged.abandon()
        raise
    finally:
        for store in stores:
            store.close()
    if lodged is not None:
        import orjson

        lodged.write(orjson.dumps(cp, option=orjson.OPT_INDENT_2) + b"\n")
    if as_json:
        emit_json({**cp, "witnesses": reports})
    else:
        sizes = ", ".join(f"{cp[t]['size']} {t}" for t in ("events", "register", "personal"))
        out.print(
            f"checkpoint: {sizes}; events root {cp['events']['root']}, signed by "
            f"{cp['public_key'][:16]}…"
            + (f"; written to {out_file}" if out_file else "")
            + "".join(f"\nwitnessed by {r['witness']} ({r['proof']})" for r in reports)
        )


class _OutFile:
    """A file opened for ``checkpoint --out`` before the checkpoint is signed, so that
    an unwritable place stops the command (exit 2) with nothing recorded."""

    def __init__(self, path: Path, handle: BinaryIO, existed: bool) -> None:
        self.path, self.handle, self.existed = path, handle, existed

    def write(self, data: bytes) -> None:
        """Replace the file's content with ``data``."""
        with self.handle:
            if stat.S_ISREG(os.fstat(self.handle.fileno()).st_mode):  # not /dev/null, a pipe
                self.handle.seek(0)
                self.handle.truncate()
            self.handle.write(data)

    def abandon(self) -> None:
        """The checkpoint failed: close, and remove the file if this command made it."""
        self.handle.close()
        if not self.existed:
            self.path.unlink(missing_ok=True)


def _open_out(path: Path) -> _OutFile:
    """Open ``path`` for writing without truncating it yet; a usage error naming the
    reason if it cannot be (a folder, a missing folder, a name too long, no permission)."""
    existed = os.path.lexists(path)
    try:
        handle = path.open("ab")
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{path} cannot be written: {reason}", field="--out") from None
    return _OutFile(path, handle, existed)


def _open_witness_store(url: str, opener: Callable[[str], T]) -> T:
    """Open a ``--witness-store`` before anything is signed; one that cannot be used
    exits as store opening says (4: not a store, unreachable; 2: not a location),
    naming it as the witness store."""
    try:
        return opener(url)
    except StoreUnavailable as exc:
        raise StoreUnavailable(f"the witness store cannot be used: {in_cli_words(exc)}") from None
