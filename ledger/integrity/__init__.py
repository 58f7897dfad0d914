"""Hashing that needs nothing else of the ledger: canonical JSON and entry hashes
(:mod:`ledger.integrity.canonical`) and the RFC 9162 Merkle tree with its proofs
(:mod:`ledger.integrity.merkle`)."""
