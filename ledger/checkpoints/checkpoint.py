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
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.application import CaseLedger, Recorder, format_recorded_at
from ledger.errors import InputError, UsageError
from ledger.integrity.canonical import canonical_json
from ledger.integrity.merkle import ConsistencyProver, MerkleTree, leaf_hash, verify_consistency

SIGNING_KEY_ENV: Final = "CASELEDGER_SIGNING_KEY"
CHECKPOINT_VERSION: Final = 2
TREES: Final = ("events", "register", "personal")
"""The three logs a version 2 checkpoint commits to, in the order they are checked."""

HINTS_TABLE: Final = "caseledger_checkpoint_leaves"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")


# --- keys ---------------------------------------------------------------------------------


def new_signing_key(path: Path) -> str:
    """Write a new Ed25519 private key (PEM, mode 0600); return its public key (hex)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_new_key_file(path, pem)
    return public_hex(key.public_key())


def write_new_key_file(path: Path, secret: bytes) -> None:
    """Write a key to a new file (mode 0600), never over an existing one.

    Any path that cannot be written (a missing folder, a name too long for the file
    system, a NUL byte, a folder in its place) is a usage error naming the reason, on
    the field ``out_file`` (the key file asked for), for both kinds of key.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(
            f"{path} exists; choose a new file for the key", field="out_file"
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{path} cannot be written: {reason}", field="out_file") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)


def public_hex(key: Ed25519PublicKey) -> str:
    """An Ed25519 public key as 64 hex characters."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_signing_key(path: str | None) -> Ed25519PrivateKey:
    """The checkpoint signing key from the file ``path`` (the ``signing_key`` given) or
    ``CASELEDGER_SIGNING_KEY``."""
    chosen = path or os.environ.get(SIGNING_KEY_ENV)
    if not chosen:
        raise UsageError(
            "checkpoints are signed: give a signing key file or set CASELEDGER_SIGNING_KEY "
            "(make one with new_signing_key)",
            field="signing_key",
            code="no-signing-key",
        )
    try:
        key = serialization.load_pem_private_key(Path(chosen).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(
            f"{chosen} is not a readable signing key: {exc}", field="signing_key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{chosen} is not an Ed25519 key", field="signing_key")
    return key


def trusted_key_hex(value: str | None) -> str | None:
    """A trusted public key (``public_key``) checked and normalised: 64 hex characters,
    or None."""
    if value is None:
        return None
    key = value.strip().lower()
    if not _HEX64.fullmatch(key):
        raise UsageError(
            "a public key is 64 hexadecimal characters (the one printed by "
            "`caseledger keys signing`)",
            field="public_key",
        )
    return key


# --- the leaves -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """One leaf of one tree, with the name of what it stands for (``RR-2026-004#3``,
    ``register#2``, ``RR-2026-004#1:name``)."""

    tree: str
    label: str
    value: bytes


def personal_leaf(case: str, seq: int, name: str, commitment: str) -> bytes:
    """The ``personal`` tree's leaf for one commitment."""
    body = {"case": case, "seq": seq, "field": name, "commitment": commitment}
    return hashlib.sha256(canonical_json(body)).digest()


def case_head_leaf(ref: str, seq: int, head_hash: str) -> bytes:
    """The ``cases`` tree's leaf for a case whose head is ``ref#seq``: with it a bundle of
    some cases proves each case's last entry at the checkpoint (docs/bundle-format.md)."""
    return hashlib.sha256(canonical_json({"case": ref, "hash": head_hash, "seq": seq})).digest()


def personal_commitments(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field, commitment)`` of an entry's personal data, by field name."""
    found: dict[str, Any] = {}
    if isinstance(record.get("personal"), dict):
        found.update(record["personal"])
    changes = record.get("changes")
    if (
        record.get("type") == "EntryCorrected"
        and isinstance(changes, dict)
        and isinstance(changes.get("personal"), dict)
    ):
        found.update(changes["personal"])
    return sorted((str(k), str(v)) for k, v in found.items())


def store_leaves(ledger: CaseLedger) -> Iterator[Leaf]:
    """Every leaf of the three trees, streamed: each case entry (its event leaf, then
    its personal leaves), then the register.  Memory: one batch of entries."""
    last = 0
    for record in ledger.iter_records(0):
        ref, seq = record["case"], record["seq"]
        label = f"{ref}#{seq}"
        yield Leaf("events", label, bytes.fromhex(record["hash"]))
        for name, value in personal_commitments(record):
            yield Leaf("personal", f"{label}:{name}", personal_leaf(ref, seq, name, value))
        last = record["position"]
    for entry in ledger.register_entries():
        yield Leaf("register", f"register#{entry['seq']}", bytes.fromhex(entry["hash"]))
    yield Leaf("", str(last), b"")  # the end: carries the last position


# --- making a checkpoint --------------------------------------------------------------------


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
        if not isinstance(head.get("root"), str) or not _HEX64.fullmatch(head["root"]):
            raise bad(f"{name}.root", "must be 64 lower-case hex characters")
    if version == 1 or "count" in data or "root" in data:
        if not _is_size(data.get("count")):
            raise bad("count", f"must be a whole number >= 0, not {data.get('count')!r}")
        if not isinstance(data.get("root"), str) or not _HEX64.fullmatch(data["root"]):
            raise bad("root", "must be 64 lower-case hex characters")
    if not isinstance(data.get("public_key"), str) or not _HEX64.fullmatch(data["public_key"]):
        raise bad("public_key", "must be 64 lower-case hex characters (an Ed25519 key)")
    if not isinstance(data.get("signature"), str) or not _HEX128.fullmatch(data["signature"]):
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


# --- the hints table ------------------------------------------------------------------------


class LeafHints:
    """The leaves the store held at its checkpoints, one row per leaf, in a table of the
    store (``caseledger_checkpoint_leaves``).  Untrusted: used only to name a difference,
    after its leaves are checked against a signed root."""

    def __init__(self, ledger: CaseLedger) -> None:
        self.ledger = ledger
        self.postgres = ledger.location.kind == "postgres"
        datastore: Any = ledger.recorder.datastore  # type: ignore[attr-defined]
        self.datastore = datastore
        self.refused: str | None = None
        if self.postgres:
            from psycopg.sql import SQL, Identifier

            schema = datastore.schema or "public"
            self.table: Any = SQL("{}.{}").format(Identifier(schema), Identifier(HINTS_TABLE))
        else:
            self.table = HINTS_TABLE

    @classmethod
    def open(cls, ledger: CaseLedger, create: bool = True) -> LeafHints | None:
        """The store's hints (created when asked and absent); None if there are none, or
        if this user may not create them (a checkpoint is then made without hints)."""
        hints = cls(ledger)
        try:
            if hints._exists():
                return hints
            if create:
                hints._create()
                return hints
        except _refusals() as exc:
            hints.refused = str(exc).strip()
        return None

    def _sql(self, text: str) -> Any:
        if self.postgres:
            from psycopg.sql import SQL

            return SQL(text.replace("?", "%s")).format(t=self.table)
        return text.format(t=self.table)

    def _create(self) -> None:
        kind = ("bytea", "bigint") if self.postgres else ("BLOB", "INTEGER")
        ddl = (
            f"CREATE TABLE IF NOT EXISTS {{t}} (tree TEXT NOT NULL, idx {kind[1]} NOT NULL, "
            f"label TEXT NOT NULL, leaf {kind[0]} NOT NULL, PRIMARY KEY (tree, idx))"
        )
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._sql(ddl))

    def _exists(self) -> bool:
        with self.datastore.transaction(commit=False) as c:
            if self.postgres:
                c.execute(
                    "SELECT to_regclass(%s) IS NOT NULL AS e",
                    (f"{self.datastore.schema or 'public'}.{HINTS_TABLE}",),
                )
                return bool(c.fetchone()["e"])
            c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (HINTS_TABLE,))
            return c.fetchone() is not None

    def kept(self) -> dict[str, int]:
        """How many leaves of each tree are kept."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql("SELECT tree, COUNT(*) AS n FROM {t} GROUP BY tree"))
            rows = c.fetchall()
        if self.postgres:
            return {r["tree"]: int(r["n"]) for r in rows}
        return {r[0]: int(r[1]) for r in rows}

    def leaves(self, tree: str, size: int, batch: int = 5000) -> Iterator[tuple[str, bytes]]:
        """``(label, leaf)`` of the first ``size`` kept leaves of ``tree``, in order."""
        after = -1
        while after + 1 < size:
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    self._sql(
                        "SELECT idx, label, leaf FROM {t} WHERE tree=? AND idx>? AND idx<? "
                        "ORDER BY idx LIMIT ?"
                    ),
                    (tree, after, size, batch),
                )
                rows = c.fetchall()
            if not rows:
                return
            for row in rows:
                idx, label, leaf = (
                    (row["idx"], row["label"], row["leaf"]) if self.postgres else tuple(row)
                )
                if idx != after + 1:
                    return  # a gap: the kept leaves stop being a prefix here
                after = idx
                yield label, bytes(leaf)

    def writer(self) -> HintWriter:
        """A writer that appends the leaves not kept yet."""
        return HintWriter(self, self.kept())

    def insert(self, rows: list[tuple[str, int, str, bytes]]) -> None:
        """Append rows (tree, index, label, leaf)."""
        with self.datastore.transaction(commit=True) as c:
            if self.postgres:
                from psycopg.sql import SQL

                with c.copy(
                    SQL("COPY {} (tree, idx, label, leaf) FROM STDIN").format(self.table)
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                c.executemany(self._sql("INSERT INTO {t} VALUES (?, ?, ?, ?)"), rows)


def _refusals() -> tuple[type[Exception], ...]:
    """The errors a store gives a user it does not let write the hints table."""
    import sqlite3

    from eventsourcing.persistence import OperationalError, ProgrammingError

    errors: list[type[Exception]] = [sqlite3.OperationalError, OperationalError, ProgrammingError]
    try:
        from psycopg.errors import InsufficientPrivilege, ReadOnlySqlTransaction
    except ImportError:  # pragma: no cover - the postgres extra is not installed
        return tuple(errors)
    return (*errors, InsufficientPrivilege, ReadOnlySqlTransaction)


class HintWriter:
    """Buffers new leaves for the hints table and writes them in batches."""

    BATCH: Final = 5000

    def __init__(self, hints: LeafHints, kept: dict[str, int]) -> None:
        self.hints = hints
        self.kept = kept
        self.rows: list[tuple[str, int, str, bytes]] = []

    def add(self, tree: str, index: int, leaf: Leaf) -> None:
        """Keep ``leaf`` as leaf ``index`` of ``tree`` if not kept yet."""
        if index >= self.kept.get(tree, 0):
            self.rows.append((tree, index, leaf.label, leaf.value))
            if len(self.rows) >= self.BATCH:
                self.flush()

    def flush(self) -> None:
        """Write what is buffered; if the store refuses (no grant to write the hints),
        stop keeping them: they only help to name a difference."""
        if self.rows and self.hints.refused is None:
            try:
                self.hints.insert(self.rows)
            except _refusals() as exc:
                self.hints.refused = str(exc).strip()
        self.rows = []

    def close(self) -> None:
        """Write the rest."""
        self.flush()


__all__ = [
    "CHECKPOINT_VERSION",
    "TREES",
    "CheckpointResult",
    "Leaf",
    "LeafHints",
    "check_checkpoint",
    "check_signature",
    "heads_of",
    "load_signing_key",
    "make_checkpoint",
    "new_signing_key",
    "personal_leaf",
    "read_checkpoint",
    "scan_store",
    "sign_checkpoint",
    "signature_verifies",
    "store_root",
    "trusted_key_hex",
    "verify_since",
]

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
