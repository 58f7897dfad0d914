"""Running a tracker import as the CLI and the Python API do: read the mapping and the
tracker before the store is opened, plan every row, record the new rows in one batch
unless it is a dry run or a bad row blocks it, and report every row's fate
(:class:`ImportReport`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.application import CaseLedger, Receipt
from ledger.errors import InputError
from ledger.importing.mapping import load_mapping
from ledger.importing.plan import ImportPlan, Progress, RowPlan, plan_import, record_plan
from ledger.importing.sheet import read_tracker

__all__ = ["ImportReport", "run_import"]


#: How a front end words a row's problem (the CLI names its own options).
Told = Callable[[InputError], InputError]


def _as_given(problem: InputError) -> InputError:
    return problem


def _plural(n: int) -> str:
    return "s" if n != 1 else ""


def _row_json(row: RowPlan, told: Told) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "line": row.number,
        "case": row.case,
        "status": row.status,
        "row_hash": row.row_hash,
        "entries": len(row.lines) if row.status == "new" else 0,
    }
    if row.problem is not None:
        problem = told(row.problem)
        entry["field"] = problem.field
        entry["reason"] = problem.reason
    if row.status in ("changed", "exists", "imported"):
        entry["imported_from"] = row.imported_from
        entry["reason"] = row.message()
    if row.status == "changed":
        entry["differences"] = row.differences
    return entry


@dataclass(frozen=True)
class ImportReport:
    """What an import did, or in a dry run would do: every row's fate and the entries
    recorded.  ``blocked``: some rows are bad and bad rows were not to be skipped, so
    nothing was written; :meth:`refusal` is then the error to report after the rows."""

    plan: ImportPlan
    tracker: str
    receipts: list[Receipt]
    dry_run: bool
    blocked: bool

    def to_json(self, told: Told = _as_given) -> dict[str, Any]:
        """What ``import-tracker --json`` prints: every row's fate, and the entries
        recorded or (in a dry run) to record; ``told`` words each row's problem (the CLI
        names its options)."""
        plan = self.plan
        return {
            "file": plan.file,
            "dry_run": self.dry_run,
            "written": bool(self.receipts),
            "recorded": [
                {"ref": r.ref, "hash": r.hash, "recorded_at": r.recorded_at} for r in self.receipts
            ],
            "events": plan.lines if self.dry_run and not self.blocked else [],
            "rows": [_row_json(row, told) for row in plan.rows],
            "bad": [
                {"line": r.number, "case": r.case, "field": p.field, "reason": p.reason}
                for r in plan.having("bad")
                if (p := told(r.problem) if r.problem is not None else None) is not None
            ],
            "changed": [_row_json(row, told) for row in plan.having("changed", "exists")],
        }

    def refusal(self) -> InputError | None:
        """The import's refusal (exit 2), if it wrote nothing because of bad rows: bad
        rows not skipped, or bad rows and nothing else new."""
        bad = len(self.plan.having("bad"))
        if self.blocked:
            return InputError(
                f"{bad} row{_plural(bad)} of {self.tracker} cannot be imported (listed "
                "above); nothing was written. Fix them in the tracker or the mapping, or "
                "skip the bad rows to record the others.",
                code="bad-rows-blocked",
                params={"bad": str(bad), "rows": f"row{_plural(bad)}", "tracker": self.tracker},
            )
        if bad and not self.plan.having("new"):
            return InputError(
                f"{bad} row{_plural(bad)} of {self.tracker} cannot be imported (listed "
                "above) and no other row holds anything new; nothing was written."
            )
        return None


def run_import(
    opened: Callable[[], CaseLedger],
    file: Path | str,
    mapping: Path | str,
    *,
    dry_run: bool,
    skip_bad_rows: bool,
    role: str | None,
    progress: Progress | None = None,
    recording: Callable[[int], AbstractContextManager[object]] | None = None,
) -> ImportReport:
    """The import policy: read the mapping and the tracker (before the store is opened,
    by ``opened``), plan every row, and record the new rows in one batch unless this is a
    dry run or a bad row blocks it (``skip_bad_rows`` records the others).
    ``recording(n)`` wraps the write of ``n`` entries (a spinner)."""
    spec = load_mapping(mapping)
    tracker = read_tracker(file, spec)
    led = opened()
    who = led.recorder_for(role)
    plan = plan_import(led, tracker, spec, who, progress=progress)
    blocked = bool(plan.having("bad")) and not skip_bad_rows
    receipts: list[Receipt] = []
    if not dry_run and not blocked and plan.having("new"):
        with recording(len(plan.lines)) if recording is not None else nullcontext():
            receipts = record_plan(led, plan, who)
    return ImportReport(plan, tracker.name, receipts, dry_run, blocked)
