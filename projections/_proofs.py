"""RFC 9162 inclusion proofs (audit paths, section 2.1.3), for export bundles.

Many audit paths from one tree, for exports (``projections.merkle`` verifies them, and
gives single proofs; ``projections/data/verify.py`` carries a standard-library copy of the
verification for inspectors).

Trees are RFC 9162's: ``leaf = SHA-256(0x00 || leaf bytes)``, ``node = SHA-256(0x01 ||
left || right)``, ``n`` leaves split at the largest power of two below ``n``.  That tree
equals the one built level by level with an unpaired last node promoted unchanged, which
is how :class:`ProofTree` keeps it (every level as one bytes buffer of 32-byte nodes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

__all__ = ["ProofTree"]

_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"


class ProofTree:
    """Every level of an RFC 9162 tree over raw leaves, to give many audit paths.

    Memory: about 64 bytes per leaf (the leaf hashes and the levels above them).
    """

    __slots__ = ("_levels",)

    def __init__(self, leaves: Iterable[bytes]) -> None:
        sha = hashlib.sha256
        level = b"".join(sha(_LEAF + leaf).digest() for leaf in leaves)
        self._levels: list[bytes] = [level]
        while len(level) > 32:
            count = len(level) // 32
            parts = [
                sha(_NODE + level[i : i + 64]).digest() for i in range(0, (count - 1) * 32, 64)
            ]
            if count % 2:
                parts.append(level[-32:])
            level = b"".join(parts)
            self._levels.append(level)

    @property
    def size(self) -> int:
        """How many leaves the tree holds."""
        return len(self._levels[0]) // 32

    def leaf_hash(self, index: int) -> bytes:
        """The hash of leaf ``index`` (``SHA-256(0x00 || leaf)``)."""
        return self._levels[0][index * 32 : index * 32 + 32]

    def root(self) -> str:
        """The tree's root (hex); the hash of the empty string for no leaves."""
        if self.size == 0:
            return hashlib.sha256(b"").hexdigest()
        return self._levels[-1].hex()

    def path(self, index: int) -> list[str]:
        """The audit path (hex, bottom up) of leaf ``index`` in this tree."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is not in a tree of {self.size}")
        proof: list[str] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling * 32 < len(level):
                proof.append(level[sibling * 32 : sibling * 32 + 32].hex())
            index >>= 1
        return proof
