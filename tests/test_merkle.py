"""RFC 9162 Merkle roots, audit paths and consistency proofs: property tests against the
textbook recursive definitions, and Certificate Transparency's known answers."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrity.merkle import (
    EMPTY_ROOT,
    ConsistencyProver,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root_recursive,
    node_hash,
    range_roots,
    verify_consistency,
    verify_inclusion,
)

# --- the textbook definitions (RFC 9162 sections 2.1.1, 2.1.3.1, 2.1.4.1), recursively ----


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return leaf_hash(d[0])
    k = 1
    while k * 2 < len(d):
        k *= 2
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return subproof(m, d, True) if 0 < m < len(d) else []


def leaves_of(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


# --- property tests --------------------------------------------------------------------


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=300))
def test_streamed_root_and_frontier_match_the_definition(n: int) -> None:
    leaves = leaves_of(n)
    tree = MerkleTree()
    for leaf in leaves:
        tree.add_bytes(leaf)
    assert tree.root() == mth(leaves).hex() == merkle_root_recursive(leaves)
    frontier = tree.frontier()
    assert [size for size, _ in frontier] == [
        1 << b for b in reversed(range(n.bit_length())) if n >> b & 1
    ]
    start = 0
    for size, root in frontier:
        assert root == mth(leaves[start : start + size]).hex()
        start += size


def test_the_streamed_root_crosses_chunk_boundaries() -> None:
    leaves = leaves_of(2049 + 3)
    tree = MerkleTree()
    for leaf in leaves:
        tree.add_bytes(leaf)
    assert tree.root() == mth(leaves).hex()


@settings(max_examples=400)
@given(st.data())
def test_inclusion_proofs_match_the_definition_and_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=200))
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    leaves = leaves_of(n)
    ours = inclusion_proof(leaves, i, n)
    assert ours == [h.hex() for h in path(i, leaves)]
    root = mth(leaves).hex()
    assert verify_inclusion(leaf_hash(leaves[i]).hex(), i, n, ours, root)
    other = data.draw(st.integers(min_value=0, max_value=n - 1))
    if other != i and leaves[other] != leaves[i]:
        assert not verify_inclusion(leaf_hash(leaves[other]).hex(), i, n, ours, root)
    if ours:
        flipped = [*ours]
        flipped[0] = ("0" if flipped[0][0] != "0" else "1") + flipped[0][1:]
        assert not verify_inclusion(leaf_hash(leaves[i]).hex(), i, n, flipped, root)
        assert not verify_inclusion(leaf_hash(leaves[i]).hex(), i, n, ours[:-1], root)


@settings(max_examples=400)
@given(st.data())
def test_consistency_proofs_match_the_definition_and_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=0, max_value=200))
    m = data.draw(st.integers(min_value=0, max_value=n))
    leaves = leaves_of(n)
    ours = consistency_proof(leaves, m, n)
    assert ours == [h.hex() for h in proof(m, leaves)]
    old, new = mth(leaves[:m]).hex(), mth(leaves).hex()
    assert verify_consistency(m, n, old, new, ours)
    if 0 < m < n:
        # a log that rewrote any one of its first m leaves does not extend the old one
        j = data.draw(st.integers(min_value=0, max_value=m - 1))
        forked = [*leaves]
        forked[j] = b"rewritten"
        forked_root = mth(forked).hex()
        forked_proof = consistency_proof(forked, m, n)
        assert not verify_consistency(m, n, old, forked_root, forked_proof)
        assert not verify_consistency(m, n, old, new, ours[:-1])
        assert not verify_consistency(m, n, new, old, ours)
        assert not verify_consistency(m + 1, n, old, new, ours)


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=5))
def test_range_roots_of_disjoint_ranges(spans: list[tuple[int, int]]) -> None:
    ranges, start = [], 0
    for gap, width in spans:
        ranges.append((start + gap, start + gap + width))
        start += gap + width
    leaves = leaves_of(start)
    got = range_roots((leaf_hash(x) for x in leaves), list(reversed(ranges)))
    assert got == [mth(leaves[a:b]) for a, b in reversed(ranges)]


def test_range_roots_refuse_overlaps_and_short_streams() -> None:
    hashes = [leaf_hash(x) for x in leaves_of(4)]
    with pytest.raises(ValueError, match="disjoint"):
        range_roots(hashes, [(0, 2), (1, 3)])
    with pytest.raises(ValueError, match="ended"):
        range_roots(hashes, [(2, 6)])


@pytest.mark.parametrize(
    "args",
    [
        ("zz" * 32, 0, 1, [], EMPTY_ROOT),
        ("00" * 32, 0, 1, "not a list", EMPTY_ROOT),
        ("00" * 32, "0", 1, [], EMPTY_ROOT),
        ("00" * 32, -1, 1, [], EMPTY_ROOT),
        ("00" * 32, 0, 1, ["00"], EMPTY_ROOT),
        ("00" * 32, True, 2, [], EMPTY_ROOT),
    ],
)
def test_malformed_inclusion_input_is_a_failed_proof(args: tuple) -> None:  # type: ignore[type-arg]
    assert verify_inclusion(*args) is False


def test_malformed_consistency_input_is_a_failed_proof() -> None:
    assert not verify_consistency(1, 2, "x", EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency("1", 2, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])  # type: ignore[arg-type]
    assert not verify_consistency(1, 2, EMPTY_ROOT, EMPTY_ROOT, [42])  # type: ignore[list-item]
    assert not verify_consistency(3, 2, EMPTY_ROOT, EMPTY_ROOT, [])


# --- Certificate Transparency's known answers -------------------------------------------
# The eight leaves, roots and proofs used by certificate-transparency-go and
# transparency-dev/merkle (proof/verify_test.go), which implement RFC 6962/9162 hashing.

CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def test_ct_roots() -> None:
    for n, root in enumerate(CT_ROOTS, start=1):
        tree = MerkleTree()
        for leaf in CT_LEAVES[:n]:
            tree.add_bytes(leaf)
        assert tree.root() == root
    assert MerkleTree().root() == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_ct_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    assert inclusion_proof(CT_LEAVES, index, size) == expected
    leaf = leaf_hash(CT_LEAVES[index]).hex()
    assert verify_inclusion(leaf, index, size, expected, CT_ROOTS[size - 1])
    assert not verify_inclusion(leaf, index, size * 2, expected, CT_ROOTS[size - 1])
    if index > 0:
        assert not verify_inclusion(leaf, index - 1, size, expected, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY)
def test_ct_consistency_proofs(old: int, new: int, expected: list[str]) -> None:
    assert consistency_proof(CT_LEAVES, old, new) == expected
    assert verify_consistency(old, new, CT_ROOTS[old - 1], CT_ROOTS[new - 1], expected)
    if expected:
        assert not verify_consistency(old, new, CT_ROOTS[new - 1], CT_ROOTS[old - 1], expected)
        assert not verify_consistency(old, new, CT_ROOTS[old - 1], CT_ROOTS[new - 1], [])
        assert not verify_consistency(
            old, new, CT_ROOTS[old - 1], CT_ROOTS[new - 1], [*expected, CT_ROOTS[0]]
        )


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "ok"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, True),
        (0, 3, EMPTY_ROOT, CT_ROOTS[2], True),
        (0, 3, CT_ROOTS[0], CT_ROOTS[2], False),  # the empty tree has one root
        (1, 1, CT_ROOTS[0], CT_ROOTS[0], True),
        (1, 1, CT_ROOTS[0], CT_ROOTS[1], False),
        (2, 1, CT_ROOTS[1], CT_ROOTS[0], False),  # time travel
    ],
)
def test_ct_trivial_consistency(old: int, new: int, old_root: str, new_root: str, ok: bool) -> None:
    assert verify_consistency(old, new, old_root, new_root, []) is ok


@settings(max_examples=500)
@given(st.data())
def test_the_streaming_prover_gives_the_same_proof(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=0, max_value=2200))
    m = data.draw(st.integers(min_value=0, max_value=n))
    leaves = leaves_of(n)
    prover = ConsistencyProver(m)
    for leaf in leaves:
        prover.add_leaf_hash(leaf_hash(leaf))
    assert prover.size == n
    assert prover.old_root() == mth(leaves[:m]).hex()
    assert prover.proof() == consistency_proof(leaves, m, n)


def test_the_streaming_prover_holds_logarithmic_state() -> None:
    """A prover over 200,000 leaves holds a few dozen hashes, not the leaves."""
    from ledger.integrity.merkle import CHUNK

    prover = ConsistencyProver(70_001)
    for i in range(200_000):
        prover.add_leaf_hash(hashlib.sha256(i.to_bytes(4, "big")).digest())
        if i % 9973 == 0:
            assert len(prover._compact) <= 2 * 18
    assert len(prover._old._stack) <= 18 and len(prover._old._pending) < CHUNK
    assert len(prover.proof()) <= 2 * 18
