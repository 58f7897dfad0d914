"""The cross-case index is not trusted blindly: it is checked against the fold of the
events, and it has a digest a checkpoint can carry.

The index (``case_index``, ``case_milestones``, ``case_clocks`` and its tracking
position, :mod:`projections.index.rows`) is written by whoever may write those tables: the
store's owner, a writer granted them, or the indexer role.  Anyone with those grants can
also write something else there, so :func:`check_index` (run by ``caseledger verify``
after the events' hashes) folds each case's entries up to the index's tracked position
and compares, case by case, what the index says with what the events give:

- the ``case_index`` row, column by column (stage, decision in force, open requests,
  counts, first times, the last position ...);
- every ``case_milestones`` row (an entry's type, corrected times, actor, facts), and
  no row missing or extra;
- a ``case_clocks`` row that queries would use (labelled with the case's position and
  today's rule packs): its spans, delays and ``until`` derived again; a row labelled
  otherwise is never read (queries derive the facts again), so it is only counted;
- the tracked position itself, which must be the position of an entry of the log.

An index that is **behind** the log (entries recorded since its tracked position) is
honest, not wrong: queries fold those entries themselves, and the next catch-up applies
them; the verdict says how many.  A row that disagrees with the events at the tracked
position is a failure, naming the case (``first_bad``) and the table and column
(``reason``).

Memory stays flat: the cases are taken in reference order, a few hundred at a time; for
each batch the index's rows and the tracked position are read in one snapshot, and each
case's entries are read and folded one case at a time.

:func:`index_digest` is the SHA-256 of the index's canonical rows (``case_index`` and
``case_milestones``, opened, in case then seq order) at its tracked position; the clock
facts are a cache labelled by position and are not part of it.  When
:func:`check_index` passes, the digest it returns is that of the rows it compared, so
the digest of an honest index at position P is a function of the log up to P.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from ledger.catalogue.terms import parse_ref
from projections.assess.clocks import clock_event_types
from projections.index.backend import IndexBackend
from projections.index.case_index import index_recorder
from projections.index.clock_facts import case_clock_facts, rules_fingerprint
from projections.index.rows import (
    INDEX_COLUMNS,
    INDEX_NAME,
    MILESTONE_COLUMNS,
    IndexSnapshot,
    Milestone,
    milestone_record,
)
from projections.index.sealing import Opener, Sealer, json_column
from projections.index.summary import CaseSummary, milestone_row, patch_milestone

if TYPE_CHECKING:
    from ledger.application import CaseLedger

__all__ = ["DIGEST_VERSION", "IndexCheck", "check_index", "index_digest"]

DIGEST_VERSION: Final = "caseledger-index/1"
"""The first line of what :func:`index_digest` hashes; bumped if the canonical form
changes."""

CHUNK: Final = 100
"""Cases read from the index in one snapshot."""

_SEALED_COLUMNS: Final = frozenset({"subject", "open_requests", "facts"})
"""Columns whose values are never printed in a reason (they may be sealed text)."""


@dataclass(frozen=True)
class IndexCheck:
    """What :func:`check_index` found."""

    ok: bool
    checked: bool
    """False when the store has no index tables (nothing to check)."""
    position: int
    """The index's tracked position (the last entry it says it has applied)."""
    cases: int
    """Cases compared."""
    behind: int
    """Entries recorded after the tracked position: not yet applied, not a failure."""
    stale_clock_facts: int
    """``case_clocks`` rows labelled with another position or rule pack: never read by
    queries (they derive the facts again), so not a failure."""
    first_bad: str | None
    """The case whose index rows disagree with its entries (or ``case_index_tracking``)."""
    reason: str | None
    """Which table and column, and how."""
    digest: str | None
    """:func:`index_digest` of the rows compared (None unless ``ok`` and ``checked``)."""

    def as_dict(self) -> dict[str, Any]:
        """The ``index`` object of ``verify --json``."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "position": self.position,
            "cases": self.cases,
            "behind": self.behind,
            "stale_clock_facts": self.stale_clock_facts,
            "first_bad": self.first_bad,
            "reason": self.reason,
            "digest": self.digest,
        }

    def summary(self) -> str:
        """One line for people."""
        if not self.checked:
            return "the store has no cross-case index yet"
        if not self.ok:
            return f"the cross-case index disagrees with the entries: {self.reason}"
        behind = (
            f"; {self.behind} entries recorded since are not applied yet (queries fold them)"
            if self.behind
            else ""
        )
        return (
            f"the cross-case index agrees with the entries of {self.cases} cases up to "
            f"position {self.position}{behind}"
        )


def _backend(ledger: CaseLedger) -> IndexBackend | None:
    """The index's recorder, opened without creating anything; None if the store has
    no index tables."""
    backend = index_recorder(ledger, Sealer(ledger.ledger_mapper.cipher))
    return backend if backend.tables_exist() else None


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Mismatch(Exception):
    """A case's index rows disagree with its entries (the message says where)."""


def _show(column: str, value: Any) -> str:
    return "a different value" if column in _SEALED_COLUMNS else repr(value)


def _expected(
    case: str, records: Sequence[Mapping[str, Any]]
) -> tuple[tuple[Any, ...], list[Milestone]]:
    """The ``case_index`` row and the ``case_milestones`` rows a case's records give
    (the index's own fold: the same code the catch-up writes with)."""
    summary = CaseSummary(case)
    rows: dict[int, list[Any]] = {}
    for record in records:
        row = milestone_row(record)
        seq = int(record["seq"])
        rows[seq] = row
        kind = record["type"]
        changes = record.get("changes") if kind == "EntryCorrected" else None
        if changes is not None:
            target = rows.get(parse_ref(record["corrects"])[1])
            if target is not None:
                patch_milestone(target, changes)
        summary.add(
            seq,
            kind,
            record["occurred_at"],
            record["recorded_at"],
            int(record["position"]),
            row[9],
            changes,
        )
    milestones = [Milestone._make(row) for _, row in sorted(rows.items())]
    return summary.values(), milestones


def _index_row(values: Sequence[Any], opener: Opener | None) -> dict[str, Any]:
    """A ``case_index`` row by column, sealed columns opened, JSON decoded."""
    row = dict(zip(INDEX_COLUMNS, values, strict=True))
    subject = row["subject"]
    row["subject"] = opener(subject) if opener is not None else subject
    row["open_requests"] = json_column(row["open_requests"], opener)
    return row


def _milestone_dict(m: Milestone) -> dict[str, Any]:
    return dict(zip(MILESTONE_COLUMNS, (*m[:9], dict(m.facts)), strict=True))


def _compare_case(
    case: str,
    records: Sequence[Mapping[str, Any]],
    snap: IndexSnapshot,
    opener: Opener | None,
    fingerprint: str,
) -> tuple[bool, list[bytes]]:
    """Compare one case's stored index with its records up to the tracked position;
    raise :class:`_Mismatch` where they differ.  Returns whether its clock facts were
    stale, and its canonical rows (for the digest)."""
    stored = snap.rows.get(case)
    kept = list(snap.milestones.get(case, ()))
    clocks = snap.clocks.get(case)
    if not records:
        if stored is not None or kept or clocks is not None:
            table = (
                "case_index" if stored is not None else "case_milestones" if kept else "case_clocks"
            )
            raise _Mismatch(
                f"{table} has rows for this case, but the log has no entry of it at or "
                f"before the tracked position {snap.position}"
            )
        return False, []
    values, milestones = _expected(case, records)
    if stored is None:
        raise _Mismatch(
            f"case_index has no row for this case, but the log has {len(records)} of its "
            f"entries at or before the tracked position {snap.position}"
        )
    try:
        got = _index_row(stored, opener)
    except Exception as exc:
        raise _Mismatch(f"case_index: the row cannot be read ({type(exc).__name__})") from None
    want = _index_row(values, None)
    for column in INDEX_COLUMNS:
        if got[column] != want[column]:
            raise _Mismatch(
                f"case_index.{column} is {_show(column, got[column])}, the entries up to "
                f"position {snap.position} give {_show(column, want[column])}"
            )
    by_seq = {m.seq: m for m in kept}
    for m in milestones:
        found = by_seq.pop(m.seq, None)
        if found is None:
            raise _Mismatch(f"case_milestones has no row for {case}#{m.seq} ({m.type})")
        if found == m:  # the usual case: every column equal
            continue
        have, should = _milestone_dict(found), _milestone_dict(m)
        for column in MILESTONE_COLUMNS:
            if have[column] != should[column]:
                raise _Mismatch(
                    f"case_milestones {case}#{m.seq}: {column} is {_show(column, have[column])}, "
                    f"the entries give {_show(column, should[column])}"
                )
    if by_seq:
        seq = min(by_seq)
        raise _Mismatch(
            f"case_milestones has a row for {case}#{seq}, which is not an entry of the log at "
            f"or before the tracked position {snap.position}"
        )
    stale = False
    if clocks is not None:
        _, label, last_recorded_at, rules, until, spans, delays = clocks
        if label != want["last_position"] or rules != fingerprint:
            stale = True  # never read: queries derive the facts again
        else:
            types = set(clock_event_types())
            facts = case_clock_facts(
                case,
                want["regime"],
                [milestone_record(m) for m in milestones if m.type in types],
                position=want["last_position"],
                last_recorded_at=want["last_recorded_at"],
            )
            expected_clocks = {
                "last_recorded_at": facts.last_recorded_at,
                "until": facts.until,
                "spans": facts.spans,
                "delays": _canonical(facts.delays),
            }
            stored_clocks = {
                "last_recorded_at": last_recorded_at,
                "until": until,
                "spans": spans,
                "delays": _canonical(delays),
            }
            for column, should_be in expected_clocks.items():
                if stored_clocks[column] != should_be:
                    raise _Mismatch(
                        f"case_clocks.{column} is {stored_clocks[column]!r}, the entries give "
                        f"{should_be!r}"
                    )
    lines = [_index_line(got), *map(_milestone_line, kept)]
    return stale, lines


def _canonical(value: Any) -> Any:
    """A JSON value in one form (tuples as lists, empty as None) for comparison."""
    if not value:
        return None
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def _line(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS) + b"\n"


def _index_line(row: Mapping[str, Any]) -> bytes:
    """A ``case_index`` row's canonical line: ``["case_index", value, ...]`` in
    :data:`INDEX_COLUMNS` order."""
    return _line(["case_index", *(row[c] for c in INDEX_COLUMNS)])


def _milestone_line(m: Milestone) -> bytes:
    """A ``case_milestones`` row's canonical line: ``["case_milestones", value, ...]`` in
    :data:`MILESTONE_COLUMNS` order (``facts`` an object with sorted keys)."""
    return _line(["case_milestones", *m])


def _header(position: int) -> bytes:
    return _line({"index": DIGEST_VERSION, "position": position})


@dataclass(frozen=True)
class _Unreadable:
    """A case whose stored rows cannot even be read."""

    case: str
    reason: str


def _snapshot(backend: IndexBackend, cases: Sequence[str]) -> IndexSnapshot | _Unreadable:
    """The stored index of some cases, or the first case whose rows cannot be read."""
    try:
        return backend.check_snapshot(cases)
    except (ValueError, TypeError, KeyError) as exc:
        if len(cases) == 1:
            return _Unreadable(cases[0], f"a row cannot be read ({type(exc).__name__})")
        for case in cases:
            found = _snapshot(backend, [case])
            if isinstance(found, _Unreadable):
                return found
        raise


def check_index(ledger: CaseLedger, progress: Callable[[int], None] | None = None) -> IndexCheck:
    """Compare the stored cross-case index with the fold of the events up to its
    tracked position, case by case (see the module's docstring); ``progress`` is called
    with the number of cases done."""
    backend = _backend(ledger)
    if backend is None:
        return IndexCheck(True, False, 0, 0, 0, 0, None, None, None)
    opener = backend.opener
    fingerprint = rules_fingerprint()
    refs = sorted(set(ledger.case_refs()) | set(backend.indexed_refs()))
    digest = hashlib.sha256()
    position = backend.tracked_position()
    digest.update(_header(position))
    done = behind = stale = 0

    def failed(case: str, reason: str, at: int) -> IndexCheck:
        return IndexCheck(False, True, at, done, behind, stale, case, reason, None)

    consistent = True
    for chunk in _chunks(refs, CHUNK):
        snap = _snapshot(backend, chunk)
        if isinstance(snap, _Unreadable):
            return failed(snap.case, snap.reason, position)
        consistent = consistent and snap.position == position
        for case in chunk:
            records = ledger.case_records(case)
            upto = [r for r in records if int(r["position"]) <= snap.position]
            behind += len(records) - len(upto)
            try:
                was_stale, lines = _compare_case(case, upto, snap, opener, fingerprint)
            except _Mismatch as exc:
                return failed(case, str(exc), snap.position)
            stale += was_stale
            for line in lines:
                digest.update(line)
            done += 1
            if progress is not None:
                progress(done)
        position = snap.position
    reason = _tracking_problem(ledger, position)
    if reason is not None:
        return IndexCheck(
            False, True, position, done, behind, stale, "case_index_tracking", reason, None
        )
    # The digest is of one snapshot only when the position did not move while checking.
    return IndexCheck(
        True, True, position, done, behind, stale, None, None,
        digest.hexdigest() if consistent else None,
    )  # fmt: skip


def _tracking_problem(ledger: CaseLedger, position: int) -> str | None:
    """Why the tracked position cannot be one the catch-up wrote, or None: it is 0 or
    the position of an entry (the catch-up only ever tracks the last entry applied)."""
    if position == 0:
        return None
    first = next(iter(ledger.iter_records(after=position - 1)), None)
    if first is None or int(first["position"]) != position:
        return (
            f"the tracked position ({INDEX_NAME}) is {position}, which is not the position "
            "of any entry in the log"
        )
    return None


def index_digest(ledger: CaseLedger) -> str:
    """The SHA-256 (hex) of the stored cross-case index at its tracked position.

    What is hashed, line by line (each JSON, objects with sorted keys, and a newline):
    ``{"index": "caseledger-index/1", "position": P}``, then for every case in
    reference order ``["case_index", value, ...]`` (:data:`INDEX_COLUMNS` order) and
    its ``["case_milestones", value, ...]`` rows (:data:`MILESTONE_COLUMNS` order) by
    ``seq``, sealed columns
    opened (so an encrypted store's digest does not depend on its ciphertexts) and JSON
    columns decoded.  The clock facts are a cache and are not included.  An honest
    index at position P has the digest :func:`check_index` computes from the events up
    to P, so a checkpoint can carry it and a verifier recompute it.  Read in snapshots
    of a few hundred cases; if the index moves on meanwhile, the reading starts again.
    """
    backend = _backend(ledger)
    if backend is None:
        return hashlib.sha256(_header(0)).hexdigest()
    opener = backend.opener
    for _ in range(5):
        position = backend.tracked_position()
        digest = hashlib.sha256(_header(position))
        moved = False
        for chunk in _chunks(backend.indexed_refs(), CHUNK):
            snap = backend.check_snapshot(chunk)
            if snap.position != position:
                moved = True
                break
            for case in chunk:
                stored = snap.rows.get(case)
                if stored is not None:
                    digest.update(_index_line(_index_row(stored, opener)))
                for m in snap.milestones.get(case, ()):
                    digest.update(_milestone_line(m))
        if not moved:
            return digest.hexdigest()
    raise RuntimeError("the cross-case index kept moving while its digest was computed")
