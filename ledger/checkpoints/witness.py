"""Witnesses: places outside the store that keep the last checkpoint they accepted and
refuse one that does not extend it (like transparency-dev's witnesses).

``caseledger checkpoint --witness PATH`` keeps the head in a file (PATH itself, or
``PATH/head.json`` with every accepted checkpoint appended to ``PATH/checkpoints.jsonl``
when PATH is a folder); ``--witness-store URL`` keeps them in a second caseledger store,
in a table of its own (``caseledger_witnessed``).  Before a new checkpoint is recorded
anywhere, each witness's head is checked: its signature, the same signing key, and an
RFC 9162 consistency proof from the head's trees to the new ones.  A witness that
refuses stops the command (exit 1) with the tree and, when the store's hints allow, the
first entry that differs; nothing is recorded in the store's register or any witness.

A witness meeting a signing key for the first time accepts it (trust on first use);
after that it holds the key of its head.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.application import CaseLedger, Recorder
from ledger.checkpoints.checkpoint import (
    TREES,
    StoreScan,
    check_checkpoint,
    first_difference,
    heads_of,
    read_checkpoint,
    scan_store,
    sign_checkpoint,
    signature_verifies,
)
from ledger.checkpoints.hints import LeafHints
from ledger.checkpoints.keys import load_signing_key, public_hex
from ledger.errors import LedgerError, StoreUnavailable, UsageError
from ledger.integrity.merkle import verify_consistency
from ledger.store.locations import parse_store

WITNESS_TABLE: Final = "caseledger_witnessed"
HEAD_FILE: Final = "head.json"
LOG_FILE: Final = "checkpoints.jsonl"


class WitnessRefused(LedgerError):
    """A witness holds a head the new checkpoint does not extend.  Exit code 1, as for
    a record that does not verify."""


class Witness(Protocol):
    """Somewhere outside the store that keeps the last accepted checkpoint."""

    name: str

    def head(self, public_key: str) -> dict[str, Any] | None:
        """The last checkpoint accepted for the log signed by ``public_key``."""
        ...

    def accept(self, checkpoint: dict[str, Any]) -> None:
        """Keep ``checkpoint`` as the new head."""
        ...


class FileWitness:
    """A witness in a file, or in a folder (head plus an append-only history)."""

    def __init__(self, path: Path) -> None:
        self.folder = path.is_dir()
        self.path = path / HEAD_FILE if self.folder else path
        self.name = str(path)
        parent = self.path.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise UsageError(f"cannot write the witness {path}", field="witness")

    def head(self, public_key: str) -> dict[str, Any] | None:
        """The checkpoint in the head file (checked: exit 2 if it is not one); a head of
        another key is refused, since one file witnesses one log."""
        if not self.path.exists():
            return None
        head = read_checkpoint(self.path, "witness")
        if head["public_key"] != public_key:
            raise WitnessRefused(
                f"the witness {self.name} holds a checkpoint signed by "
                f"{head['public_key'][:16]}…, not by this key ({public_key[:16]}…): it "
                "witnesses another log"
            )
        return head

    def accept(self, checkpoint: dict[str, Any]) -> None:
        """Replace the head (atomically) and, for a folder, append to its history."""
        data = orjson.dumps(checkpoint, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(data + b"\n")
        os.replace(tmp, self.path)
        if self.folder:
            with (self.path.parent / LOG_FILE).open("ab") as log:
                log.write(orjson.dumps(checkpoint, option=orjson.OPT_SORT_KEYS) + b"\n")


class StoreWitness:
    """A second caseledger store that keeps every accepted checkpoint, per signing key,
    in a table of its own."""

    def __init__(self, url: str) -> None:
        self.ledger = CaseLedger(parse_store(url))
        self.name = self.ledger.location.describe()
        self.postgres = self.ledger.location.kind == "postgres"
        self.datastore: Any = self.ledger.recorder.datastore  # type: ignore[attr-defined]
        if self.postgres:
            from psycopg.sql import SQL, Identifier

            schema = self.datastore.schema or "public"
            self.table: Any = SQL("{}.{}").format(Identifier(schema), Identifier(WITNESS_TABLE))
        else:
            self.table = WITNESS_TABLE
        kind = ("bytea", "bigint") if self.postgres else ("BLOB", "INTEGER")
        self._run(
            f"CREATE TABLE IF NOT EXISTS {{t}} (public_key TEXT NOT NULL, seq {kind[1]} NOT NULL, "
            f"checkpoint {kind[0]} NOT NULL, PRIMARY KEY (public_key, seq))",
            (),
            commit=True,
        )

    def _run(self, text: str, params: tuple[Any, ...], commit: bool) -> list[Any]:
        if self.postgres:
            from psycopg.sql import SQL

            sql: Any = SQL(text.replace("?", "%s")).format(t=self.table)
        else:
            sql = text.format(t=self.table)
        with self.datastore.transaction(commit=commit) as c:
            c.execute(sql, params)
            return list(c.fetchall()) if not commit else []

    def _last(self, public_key: str) -> tuple[int, bytes] | None:
        rows = self._run(
            "SELECT seq, checkpoint FROM {t} WHERE public_key=? ORDER BY seq DESC LIMIT 1",
            (public_key,),
            commit=False,
        )
        if not rows:
            return None
        row = rows[0]
        seq, data = (row["seq"], row["checkpoint"]) if self.postgres else tuple(row)
        return int(seq), bytes(data)

    def head(self, public_key: str) -> dict[str, Any] | None:
        """The last checkpoint this store witnessed for ``public_key``."""
        last = self._last(public_key)
        if last is None:
            return None
        try:
            data = orjson.loads(last[1])
        except orjson.JSONDecodeError as exc:
            raise UsageError(
                f"the witness {self.name} holds an unreadable checkpoint: {exc}",
                field="witness_store",
            ) from None
        return check_checkpoint(data, f"the witness {self.name}'s head")

    def accept(self, checkpoint: dict[str, Any]) -> None:
        """Append ``checkpoint`` as the new head."""
        last = self._last(checkpoint["public_key"])
        seq = 1 if last is None else last[0] + 1
        data = orjson.dumps(checkpoint, option=orjson.OPT_SORT_KEYS)
        self._run(
            "INSERT INTO {t} VALUES (?, ?, ?)", (checkpoint["public_key"], seq, data), commit=True
        )

    def close(self) -> None:
        """Close the witness store."""
        self.ledger.close()


def refusal(
    ledger: CaseLedger, witness: Witness, head: dict[str, Any], new: dict[str, Any], scan: StoreScan
) -> str | None:
    """Why ``witness`` (holding ``head``) refuses ``new``, or None if it extends it."""
    if not signature_verifies(head, head["public_key"]):
        return f"the witness {witness.name}'s head does not verify under its own key"
    if head["public_key"] != new["public_key"]:
        return f"the witness {witness.name} holds a head signed by another key"
    now = heads_of(new)
    for tree, old in heads_of(head).items():
        proof = scan.proof(tree, old["size"])
        if proof is None:
            return (
                f"the {tree} log holds {now[tree]['size']} entries, fewer than the "
                f"{old['size']} of the head the witness {witness.name} holds; "
                f"{first_difference(ledger, tree, old).describe()}"
            )
        if not verify_consistency(
            old["size"], now[tree]["size"], old["root"], now[tree]["root"], proof
        ):
            return (
                f"the {tree} log does not extend the head the witness {witness.name} holds "
                f"(a fork: the consistency proof fails); "
                f"{first_difference(ledger, tree, old).describe()}"
            )
    return None


def checkpoint_to_witnesses(
    ledger: CaseLedger,
    key: Ed25519PrivateKey,
    recorder: Recorder,
    witnesses: list[Witness],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Sign the store, have every witness check the checkpoint against its head, then
    record it in the register and give it to the witnesses.  Returns the checkpoint and,
    per witness, what it checked."""
    ledger.check_action(recorder, "checkpoint")
    public = public_hex(key.public_key())
    heads = [w.head(public) for w in witnesses]
    scan = scan_store(
        ledger, [heads_of(h) for h in heads if h is not None], hints=LeafHints.open(ledger)
    )
    checkpoint = sign_checkpoint(ledger, scan, key, recorder.actor)
    reports: list[dict[str, Any]] = []
    for witness, head in zip(witnesses, heads, strict=True):
        if head is None:
            reports.append({"witness": witness.name, "head": None, "proof": "first checkpoint"})
            continue
        why = refusal(ledger, witness, head, checkpoint, scan)
        if why is not None:
            raise WitnessRefused(f"the witness {witness.name} refuses the checkpoint: {why}")
        reports.append(
            {
                "witness": witness.name,
                "proof": "consistency",
                "head": {t: heads_of(head)[t]["size"] for t in heads_of(head)},
                "proof_nodes": {
                    t: len(scan.proof(t, heads_of(head)[t]["size"]) or [])
                    for t in heads_of(head)
                    if t in TREES
                },
            }
        )
    ledger.record_checkpoint(checkpoint, recorder)
    for witness in witnesses:
        witness.accept(checkpoint)
    return checkpoint, reports


class OutFile:
    """A file opened for ``checkpoint --out`` before the checkpoint is signed, so that
    an unwritable place stops the command (exit 2) with nothing recorded."""

    def __init__(self, path: Path, handle: BinaryIO, existed: bool) -> None:
        self.path, self.handle, self.existed = path, handle, existed

    @classmethod
    def open(cls, path: Path) -> OutFile:
        """Open ``path`` for writing without truncating it yet; a usage error naming the
        reason if it cannot be (a folder, a missing folder, a name too long, no
        permission)."""
        existed = os.path.lexists(path)
        try:
            handle = path.open("ab")
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"{path} cannot be written: {reason}", field="out_file") from None
        return cls(path, handle, existed)

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


def open_witness_store(url: str) -> StoreWitness:
    """Open a witness store before anything is signed; one that cannot be used fails as
    store opening says (4: not a store, unreachable; 2: not a location), named as the
    witness store."""
    try:
        return StoreWitness(url)
    except StoreUnavailable as exc:
        raise StoreUnavailable(f"the witness store cannot be used: {exc}") from None


def checkpoint_and_lodge(
    ledger: CaseLedger,
    *,
    signing_key: str | None,
    out_file: Path | None,
    witness: list[Path],
    witness_store: list[str],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The checkpoint command's whole sequence, as the store's policy lets its user
    (``recorder_for_action("checkpoint")``): load the signing key, open the file to
    lodge the checkpoint in and the witness stores (each refusal before anything is
    signed), sign, have every witness check and accept it, record it in the register,
    and write the file.  If anything fails, the file this made is removed again."""
    key = load_signing_key(signing_key)
    witnesses: list[Witness] = [FileWitness(p) for p in witness]
    stores: list[StoreWitness] = []
    lodged = OutFile.open(out_file) if out_file is not None else None
    try:
        for url in witness_store:
            stores.append(open_witness_store(url))
        witnesses.extend(stores)
        recorder = ledger.recorder_for_action("checkpoint")
        checkpoint, reports = checkpoint_to_witnesses(ledger, key, recorder, witnesses)
    except BaseException:
        if lodged is not None:
            lodged.abandon()
        raise
    finally:
        for store in stores:
            store.close()
    if lodged is not None:
        lodged.write(orjson.dumps(checkpoint, option=orjson.OPT_INDENT_2) + b"\n")
    return checkpoint, reports


__all__ = [
    "FileWitness",
    "OutFile",
    "StoreWitness",
    "Witness",
    "WitnessRefused",
    "checkpoint_and_lodge",
    "checkpoint_to_witnesses",
    "open_witness_store",
    "refusal",
]
