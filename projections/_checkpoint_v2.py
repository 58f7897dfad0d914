"""Checkpoints as export bundles need them.

What export bundles need of checkpoints, over ``projections.checkpoint`` (which signs
them).  Besides the three trees (``events``, ``register``, ``personal``) a checkpoint
carries one a subset bundle needs:

- ``cases``: one leaf per case, the case's head when the checkpoint was signed, sorted by
  case reference (code point order): leaf bytes = SHA-256(canonical_json({"case": ref,
  "hash": head hash, "seq": head seq})).  With it a bundle of some cases proves, for each
  case, its last entry at the checkpoint (so deleted trailing entries fail), and that a
  case it says is newer than the checkpoint was not in the signed log.
"""

from __future__ import annotations

from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .checkpoint import case_head_leaf, make_checkpoint

__all__ = [
    "REGISTER_FIELDS",
    "case_head_leaf",
    "latest_checkpoint",
    "sign_checkpoint",
]

VERSION: Final = 2
#: Register bookkeeping around a checkpoint, not covered by its signature.
REGISTER_FIELDS: Final = ("type", "seq", "recorded_at", "actor", "role", "prev_hash", "hash", "ref")


def sign_checkpoint(ledger: Any, key: Ed25519PrivateKey, recorder: Any) -> dict[str, Any]:
    """Sign the store as it stands and keep the checkpoint in the register: the one
    checkpoint of ``projections.checkpoint`` (with its ``cases`` tree)."""
    return make_checkpoint(ledger, key, recorder)


def latest_checkpoint(ledger: Any) -> dict[str, Any] | None:
    """The register's latest version 2 checkpoint, as it was signed (or ``None``)."""
    register_state = getattr(ledger, "register_state", None)
    if not callable(register_state):
        return None
    for entry in reversed(list(register_state().checkpoints)):
        if entry.get("version") == VERSION and isinstance(entry.get("events"), dict):
            return {k: v for k, v in entry.items() if k not in REGISTER_FIELDS}
    return None
