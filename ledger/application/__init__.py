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
:mod:`~ledger.application.writes` holds what every write shares;
:mod:`~ledger.application.case_ledger` puts them together.

Each name below is imported from its module on first use (PEP 562): a cold read of one
case (``caseledger why``) opens the store with
:func:`~ledger.application.reading.open_reader` without the write side's modules, which
importing them all here cost it (issue 18).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.application.case_ledger import CaseLedger, open_store
    from ledger.application.lines import LineProblems, ParsedLine, parse_line, validate_lines
    from ledger.application.reading import project_case
    from ledger.application.verification import VerifyResult
    from ledger.application.writes import Clock, Progress, Receipt, Recorder, format_recorded_at

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

_HOMES: dict[str, str] = {
    "CaseLedger": "case_ledger",
    "open_store": "case_ledger",
    "LineProblems": "lines",
    "ParsedLine": "lines",
    "parse_line": "lines",
    "validate_lines": "lines",
    "project_case": "reading",
    "VerifyResult": "verification",
    "Clock": "writes",
    "Progress": "writes",
    "Receipt": "writes",
    "Recorder": "writes",
    "format_recorded_at": "writes",
}
"""The module of each name of :data:`__all__`."""


def __getattr__(name: str) -> Any:
    """A name of :data:`__all__`, imported from its module now (then kept here)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
