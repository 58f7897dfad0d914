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
from ledger.application.writes import Clock, Receipt, Recorder, format_recorded_at
from ledger.domain.case import CaseSnapshot
from ledger.store.locations import APPLICATION_NAME


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
    "Receipt",
    "Recorder",
    "VerifyResult",
    "format_recorded_at",
    "parse_line",
    "project_case",
    "validate_lines",
]
