"""The index as private as the store: in an encrypted store the index's columns that carry
free text or names are written sealed with the store's own cipher, and opened on reading.

At the bottom of the index: the row types read their columns back through an
:data:`Opener`, and nothing here knows the tables' layout.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Final

import orjson

__all__ = ["SEALED", "Opener", "Sealer", "json_column"]

Opener = Callable[[Any], Any]
"""Turns a sealed column value back into its JSON value (see :class:`Sealer`)."""

SEALED: Final = "enc:"


class Sealer:
    """Keeps the index as private as the store: in an encrypted store (``CASELEDGER_KEY_FILE``)
    the columns that carry free text or names (``subject``, ``open_requests``, ``facts``)
    are written encrypted with the store's own cipher, as ``"enc:" + base64``, and read
    back transparently.  Stage, regime, dates, outcomes and references stay in clear so
    the index can still be filtered and ordered; SQL cannot reach into ``facts`` there.
    """

    def __init__(self, cipher: Any | None) -> None:
        self.cipher = cipher

    def seal(self, value: Any) -> str:
        """A JSON value, sealed (or as JSON text when the store is not encrypted)."""
        text = orjson.dumps(value)
        if self.cipher is None:
            return text.decode()
        return SEALED + base64.b64encode(self.cipher.encrypt(text)).decode()

    def seal_json(self, value: Any) -> str:
        """For a JSON column: the sealed value as a JSON string literal."""
        sealed = self.seal(value)
        return sealed if self.cipher is None else orjson.dumps(sealed).decode()

    def seal_text(self, value: str) -> str:
        """For a text column."""
        return value if self.cipher is None else self.seal(value)

    def opener(self) -> Opener | None:
        """The function that opens sealed values, or None for a store in clear."""
        if self.cipher is None:
            return None
        cipher = self.cipher

        def open_value(value: Any) -> Any:
            if isinstance(value, str) and value.startswith(SEALED):
                return orjson.loads(cipher.decrypt(base64.b64decode(value[len(SEALED) :])))
            return value

        return open_value


def json_column(value: Any, opener: Opener | None) -> Any:
    """A JSON column as read back: text (SQLite) or already decoded (PostgreSQL), and
    sealed or not."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and not value.startswith(SEALED):
        value = orjson.loads(value)
    return opener(value) if opener is not None else value
