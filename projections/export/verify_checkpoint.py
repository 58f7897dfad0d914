"""The bundle's signed checkpoint: its signature (under the trusted key when one is given),
and the entries against it, the whole log's root or each case's head at the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ledger.integrity.merkle import leaf_hash, verify_inclusion
from projections.export.verify_common import CHECKPOINT, BundleFailure, is_int, std_canonical_bytes
from projections.export.verify_events import EventCounter
from projections.export.verify_manifest import is_tree
from projections.export.verify_source import BundleSource


def _signature_holds(public_hex: str, message: bytes, signature_hex: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def check_checkpoint(
    source: BundleSource, manifest: dict[str, Any], trusted_key: str | None
) -> dict[str, Any] | None:
    """The signed checkpoint, its signature checked (under the trusted key when given);
    with a trusted key and no checkpoint, the bundle fails, whatever its manifest says."""
    declared = manifest.get("checkpoint")
    if declared is None:
        if trusted_key is not None:
            raise BundleFailure(
                CHECKPOINT,
                "you gave a trusted key, but the bundle carries no signed checkpoint to "
                "check it against",
            )
        return None
    try:
        checkpoint = json.loads(source.read(CHECKPOINT))
    except ValueError:
        raise BundleFailure(CHECKPOINT, "is not valid JSON") from None
    if not (
        isinstance(checkpoint, dict)
        and isinstance(checkpoint.get("signature"), str)
        and isinstance(checkpoint.get("public_key"), str)
        and checkpoint.get("version") == 2
        and is_tree(checkpoint.get("events"))
        and (checkpoint.get("cases") is None or is_tree(checkpoint["cases"]))
        and is_int(checkpoint.get("last_position"))
    ):
        raise BundleFailure(
            CHECKPOINT, "is not a version 2 checkpoint with events, last_position and a signature"
        )
    if trusted_key is not None and checkpoint["public_key"] != trusted_key:
        raise BundleFailure(CHECKPOINT, "was not signed by the key you trust")
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    try:
        signed = std_canonical_bytes(body)
    except ValueError:
        signed = b""
    public = trusted_key or checkpoint["public_key"]
    if not signed or not _signature_holds(public, signed, checkpoint["signature"]):
        raise BundleFailure(CHECKPOINT, "the checkpoint's signature does not verify")
    for key in ("version", "events", "cases", "last_position", "public_key"):
        if checkpoint.get(key) != declared.get(key):
            raise BundleFailure(
                CHECKPOINT, f"does not match the checkpoint the manifest describes ({key})"
            )
    return checkpoint


def _case_leaf_hash(case: str, seq: int, head: str) -> str:
    leaf = hashlib.sha256(std_canonical_bytes({"case": case, "hash": head, "seq": seq})).digest()
    return leaf_hash(leaf).hex()


def _absent_holds(ref: str, absent: dict[str, Any], tree: dict[str, Any]) -> bool:
    """Whether two neighbouring leaves of the sorted cases tree bracket ``ref``."""
    left: dict[str, Any] | None = absent.get("left")
    right: dict[str, Any] | None = absent.get("right")
    size: int = tree["size"]
    for leaf in (left, right):
        if leaf is not None and not verify_inclusion(
            _case_leaf_hash(leaf["case"], leaf["seq"], leaf["hash"]),
            leaf["index"],
            size,
            leaf["proof"],
            tree["root"],
        ):
            return False
    if left is None:
        if right is None:
            return size == 0
        return bool(right["index"] == 0 and ref < right["case"])
    if right is None:
        return bool(left["index"] == size - 1 and left["case"] < ref)
    return bool(right["index"] == left["index"] + 1 and left["case"] < ref < right["case"])


def _check_case_heads(manifest: dict[str, Any], tree: dict[str, Any]) -> None:
    """Each case's head at the checkpoint in the cases tree, or its absence proven; for a
    selection of every case, every case of the tree present."""
    seen: set[int] = set()
    for ref, info in manifest["cases"].items():
        at = info.get("at_checkpoint")
        absent = info.get("absent_at_checkpoint")
        if at is not None:
            leaf = _case_leaf_hash(ref, at["seq"], at["hash"])
            if not verify_inclusion(leaf, at["index"], tree["size"], at["proof"], tree["root"]):
                raise BundleFailure(
                    ref,
                    f"its head at the checkpoint (#{at['seq']}) is not in the checkpoint's "
                    "cases tree",
                )
            seen.add(at["index"])
        elif absent is not None:
            if not _absent_holds(ref, absent, tree):
                raise BundleFailure(
                    ref, "the proof that the case is newer than the checkpoint does not hold"
                )
        else:
            raise BundleFailure(
                ref,
                "needs at_checkpoint or absent_at_checkpoint: the checkpoint has a cases tree",
            )
    if manifest["filters"]["cases"] is None and len(seen) != tree["size"]:
        raise BundleFailure(
            CHECKPOINT,
            f"the bundle lists {len(seen)} of the {tree['size']} cases the checkpoint signed, "
            "yet its selection is every case: a case is missing",
        )


def check_against_checkpoint(
    manifest: dict[str, Any],
    checkpoint: dict[str, Any],
    counter: EventCounter,
    prefix_root: str | None,
) -> None:
    declared = manifest["checkpoint"]
    size = checkpoint["events"]["size"]
    if declared["proof"] == "whole":
        if counter.events < size:
            raise BundleFailure(
                CHECKPOINT,
                f"the bundle holds {counter.events} entries, fewer than the {size} the "
                "checkpoint counted: entries were deleted",
            )
        if prefix_root != checkpoint["events"]["root"]:
            raise BundleFailure(
                CHECKPOINT,
                f"the first {size} entries do not hash to the checkpoint's events root: "
                "history was removed, reordered or rewritten",
            )
        counter.covered = size
        counter.after = counter.events - size
    elif checkpoint.get("cases") is not None:
        _check_case_heads(manifest, checkpoint["cases"])
    if declared["covered"] != counter.covered or declared["after"] != counter.after:
        raise BundleFailure(
            CHECKPOINT,
            f"{counter.covered} entries are proven in the signed log and {counter.after} "
            f"are after it; the manifest says {declared['covered']} and {declared['after']}",
        )
