"""The inclusion proofs of a subset bundle against the store's signed checkpoint: an RFC 9162
audit path per entry in ``proofs.jsonl``, and each case's head at the checkpoint or the
proof that the case is newer.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Any

from ledger.checkpoints.leaves import case_head_leaf
from ledger.integrity.merkle import ProofTree, leaf_hash
from projections.export.export_selection import LedgerToExport, StoreDoesNotVerify


class _LogIndex:
    """The store's log up to a checkpoint, for a subset bundle's proofs: the positions
    and the tree of its first ``size`` entries and every case's head at that point."""

    def __init__(self, ledger: LedgerToExport, checkpoint: dict[str, Any]) -> None:
        size = int(checkpoint["events"]["size"])
        self.last_position = int(checkpoint["last_position"])
        self.positions: array[int] = array("q")
        leaves: list[bytes] = []
        heads: dict[str, tuple[int, str]] = {}
        if size:
            for record in ledger.iter_records(0):
                self.positions.append(record["position"])
                leaves.append(bytes.fromhex(record["hash"]))
                heads[record["case"]] = (record["seq"], record["hash"])
                if len(leaves) == size:
                    break
        self.tree = ProofTree(leaves)
        if self.tree.size != size or self.tree.root() != checkpoint["events"]["root"]:
            raise StoreDoesNotVerify(
                f"the store's first {size} entries no longer hash to its signed checkpoint's "
                "root; run caseledger verify (nothing was exported)"
            )
        self.heads = heads
        self.refs: list[str] | None = None
        self.cases: ProofTree | None = None
        declared = checkpoint.get("cases")
        if isinstance(declared, dict):
            self.refs = sorted(heads)
            self.cases = ProofTree(case_head_leaf(r, *heads[r]) for r in self.refs)
            if self.cases.size != declared.get("size") or self.cases.root() != declared.get("root"):
                raise StoreDoesNotVerify(
                    "the store's case heads at its signed checkpoint no longer hash to the "
                    "checkpoint's cases root; run caseledger verify (nothing was exported)"
                )

    def entry_proof(self, ref: str, seq: int, position: int, own: str) -> dict[str, Any]:
        """An entry's line of proofs.jsonl."""
        if position > self.last_position:
            return {"index": None}
        index = bisect_left(self.positions, position)
        if (
            index >= self.tree.size
            or self.positions[index] != position
            or self.tree.leaf_hash(index) != leaf_hash(bytes.fromhex(own))
        ):
            raise StoreDoesNotVerify(
                f"{ref}#{seq} is not the entry the store's signed checkpoint holds at its "
                "place; run caseledger verify (nothing was exported)"
            )
        return {"index": index, "proof": self.tree.path(index)}

    def _leaf(self, index: int) -> dict[str, Any]:
        assert self.refs is not None and self.cases is not None
        ref = self.refs[index]
        seq, head = self.heads[ref]
        return {
            "case": ref,
            "seq": seq,
            "hash": head,
            "index": index,
            "proof": self.cases.path(index),
        }

    def case_proof(self, ref: str) -> dict[str, Any]:
        """A case's head at the checkpoint, or the neighbours proving it had none."""
        if self.refs is None:
            return {"at_checkpoint": None, "absent_at_checkpoint": None}
        index = bisect_left(self.refs, ref)
        if index < len(self.refs) and self.refs[index] == ref:
            leaf = self._leaf(index)
            del leaf["case"]
            return {"at_checkpoint": leaf, "absent_at_checkpoint": None}
        return {
            "at_checkpoint": None,
            "absent_at_checkpoint": {
                "left": self._leaf(index - 1) if index > 0 else None,
                "right": self._leaf(index) if index < len(self.refs) else None,
            },
        }


def log_index(ledger: LedgerToExport, checkpoint: dict[str, Any]) -> _LogIndex:
    return _LogIndex(ledger, checkpoint)
