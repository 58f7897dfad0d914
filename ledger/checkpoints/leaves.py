"""The leaves of a checkpoint's three trees (``events``, ``register``, ``personal``) and of a
bundle's ``cases`` tree, and every leaf of a store streamed in the order the trees take
them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ledger.application import CaseLedger
from ledger.integrity.canonical import canonical_json


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
