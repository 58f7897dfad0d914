"""The case ledger's application on one store: :class:`CaseLedger`, every job of
:mod:`ledger.application` in one class, and :func:`open_store`, as the CLI opens it.

Apart from the package's ``__init__`` so that importing :mod:`ledger.application` (or
a module of it, as a read of one case does: :func:`ledger.application.reading.open_reader`)
does not import the write side; ``ledger.application.CaseLedger`` loads it on first use.
"""

from __future__ import annotations

from ledger.application.recording import Recording
from ledger.application.verification import Verification
from ledger.application.writes import Clock
from ledger.domain.case import CaseSnapshot
from ledger.store.locations import APPLICATION_NAME, NoStore, StoreLocation, parse_store


class CaseLedger(Recording, Verification):
    """The case ledger on one store (SQLite file or PostgreSQL database)."""

    name = APPLICATION_NAME  # the library names an application's tables after its class otherwise
    # Snapshots are read by the library's repository and taken by
    # Recording._snapshot_crossed after each save (SNAPSHOT_INTERVAL).
    is_snapshotting_enabled = True
    snapshot_class = CaseSnapshot


__all__ = ["CaseLedger", "open_store"]


def open_store(
    store: str | None = None,
    *,
    create: bool = False,
    key_file: str | None = None,
    vacant_as_empty: bool = False,
    clock: Clock | None = None,
) -> CaseLedger:
    """Open the store at ``store`` (a file path, ``sqlite:///path`` or
    ``postgresql://user@host/db``; default ``CASELEDGER_STORE``, else ``caseledger.db``
    here), as the CLI's ``--store`` does.  Only with ``create`` is a store that is not
    there yet created (else :class:`~ledger.store.locations.NoStore`, exit 4); with
    ``vacant_as_empty`` a missing store reads as an empty one in memory (a dry run).
    ``key_file``: the AES key of an encrypted store (default ``CASELEDGER_KEY_FILE``).
    The facade's :func:`ledger.api.open_store`; defined here so that opening a store
    costs no more than the application (the CLI opens every store with it)."""
    try:
        return CaseLedger(parse_store(store), create=create, key_file=key_file, clock=clock)
    except NoStore:
        if not vacant_as_empty:
            raise
        return CaseLedger(StoreLocation(kind="sqlite", path=":memory:"), key_file=key_file)
