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
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "ConsistencyProver",
    "MerkleTree",
    "ProofTree",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "merkle_root",
    "merkle_root_recursive",
    "node_hash",
    "range_roots",
    "verify_consistency",
    "verify_inclusion",
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

    def add_leaf_hash(self, value: bytes) -> None:
        """Add a leaf already hashed (``SHA-256(0x00 || leaf)``, 32 bytes)."""
        self._pending.append(value)
        self._size += 1
        if len(self._pending) == CHUNK:
            self._push(CHUNK, _complete_root(self._pending))
            self._pending = []

    def frontier(self) -> list[tuple[int, str]]:
        """The complete subtrees the leaves so far decompose into, left to right, as
        ``(leaves, root hex)``: one per bit of the leaf count, largest first.  Their
        fold right-to-left is :meth:`root`."""
        out = [(size, node.hex()) for size, node in self._stack]
        pending = self._pending
        while pending:
            k = 1 << (len(pending).bit_length() - 1)
            out.append((k, _complete_root(pending[:k]).hex()))
            pending = pending[k:]
        return out

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


# --- RFC 9162 proofs (sections 2.1.3 and 2.1.4) ------------------------------------------
#
# Proofs are lists of node hashes as hex, in the RFC's order.  A *range* ``(a, b)`` names
# the subtree over leaves ``a .. b-1``; every proof node is the root of one such subtree,
# so a prover needs only the roots of a few ranges, which :func:`range_roots` computes in
# one pass over the leaves with memory logarithmic in their number.


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (for ``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees whose roots make the audit path of leaf ``index`` in a tree of
    ``size`` leaves (RFC 9162 section 2.1.3.1, ``PATH(m, D[n])``), in proof order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[tuple[int, int]] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            path.append((start + k, start + n))
            n = k
        else:
            path.append((start, start + k))
            start, n, m = start + k, n - k, m - k
    path.reverse()  # the recursion appends on the way back up: deepest node first
    return path


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtrees whose roots make the consistency proof from ``old_size`` to
    ``new_size`` leaves (RFC 9162 section 2.1.4.1, ``PROOF(m, D[n])``), in proof order."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")
    if old_size in (0, new_size):
        return []
    proof: list[tuple[int, int]] = []
    start, n, m, whole = 0, new_size, old_size, True
    while m != n:
        k = _split(n)
        if m <= k:
            proof.append((start + k, start + n))
            n = k
        else:
            proof.append((start, start + k))
            start, n, m, whole = start + k, n - k, m - k, False
    if not whole:
        proof.append((start, start + n))
    proof.reverse()
    return proof


def range_roots(leaf_hashes: Iterable[bytes], ranges: Iterable[tuple[int, int]]) -> list[bytes]:
    """The roots of disjoint leaf ranges, in the order given, from leaf hashes streamed
    in order (stopping after the last range).  Memory: O(log n) hashes per open range,
    and the ranges are disjoint, so one at a time."""
    wanted = list(ranges)
    order = sorted(range(len(wanted)), key=lambda i: wanted[i][0])
    for before, after in itertools.pairwise(order):
        if wanted[before][1] > wanted[after][0]:
            raise ValueError("range_roots needs disjoint ranges")
    roots: list[bytes | None] = [None] * len(wanted)
    if not wanted:
        return []
    it = iter(leaf_hashes)
    position = 0
    for i in order:
        a, b = wanted[i]
        while position < a:
            if next(it, None) is None:
                raise ValueError(f"the leaves ended at {position}, before leaf {a}")
            position += 1
        tree = MerkleTree()
        while position < b:
            value = next(it, None)
            if value is None:
                raise ValueError(f"the leaves ended at {position}, before leaf {b}")
            tree.add_leaf_hash(value)
            position += 1
        roots[i] = bytes.fromhex(tree.root())
    return [r for r in roots if r is not None]


class ConsistencyProver:
    """Streams a log's leaf hashes once and gives the RFC 9162 consistency proof from its
    first ``old_size`` leaves to all the leaves it was given, holding O(log n) hashes,
    without knowing the final size in advance.

    The proof's nodes inside the old tree are complete subtrees of its binary
    decomposition (its *frontier*); those after it are built from the *compact range*
    of the new leaves (the maximal aligned complete subtrees covering them, merged like
    a binary counter as leaves arrive).
    """

    __slots__ = ("_compact", "_old", "_size", "old_size")

    def __init__(self, old_size: int) -> None:
        if old_size < 0:
            raise ValueError("a tree has no negative size")
        self.old_size = old_size
        self._old = MerkleTree()
        self._compact: list[tuple[int, int, bytes]] = []  # (first leaf, leaves, root)
        self._size = 0

    @property
    def size(self) -> int:
        """How many leaves have been given."""
        return self._size

    def add_leaf_hash(self, value: bytes) -> None:
        """Add the next leaf, already hashed (``SHA-256(0x00 || leaf)``)."""
        if self._size < self.old_size:
            self._old.add_leaf_hash(value)
        else:
            start, size, node = self._size, 1, value
            compact = self._compact
            while compact and compact[-1][1] == size and compact[-1][0] % (2 * size) == 0:
                start, _, left = compact.pop()
                size *= 2
                node = node_hash(left, node)
            compact.append((start, size, node))
        self._size += 1

    def old_root(self) -> str:
        """The root over the first ``old_size`` leaves given (as much as was given)."""
        return self._old.root()

    def proof(self) -> list[str]:
        """The consistency proof (hex) from ``old_size`` leaves to :attr:`size`."""
        m, n = self.old_size, self._size
        old_nodes: dict[tuple[int, int], str] = {}
        start = 0
        for size, root in self._old.frontier():
            old_nodes[(start, start + size)] = root
            start += size
        out: list[str] = []
        for a, b in consistency_ranges(m, n):
            if b <= m:
                out.append(old_nodes[(a, b)])
                continue
            run = [(s, z, h) for s, z, h in self._compact if a <= s and s + z <= b]
            if sum(z for _, z, _ in run) != b - a:  # pragma: no cover - a logic error
                raise AssertionError(f"the compact range does not cover leaves {a}..{b - 1}")
            node = run[-1][2]
            for _, _, left in reversed(run[:-1]):
                node = node_hash(left, node)
            out.append(node.hex())
        return out


def _leaf_hashes(leaves: Sequence[bytes], size: int) -> Iterator[bytes]:
    if size > len(leaves):
        raise ValueError(f"{size} leaves asked for, {len(leaves)} given")
    for leaf in leaves[:size]:
        yield leaf_hash(leaf)


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[str]:
    """The audit path (hex) of leaf ``index`` in the tree over the first ``size`` raw
    ``leaves`` (RFC 9162 section 2.1.3.1)."""
    ranges = inclusion_ranges(index, size)
    return [r.hex() for r in range_roots(_leaf_hashes(leaves, size), ranges)]


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int) -> list[str]:
    """The consistency proof (hex) that the tree over the first ``new_size`` raw
    ``leaves`` extends the tree over the first ``old_size`` (RFC 9162 section 2.1.4.1)."""
    ranges = consistency_ranges(old_size, new_size)
    return [r.hex() for r in range_roots(_leaf_hashes(leaves, new_size), ranges)]


def _hex32(value: object) -> bytes | None:
    """32 bytes from 64 hex characters, or None for anything else."""
    if not isinstance(value, str) or len(value) != 64:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _proof_bytes(proof: object) -> list[bytes] | None:
    if not isinstance(proof, list):
        return None
    nodes = [_hex32(p) for p in proof]
    return None if any(n is None for n in nodes) else [n for n in nodes if n is not None]


def _sizes(*sizes: object) -> bool:
    return all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sizes)


def verify_inclusion(
    leaf_hash_hex: str, index: int, size: int, proof: list[str], root_hex: str
) -> bool:
    """Whether ``proof`` shows that the leaf whose RFC 9162 leaf hash
    (``SHA-256(0x00 || leaf)``, hex) is ``leaf_hash_hex`` sits at ``index`` in the tree
    of ``size`` leaves with root ``root_hex`` (RFC 9162 section 2.1.3.2).  Malformed
    input is a failed proof, never an exception."""
    node, root, path = _hex32(leaf_hash_hex), _hex32(root_hex), _proof_bytes(proof)
    if node is None or root is None or path is None or not _sizes(index, size):
        return False
    if index >= size:
        return False
    fn, sn = index, size - 1
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(p, node)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root


def verify_consistency(
    old_size: int, new_size: int, old_root: str, new_root: str, proof: list[str]
) -> bool:
    """Whether ``proof`` shows that the tree of ``new_size`` leaves with root
    ``new_root`` extends the tree of ``old_size`` leaves with root ``old_root`` (RFC
    9162 section 2.1.4.2): the same first ``old_size`` leaves, in the same order.  The
    work is linear in the proof's length, logarithmic in the tree's size; malformed
    input is a failed proof, never an exception."""
    first, second, path = _hex32(old_root), _hex32(new_root), _proof_bytes(proof)
    if first is None or second is None or path is None or not _sizes(old_size, new_size):
        return False
    if old_size > new_size:
        return False
    if old_size == new_size:
        return not path and first == second
    if old_size == 0:
        return not path and first == bytes.fromhex(EMPTY_ROOT)
    if not path:
        return False
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a proof node
        path = [first, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first and sr == second


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
