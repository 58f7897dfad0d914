"""Signed checkpoints (version 2): three RFC 9162 Merkle trees over everything that
matters in a store, signed with Ed25519, and the consistency proofs that show a store
still extends a checkpoint lodged outside it.

The trees (see ``docs/security.md``, "Signed checkpoints"):

``events``
    one leaf per case entry, its ``hash`` as 32 raw bytes, in the store's global order;
``register``
    one leaf per register entry, its ``hash`` as 32 raw bytes, in ``seq`` order;
``personal``
    one leaf per personal-data commitment (``personal`` of a CaseReferred,
    ``changes.personal`` of an EntryCorrected), in the entries' global order then by
    field name: ``SHA-256(canonical_json({"case", "seq", "field", "commitment"}))``.

A per-case hash chain cannot show that trailing entries were deleted, that a whole case
was removed, or that history was rewritten and re-hashed by someone who can write to
the store.  A checkpoint signed with a key kept away from the store, and lodged with a
witness outside it, can: :func:`verify_since` streams the store's leaves once (memory
logarithmic in their number), builds an RFC 9162 consistency proof from the lodged
sizes to the current ones, and checks it against the lodged roots in time logarithmic
in the log's size.

When a proof fails, the first leaf that differs is found with the leaves the store kept
at each checkpoint (``caseledger_checkpoint_leaves``): a table of hints that is only
believed once its leaves hash to the signed root, so whoever can write to it can at
worst make the difference unnamed, never make a rewritten store pass.

The signing keys are :mod:`ledger.checkpoints.keys`, the trees' leaves
:mod:`ledger.checkpoints.leaves`, the hints table :mod:`ledger.checkpoints.hints`; this
module makes, reads and checks checkpoints and proves a store still extends one, and the
names callers use from the others are importable from here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.application import CaseLedger, Recorder, format_recorded_at
from ledger.checkpoints.hints import LeafHints
from ledger.checkpoints.keys import (
    HEX64,
    HEX128,
    load_signing_key,
    new_signing_key,
    public_hex,
    trusted_key_hex,
    write_new_key_file,
)
from ledger.checkpoints.leaves import Leaf, case_head_leaf, personal_leaf, store_leaves
from ledger.errors import InputError
from ledger.integrity.canonical import canonical_json
from ledger.integrity.merkle import ConsistencyProver, MerkleTree, leaf_hash, verify_consistency

__all__ = [
    "CHECKPOINT_VERSION",
    "TREES",
    "CheckpointResult",
    "Leaf",
    "LeafHints",
    "case_head_leaf",
    "check_checkpoint",
    "check_signature",
    "heads_of",
    "load_signing_key",
    "make_checkpoint",
    "new_signing_key",
    "personal_leaf",
    "public_hex",
    "read_checkpoint",
    "scan_store",
    "sign_checkpoint",
    "signature_verifies",
    "store_root",
    "trusted_key_hex",
    "verify_since",
    "write_new_key_file",
]


CHECKPOINT_VERSION: Final = 2
TREES: Final = ("events", "register", "personal")
"""The three logs a version 2 checkpoint commits to, in the order they are checked."""


@dataclass
class TreeScan:
    """One tree as it is streamed: its root, and consistency provers from older sizes."""

    tree: MerkleTree = field(default_factory=MerkleTree)
    provers: dict[int, ConsistencyProver] = field(default_factory=dict)

    def add(self, value: bytes) -> None:
        """Add the next leaf (raw bytes)."""
        hashed = leaf_hash(value)
        self.tree.add_leaf_hash(hashed)
        for prover in self.provers.values():
            prover.add_leaf_hash(hashed)


@dataclass
class StoreScan:
    """The three trees of a store, with the provers asked for, and each case's head."""

    trees: dict[str, TreeScan]
    last_position: int = 0
    case_heads: dict[str, tuple[int, str]] = field(default_factory=dict)

    def cases(self) -> dict[str, Any]:
        """The ``cases`` tree (each case's head, by reference): ``{"size", "root"}``."""
        tree = MerkleTree()
        for ref in sorted(self.case_heads):
            tree.add_bytes(case_head_leaf(ref, *self.case_heads[ref]))
        return {"size": tree.size, "root": tree.root()}

    def heads(self) -> dict[str, dict[str, Any]]:
        """``{"events": {"size", "root"}, ...}``."""
        return {
            name: {"size": scan.tree.size, "root": scan.tree.root()}
            for name, scan in self.trees.items()
        }

    def proof(self, tree: str, old_size: int) -> list[str] | None:
        """The consistency proof from ``old_size`` leaves of ``tree`` to now, or None
        when the tree holds fewer leaves than that."""
        prover = self.trees[tree].provers[old_size]
        if prover.size < old_size:
            return None
        return prover.proof()


def scan_store(
    ledger: CaseLedger,
    since: Iterable[dict[str, dict[str, Any]]] = (),
    hints: LeafHints | None = None,
) -> StoreScan:
    """Stream the store once: the three roots, consistency provers from each older
    ``{"events": {"size", ...}, ...}`` in ``since``, and (with ``hints``) the leaves
    the hints table does not hold yet written to it."""
    scan = StoreScan({name: TreeScan() for name in TREES})
    for old in since:
        for name in TREES:
            if name in old:
                size = int(old[name]["size"])
                scan.trees[name].provers.setdefault(size, ConsistencyProver(size))
    writer = hints.writer() if hints is not None else None
    for leaf in store_leaves(ledger):
        if not leaf.tree:
            scan.last_position = int(leaf.label)
            break
        tree = scan.trees[leaf.tree]
        if leaf.tree == "events":
            ref, _, seq = leaf.label.rpartition("#")
            scan.case_heads[ref] = (int(seq), leaf.value.hex())
        if writer is not None:
            writer.add(leaf.tree, tree.tree.size, leaf)
        tree.add(leaf.value)
    if writer is not None:
        writer.close()
    return scan


def signed_body(checkpoint: dict[str, Any]) -> bytes:
    """The canonical bytes a checkpoint's signature covers (all but ``signature``)."""
    return canonical_json({k: v for k, v in checkpoint.items() if k != "signature"})


def sign_checkpoint(
    ledger: CaseLedger, scan: StoreScan, key: Ed25519PrivateKey, signer: str
) -> dict[str, Any]:
    """The signed version 2 checkpoint of a scanned store."""
    heads = scan.heads()
    checkpoint: dict[str, Any] = {
        "version": CHECKPOINT_VERSION,
        "store": ledger.location.describe(),
        **heads,
        "cases": scan.cases(),
        "last_position": scan.last_position,
        # The events tree again under its version 1 names, for bundle verifiers that
        # read those; signed like every other field, and checked to agree on reading.
        "count": heads["events"]["size"],
        "root": heads["events"]["root"],
        "signed_at": format_recorded_at(ledger.clock()),
        "signed_by": signer,
        "public_key": public_hex(key.public_key()),
    }
    checkpoint["signature"] = key.sign(signed_body(checkpoint)).hex()
    return checkpoint


def make_checkpoint(
    ledger: CaseLedger, key: Ed25519PrivateKey, recorder: Recorder
) -> dict[str, Any]:
    """Sign the store's current state, keep its leaves as hints, and record the
    checkpoint in the register."""
    ledger.check_action(recorder, "checkpoint")
    scan = scan_store(ledger, hints=LeafHints.open(ledger))
    checkpoint = sign_checkpoint(ledger, scan, key, recorder.actor)
    ledger.record_checkpoint(checkpoint, recorder)
    return checkpoint


def store_root(ledger: CaseLedger, limit: int | None = None) -> tuple[int, int, str]:
    """``(count, last position, Merkle root)`` of the events tree, over the first
    ``limit`` entries when given (version 1's single tree)."""
    tree = MerkleTree()
    last = 0
    for record in ledger.iter_records(0):
        if limit is not None and tree.size >= limit:
            break
        tree.add(record["hash"])
        last = record["position"]
    return tree.size, last, tree.root()


# --- reading a checkpoint -------------------------------------------------------------------


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_checkpoint(data: Any, where: str) -> dict[str, Any]:
    """A checkpoint's shape checked field by field; :class:`InputError` (exit 2) naming
    the field otherwise.  Version 1 checkpoints (one events tree) are read too."""

    def bad(name: str, reason: str) -> InputError:
        return InputError(
            f"{where} is not a valid checkpoint: {name} {reason}", field=name, within=where
        )

    if not isinstance(data, dict):
        raise InputError(f"{where} is not a caseledger checkpoint (not a JSON object)")
    version = data.get("version")
    if version not in (1, 2) or isinstance(version, bool):
        raise bad("version", f"must be 1 or 2, not {version!r}")
    trees: tuple[str, ...] = TREES if version == 2 else ()
    for name in trees:
        head = data.get(name)
        if not isinstance(head, dict):
            raise bad(name, 'must be {"size": N, "root": HEX}')
        if not _is_size(head.get("size")):
            raise bad(f"{name}.size", f"must be a whole number >= 0, not {head.get('size')!r}")
        if not isinstance(head.get("root"), str) or not HEX64.fullmatch(head["root"]):
            raise bad(f"{name}.root", "must be 64 lower-case hex characters")
    if version == 1 or "count" in data or "root" in data:
        if not _is_size(data.get("count")):
            raise bad("count", f"must be a whole number >= 0, not {data.get('count')!r}")
        if not isinstance(data.get("root"), str) or not HEX64.fullmatch(data["root"]):
            raise bad("root", "must be 64 lower-case hex characters")
    if not isinstance(data.get("public_key"), str) or not HEX64.fullmatch(data["public_key"]):
        raise bad("public_key", "must be 64 lower-case hex characters (an Ed25519 key)")
    if not isinstance(data.get("signature"), str) or not HEX128.fullmatch(data["signature"]):
        raise bad("signature", "must be 128 lower-case hex characters (an Ed25519 signature)")
    if "last_position" in data and not _is_size(data["last_position"]):
        raise bad("last_position", "must be a whole number >= 0")
    for text in ("store", "signed_at", "signed_by"):
        if text in data and not isinstance(data[text], str):
            raise bad(text, "must be text")
    return data


def read_checkpoint(path: Path, field: str = "since") -> dict[str, Any]:
    """Load and check a checkpoint file; an :class:`InputError` with the reason if it is
    not one, naming ``field``: the parameter that gave the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}", field=field) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON: {exc}", field=field) from None
    return check_checkpoint(data, str(path))


def heads_of(checkpoint: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The trees a checked checkpoint commits to (a version 1 one: events only)."""
    if checkpoint["version"] == 1:
        return {"events": {"size": checkpoint["count"], "root": checkpoint["root"]}}
    return {name: checkpoint[name] for name in TREES}


def signature_verifies(checkpoint: dict[str, Any], public_key: str) -> bool:
    """Whether the checkpoint's signature verifies under ``public_key`` (hex)."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(checkpoint["signature"]), signed_body(checkpoint)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


# --- verifying a store against a checkpoint -------------------------------------------------


@dataclass
class TreeVerdict:
    """One tree: the lodged size, the size now, the proof's length, and whether it held."""

    old_size: int
    new_size: int
    proof_nodes: int | None
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "proof_nodes": self.proof_nodes,
            "ok": self.ok,
        }


@dataclass
class CheckpointResult:
    """Whether the store still extends a checkpoint, and what was checked."""

    ok: bool
    trusted: bool
    trees: dict[str, TreeVerdict] = field(default_factory=dict)
    first_bad: str | None = None
    reason: str | None = None
    version: int = CHECKPOINT_VERSION
    not_checked: list[str] = field(default_factory=list)

    @property
    def checked(self) -> int:
        """How many events the checkpoint covered."""
        events = self.trees.get("events")
        return events.old_size if events is not None else 0

    @property
    def signature(self) -> str:
        """What the signature was checked against, in words."""
        return (
            "verified under the trusted key given with --public-key"
            if self.trusted
            else "internally consistent only: checked against the key written in the "
            "checkpoint itself, not a key received separately (give --public-key)"
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of the result."""
        events = self.trees.get("events")
        return {
            "ok": self.ok,
            "proof": "consistency",
            "version": self.version,
            "trusted_key": self.trusted,
            "signature": self.signature,
            "trees": {name: verdict.as_dict() for name, verdict in self.trees.items()},
            "events": self.checked,
            "count_now": events.new_size if events is not None else None,
            "first_bad": self.first_bad,
            "reason": self.reason,
            "not_checked": self.not_checked,
        }


def check_signature(checkpoint: dict[str, Any], trusted_key: str | None) -> tuple[bool, str | None]:
    """``(trusted, failure)``: the signature checked under the trusted key when given
    (a checkpoint naming another key fails), else under the key it names."""
    trusted = trusted_key is not None
    if trusted_key is not None and trusted_key != checkpoint["public_key"]:
        return trusted, (
            "the checkpoint names the key "
            f"{checkpoint['public_key'][:16]}…, not the trusted key {trusted_key[:16]}…"
        )
    if not signature_verifies(checkpoint, trusted_key or checkpoint["public_key"]):
        return trusted, "the checkpoint's signature does not verify"
    return trusted, None


def verify_since(
    ledger: CaseLedger, checkpoint: dict[str, Any], trusted_key: str | None = None
) -> CheckpointResult:
    """Check the signature (under ``trusted_key`` when given), then an RFC 9162
    consistency proof, for each tree, that the store extends the checkpoint.  On a
    failure, name the first leaf that differs when the store's hints allow."""
    trusted, failure = check_signature(checkpoint, trusted_key)
    version = int(checkpoint["version"])
    not_checked = [] if version == 2 else ["register", "personal"]
    if failure is not None:
        return CheckpointResult(
            False, trusted, first_bad="checkpoint", reason=failure, version=version
        )
    if (
        version == 2
        and "count" in checkpoint
        and (
            checkpoint["count"] != checkpoint["events"]["size"]
            or checkpoint["root"] != checkpoint["events"]["root"]
        )
    ):
        return CheckpointResult(
            False,
            trusted,
            first_bad="checkpoint",
            reason="the checkpoint's count and root disagree with its events tree",
            version=version,
        )
    old = heads_of(checkpoint)
    scan = scan_store(ledger, [old])
    now = scan.heads()
    result = CheckpointResult(True, trusted, version=version, not_checked=not_checked)
    failed: list[str] = []
    for name, head in old.items():
        proof = scan.proof(name, head["size"])
        ok = proof is not None and verify_consistency(
            head["size"], now[name]["size"], head["root"], now[name]["root"], proof
        )
        result.trees[name] = TreeVerdict(
            head["size"], now[name]["size"], None if proof is None else len(proof), ok
        )
        if not ok:
            failed.append(name)
    if failed:
        result.ok = False
        name = failed[0]
        first = first_difference(ledger, name, old[name])
        verdict = result.trees[name]
        if verdict.new_size < verdict.old_size:
            what = (
                f"the {name} log holds {verdict.new_size} entries where the checkpoint "
                f"counted {verdict.old_size}: entries were deleted"
            )
        else:
            what = (
                f"the {name} log does not extend the checkpoint's (the consistency proof "
                "fails): history was removed, reordered or rewritten"
            )
        result.first_bad = first.label if first.label else f"checkpoint:{name}"
        result.reason = f"{what}; {first.describe()}"
    return result


# --- naming the first difference ------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """Where a tree first differs from a checkpoint's, as far as can be told."""

    label: str | None
    index: int | None
    detail: str

    def describe(self) -> str:
        """In words."""
        return self.detail


def first_difference(ledger: CaseLedger, tree: str, head: dict[str, Any]) -> Difference:
    """The first leaf of ``tree`` that differs from the checkpoint's, found with the
    store's hints once their first ``size`` leaves hash to the signed root."""
    size, root = int(head["size"]), str(head["root"])
    hints = LeafHints.open(ledger, create=False)
    if hints is None:
        return Difference(None, None, "the store keeps no checkpoint leaves to name the entry")
    kept = MerkleTree()
    first: tuple[int, str] | None = None
    current = (leaf for leaf in store_leaves(ledger) if leaf.tree == tree)
    for index, (label, value) in enumerate(hints.leaves(tree, size)):
        kept.add_bytes(value)
        if first is None:
            now = next(current, None)
            if now is None:
                first = (index, f"{label} (missing now)")
            elif now.value != value:
                first = (index, label)
    if kept.size != size or kept.root() != root:
        return Difference(
            None,
            None,
            "the store's checkpoint leaves do not hash to the signed root, so the entry "
            "cannot be named",
        )
    if first is None:
        return Difference(None, None, f"the first {size} leaves agree")
    index, label = first
    name = label.split(" ", 1)[0]
    return Difference(
        name, index, f"the first entry that differs is {label} (leaf {index} of {tree})"
    )


#: Register bookkeeping around a checkpoint kept in the register, not covered by its signature.
REGISTER_FIELDS: Final = ("type", "seq", "recorded_at", "actor", "role", "prev_hash", "hash", "ref")


def latest_checkpoint(ledger: Any) -> dict[str, Any] | None:
    """The register's latest version 2 checkpoint, as it was signed (or ``None``)."""
    register_state = getattr(ledger, "register_state", None)
    if not callable(register_state):
        return None
    for entry in reversed(list(register_state().checkpoints)):
        if entry.get("version") == CHECKPOINT_VERSION and isinstance(entry.get("events"), dict):
            return {k: v for k, v in entry.items() if k not in REGISTER_FIELDS}
    return None
