"""Import a spreadsheet tracker (CSV or ``.xlsx``) into the ledger, driven by a mapping.

A business unit's tracker has one row per case: a reference, a handful of dates
(aware, notified, discussed, decided, ...), the decision and its reasons, the agencies
asked and those that answered.  A mapping file (TOML, documented in
``docs/importing.md``) says which column holds what.  The import turns each row into the
wire-form event lines it evidences and plans an import against a ledger, one step a module;
this module is the one a caller imports them from:

* :func:`load_mapping` / :func:`parse_mapping` read and check the mapping
  (:mod:`ledger.importing.mapping`);
* :func:`read_tracker` reads the file's header and rows (CSV, or ``.xlsx`` through
  ``openpyxl``: :mod:`ledger.importing.sheet`);
* :func:`convert_row` is pure: one row and the mapping in, the row's event lines out, or a
  :class:`RowProblem` naming the spreadsheet row, the column and the reason
  (:mod:`ledger.importing.convert`, reading the row's cells through
  :mod:`ledger.importing.cells`);
* :func:`plan_import` decides per row: new, already imported, changed since it was
  imported, already in the ledger by other means, or bad.  New rows are checked by the
  ledger's own ``record`` on a scratch store, so the validation and the invariants are
  exactly those of ``caseledger record``;
* :func:`record_plan` records every new row in ONE batch through ``CaseLedger.record``
  (both in :mod:`ledger.importing.plan`).

Idempotency: every imported entry carries the source ``{"title": "tracker row", "ref":
"<file> row <n>", "sha256": <row hash>}``, where the row hash is the SHA-256 of the
canonical JSON of the entries the row evidences (without their sources).  It depends on
the row's content, not on the file's name, the row's position or the file format, so a
re-run, a re-sorted tracker or the same tracker saved as ``.xlsx`` records nothing new.
"""

from __future__ import annotations

from ledger.importing.cells import RowProblem
from ledger.importing.convert import SOURCE_TITLE, Conversion, convert_row, row_hash, with_sources
from ledger.importing.mapping import (
    FIELDS,
    FieldInfo,
    FieldSpec,
    MappingError,
    TrackerMapping,
    load_mapping,
    parse_mapping,
)
from ledger.importing.plan import ImportPlan, RowPlan, plan_import, record_plan
from ledger.importing.report import ImportReport, run_import
from ledger.importing.sheet import Tracker, TrackerRow, read_tracker

__all__ = [
    "FIELDS",
    "SOURCE_TITLE",
    "Conversion",
    "FieldInfo",
    "FieldSpec",
    "ImportPlan",
    "ImportReport",
    "MappingError",
    "RowPlan",
    "RowProblem",
    "Tracker",
    "TrackerMapping",
    "TrackerRow",
    "convert_row",
    "load_mapping",
    "parse_mapping",
    "plan_import",
    "read_tracker",
    "record_plan",
    "row_hash",
    "run_import",
    "with_sources",
]
