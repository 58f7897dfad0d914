"""Canonical JSON, event hashing and personal-data commitments, per the catalogue.

Canonical JSON is object keys sorted, no insignificant white space, UTF-8, strings
exactly as given and integers only; within those limits it equals RFC 8785 (JCS),
which ``tests/test_canonical.py`` proves against the ``rfc8785`` package.  One limit
matters: JCS orders keys by UTF-16 code units and orjson by code point, which differ
only for characters beyond U+FFFF; every key in an event is ASCII (field names and
``[a-z][a-z0-9_]*`` personal keys, enforced by the catalogue), so the two agree.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import orjson

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first event of every case."""

#: Envelope fields that are not part of the hashed body.
UNHASHED_FIELDS = frozenset({"hash", "position"})


def canonical_json(value: Any) -> bytes:
    """The canonical bytes of a JSON value (RFC 8785 within the catalogue's limits)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def hashed_body(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a stored record that its hash covers (all but ``hash``, ``position``)."""
    return {k: v for k, v in record.items() if k not in UNHASHED_FIELDS}


def event_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the event without ``hash`` and ``position``."""
    return hashlib.sha256(canonical_json(hashed_body(record))).hexdigest()


def new_salt() -> bytes:
    """A fresh random 16-byte salt for one personal-data commitment."""
    return secrets.token_bytes(16)


def commitment(salt: bytes, value: Any) -> str:
    """``sha256(salt || canonical JSON of the value)`` as hex: what the hashed body holds."""
    return hashlib.sha256(salt + canonical_json(value)).hexdigest()


def personal_commitments(record: dict[str, Any]) -> dict[str, Any]:
    """The personal-data commitments a hashed entry carries: its ``personal`` field, or
    ``changes.personal`` of a correction (the two places the ledger puts them)."""
    personal = record.get("personal")
    if isinstance(personal, dict):
        return personal
    changes = record.get("changes")
    if record.get("type") == "EntryCorrected" and isinstance(changes, dict):
        inner = changes.get("personal")
        if isinstance(inner, dict):
            return inner
    return {}


def sealed_record(entry: dict[str, Any]) -> tuple[str, bytes]:
    """The hash of a new entry (holding neither ``hash`` nor ``position``) and the
    canonical JSON of the entry with that hash, from one serialisation.

    The same bytes as ``event_hash(entry)`` and ``canonical_json({**entry, "hash": ...})``
    (``tests/test_canonical.py`` proves it): the fields sorting before ``hash`` and
    those after are serialised apart, so the hashed bytes are the two joined and the
    stored bytes the two with the hash between them.  Keys beyond ASCII (never a
    catalogue field) take the plain two-pass way, as the two orders could differ.
    """
    if not "".join(entry).isascii() or "hash" in entry or "position" in entry:
        digest = event_hash(entry)
        return digest, canonical_json({**entry, "hash": digest})
    before = {k: v for k, v in entry.items() if k < "hash"}
    after = {k: v for k, v in entry.items() if k > "hash"}
    head = canonical_json(before)[:-1]  # "{...", without the closing brace
    tail = canonical_json(after)[1:]  # "...}", without the opening brace
    if before and after:
        hashed = head + b"," + tail
    else:
        hashed = head + tail
    digest = hashlib.sha256(hashed).hexdigest()
    field = b'"hash":"' + digest.encode() + b'"'
    stored = (head + b"," if before else head) + field + (b"," + tail if after else tail)
    return digest, stored
