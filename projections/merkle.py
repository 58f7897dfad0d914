"""The Merkle tree hash of RFC 9162 (Certificate Transparency 2.0), section 2.1.1.

An export bundle commits to its events, in export order, with one Merkle root:

- the leaves are the events' own ``hash`` values, as 32 raw bytes each;
- a leaf hash is ``SHA-256(0x00 || leaf)``;
- an interior node is ``SHA-256(0x01 || left || right)``;
- for ``n > 1`` leaves the tree splits at ``k``, the largest power of two smaller than
  ``n``: ``MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))``;
- the root of no leaves is ``SHA-256()`` of the empty string.

:class:`MerkleTree` computes the root in one pass with memory logarithmic in the number
of leaves (a stack of complete subtree roots, like a binary counter), so a bundle of
millions of events needs no list of its hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "leaf_hash",
    "merkle_root",
    "merkle_root_recursive",
    "node_hash",
]

EMPTY_ROOT: Final = hashlib.sha256(b"").hexdigest()
"""The root of a tree with no leaves (RFC 9162: the hash of the empty string)."""

_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``."""
    return hashlib.sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE + left + right).digest()


#: Leaves are hashed and reduced in chunks of this many (a power of two): one complete
#: subtree per chunk, computed level by level in tight loops.
CHUNK: Final = 1024


class MerkleTree:
    """Streams leaves in and gives the RFC 9162 root, holding O(log n) hashes.

    ``add`` takes an event hash as 64 hex characters; ``add_bytes`` takes raw leaf bytes.
    Leaf hashes are buffered up to :data:`CHUNK` at a time; each full chunk becomes one
    complete subtree on a stack of complete subtrees whose sizes are the powers of two of
    the binary expansion of the leaf count (equal neighbours merge, like a binary counter).
    """

    __slots__ = ("_pending", "_size", "_stack")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (leaves, subtree root)
        self._pending: list[bytes] = []  # leaf hashes not yet in a complete chunk
        self._size = 0

    @property
    def size(self) -> int:
        """How many leaves have been added."""
        return self._size

    def add(self, event_hash_hex: str) -> None:
        """Add one event hash (64 hex characters) as the next leaf."""
        self._pending.append(hashlib.sha256(_LEAF + bytes.fromhex(event_hash_hex)).digest())
        self._size += 1
        if len(self._pending) == CHUNK:
            self._push(CHUNK, _complete_root(self._pending))
            self._pending = []

    def add_bytes(self, leaf: bytes) -> None:
        """Add raw leaf bytes as the next leaf."""
        self._pending.append(hashlib.sha256(_LEAF + leaf).digest())
        self._size += 1
        if len(self._pending) == CHUNK:
            self._push(CHUNK, _complete_root(self._pending))
            self._pending = []

    def _push(self, size: int, node: bytes) -> None:
        stack = self._stack
        while stack and stack[-1][0] == size:
            left = stack.pop()[1]
            node = hashlib.sha256(_NODE + left + node).digest()
            size *= 2
        stack.append((size, node))

    def root(self) -> str:
        """The Merkle tree hash (hex) of the leaves added so far."""
        nodes = [node for _, node in self._stack]
        if self._pending:
            nodes.append(_tree_root(self._pending))
        if not nodes:
            return EMPTY_ROOT
        # The right-most (smallest) subtrees combine first: this is exactly the split at
        # the largest power of two smaller than n, applied recursively (section 2.1.1).
        node = nodes[-1]
        for left in reversed(nodes[:-1]):
            node = node_hash(left, node)
        return node.hex()


def _complete_root(level: list[bytes]) -> bytes:
    """The root over leaf hashes whose number is a power of two."""
    sha = hashlib.sha256
    while len(level) > 1:
        level = [sha(_NODE + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=True)]
    return level[0]


def _tree_root(hashes: list[bytes]) -> bytes:
    """RFC 9162 over leaf hashes (already leaf-hashed), any number >= 1."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(_complete_root(hashes[:k]), _tree_root(hashes[k:]))


def merkle_root(event_hashes: Iterable[str]) -> str:
    """The RFC 9162 root (hex) over event hashes (hex) in the given order."""
    tree = MerkleTree()
    for value in event_hashes:
        tree.add(value)
    return tree.root()


def merkle_root_recursive(leaves: list[bytes]) -> str:
    """The textbook recursive definition, for tests and for reading alongside the RFC."""

    def mth(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return leaf_hash(items[0])
        k = 1
        while k * 2 < len(items):
            k *= 2
        return node_hash(mth(items[:k]), mth(items[k:]))

    return mth(leaves).hex() if leaves else EMPTY_ROOT
