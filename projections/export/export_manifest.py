"""What a bundle's manifest states beside its data: the format, the rules of canonical JSON,
of the entry hash, of the chains, of the checkpoint and of the bundle root
(:func:`bundle_root`), and the generator's version.
"""

from __future__ import annotations

from importlib import metadata
from typing import Final

from ledger.integrity.canonical import canonical_json
from ledger.integrity.merkle import MerkleTree

BUNDLE_FORMAT: Final = "caseledger-bundle/2"
CANONICAL_JSON_RULE: Final = (
    "object keys sorted by code point, no insignificant white space, UTF-8, strings exactly "
    "as given (no Unicode normalisation), integers only; Python's json.dumps(obj, "
    'sort_keys=True, separators=(",", ":"), ensure_ascii=False) produces it'
)
EVENT_HASH_RULE: Final = (
    "hash = SHA-256 (hex) of the canonical JSON of the entry without its hash and position "
    "fields; prev_hash = the hash of the entry with seq one less in the same case, or 64 "
    "zeros for seq 1"
)
CHAIN_RULE: Final = (
    "Every entry's own hash is checked. A chain link (prev_hash) is checked wherever the "
    "previous entry of the same case (seq - 1) is in this bundle; a case's entry 1 must have "
    "64 zeros. Where entries of a case were left out (by the case, date or as-of filters), "
    "cases.<case>.gaps lists the left-out seq ranges [first, last] before the bundle's last "
    "entry of that case; the prev_hash of the entry just after a listed gap names an entry "
    "not in the bundle and is accepted unchecked there, and only there. Any other break "
    "fails verification."
)


def generator_version() -> str:
    """The installed caseledger version."""
    try:
        return metadata.version("caseledger")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


BUNDLE_ROOT_RULE: Final = (
    "The bundle root covers every file of the bundle (this manifest and manifest.sha256 "
    "included), so it is not written in any of them: the RFC 9162 Merkle root over one "
    'leaf per file, in code point order of the file names, leaf bytes = canonical JSON {"path": '
    'NAME, "sha256": HEX} of the file. caseledger export prints it; the verifiers '
    "recompute it and compare it with --expect-root."
)
CHECKPOINT_RULE: Final = (
    "checkpoint.json is the store's signed version 2 checkpoint (Ed25519 over the "
    "canonical JSON of every key but signature). With proof 'whole' the bundle is the "
    "whole store in global order and its first events.size entries must hash to "
    "events.root. With proof 'inclusion', proofs.jsonl holds one line per line of "
    'events.jsonl: {"index": I, "proof": [...]}, the RFC 9162 audit path of the entry at '
    'leaf I (its ordinal in the store\'s global order) of the events tree, or {"index": '
    "null} for an entry recorded after the checkpoint; and each case lists at_checkpoint "
    "(its head when the checkpoint was signed, proven in the cases tree) or "
    "absent_at_checkpoint (the neighbouring leaves that prove it was not in the tree). "
    "docs/bundle-format.md gives every rule."
)


def bundle_root(digests: dict[str, str]) -> str:
    """The bundle root: RFC 9162 over ``{"path", "sha256"}`` of every file, by name."""
    tree = MerkleTree()
    for name in sorted(digests):
        tree.add_bytes(canonical_json({"path": name, "sha256": digests[name]}))
    return tree.root()
