"""The Ed25519 keys that sign checkpoints: a new key written to a file only its owner can
read, a signing key loaded from a file or ``CASELEDGER_SIGNING_KEY``, and a trusted public
key given in hex.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import UsageError

SIGNING_KEY_ENV: Final = "CASELEDGER_SIGNING_KEY"
HEX64 = re.compile(r"[0-9a-f]{64}")
HEX128 = re.compile(r"[0-9a-f]{128}")


# --- keys ---------------------------------------------------------------------------------


def new_signing_key(path: Path) -> str:
    """Write a new Ed25519 private key (PEM, mode 0600); return its public key (hex)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_new_key_file(path, pem)
    return public_hex(key.public_key())


def write_new_key_file(path: Path, secret: bytes) -> None:
    """Write a key to a new file (mode 0600), never over an existing one.

    Any path that cannot be written (a missing folder, a name too long for the file
    system, a NUL byte, a folder in its place) is a usage error naming the reason, on
    the field ``out_file`` (the key file asked for), for both kinds of key.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(
            f"{path} exists; choose a new file for the key", field="out_file"
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{path} cannot be written: {reason}", field="out_file") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)


def public_hex(key: Ed25519PublicKey) -> str:
    """An Ed25519 public key as 64 hex characters."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_signing_key(path: str | None) -> Ed25519PrivateKey:
    """The checkpoint signing key from the file ``path`` (the ``signing_key`` given) or
    ``CASELEDGER_SIGNING_KEY``."""
    chosen = path or os.environ.get(SIGNING_KEY_ENV)
    if not chosen:
        raise UsageError(
            "checkpoints are signed: give a signing key file or set CASELEDGER_SIGNING_KEY "
            "(make one with new_signing_key)",
            field="signing_key",
            code="no-signing-key",
        )
    try:
        key = serialization.load_pem_private_key(Path(chosen).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(
            f"{chosen} is not a readable signing key: {exc}", field="signing_key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{chosen} is not an Ed25519 key", field="signing_key")
    return key


def trusted_key_hex(value: str | None) -> str | None:
    """A trusted public key (``public_key``) checked and normalised: 64 hex characters,
    or None."""
    if value is None:
        return None
    key = value.strip().lower()
    if not HEX64.fullmatch(key):
        raise UsageError(
            "a public key is 64 hexadecimal characters (the one printed by "
            "`caseledger keys signing`)",
            field="public_key",
        )
    return key
