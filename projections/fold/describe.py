"""One line in words for each entry, for the people views (timelines, ``why``).

Built from the (corrected) fields of the entry only; never from personal data, which
the record holds as commitments.  The wording of each type is its kind's ``wording`` in
:mod:`ledger.catalogue.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.catalogue.registry import kind_named

__all__ = ["describe", "shorten"]


def shorten(text: str, limit: int = 90) -> str:
    """Text cut to ``limit`` characters on a word boundary, with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def describe(kind: str, fields: Mapping[str, Any], limit: int = 90) -> str:
    """A one-line account of an entry of type ``kind`` with these (corrected) fields."""
    found = kind_named(kind)
    text = found.wording(fields) if found is not None else kind
    return shorten(text, limit) if limit else " ".join(text.split())
