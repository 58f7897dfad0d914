"""Canonical JSON equals RFC 8785 (JCS) within the catalogue's limits, and hashing
follows the catalogue: SHA-256 of the body without ``hash`` and ``position``."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrity.canonical import canonical_json, commitment, event_hash, hashed_body

# Strings exactly as given: any Unicode scalar value (no lone surrogates, which the
# input parser rejects), including controls, quotes, backslashes and non-BMP characters.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
# Keys in events are field names or personal-data keys ([a-z][a-z0-9_]*): ASCII only,
# which the catalogue enforces.  (JCS sorts keys by UTF-16 code units, orjson by code
# point; the two orders differ only for keys with characters beyond U+FFFF.)
keys = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-#", min_size=1, max_size=12
)
scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400)
@given(json_values)
def test_canonical_json_equals_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@given(st.dictionaries(keys, json_values, max_size=8))
def test_hash_ignores_hash_and_position_only(record: dict[str, Any]) -> None:
    body = {**record, "hash": "x" * 64, "position": 17}
    expected = hashlib.sha256(rfc8785.dumps(hashed_body(body))).hexdigest()
    assert event_hash(body) == expected
    assert "hash" not in hashed_body(body) and "position" not in hashed_body(body)


def test_commitment_is_salted_hash_of_canonical_value() -> None:
    salt = bytes(range(16))
    value = {"name": "Kai Example"}
    assert commitment(salt, value) == hashlib.sha256(salt + rfc8785.dumps(value)).hexdigest()
    assert commitment(salt, value) != commitment(bytes(16), value)


def test_catalogue_refuses_keys_outside_the_canonical_limits() -> None:
    import pytest

    from ledger.application import parse_line
    from ledger.errors import InputError
    from tests.conftest import scenario_lines

    referral = scenario_lines()[0].replace(b'"name":', '"\U00010000":'.encode())
    with pytest.raises(InputError) as caught:
        parse_line(referral)
    assert caught.value.field is not None and caught.value.field.startswith("personal")
