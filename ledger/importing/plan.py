"""Planning a tracker import against a ledger and recording it.  :func:`plan_import` decides
per row: new, already imported, changed since it was imported, already in the ledger by other
means, or bad; new rows are checked by the ledger's own ``record`` on a scratch store, so the
validation and the invariants are exactly those of ``caseledger record``.
:func:`record_plan` records every new row in ONE batch through ``CaseLedger.record``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from ledger.application import CaseLedger, ParsedLine, Receipt, Recorder, parse_line
from ledger.catalogue.models import normalise_occurred_at
from ledger.errors import InputError, InputErrors
from ledger.importing.cells import RowProblem
from ledger.importing.convert import SOURCE_TITLE, convert_row, with_sources
from ledger.importing.mapping import TrackerMapping
from ledger.importing.sheet import Tracker
from ledger.store.locations import parse_store

RowStatus = Literal["new", "imported", "changed", "exists", "bad"]


@dataclass
class RowPlan:
    """What an import does with one row."""

    number: int
    case: str | None
    status: RowStatus
    lines: list[dict[str, Any]] = field(default_factory=list)
    row_hash: str | None = None
    problem: RowProblem | None = None
    differences: list[str] = field(default_factory=list)
    imported_from: str | None = None  # for imported/changed rows: the earlier source ref
    origins: list[dict[str, str]] = field(default_factory=list, repr=False)

    def message(self) -> str:
        """One sentence saying what happens to the row and, if needed, what to do."""
        case = self.case or "?"
        if self.status == "new":
            return f"{len(self.lines)} entries for {case}"
        if self.status == "imported":
            return f"{case}: already imported (from {self.imported_from}); nothing new"
        if self.status == "changed":
            what = "; ".join(self.differences) or "its content differs"
            return (
                f"{case} was imported from an earlier version of this row "
                f"({self.imported_from}) and the row has changed since: {what}. Nothing "
                "was imported from it: the ledger never rewrites or duplicates entries. "
                "Record what changed with `caseledger record`: an EntryCorrected for each "
                "changed entry and a new entry for each new step, each citing the source "
                f'{{"title": "{SOURCE_TITLE}", "ref": "<file> row {self.number}", "sha256": '
                f'"{self.row_hash}"}} so that later imports treat this row as done.'
            )
        if self.status == "exists":
            return (
                f"{case} is already in the ledger, recorded without this tracker; nothing "
                "was imported from this row. Record any step the ledger lacks with "
                f'`caseledger record`, citing the source {{"title": "{SOURCE_TITLE}", '
                f'"ref": "<file> row {self.number}", "sha256": "{self.row_hash}"}} so that '
                "later imports treat this row as done."
            )
        assert self.problem is not None
        return self.problem.describe()


@dataclass
class ImportPlan:
    """Every row's fate; the new rows' lines carry their sources."""

    file: str
    rows: list[RowPlan]

    def having(self, *status: RowStatus) -> list[RowPlan]:
        return [row for row in self.rows if row.status in status]

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Every entry the import would record, in order."""
        return [line for row in self.having("new") for line in row.lines]

    def problems(self) -> list[RowProblem]:
        return [row.problem for row in self.having("bad") if row.problem is not None]


Progress = Callable[[int, int], None]
"""Called with (steps done, steps in all) as planning goes: each row is two steps."""


def plan_import(
    led: CaseLedger,
    tracker: Tracker,
    mapping: TrackerMapping,
    recorder: Recorder,
    progress: Progress | None = None,
) -> ImportPlan:
    """Decide each row's fate without writing to ``led``.

    New rows are recorded, in batches, on a scratch store through the ledger's own
    ``record`` (with the ledger's clock), so that a row that breaks a rule of the
    catalogue or an invariant is found and named before anything is written.  The scratch
    store knows nothing of ``led``'s enrolments, so there the recorder acts as the business
    unit; who may record what is enforced when :func:`record_plan` writes to ``led``.
    """
    scratch_recorder = Recorder(recorder.actor, "business-unit")
    plans: list[RowPlan] = []
    seen: dict[str, int] = {}
    total = 2 * len(tracker.rows)  # each row is converted, then checked
    for done, row in enumerate(tracker.rows):
        if progress is not None and done % 50 == 0:
            progress(done, total)
        try:
            converted = convert_row(row, mapping)
        except RowProblem as problem:
            plans.append(RowPlan(row.number, problem.case, "bad", problem=problem))
            continue
        lines = with_sources(converted.lines, tracker.name, row.number)
        plan = RowPlan(
            row.number,
            converted.case,
            "new",
            lines,
            lines[0]["sources"][0]["sha256"],
            origins=converted.origins,
        )
        if converted.case in seen:
            plan.status = "bad"
            plan.problem = RowProblem(
                f"case {converted.case} is also on row {seen[converted.case]}; a tracker has "
                "one row per case",
                field=f"column `{mapping.fields['case'].column}`",
                line=row.number,
                case=converted.case,
            )
        else:
            seen[converted.case] = row.number
        plans.append(plan)

    _classify_existing(led, [p for p in plans if p.status == "new"], mapping)
    pending = [p for p in plans if p.status == "new"]
    done = total - len(pending)  # converted rows, and rows that need no check
    if progress is not None:
        progress(done, total)
    with tempfile.TemporaryDirectory(prefix="caseledger-import-") as scratch_dir:
        scratch = CaseLedger(parse_store(str(Path(scratch_dir) / "check.db")), clock=led.clock)
        try:
            if pending:
                _enrol_users(led, scratch, recorder.actor)
            for start in range(0, len(pending), PROBE_BATCH):
                batch = pending[start : start + PROBE_BATCH]
                _probe(scratch, batch, scratch_recorder)
                done += len(batch)
                if progress is not None:
                    progress(done, total)
        finally:
            scratch.close()
    return ImportPlan(tracker.name, plans)


def _enrol_users(led: CaseLedger, scratch: CaseLedger, actor: str) -> None:
    """Enrol on the scratch store the users of ``led`` with their roles, so that a row's
    delay is checked against the decision-makers enrolled in the real store (the chair,
    the safeguarding partners): one approved by anyone else is a bad row, and the reason
    says who they are.  The importer stays the scratch store's admin and business unit."""
    state = led.register_state()
    admin = Recorder(actor, "admin")
    for user, e in sorted(state.users.items()):
        roles = set(e.roles) | ({"admin", "business-unit"} if user == actor else set())
        scratch.enrol(user, sorted(roles), admin, agency=e.agency)


PROBE_BATCH: Final = 50
"""Rows checked together on the scratch store (one transaction each time)."""


def _probe(scratch: CaseLedger, batch: list[RowPlan], recorder: Recorder) -> None:
    """Record rows on the scratch store in one batch, as ``record`` would on the real one.

    A row the ledger refuses is marked bad with the ledger's reason, and the batch is tried
    again without it, until it records (the rows are independent: one case each).
    """
    live = list(batch)
    while live:
        where = [(plan, i) for plan in live for i in range(len(plan.lines))]
        try:
            parsed = scratch.parse_lines(
                [orjson.dumps(line) for plan in live for line in plan.lines]
            )
            scratch.record(parsed, recorder)
            return
        except InputError as exc:
            problems = exc.problems if isinstance(exc, InputErrors) else [exc]
            placed = [p for p in problems if p.line is not None and 1 <= p.line <= len(where)]
            if not placed:
                raise
            for problem in placed:
                assert problem.line is not None
                plan, index = where[problem.line - 1]
                if plan.status == "new":
                    _mark_bad(plan, index, problem)
        live = [plan for plan in live if plan.status == "new"]


def _mark_bad(plan: RowPlan, index: int, problem: InputError) -> None:
    """The ledger refused line ``index`` of the row: say which entry, field and column."""
    line = plan.lines[index]
    top = (problem.field or "").split(".")[0]
    column = plan.origins[index].get(top) if index < len(plan.origins) else None
    where = f"{line['type']}" + (f".{problem.field}" if problem.field else "")
    if column:
        where += f" ({column})"
    plan.status = "bad"
    plan.problem = RowProblem(
        problem.reason,
        field=where,
        line=plan.number,
        case=plan.case,
        code=problem.code,
        params=problem.params,
    )


def _classify_existing(led: CaseLedger, plans: list[RowPlan], mapping: TrackerMapping) -> None:
    """Rows whose case is already in the ledger: imported before, changed, or recorded."""
    for plan in plans:
        assert plan.case is not None
        if not led.has_case(plan.case):
            continue
        records = led.case_records(plan.case)
        imported = [r for r in records if _tracker_source(r) is not None]
        match = next(
            (
                r
                for r in records
                if any(s.get("sha256") == plan.row_hash for s in r.get("sources") or [])
            ),
            None,
        )
        if match is not None:
            plan.status = "imported"
            source = _tracker_source(match)
            plan.imported_from = source["ref"] if source else f"{plan.case}#{match['seq']}"
        elif imported:
            plan.status = "changed"
            latest = _tracker_source(imported[-1])
            assert latest is not None
            plan.imported_from = latest["ref"]
            previous = [r for r in imported if _tracker_source(r) == latest]
            plan.differences = _differences(previous, plan.lines)
        else:
            plan.status = "exists"


def _tracker_source(record: Mapping[str, Any]) -> dict[str, Any] | None:
    for source in record.get("sources") or []:
        if isinstance(source, dict) and source.get("title") == SOURCE_TITLE:
            return source
    return None


_IGNORED_IN_DIFF = frozenset({"type", "case", "sources", "note"})


def _differences(stored: Sequence[Mapping[str, Any]], lines: list[dict[str, Any]]) -> list[str]:
    """What a changed row would record differently from the entries imported before."""
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for record in stored:
        by_type.setdefault(record["type"], []).append(record)
    out: list[str] = []
    counts: dict[str, int] = {}
    for line in lines:
        kind = line["type"]
        index = counts.get(kind, 0)
        counts[kind] = index + 1
        earlier = by_type.get(kind, [])
        if index >= len(earlier):
            out.append(f"new {kind} ({line['occurred_at']})")
            continue
        old = earlier[index]
        ref = f"{old['case']}#{old['seq']}"
        for name, value in line.items():
            if name in _IGNORED_IN_DIFF:
                continue
            before = old.get(name)
            if name == "occurred_at":
                value = normalise_occurred_at(value)
            if before != value:
                out.append(f"{ref} {kind}.{name} {_short(before)} → {_short(value)}")
    for kind, earlier in by_type.items():
        for old in earlier[counts.get(kind, 0) :]:
            out.append(f"{old['case']}#{old['seq']} {kind} is no longer in the row")
    return out


def _short(value: object) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def record_plan(led: CaseLedger, plan: ImportPlan, recorder: Recorder) -> list[Receipt]:
    """Record every new row of the plan in ONE batch through ``CaseLedger.record``."""
    parsed = [
        ParsedLine(row.number, parse_line(orjson.dumps(line)))
        for row in plan.having("new")
        for line in row.lines
    ]
    if not parsed:
        return []
    try:
        return led.record(parsed, recorder)
    except InputError as exc:
        if exc.line is None:  # not about a row: e.g. who may record
            raise
        row = next((r for r in plan.rows if r.number == exc.line), None)
        raise RowProblem(
            f"{exc.reason} (the store changed while the tracker was being checked; nothing "
            "was written: run the import again)",
            field=exc.field,
            line=exc.line,
            case=row.case if row else None,
        ) from None
