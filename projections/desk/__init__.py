"""The desk's renderings of the ``due`` list for where people already look: the digest
e-mail (``digest.py``, sent by ``mail.py``) and the calendar feed (``feed.py``).

A layer above ``queries`` (which answers what is due) and ``export`` (whose personal-data
check the renderings reuse), below the facade."""

from __future__ import annotations

from typing import Any


def store_identity(ledger: Any) -> str:
    """What tells this store apart from every other, the same after a move, a copy or a
    restore: the hash of its first register entry (the policy it was created with,
    recorded at its creation).  A store with no register yet is named by its location."""
    entries = ledger.register_entries()
    if entries:
        return str(entries[0]["hash"])
    return str(ledger.location.describe())
