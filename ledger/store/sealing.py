"""Crypto-shredding of personal data: each entry's personal values are sealed with a key
of the case's own (AES-256-GCM), so destroying the key erases the values wherever their
ciphertext survives (a WAL, a dead tuple, a data backup).

A sealed value is ``0x01 || nonce (12 bytes) || AES-GCM ciphertext and tag``, bound by
its associated data to the case, entry, field and part it belongs to, so a row moved to
another case or field fails to open.  In a store encrypted at rest the case keys are
themselves sealed with a wrapping key derived (HKDF-SHA256) from the store key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32


@dataclass(frozen=True)
class PersonalRow:
    """One personal value and its salt, kept outside the hashed body."""

    case_ref: str
    seq: int
    field: str
    value: bytes
    salt: bytes


@dataclass(frozen=True)
class PersonalKey:
    """The key of one entry's personal values (sealed by the store key when the store
    is encrypted at rest)."""

    case_ref: str
    seq: int
    key: bytes


class SealBroken(Exception):
    """A sealed value does not open with the key given (wrong key, or moved or altered)."""


def _aesgcm() -> type[AESGCM]:
    """The AES-GCM cipher class: ``cryptography`` is imported on first use (~15 ms at
    start-up, which a read that opens no personal value does not need)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM


def new_case_key() -> bytes:
    """A fresh AES-256 key for one entry's personal values."""
    return _aesgcm().generate_key(bit_length=256)


def associated_data(case_ref: str, seq: int, field: str, part: str) -> bytes:
    """What a sealed value is bound to: the stored case name, the entry, field and part
    (``value``, ``salt`` or ``key``)."""
    return "\x00".join(("caseledger personal v1", case_ref, str(seq), field, part)).encode()


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` under ``key``, bound to ``aad``."""
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT + nonce + _aesgcm()(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The inverse of :func:`seal`; raises :class:`SealBroken` if it does not open."""
    if sealed[:1] != FORMAT or len(sealed) < 1 + NONCE_BYTES + 16:
        raise SealBroken("not a sealed personal value")
    from cryptography.exceptions import InvalidTag

    nonce = sealed[1 : 1 + NONCE_BYTES]
    try:
        return _aesgcm()(key).decrypt(nonce, sealed[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise SealBroken("the value does not open with this key") from None


def wrapping_key(store_key: bytes) -> bytes:
    """The key that seals case keys in a store encrypted at rest, derived from the store
    key so that one key file opens both, and never used for anything else."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=b"caseledger personal-data key wrapping v1",
    ).derive(store_key)
