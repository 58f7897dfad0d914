"""The cross-case index: a read model kept in the store itself (SQLite or PostgreSQL), in
the tables of :mod:`projections.index.rows`, kept current by :class:`CaseIndex`.

The index follows the store's notification log (``CaseLedger.iter_records``) from the
position it has tracked.  Each batch (:data:`BATCH_SIZE` entries, grouped per case) is
written, rows and tracking position together, in ONE transaction, through the library's
tracking recorders (:mod:`projections.index.sqlite` / :mod:`projections.index.postgres`), so
each entry is applied exactly once and a crash part-way leaves the index exactly as it was
after the last committed batch.  The write transaction first takes the index's lock
(``BEGIN IMMEDIATE`` / an advisory lock) and checks that the tracked position is still the
one the batch was computed from; if another process moved it, the batch is dropped and
recomputed from the new position.

Each case row is derived by :class:`~projections.index.summary.CaseSummary`; a user who may
only read the index folds the entries beyond its tracked position in memory
(:mod:`projections.index.overlay`).  The answers over every case built on the index (clocks,
statuses, each case's records) are in :mod:`projections.index.records`.

Why one module: :class:`CaseIndex` is one object whose catch-up, rebuilds (per entry, or
in SQL on a clear SQLite store) and reads share its tracked position, its lock and its
bounded cache of case summaries; the backends' SQL is already in modules of its own.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

import orjson
from eventsourcing.persistence import PersistenceError

from ledger.catalogue.terms import parse_ref
from ledger.collection import without_cycle_collection
from ledger.errors import StoreUnavailable
from ledger.store.acting import acting_user
from projections.assess.clocks import clock_event_types
from projections.fold.case_view import STAGES
from projections.index.backend import EmptyIndex, IndexBackend, IndexReads
from projections.index.clock_facts import CaseClockFacts, case_clock_facts, rules_fingerprint
from projections.index.overlay import TailOverlay
from projections.index.rows import IndexRow, Milestone, milestone_record, sealed_index_row
from projections.index.sealing import Sealer
from projections.index.sqlite import BulkReads, IndexSQLiteRecorder
from projections.index.summary import (
    FOLDED,
    CaseSummary,
    day_of,
    facts_of,
    milestone_row,
    patch_milestone,
)

if TYPE_CHECKING:
    from ledger.application import CaseLedger

__all__ = [
    "BATCH_SIZE",
    "BULK_SPAN",
    "CACHE_LIMIT",
    "CLOCK_CHUNK",
    "REBUILD_BATCH_SIZE",
    "CaseIndex",
    "Progress",
    "index_recorder",
    "open_backend",
]

BATCH_SIZE: Final = 5000
"""Entries per transaction when catching up."""

REBUILD_BATCH_SIZE: Final = 5000
"""Entries per transaction when rebuilding from zero: larger than a catch-up's (fewer
rewrites of busy cases' rows), small enough that the batch being folded and the one read
ahead stay a few tens of MiB whatever the size of the log."""

CACHE_LIMIT: Final = 1500
"""Most case summaries kept in memory between batches; beyond it the least recently
touched are dropped (and loaded again from their milestones if they are touched again),
so a rebuild's memory stays flat however many cases the store holds."""

BULK_SPAN: Final = 20000
"""Positions per transaction when SQLite rebuilds the index from the stored JSON."""

CLOCK_CHUNK: Final = 1000
"""Cases whose clock facts are derived (and kept) together."""

Progress = Callable[[int, int], None]
"""Called after each batch with (entries applied so far, entries to apply in all)."""


def index_recorder(ledger: CaseLedger, sealer: Sealer) -> IndexBackend:
    """The index's recorder for the ledger's store (SQLite or PostgreSQL), on the ledger's
    own connections, opening sealed columns with ``sealer``; nothing is created."""
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    backend: IndexBackend
    if ledger.location.kind == "postgres":
        # lazy: psycopg costs ~70 ms at start-up; SQLite stores never need it.
        from projections.index.postgres import IndexPostgresRecorder

        backend = IndexPostgresRecorder(datastore)
    else:
        backend = IndexSQLiteRecorder(datastore)
    backend.opener = sealer.opener()
    return backend


def open_backend(ledger: CaseLedger, sealer: Sealer) -> tuple[IndexBackend, bool]:
    """The index's recorder on the ledger's own store (sharing its connections), and
    whether this user may keep it (write its tables).

    Decided up front, from the store's grants (PostgreSQL: ``has_table_privilege``) or
    how the file was opened (SQLite: ``mode=ro``, file permissions), so that a reader
    never attempts a write: it reads the index as it is and folds the entries beyond
    its tracked position in memory (:class:`~projections.index.overlay.TailOverlay`).
    Where the tables do not exist and cannot be created here, an empty index
    (:class:`~projections.index.backend.EmptyIndex`) stands in for them.
    """
    backend = index_recorder(ledger, sealer)
    if backend.tables_exist():
        if not backend.may_keep():
            return backend, False
    elif not backend.may_create():
        return EmptyIndex(backend.opener), False
    for attempt in range(1, 6):
        # Two processes creating the tables at once: the loser sees them created.
        try:
            backend.create_table()
            break
        except PersistenceError:
            if attempt == 5:
                raise
            time.sleep(0.02 * attempt)
    return backend, backend.may_keep()


#: The most questions (role, case, regime ...) whose clock facts a ledger keeps at once.
MOST_KEPT_FACTS: Final = 64


class CaseIndex:
    """The cross-case index of one ledger's store.

    >>> index = CaseIndex(ledger)          # doctest: +SKIP
    >>> index.catch_up()                   # apply what was recorded since  # doctest: +SKIP
    >>> index.cases(stage="decided")       # doctest: +SKIP
    """

    def __init__(self, ledger: CaseLedger, *, batch_size: int = BATCH_SIZE) -> None:
        self.ledger = ledger
        self.batch_size = batch_size
        self.sealer = Sealer(ledger.ledger_mapper.cipher)
        self.backend, self.keeps = open_backend(ledger, self.sealer)
        """``keeps``: whether this user may write the index (the store's owner, a writer
        with the grants, or the indexer role); decided once, up front."""
        self._cache: dict[str, CaseSummary] = {}
        self._cache_at = -1
        self._complete = False
        """Whether the cache holds every indexed case (it was filled from position 0)."""
        self.clock_facts_kept = self.keeps
        """Whether derived clock facts are written back (never for a reader)."""
        self._overlay: TailOverlay | None = None
        self.rebuild_in_sql = True
        """Whether :meth:`rebuild` may make the milestone rows in SQL where it can (the
        tests turn it off to compare the two ways)."""

    @property
    def reads(self) -> IndexReads:
        """What answers are read from: the stored index, or for a reader the stored
        index with the tail beyond its tracked position folded in memory."""
        return self._overlay if self._overlay is not None else self.backend

    def require_keeper(self) -> None:
        """Refuse (exit 4) unless this user may write the index."""
        if not self.keeps:
            raise StoreUnavailable(
                "this user may only read the cross-case index of "
                f"{self.ledger.location.describe()}: it is kept by the store's owner or "
                "the indexer role (see docs/security.md, 'Who keeps the index'); queries "
                "still answer, folding what it has not applied yet in memory"
            )

    # --- keeping current --------------------------------------------------------------

    def position(self) -> int:
        """The last position of the store's log that the index has applied."""
        return self.reads.tracked_position()

    def catch_up(self, progress: Progress | None = None, *, batch_size: int | None = None) -> int:
        """Apply every entry recorded since the tracked position; return how many.

        Safe to run from several processes at once: each batch commits only if the
        tracked position is still the one it was computed from.
        """
        if not self.keeps:
            return self._fold_tail()
        size = batch_size or self.batch_size
        with without_cycle_collection():  # a batch makes many small objects, no cycles
            return self._catch_up(size, progress)

    def _fold_tail(self) -> int:
        """For a user who may not write the index: fold the entries beyond the stored
        index's tracked position in memory (:class:`~projections.index.overlay.TailOverlay`),
        and return how many were folded now.  Nothing is written."""
        base = self.backend.tracked_position()
        overlay = self._overlay
        if overlay is None or overlay.base_position != base:
            overlay = TailOverlay(self.backend, base)
        records = list(self.ledger.iter_records(after=overlay.end))
        self._overlay = overlay
        return overlay.fold(records, self.sealer)

    def _read(self, after: int, size: int) -> list[dict[str, Any]]:
        return list(itertools.islice(self.ledger.iter_records(after=after), size))

    def _catch_up(self, size: int, progress: Progress | None) -> int:
        applied = 0
        total = 0
        start = self.position()
        records = self._read(start, size)
        if not records:
            return 0
        # While one batch is folded and written, the next is read (in a thread: the
        # database drivers release the GIL while they wait).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="case-index") as reader:
            while records:
                if progress is not None and total == 0:
                    # Count the backlog only when there is more than one batch of it.
                    total = len(records)
                    if len(records) == size:
                        indexed = self.backend.count_milestones() if start else 0
                        total = max(total, self.ledger.count_events() - indexed)
                end = int(records[-1]["position"])
                ahead = reader.submit(self._read, end, size) if len(records) == size else None
                try:
                    ok = self._apply(start, records)
                except BaseException:
                    self._forget()
                    raise
                if ok:
                    applied += len(records)
                    if progress is not None:
                        progress(applied, max(total, applied))
                    start = end
                    records = ahead.result() if ahead is not None else []
                    if ahead is None:
                        # A short batch was the end of the log when it was read; look
                        # once more for entries recorded since.
                        records = self._read(start, size)
                else:
                    # Another process moved the index on: carry on from where it is.
                    self._forget()
                    if ahead is not None:
                        ahead.cancel()
                    start = self.position()
                    records = self._read(start, size)
        return applied

    def rebuild(self, progress: Progress | None = None) -> int:
        """Empty the index and apply the whole log again, from position zero, then derive
        every case's clock facts."""
        self.require_keeper()
        self.backend.reset()
        self._forget()
        applied = 0
        mapper = self.ledger.ledger_mapper
        if (
            self.rebuild_in_sql
            and isinstance(self.backend, IndexSQLiteRecorder)
            and mapper.cipher is None
            and mapper.compressor is None
        ):
            with without_cycle_collection():
                applied = self._rebuild_in_sql(progress)
        applied += self.catch_up(progress, batch_size=max(self.batch_size, REBUILD_BATCH_SIZE))
        self.clock_facts(catch_up=False)
        return applied

    def _rebuild_in_sql(self, progress: Progress | None) -> int:
        """From an empty index on SQLite, in a store in clear: every entry recorded so
        far indexed :data:`BULK_SPAN` positions per transaction, its milestone row made
        by SQLite as each stored entry is parsed once and folded in the same pass
        (:meth:`IndexSQLiteRecorder.bulk_batch`, :class:`_SpanFold`).  Returns how many
        entries; what is recorded meanwhile is left to the catch-up that follows."""
        backend = self.backend
        assert isinstance(backend, IndexSQLiteRecorder)
        last = backend.last_position()
        start = 0
        applied = 0
        self._complete = True
        self._cache_at = 0
        met = _Met()
        while start < last:
            end = min(start + BULK_SPAN, last)
            fold = _SpanFold(self, start, met)
            try:
                count = backend.bulk_batch(start, end, fold)
            except _Unloaded as unloaded:
                # A case met under an originator id it was not met under before: the
                # span is rolled back and done again with the case loaded first.
                self._forget()
                met.also.add(unloaded.case)
                continue
            except BaseException:
                self._forget()  # cached summaries may hold the failed span's entries
                raise
            if count is None:  # another process moved the index on
                self._forget()
                break
            self._keep(fold.summaries, end)
            applied += count
            start = end
            if progress is not None:
                progress(applied, max(applied, last))
        return applied

    def _patched(self, patches: dict[Any, Any], stored: Mapping[Any, Any]) -> list[tuple[Any, ...]]:
        """The stored milestone rows that corrections change, patched, as the values of
        the batch's UPDATE (occurred_at, occurred_day, sealed facts, case, seq)."""
        seal = self.sealer.seal_json
        changed = []
        for key, changes in patches.items():
            found = stored.get(key)
            if found is not None:
                row = list(found.values())
                row[9] = dict(found.facts)
                patch_milestone(row, changes)
                changed.append((row[3], row[4], seal(row[9]), row[0], row[1]))
        return changed

    def _forget(self) -> None:
        self._cache = {}
        self._cache_at = -1
        self._complete = False

    def _apply(self, start: int, records: Sequence[dict[str, Any]]) -> bool:
        """Fold one batch into the touched cases' rows and write it in one transaction."""
        end = int(records[-1]["position"])
        if self._cache_at != start:
            self._forget()
        if start == 0:
            self._complete = True  # every indexed case will be in the cache
        cache = self._cache
        summaries: dict[str, CaseSummary] = {}
        if not self._complete:
            unknown = sorted({r["case"] for r in records} - cache.keys())
            if unknown:
                for case, kept in self.backend.load_case_milestones(unknown).items():
                    summaries[case] = CaseSummary.from_milestones(case, kept)
        new: dict[tuple[str, int], list[Any]] = {}
        patches: dict[tuple[str, int], dict[str, Any]] = {}
        folded = FOLDED
        for record in records:
            case = record["case"]
            row = milestone_row(record)
            seq = row[1]
            kind = row[2]
            new[(case, seq)] = row
            summary = summaries.get(case)
            if summary is None:
                summary = cache.get(case) or CaseSummary(case)
                summaries[case] = summary
            if kind not in folded:
                summary.add_plain(row[5], row[6], kind)
            elif kind == "EntryCorrected":
                changes = record["changes"]
                summary.add(seq, kind, row[3], row[5], row[6], row[9], changes)
                target = (case, parse_ref(record["corrects"])[1])
                pending = new.get(target)
                if pending is not None:
                    patch_milestone(pending, changes)
                else:
                    patches.setdefault(target, {}).update(changes)
            else:
                summary.add(seq, kind, row[3], row[5], row[6], row[9])
        changed = self._patched(
            patches, self.backend.load_milestone_rows(list(patches)) if patches else {}
        )
        rows = [sealed_index_row(self.sealer, s.values()) for s in summaries.values()]
        values = list(new.values())
        if self.sealer.cipher is None:
            dumps = orjson.dumps
            for row in values:
                row[9] = dumps(row[9]).decode()
        else:
            for row in values:
                row[9] = self.sealer.seal_json(row[9])
        ok = self.backend.write_batch(start, end, values, changed, rows)
        if ok:
            self._keep(summaries, end)
        return ok

    def _keep(self, summaries: dict[str, CaseSummary], end: int) -> None:
        """Keep a committed batch's summaries as the cache at ``end``, the most recently
        touched last, dropping the least recently touched beyond :data:`CACHE_LIMIT`."""
        cache = self._cache
        for case, summary in summaries.items():
            cache.pop(case, None)  # to the end: the most recently touched
            cache[case] = summary
        excess = len(cache) - CACHE_LIMIT
        if excess > 0:
            for case in list(itertools.islice(cache, excess)):
                del cache[case]
            self._complete = False  # a dropped case is loaded again when touched
        self._cache_at = end

    # --- reading ----------------------------------------------------------------------

    def cases(
        self,
        stage: str | None = None,
        regime: str | None = None,
        *,
        catch_up: bool = True,
    ) -> list[IndexRow]:
        """Every indexed case (optionally of one stage and/or regime), by reference.

        Catches up first, so what a user has just recorded is always there.
        """
        if stage is not None and stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        if catch_up:
            self.catch_up()
        return self.reads.select_rows(stage, regime, None)

    def row(self, case: str, *, catch_up: bool = True) -> IndexRow | None:
        """One case's row, or None if the case is not in the store."""
        if catch_up:
            self.catch_up()
        rows = self.reads.select_rows(None, None, case)
        return rows[0] if rows else None

    def milestones(
        self,
        case: str | None = None,
        types: Sequence[str] | None = None,
        *,
        catch_up: bool = True,
        open_only: bool = False,
    ) -> list[Milestone]:
        """Milestone rows (of one case and/or of some entry types; with ``open_only``, of
        the cases not closed), by case then seq."""
        if catch_up:
            self.catch_up()
        return self.reads.select_milestones(case, types, open_only)

    def entry_times(
        self, types: Sequence[str], *, catch_up: bool = True
    ) -> list[tuple[str, int, str, str]]:
        """``(case, seq, type, occurred_at)`` of every entry of ``types`` (corrections
        applied), in no particular order: what ``delays`` measures, without the facts."""
        if catch_up:
            self.catch_up()
        return self.reads.select_times(types)

    def regimes(self, *, catch_up: bool = True) -> dict[str, str]:
        """Every indexed case's regime, by reference."""
        if catch_up:
            self.catch_up()
        return self.reads.select_regimes()

    def milestones_of(
        self, cases: Sequence[str], types: Sequence[str], *, catch_up: bool = True
    ) -> list[Milestone]:
        """The milestone rows of some cases and entry types, by case then seq."""
        if catch_up:
            self.catch_up()
        _, rows = self.reads.load_clock_inputs(cases, types)
        return sorted(rows, key=lambda m: (m.case, m.seq))

    def count_cases(self) -> int:
        """How many cases the index holds (without catching up)."""
        return self.reads.count_cases()

    # --- clocks ---------------------------------------------------------------------

    def clock_facts(
        self,
        case: str | None = None,
        *,
        catch_up: bool = True,
        open_only: bool = False,
        regime: str | None = None,
    ) -> dict[str, CaseClockFacts]:
        """Every case's (or one case's; with ``open_only``, every case not closed; with
        ``regime``, every case of that regime) clock facts
        (:mod:`projections.index.clock_facts`), by reference, each consistent with the
        position it is labelled with: read from ``case_clocks`` where current, derived
        again from the milestones where not (and kept, unless the store may only be
        read).

        The answer is kept on the ledger by the index's position (and, for a reader, the
        end of the tail it folded), per database role and question: asked again with
        nothing recorded since, it is the same facts, so a server's clocks page does not
        read and build every case's facts (and the objects whose garbage collection cost
        as much again) on each request.  Facts do not depend on the day or ``as_of``
        (the caller checks :meth:`CaseClockFacts.holds`); the rule packs' fingerprint is
        part of the question, and an index rebuilt at the same position holds the same
        facts.  Each call returns its own dict."""
        if catch_up:
            self.catch_up()
        fingerprint = rules_fingerprint()
        key = (acting_user(), case, open_only, regime, fingerprint)
        at = (self.reads.tracked_position(), None if self._overlay is None else self._overlay.end)
        kept_all: dict[Any, tuple[Any, dict[str, CaseClockFacts]]] = (
            self.ledger.__dict__.setdefault("_kept_clock_facts", {})
        )
        kept = kept_all.get(key)
        if catch_up and kept is not None and kept[0] == at:
            return dict(kept[1])
        out = self._read_clock_facts(case, open_only, regime, fingerprint)
        if catch_up:
            if key not in kept_all and len(kept_all) >= MOST_KEPT_FACTS:
                kept_all.clear()
            kept_all[key] = (at, out)
        return dict(out)

    def _read_clock_facts(
        self, case: str | None, open_only: bool, regime: str | None, fingerprint: str
    ) -> dict[str, CaseClockFacts]:
        """:meth:`clock_facts` read from the index, and derived again (and kept) where
        stale: the rows say which (no separate query for the stale cases first)."""
        out: dict[str, CaseClockFacts] = {}
        stale: list[str] = []
        for row in self.reads.select_clock_facts(case, open_only, regime):
            if row.spans is None or row.facts_position != row.position or row.rules != fingerprint:
                stale.append(row.case)
            else:
                out[row.case] = CaseClockFacts(
                    case=row.case,
                    regime=row.regime,
                    position=row.position,
                    last_recorded_at=row.last_recorded_at,
                    until=row.until,
                    spans=row.spans,
                    delays=row.delays,
                )
        if stale:
            out.update(self._derive_clock_facts(stale))
        return out

    def refresh_clock_facts(
        self, case: str | None = None, *, open_only: bool = False
    ) -> dict[str, CaseClockFacts]:
        """Derive and keep the clock facts of every case (or of ``case``; ``open_only``:
        of every case not closed) whose kept facts are missing, older than its index row,
        or from other rule packs; return what was derived (nothing when every case was
        current)."""
        stale = self.reads.stale_clock_cases(rules_fingerprint(), case, open_only)
        return self.derive_clock_facts(stale)

    def derive_clock_facts(self, cases: Iterable[str]) -> dict[str, CaseClockFacts]:
        """Derive and keep the clock facts of ``cases`` (whose rows showed them stale)."""
        chosen = sorted(cases)
        return self._derive_clock_facts(chosen) if chosen else {}

    def _derive_clock_facts(self, cases: Sequence[str] | None) -> dict[str, CaseClockFacts]:
        """Derive the clock facts of ``cases`` (None: every case) and keep them, a chunk
        of :data:`CLOCK_CHUNK` cases at a time (each chunk's labels and milestones read
        in one snapshot), so memory stays flat however many cases there are."""
        refs = sorted(self.reads.select_regimes()) if cases is None else list(cases)
        out: dict[str, CaseClockFacts] = {}
        for i in range(0, len(refs), CLOCK_CHUNK):
            out.update(self._derive_clock_chunk(refs[i : i + CLOCK_CHUNK]))
        return out

    def _derive_clock_chunk(self, cases: Sequence[str]) -> dict[str, CaseClockFacts]:
        heads, milestones = self.reads.load_clock_inputs(cases, clock_event_types())
        grouped: dict[str, list[Milestone]] = {}
        for milestone in milestones:
            grouped.setdefault(milestone.case, []).append(milestone)
        fingerprint = rules_fingerprint()
        out: dict[str, CaseClockFacts] = {}
        rows = []
        seal = self.sealer.seal_json
        for head in heads:
            kept = sorted(grouped.get(head.case, ()), key=lambda m: m.seq)
            facts = case_clock_facts(
                head.case,
                head.regime,
                [milestone_record(m) for m in kept],
                position=head.position,
                last_recorded_at=head.last_recorded_at,
            )
            out[head.case] = facts
            rows.append(
                (
                    head.case,
                    head.position,
                    head.last_recorded_at,
                    fingerprint,
                    facts.until,
                    facts.spans,
                    seal(facts.delays) if facts.delays is not None else None,
                )
            )
        if rows and self.clock_facts_kept:
            # Only a user who may keep the index (decided up front): a reader derives
            # the facts for its answer and the next query derives them again.
            self.backend.write_clock_facts(rows)
        return out


class _Unloaded(Exception):
    """A span met a case dropped from the cache that it had not loaded again."""

    def __init__(self, case: str) -> None:
        super().__init__(case)
        self.case = case


class _Met:
    """What the spans of one :meth:`CaseIndex._rebuild_in_sql` have met: the cases met
    under each ``originator_id``, every case met, and the cases to load again besides
    (met under an id they were not met under before)."""

    def __init__(self) -> None:
        self.originators: dict[str, set[str]] = {}
        self.cases: set[str] = set()
        self.also: set[str] = set()


class _SpanFold:
    """The fold of one :meth:`CaseIndex._rebuild_in_sql` span (a
    :class:`~projections.index.sqlite.BulkFold`): the same :class:`CaseSummary` steps as
    :meth:`CaseIndex._apply`, in the same order per case, on each stored entry as SQLite
    hands it over, parsed once for its milestone row and its fold.

    A span whose cases may have been dropped from the cache loads them again before its
    first entry, found by the span's ``originator_id``s alone (without parsing), through
    what earlier spans met (:class:`_Met`); a case met again that was not loaded stops
    the span (:class:`_Unloaded`), never folded from a partial summary."""

    def __init__(self, index: CaseIndex, start: int, met: _Met) -> None:
        self.index = index
        self.start = start
        self.met = met
        self.summaries: dict[str, CaseSummary] = {}
        self.patches: dict[tuple[str, int], dict[str, Any]] = {}
        self.row: tuple[Any, ...] = ()
        self.position = start  # the entry ``row`` is of: positions must rise
        self.error: BaseException | None = None

    @property
    def needs_originators(self) -> bool:
        return not self.index._complete

    def begin(self, originators: Sequence[str], reads: BulkReads) -> None:
        met = self.met
        wanted = {case for o in originators for case in met.originators.get(o, ())}
        unknown = sorted((wanted | met.also) - self.index._cache.keys())
        if unknown:
            loaded = reads.cases(unknown, self.start)
            for case in unknown:
                self.summaries[case] = CaseSummary.from_milestones(case, loaded.get(case, ()))

    def entry(self, position: int, originator: str, topic: str, state: bytes) -> str:
        try:
            return self._entry(position, originator, topic, state)
        except BaseException as exc:
            self.error = exc
            raise

    def _entry(self, position: int, originator: str, kind: str, state: bytes) -> str:
        if position <= self.position:  # the fold's order is the log's: never assumed
            raise RuntimeError(
                f"SQLite handed position {position} to the fold after {self.position}"
            )
        self.position = position
        record = orjson.loads(state)
        case: str = record["case"]
        seq = record["seq"]
        occurred = record["occurred_at"]
        recorded = record["recorded_at"]
        facts = facts_of(record)
        self.row = (
            case,
            seq,
            occurred,
            day_of(occurred),
            recorded,
            record.get("actor", ""),
            orjson.dumps(facts).decode(),
        )
        summary = self.summaries.get(case)
        if summary is None:
            index = self.index
            summary = index._cache.get(case)
            if summary is None:
                met = self.met
                if not index._complete and case in met.cases:
                    raise _Unloaded(case)
                met.cases.add(case)
                met.originators.setdefault(originator, set()).add(case)
                summary = CaseSummary(case)
            self.summaries[case] = summary
        if kind not in FOLDED:
            summary.add_plain(recorded, position, kind)
        elif kind == "EntryCorrected":
            changes = record["changes"]
            summary.add(seq, kind, occurred, recorded, position, facts, changes)
            target = (case, parse_ref(record["corrects"])[1])
            self.patches.setdefault(target, {}).update(changes)
        else:
            summary.add(seq, kind, occurred, recorded, position, facts)
        return case

    def column(self, position: int, i: int) -> Any:
        if position != self.position:  # a column of another row than the one parsed
            self.error = RuntimeError(
                f"SQLite asked for position {position}'s columns after parsing {self.position}"
            )
            raise self.error
        return self.row[i]

    def end(self, reads: BulkReads) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        index = self.index
        patches = self.patches
        changed = index._patched(patches, reads.rows(list(patches)) if patches else {})
        rows = [sealed_index_row(index.sealer, s.values()) for s in self.summaries.values()]
        return changed, rows
