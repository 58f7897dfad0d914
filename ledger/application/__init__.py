"""The ledger's use cases on the write side: record entries, read them back, verify.

:class:`CaseLedger` is an ``eventsourcing`` application pinned to the name
``caseledger``.  Recording validates every line first, checks each against its case,
assigns the ledger's fields (``seq``, ``recorded_at``, ``actor``, ``role``,
``command_id``, ``prev_hash``, ``hash``), and saves all the affected cases in one
transaction, retrying when a concurrent writer got there first.

One class, one job per module, each a layer of it over the one it reads:
:mod:`~ledger.application.opening` (opening or creating the store),
:mod:`~ledger.application.reading` (entries, cases from snapshots, the register, read back),
:mod:`~ledger.application.personal` (sealing, screening and reading personal data),
:mod:`~ledger.application.register` (enrolment, policy, holds, erasure, checkpoints),
:mod:`~ledger.application.recording` (checking and storing entries) and
:mod:`~ledger.application.verification` (hashes, chains, provenance and snapshots);
:mod:`~ledger.application.lines` validates input lines and
:mod:`~ledger.application.writes` holds what every write shares.
"""

from __future__ import annotations

from ledger.application.lines import LineProblems, ParsedLine, parse_line, validate_lines
from ledger.application.reading import project_case
from ledger.application.recording import Recording
from ledger.application.verification import Verification, VerifyResult
from ledger.application.writes import Clock, Progress, Receipt, Recorder, format_recorded_at
from ledger.domain.case import CaseSnapshot
from ledger.store.locations import APPLICATION_NAME, NoStore, StoreLocation, parse_store


class CaseLedger(Recording, Verification):
    """The case ledger on one store (SQLite file or PostgreSQL database)."""

    name = APPLICATION_NAME  # the library names an application's tables after its class otherwise
    # Snapshots are read by the library's repository and taken by
    # Recording._snapshot_crossed after each save (SNAPSHOT_INTERVAL).
    is_snapshotting_enabled = True
    snapshot_class = CaseSnapshot


__all__ = [
    "CaseLedger",
    "Clock",
    "LineProblems",
    "ParsedLine",
    "Progress",
    "Receipt",
    "Recorder",
    "VerifyResult",
    "format_recorded_at",
    "open_store",
    "parse_line",
    "project_case",
    "validate_lines",
]


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
