"""The stored index with the entries beyond its tracked position folded in memory: what a
user who may only read the index (never write it) answers from (:class:`TailOverlay`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ledger.catalogue.terms import parse_ref
from projections.index.backend import IndexBackend
from projections.index.rows import (
    ClockHead,
    IndexRow,
    Milestone,
    StatusRow,
    StoredClocks,
    home_area,
    sealed_index_row,
)
from projections.index.sealing import Sealer
from projections.index.summary import CaseSummary, milestone_row, patch_milestone

__all__ = ["TailCase", "TailOverlay"]


class TailCase:
    """One case touched by the entries beyond the stored index's position, folded in
    memory: its milestone rows (corrections applied) and its ``case_index`` row."""

    __slots__ = ("milestones", "new", "row", "stored")

    def __init__(self, milestones: Iterable[Milestone], new: bool) -> None:
        self.milestones: dict[int, list[Any]] = {m.seq: [*m[:9], dict(m.facts)] for m in milestones}
        self.new = new
        """Whether the stored index has no rows of this case."""
        self.row: IndexRow | None = None
        self.stored: tuple[Any, ...] = ()
        """The ``case_index`` row as it would be stored (sealed)."""

    def listed(self) -> list[Milestone]:
        """Its milestone rows, by seq."""
        return [Milestone(*row) for _, row in sorted(self.milestones.items())]


class TailOverlay:
    """The stored index with the entries recorded beyond its tracked position folded in
    memory: what a user who may only read the index answers from.

    Every touched case is replaced whole (its row and all its milestone rows); the other
    cases are read from the store as they are.  The touched cases have no kept clock
    facts here, so they are derived for each answer (and never written).
    """

    def __init__(self, base: IndexBackend, base_position: int) -> None:
        self.base = base
        self.base_position = base_position
        self.end = base_position
        """The last position folded (the stored one while nothing was)."""
        self.cases: dict[str, TailCase] = {}
        self.opener = base.opener

    def fold(self, records: Sequence[Mapping[str, Any]], sealer: Sealer) -> int:
        """Fold ``records`` (the next entries beyond :attr:`end`, in log order) into the
        touched cases, each read once from the stored index first; return how many."""
        if not records:
            return 0
        touched = {r["case"] for r in records}
        unknown = sorted(touched - self.cases.keys())
        if unknown:
            kept = self.base.load_case_milestones(unknown)
            for case in unknown:
                found = kept.get(case, [])
                self.cases[case] = TailCase(found, new=not found)
        for record in records:
            tail = self.cases[record["case"]]
            row = milestone_row(record)
            tail.milestones[record["seq"]] = row
            if record["type"] == "EntryCorrected":
                target = tail.milestones.get(parse_ref(record["corrects"])[1])
                if target is not None:
                    patch_milestone(target, record["changes"])
        for case in touched:
            tail = self.cases[case]
            values = CaseSummary.from_milestones(case, tail.listed()).values()
            tail.row = IndexRow.from_values(values)
            tail.stored = sealed_index_row(sealer, values)
        self.end = int(records[-1]["position"])
        return len(records)

    # The read methods of IndexBackend, with the touched cases replaced.

    def tracked_position(self) -> int:
        return self.end

    def count_cases(self) -> int:
        return self.base.count_cases() + sum(1 for t in self.cases.values() if t.new)

    def count_milestones(self) -> int:
        return self.base.count_milestones() + sum(len(t.milestones) for t in self.cases.values())

    def load_case_milestones(self, cases: Sequence[str]) -> dict[str, list[Milestone]]:
        out = self.base.load_case_milestones([c for c in cases if c not in self.cases])
        for case in cases:
            if case in self.cases:
                out[case] = self.cases[case].listed()
        return out

    def select_rows(
        self, stage: str | None, regime: str | None, case: str | None
    ) -> list[IndexRow]:
        touched = self.cases
        rows = [r for r in self.base.select_rows(stage, regime, case) if r.case not in touched]
        for ref, tail in touched.items():
            row = tail.row
            if row is None or (case is not None and ref != case):
                continue
            if (stage is None or row.stage == stage) and (regime is None or row.regime == regime):
                rows.append(row)
        return sorted(rows, key=lambda r: r.case)

    def select_milestones(
        self, case: str | None, types: Sequence[str] | None, open_only: bool = False
    ) -> list[Milestone]:
        touched = self.cases
        rows = [
            m for m in self.base.select_milestones(case, types, open_only) if m.case not in touched
        ]
        wanted = set(types) if types else None
        for ref, tail in touched.items():
            if open_only and (tail.row is None or tail.row.stage == "closed"):
                continue
            if case is None or ref == case:
                rows.extend(m for m in tail.listed() if wanted is None or m.type in wanted)
        return sorted(rows, key=lambda m: (m.case, m.seq))

    def select_home_areas(self, open_only: bool = False) -> list[tuple[str, str]]:
        touched = self.cases
        rows = [row for row in self.base.select_home_areas(open_only) if row[0] not in touched]
        for tail in touched.values():
            if tail.row is None or (open_only and tail.row.stage == "closed"):
                continue
            rows.extend(
                (m.case, home_area(m.facts))
                for m in tail.listed()
                if m.seq == 1 and m.type == "CaseReferred"
            )
        return sorted(rows)

    def select_times(self, types: Sequence[str]) -> list[tuple[str, int, str, str]]:
        touched = self.cases
        out = [t for t in self.base.select_times(types) if t[0] not in touched]
        wanted = set(types)
        for tail in touched.values():
            out.extend(
                (m.case, m.seq, m.type, m.occurred_at) for m in tail.listed() if m.type in wanted
            )
        return out

    def select_regimes(self) -> dict[str, str]:
        out = self.base.select_regimes()
        for ref, tail in self.cases.items():
            if tail.row is not None:
                out[ref] = tail.row.regime
        return out

    def select_status_rows(
        self, stage: str | None, regime: str | None, open_only: bool = False
    ) -> list[StatusRow]:
        touched = self.cases
        rows = [
            r
            for r in self.base.select_status_rows(stage, regime, open_only)
            if r.case not in touched
        ]
        for tail in touched.values():
            row = tail.row
            if row is None or (open_only and row.stage == "closed"):
                continue
            if (stage is None or row.stage == stage) and (regime is None or row.regime == regime):
                rows.append(StatusRow.without_clocks(tail.stored))
        return sorted(rows, key=lambda r: r.case)

    def select_clock_facts(
        self, case: str | None, open_only: bool = False, regime: str | None = None
    ) -> list[StoredClocks]:
        touched = self.cases
        rows = [
            r
            for r in self.base.select_clock_facts(case, open_only, regime)
            if r.case not in touched
        ]
        for ref, tail in touched.items():
            row = tail.row
            if row is None or (case is not None and ref != case):
                continue
            if open_only and row.stage == "closed":
                continue
            if regime is not None and row.regime != regime:
                continue
            rows.append(
                StoredClocks(
                    ref,
                    row.regime,
                    row.last_position,
                    row.last_recorded_at,
                    None,
                    None,
                    None,
                    None,
                    None,
                )
            )
        return sorted(rows, key=lambda r: r.case)

    def stale_clock_cases(
        self, fingerprint: str, case: str | None, open_only: bool = False
    ) -> list[str]:
        touched = self.cases
        out = [
            c for c in self.base.stale_clock_cases(fingerprint, case, open_only) if c not in touched
        ]
        out.extend(
            ref
            for ref, tail in touched.items()
            if tail.row is not None
            and (case is None or ref == case)
            and not (open_only and tail.row.stage == "closed")
        )
        return out

    def load_clock_inputs(
        self, cases: Sequence[str] | None, types: Sequence[str]
    ) -> tuple[list[ClockHead], list[Milestone]]:
        touched = self.cases
        if cases is None:
            heads, milestones = self.base.load_clock_inputs(None, types)
            heads = [h for h in heads if h.case not in touched]
            milestones = [m for m in milestones if m.case not in touched]
            chosen = list(touched)
        else:
            heads, milestones = self.base.load_clock_inputs(
                [c for c in cases if c not in touched], types
            )
            chosen = [c for c in cases if c in touched]
        wanted = set(types)
        for ref in chosen:
            tail = touched[ref]
            row = tail.row
            if row is None:
                continue
            heads.append(ClockHead(ref, row.regime, row.last_position, row.last_recorded_at))
            milestones.extend(m for m in tail.listed() if m.type in wanted)
        return heads, milestones
