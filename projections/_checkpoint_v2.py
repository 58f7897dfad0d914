"""Version 2 checkpoints (the agreed checkpoint-v2 brief), as export bundles need them.

A private stand-in until ``projections.checkpoint`` signs version 2 itself (the lead
keeps one copy at merge).  Besides the brief's three trees (``events``, ``register``,
``personal``) it adds one the brief allows and a subset bundle needs:

- ``cases``: one leaf per case, the case's head when the checkpoint was signed, sorted by
  case reference (code point order): leaf bytes = SHA-256(canonical_json({"case": ref,
  "hash": head hash, "seq": head seq})).  With it a bundle of some cases proves, for each
  case, its last entry at the checkpoint (so deleted trailing entries fail), and that a
  case it says is newer than the checkpoint was not in the signed log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.canonical import canonical_json, personal_commitments

from .merkle import MerkleTree

__all__ = [
    "REGISTER_FIELDS",
    "StoreTrees",
    "case_head_leaf",
    "latest_checkpoint",
    "personal_leaf",
    "sign_checkpoint",
    "store_trees",
]

VERSION: Final = 2
#: Register bookkeeping around a checkpoint, not covered by its signature.
REGISTER_FIELDS: Final = ("type", "seq", "recorded_at", "actor", "role", "prev_hash", "hash", "ref")


class _Store(Protocol):
    clock: Any
    location: Any

    def iter_records(self, after: int = 0) -> Iterator[dict[str, Any]]: ...
    def register_entries(self) -> list[dict[str, Any]]: ...
    def record_checkpoint(self, checkpoint: dict[str, Any], recorder: Any) -> dict[str, Any]: ...


def case_head_leaf(ref: str, seq: int, head_hash: str) -> bytes:
    """The ``cases`` tree's leaf bytes for a case whose head is ``ref#seq``."""
    return hashlib.sha256(canonical_json({"case": ref, "hash": head_hash, "seq": seq})).digest()


def personal_leaf(ref: str, seq: int, name: str, commitment: str) -> bytes:
    """The ``personal`` tree's leaf bytes for one commitment (per the brief)."""
    body = {"case": ref, "commitment": commitment, "field": name, "seq": seq}
    return hashlib.sha256(canonical_json(body)).digest()


@dataclass
class StoreTrees:
    """The store's logs as a checkpoint commits to them."""

    events: MerkleTree = field(default_factory=MerkleTree)
    personal: MerkleTree = field(default_factory=MerkleTree)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    last_position: int = 0

    def cases_leaves(self) -> list[tuple[str, bytes]]:
        """``(ref, leaf)`` of every case, sorted by reference."""
        return [(ref, case_head_leaf(ref, *self.heads[ref])) for ref in sorted(self.heads)]

    def cases_root(self) -> tuple[int, str]:
        tree = MerkleTree()
        for _, leaf in self.cases_leaves():
            tree.add_bytes(leaf)
        return tree.size, tree.root()


def store_trees(ledger: _Store) -> StoreTrees:
    """One pass over the store's entries in global order."""
    trees = StoreTrees()
    for record in ledger.iter_records(0):
        ref = record["case"]
        trees.events.add(record["hash"])
        trees.heads[ref] = (record["seq"], record["hash"])
        trees.last_position = record["position"]
        found = personal_commitments(record)
        for name in sorted(found):
            trees.personal.add_bytes(personal_leaf(ref, record["seq"], name, str(found[name])))
    return trees


def sign_checkpoint(ledger: _Store, key: Ed25519PrivateKey, recorder: Any) -> dict[str, Any]:
    """Sign the store as it stands (version 2, with ``cases``) and keep it in the register."""
    from ledger.application import format_recorded_at

    trees = store_trees(ledger)
    register = MerkleTree()
    for entry in ledger.register_entries():
        register.add(entry["hash"])
    cases_size, cases_root = trees.cases_root()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    checkpoint: dict[str, Any] = {
        "version": VERSION,
        "store": ledger.location.describe(),
        "events": {"size": trees.events.size, "root": trees.events.root()},
        "register": {"size": register.size, "root": register.root()},
        "personal": {"size": trees.personal.size, "root": trees.personal.root()},
        "cases": {"size": cases_size, "root": cases_root},
        "last_position": trees.last_position,
        "signed_at": format_recorded_at(ledger.clock()),
        "signed_by": recorder.actor,
        "public_key": public.hex(),
    }
    body = canonical_json({k: v for k, v in checkpoint.items() if k != "signature"})
    checkpoint["signature"] = key.sign(body).hex()
    ledger.record_checkpoint(checkpoint, recorder)
    return checkpoint


def latest_checkpoint(ledger: Any) -> dict[str, Any] | None:
    """The register's latest version 2 checkpoint, as it was signed (or ``None``)."""
    register_state = getattr(ledger, "register_state", None)
    if not callable(register_state):
        return None
    for entry in reversed(list(register_state().checkpoints)):
        if entry.get("version") == VERSION and isinstance(entry.get("events"), dict):
            return {k: v for k, v in entry.items() if k not in REGISTER_FIELDS}
    return None
