"""Signed checkpoints: the store's event count and a Merkle root over every event hash
in global order, signed with Ed25519.

A per-case hash chain cannot show that trailing entries were deleted, that a whole case
was removed, or that history was rewritten and re-hashed.  A checkpoint lodged outside
the store (for example with the other safeguarding partners) can: ``verify --since``
recomputes the root over the first ``count`` events and checks the signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.application import CaseLedger, Recorder, format_recorded_at
from ledger.canonical import canonical_json
from ledger.errors import InputError, UsageError

from .merkle import MerkleTree

SIGNING_KEY_ENV = "CASELEDGER_SIGNING_KEY"
CHECKPOINT_VERSION = 1


def new_signing_key(path: Path) -> str:
    """Write a new Ed25519 private key (PEM, mode 0600); return its public key (hex)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    if path.exists():
        raise UsageError(f"{path} exists; choose a new file for the key", field="--out")
    path.write_bytes(pem)
    path.chmod(0o600)
    return public_hex(key.public_key())


def public_hex(key: Ed25519PublicKey) -> str:
    """An Ed25519 public key as 64 hex characters."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_signing_key(path: str | None) -> Ed25519PrivateKey:
    """The checkpoint signing key from ``--signing-key`` or ``CASELEDGER_SIGNING_KEY``."""
    import os

    chosen = path or os.environ.get(SIGNING_KEY_ENV)
    if not chosen:
        raise UsageError(
            "checkpoints are signed: give --signing-key FILE or set CASELEDGER_SIGNING_KEY "
            "(make a key with: caseledger keys signing --out FILE)",
            field="--signing-key",
        )
    try:
        key = serialization.load_pem_private_key(Path(chosen).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{chosen} is not a readable signing key: {exc}", field="--signing-key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{chosen} is not an Ed25519 key", field="--signing-key")
    return key


def store_root(ledger: CaseLedger, limit: int | None = None) -> tuple[int, int, str]:
    """``(count, last position, Merkle root)`` over event hashes in global order,
    over the first ``limit`` events when given."""
    tree = MerkleTree()
    last = 0
    for record in ledger.iter_records(0):
        if limit is not None and tree.size >= limit:
            break
        tree.add(record["hash"])
        last = record["position"]
    return tree.size, last, tree.root()


def signed_body(checkpoint: dict[str, Any]) -> bytes:
    """The canonical bytes a checkpoint's signature covers (all but ``signature``)."""
    return canonical_json({k: v for k, v in checkpoint.items() if k != "signature"})


def make_checkpoint(
    ledger: CaseLedger, key: Ed25519PrivateKey, recorder: Recorder
) -> dict[str, Any]:
    """Sign the store's current state and record the checkpoint in the register."""
    count, last, root = store_root(ledger)
    checkpoint: dict[str, Any] = {
        "version": CHECKPOINT_VERSION,
        "store": ledger.location.describe(),
        "count": count,
        "last_position": last,
        "root": root,
        "signed_at": format_recorded_at(ledger.clock()),
        "signed_by": recorder.actor,
        "public_key": public_hex(key.public_key()),
    }
    checkpoint["signature"] = key.sign(signed_body(checkpoint)).hex()
    ledger.record_checkpoint(checkpoint, recorder)
    return checkpoint


@dataclass(frozen=True)
class CheckpointResult:
    """Whether the store still extends a checkpoint."""

    ok: bool
    checked: int
    count_now: int
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of the result."""
        return {
            "ok": self.ok,
            "events": self.checked,
            "count_now": self.count_now,
            "first_bad": None if self.ok else "checkpoint",
            "reason": self.reason,
        }


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint file, with a clear error if it is not one."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a readable checkpoint: {exc}", field="--since") from None
    needed = {"count", "root", "public_key", "signature", "version"}
    if not isinstance(data, dict) or not needed <= set(data):
        raise InputError(f"{path} is not a caseledger checkpoint", field="--since")
    return data


def verify_since(
    ledger: CaseLedger, checkpoint: dict[str, Any], trusted_key: str | None = None
) -> CheckpointResult:
    """Check the signature, then that the store's first ``count`` events still hash to
    the checkpoint's root (so nothing before it was removed, reordered or rewritten)."""
    public = trusted_key or checkpoint["public_key"]
    if trusted_key and trusted_key != checkpoint["public_key"]:
        return CheckpointResult(False, 0, 0, "the checkpoint was not signed by the trusted key")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
            bytes.fromhex(checkpoint["signature"]), signed_body(checkpoint)
        )
    except (InvalidSignature, ValueError):
        return CheckpointResult(False, 0, 0, "the checkpoint's signature does not verify")
    count = int(checkpoint["count"])
    checked, _, root = store_root(ledger, limit=count)
    now = ledger.count_events()
    if checked < count:
        return CheckpointResult(
            False,
            checked,
            now,
            f"the store holds {checked} events where the checkpoint counted {count}: "
            "events were deleted",
        )
    if root != checkpoint["root"]:
        return CheckpointResult(
            False,
            checked,
            now,
            "the first events no longer hash to the checkpoint's root: history was "
            "removed, reordered or rewritten",
        )
    return CheckpointResult(True, checked, now, None)


__all__ = [
    "CheckpointResult",
    "load_signing_key",
    "make_checkpoint",
    "new_signing_key",
    "read_checkpoint",
    "store_root",
    "verify_since",
]
