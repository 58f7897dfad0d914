"""The read side's Python API: every question the CLI can ask of a store, one function each.

Open a store with :func:`ledger.api.open_store` (or construct a
:class:`ledger.application.CaseLedger`), then ask::

    answer = status(ledger, "RR-2026-004", on="2026-03-01")
    answer.to_json()        # exactly what `caseledger status RR-2026-004 --on ... --json` prints

Each function is named after its command and takes the command's options as keyword
parameters of the same names (``as_of``, ``on``, ``case``, ``status``, ``from_type``, ...);
times are the command line's forms (``"2026-03-10"``, ISO 8601) or aware datetimes.  Each
returns a frozen result holding what every rendering needs, with ``to_json()`` giving the
``--json`` shape, so the CLI, a web view or a digest render the same answer.  Mistakes
raise :mod:`ledger.errors` types (a usage error for an unknown case, a bad option).

Long operations take ``progress``, a :data:`Progress` callback told what is being done and
how far it has got.  ``docs/api.md`` shows each function with a runnable example.

Why one module: it is the read side's one documented entry point, a page a front end's
author reads top to bottom; each function is a few lines over the module that does the
work, and the result types sit beside the functions that return them.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from ledger.application.opening import LedgerStore
from ledger.collection import cycles_collected_after, without_cycle_collection
from ledger.errors import UsageError
from projections.fold.case_view import Entry
from projections.fold.describe import describe
from projections.fold.when import on_day, parse_as_of, parse_on
from projections.fold.why import WhyAnswer
from projections.queries import cases as _cases
from projections.queries import visibility as _visibility

if TYPE_CHECKING:
    from ledger.application import CaseLedger, VerifyResult
    from ledger.checkpoints.checkpoint import CheckpointResult
    from projections.assess.clocks import ClockState
    from projections.assess.quality import Answer
    from projections.assess.rules import LocalRules, RulePack
    from projections.desk.digest import Digest
    from projections.desk.feed import CalendarFeed
    from projections.export.bundle import ExportSummary
    from projections.export.chart import Chart
    from projections.export.verify import BundleVerifyResult
    from projections.fold.related import RelatedCase
    from projections.index.records import EveryClock
    from projections.queries.delays import Interval, Summary
    from projections.queries.desk import Deadline
    from projections.queries.index_trust import IndexCheck

__all__ = [
    "CLI_COMMANDS",
    "CLOCK_FIELDS",
    "PER_PAGE",
    "STATUS_FIELDS",
    "ClockReport",
    "ClockTable",
    "DelayReport",
    "DueList",
    "LedgerOrOpener",
    "Moment",
    "Paging",
    "Progress",
    "QualityReport",
    "Reindexed",
    "RelatedReport",
    "RulesReport",
    "StatusReport",
    "Timeline",
    "TimelineChart",
    "Verdict",
    "WhyReport",
    "calendar",
    "case_refs",
    "clock_names",
    "clock_table",
    "clock_words",
    "clocks",
    "criterion_words",
    "delays",
    "digest",
    "due",
    "export",
    "factor_words",
    "local_rules",
    "quality",
    "reindex",
    "related",
    "rules",
    "status",
    "timeline",
    "timeline_chart",
    "verify",
    "why",
]

Progress = Callable[[str, int, int | None], None]
"""Told ``(what, done, total)`` as a long operation advances, e.g. ``("verifying", 1200,
50000)``; ``total`` is None while unknown."""

Moment = str | datetime | None
"""A time option: the command line's forms (``YYYY-MM-DD``, ISO 8601), an aware datetime,
or None (now)."""


LedgerOrOpener: TypeAlias = "CaseLedger | Callable[[], CaseLedger]"
"""The opened ledger, or a function that opens it: called once the options are found
good, so that a mistaken option is named before the store is opened (as the CLI does).
(A :class:`~ledger.application.reading.CaseReader` reads as the ledger does.)"""


def local_rules(rules: Path | str | None) -> LocalRules | None:
    """The local clock rules file ``rules`` (None: the shipped packs), loaded and checked:
    what a command judged with, for a front end to disclose (a usage error naming the
    file, the place and the reason when it cannot be used)."""
    return _local_rules(rules)


def _local_rules(rules: Path | str | None, field: str = "rules") -> LocalRules | None:
    """The local clock rules file asked for (``--rules FILE``), loaded and checked before
    anything else happens: a file that cannot be used is a usage error naming the file,
    the place in it and the reason."""
    if rules is None or not str(rules):
        return None
    # lazy: the rule packs and their schema cost ~25 ms at start-up
    from projections.assess.rules import RuleError, load_local_rules

    try:
        return load_local_rules(rules)
    except RuleError as exc:
        raise UsageError(str(exc), field=field) from None


@contextmanager
def _judged_with(local: LocalRules | None) -> Iterator[None]:
    """Clocks inside the block are judged with ``local`` (None: the shipped packs)."""
    if local is None:
        yield
        return
    # lazy: the rule packs cost ~25 ms at start-up
    from projections.assess.rules import judged_with

    with judged_with(local):
        yield


def _opened(ledger: LedgerOrOpener) -> CaseLedger:
    """The ledger, opened now if it was given as an opener."""
    # any opened store (CaseLedger, or the CLI's CaseReader for a cold why) is not called
    return ledger if isinstance(ledger, LedgerStore) else ledger()


def _read(ledger: LedgerOrOpener) -> CaseLedger:
    """The ledger as the user it acts for may read it: every read facade reads through
    this, so the policy's ``sees`` narrows the CLI's and the web's answers alike
    (:mod:`projections.queries.visibility`)."""
    return _visibility.narrowed(_opened(ledger))


def _moment(
    value: Moment, name: str, parse: Callable[[str, datetime], datetime], now: datetime
) -> datetime | None:
    """One time option as an aware datetime, or None when not given."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise UsageError(
                "a time given as a datetime must be aware (carry an offset)", field=name
            )
        return value
    return parse(value, now) if value else None


def _moments(
    ledger: CaseLedger, as_of: Moment, on: Moment
) -> tuple[datetime | None, datetime | None, datetime]:
    """``as_of`` and ``on`` as aware datetimes (None where not given), and now."""
    now = ledger.clock()
    return _moment(as_of, "as_of", parse_as_of, now), _moment(on, "on", parse_on, now), now


# --- pages of a long answer -----------------------------------------------------------------

#: The rows a page holds when ``page`` is asked without ``per_page`` (the web view's desk
#: and clocks pages): about a screen and a half, and what a person reads before filtering.
PER_PAGE: Final = 50
#: The most rows a page may hold (a larger page is the whole answer: ask without ``page``).
MOST_PER_PAGE: Final = 1000


@dataclass(frozen=True)
class Paging:
    """Which rows of a longer answer a report holds: page ``page`` (from 1) of
    ``per_page`` rows, of ``total`` rows in the whole answer, in the answer's order.
    A page past the last holds no rows (and says which page is the last)."""

    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the whole answer fills (1 when it is empty)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def start(self) -> int:
        """The index, from 0, of the page's first row in the whole answer."""
        return (self.page - 1) * self.per_page

    @property
    def first(self) -> int:
        """The number, from 1, of the page's first row (0: the page holds none)."""
        return self.start + 1 if self.start < self.total else 0

    @property
    def last(self) -> int:
        """The number, from 1, of the page's last row (0: the page holds none)."""
        return min(self.total, self.start + self.per_page) if self.first else 0

    @property
    def next_page(self) -> int | None:
        """The page after this one, None when this is the last (or past it)."""
        return self.page + 1 if self.page < self.pages else None

    @property
    def previous_page(self) -> int | None:
        """The page before this one (the last page when this one is past it), None on
        the first."""
        return min(self.page - 1, self.pages) if self.page > 1 else None

    def rows(self, rows: Sequence[Any]) -> tuple[Any, ...]:
        """This page's rows of the whole answer's ``rows``."""
        return tuple(rows[self.start : self.start + self.per_page])

    def to_json(self) -> dict[str, Any]:
        """The paging as the web view's JSON gives it."""
        return {
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
            "pages": self.pages,
            "first": self.first,
            "last": self.last,
            "next_page": self.next_page,
            "previous_page": self.previous_page,
        }


def _check_page(page: int | None, per_page: int) -> None:
    """Refuse a ``page`` that is not a whole number from 1, or a ``per_page`` out of
    1 to :data:`MOST_PER_PAGE`, naming the field (before the store is read)."""
    if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page < 1):
        raise UsageError(f"must be a page number from 1, not {page!r}", field="page")
    if isinstance(per_page, bool) or not isinstance(per_page, int):
        raise UsageError(f"must be a number of rows, not {per_page!r}", field="per_page")
    if not 1 <= per_page <= MOST_PER_PAGE:
        raise UsageError(
            f"must be from 1 to {MOST_PER_PAGE} rows a page, not {per_page}", field="per_page"
        )


def _paging(page: int | None, per_page: int, total: int) -> Paging | None:
    """The paging of an answer of ``total`` rows (None: every row, no ``page`` asked)."""
    return None if page is None else Paging(page, per_page, total)


# --- status, timeline, why ------------------------------------------------------------------


#: The columns of ``status --csv``: ``cli.md``'s keys first (the decision and the next
#: deadline spread over columns of their own, the open requests counted), then the rest.
STATUS_FIELDS: Final = (
    "case",
    "regime",
    "stage",
    "decision",
    "decision_ref",
    "decided_on",
    "open_requests",
    "overdue_requests",
    "overdue",
    "next_deadline",
    "next_deadline_due",
    "next_deadline_days_left",
    "subject",
    "entries",
    "last_recorded_at",
)


def clock_words(regime: str, clock: str) -> str:
    """A clock's name in words for people (``rapid review``), from the regime's rule
    pack (its ``label``); ``--json`` and ``--csv`` keep the name itself."""
    # lazy: the rule packs cost ~25 ms at start-up
    from projections.assess.rules import REGIMES, rule_pack

    if regime not in REGIMES:
        return clock.replace("_", " ")
    pack = rule_pack(regime)
    known = _CLOCK_WORDS.get((regime, clock))
    if known is not None and known[0] is pack:  # the same pack (a local file swaps it)
        return known[1]
    words = pack.clock(clock).words if clock in pack.names else clock.replace("_", " ")
    _CLOCK_WORDS[(regime, clock)] = (pack, words)
    return words


#: :func:`clock_words` already found, by regime and clock, with the rule pack they came
#: from (the clocks page asks for up to 500 rows' words: each look-up sorts the pack's
#: rules).
_CLOCK_WORDS: dict[tuple[str, str], tuple[object, str]] = {}


@dataclass(frozen=True)
class StatusReport:
    """Where one case stands (``case`` given), or every case, in ``status``'s JSON shape."""

    case: str | None
    rows: tuple[dict[str, Any], ...]
    """One row per case (one only when ``case`` is given), ``cli.md``'s keys first; every
    case in the order asked for (``sort``)."""
    as_of: datetime | None
    on: datetime | None
    local_rules: LocalRules | None = None
    """The local clock rules the clocks were judged with (None: the shipped packs)."""
    paging: Paging | None = None
    """With ``page`` asked, which rows of every case's answer ``rows`` are (None: all)."""

    @cycles_collected_after
    def to_json(self) -> Any:
        """``status --json``: an object for one case (with ``local_rules`` when clocks were
        judged with a local file), an array for every case (this page's, when paged)."""
        if self.case is not None:
            if self.local_rules is not None:
                return {**self.rows[0], "local_rules": self.local_rules.as_dict()}
            return self.rows[0]
        return list(self.rows)

    def csv_rows(self) -> list[list[Any]]:
        """``status --csv``: the header (:data:`STATUS_FIELDS`), then one row per case."""
        rows: list[list[Any]] = [list(STATUS_FIELDS)]
        for row in self.rows:
            decision = row["decision"] or {}
            deadline = row.get("next_deadline") or {}
            requests = row["open_requests"]
            values = [
                row["case"],
                row["regime"],
                row["stage"],
                decision.get("outcome"),
                decision.get("ref"),
                decision.get("occurred_at"),
                len(requests),
                sum(1 for r in requests if r.get("overdue")),
                list(row["overdue"]),
                deadline.get("clock"),
                deadline.get("due"),
                deadline.get("days_left"),
                row["subject"],
                row["entries"],
                row["last_recorded_at"],
            ]
            rows.append([_csv_cell(v) for v in values])
        return rows


@cycles_collected_after
def status(
    ledger: LedgerOrOpener,
    case: str | None = None,
    *,
    as_of: Moment = None,
    on: Moment = None,
    stage: str | None = None,
    regime: str | None = None,
    sort: str = "urgency",
    include_closed: bool = False,
    progress: Progress | None = None,
    rules: Path | str | None = None,
    page: int | None = None,
    per_page: int = PER_PAGE,
) -> StatusReport:
    """``caseledger status [CASE]``: one case (folded, exactly current), or every case
    (from the cross-case index, caught up first, with ``progress``; folded case by case
    when a time is given), filtered by ``stage`` and ``regime``.  Every case is ordered
    by ``sort``: ``urgency`` (something overdue first, then the soonest next deadline,
    then the rest) or ``ref``; closed cases are left out unless ``include_closed`` (or
    ``stage`` is ``closed``); ``rules`` is a local clock rules file (disclosed in the
    answer's ``local_rules``).  With ``page`` (from 1), every case's answer is cut into
    pages of ``per_page`` rows in that order and only that page's rows are given (the
    answer's ``paging`` says of how many; the command gives every row)."""
    _cases.arrange_statuses([], sort=sort)  # an unknown order is refused before opening
    _check_page(page, per_page)
    if case is not None and page is not None:
        raise UsageError("page cuts the list of every case; give no case with it", field="page")
    local = _local_rules(rules)
    with _judged_with(local):
        report = _status(
            ledger,
            case,
            as_of,
            on,
            stage,
            regime,
            sort,
            include_closed=include_closed,
            progress=progress,
        )
    paging = _paging(page, per_page, len(report.rows))
    if paging is not None:
        report = dataclasses.replace(report, rows=paging.rows(report.rows), paging=paging)
    return dataclasses.replace(report, local_rules=local)


def _status(
    ledger: LedgerOrOpener,
    case: str | None,
    as_of: Moment,
    on: Moment,
    stage: str | None,
    regime: str | None,
    sort: str,
    *,
    include_closed: bool,
    progress: Progress | None,
) -> StatusReport:
    """:func:`status` with the clock rules in use already chosen."""
    led = _read(ledger)
    reader = _visibility.reader_in(led)
    as_of_time, on_time, now = _moments(led, as_of, on)
    if case is not None:
        if stage is not None or regime is not None:
            raise UsageError(
                "stage and regime filter the list of every case; give no case with them",
                field="stage" if stage is not None else "regime",
                code="filter-with-case",
            )
        row = _cases.status(led, case, as_of_time, on_time, now=now)
        if reader is not None:
            row = _visibility.without_clocks(row)
        return StatusReport(case, (row,), as_of_time, on_time)
    if reader is not None:
        # A narrowed reader's cases are folded from what they may see (the index holds
        # every entry), each case as it stands now unless a time is given.
        rows = [
            _visibility.without_clocks(row)
            for row in _cases.statuses(
                led, as_of_time, on_time or now, stage=stage, regime=regime, now=now
            )
        ]
        arranged = _cases.arrange_statuses(
            rows, sort=sort, include_closed=include_closed, stage=stage
        )
        return StatusReport(None, tuple(arranged), as_of_time, on_time)
    index = None
    if as_of_time is None and on_time is None:
        # lazy: the index (with the clock facts) costs ~55 ms at start-up
        from projections.index.case_index import CaseIndex

        index = CaseIndex(led)
        told = progress
        index.catch_up(None if told is None else lambda done, total: told("updating", done, total))
    # The list leaves closed cases out unless asked (arrange_statuses): then they are not
    # read at all (at the benchmark store nine cases in ten are closed).
    open_only = not include_closed and stage is None
    rows = _cases.statuses(
        led,
        as_of_time,
        on_time,
        stage=stage,
        regime=regime,
        now=now,
        index=index,
        open_only=open_only,
    )
    arranged = _cases.arrange_statuses(rows, sort=sort, include_closed=include_closed, stage=stage)
    return StatusReport(None, tuple(arranged), as_of_time, on_time)


#: The columns of ``timeline --csv``, in order (``cli.md``'s keys first).
TIMELINE_FIELDS: Final = _cases.TIMELINE_FIELDS


def _csv_cell(value: Any) -> Any:
    """Lists as space-separated refs, booleans as true/false, None as empty."""
    if isinstance(value, list):
        return " ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


@dataclass(frozen=True)
class Timeline:
    """Every entry of a case in the order it happened, corrections applied."""

    case: str
    subject: str
    entries: tuple[Entry, ...]
    rows: tuple[dict[str, Any], ...]
    """One per entry, as ``timeline --json`` prints it."""
    as_of: datetime | None
    on: datetime | None
    full: bool = False
    """Whether :meth:`what` gives each entry's account whole (else shortened to a line)."""

    def to_json(self) -> list[dict[str, Any]]:
        """``timeline --json``."""
        return list(self.rows)

    def what(self, entry: Entry) -> str:
        """What the entry says, in words: whole with ``full``, else on about one line."""
        return describe(entry.type, entry.body, 0 if self.full else 90)

    def csv_rows(self) -> list[list[Any]]:
        """``timeline --csv``: the header, then one row per entry."""
        return [list(TIMELINE_FIELDS)] + [
            [_csv_cell(row[f]) for f in TIMELINE_FIELDS] for row in self.rows
        ]


def timeline(
    ledger: LedgerOrOpener,
    case: str,
    *,
    as_of: Moment = None,
    on: Moment = None,
    full: bool = False,
) -> Timeline:
    """``caseledger timeline CASE``: with ``on``, only entries that happened by then (a
    later correction still applies to the entry it corrects); with ``full``, each
    entry's account in words is given whole (:meth:`Timeline.what`)."""
    led = _read(ledger)
    as_of_time, on_time, _ = _moments(led, as_of, on)
    view = _cases.case_view(led, case, as_of_time, on_time)
    entries = _cases.timeline_entries(view, on_time)
    rows = _cases.timeline_rows(entries)
    return Timeline(view.case, view.subject, entries, tuple(rows), as_of_time, on_time, full)


@dataclass(frozen=True)
class TimelineChart:
    """A case's timeline drawn as the export's report draws it: one mark per entry by when it
    happened, one bar per statutory clock (the web view's case page shows it)."""

    case: str
    chart: Chart

    def svg(self, anchor: str = "case") -> str:
        """The chart as SVG markup (the report's own macro, ``timeline_chart.html``), safe
        to place in a page: no script, ids starting with ``anchor``, in a focusable region
        that scrolls sideways when the page is narrower than the chart can be read at."""
        # lazy: the exporter's templates cost ~100 ms at start-up
        from projections.export.export_cases import load_template

        macros = load_template("timeline_chart.html").make_module()
        draw = macros.timeline_svg  # type: ignore[attr-defined]  # a macro, made at run time
        return str(draw(anchor, self.case, self.chart))

    def to_json(self) -> dict[str, Any]:
        """The chart's layout: lanes, marks, clock bars, ticks (coordinates of the SVG)."""
        return dataclasses.asdict(self.chart)


def timeline_chart(line: Timeline, clocks: ClockReport) -> TimelineChart:
    """The chart of ``line`` (a :func:`timeline`) with the clocks of ``clocks`` (a
    :func:`clocks` of the same case, at the same times): no store is read again.  A clock
    still running is drawn up to ``clocks.on``, the moment the clocks were computed on."""
    # lazy: the report's layout costs ~40 ms (quality, clocks) at start-up
    from projections.export.chart import build_chart

    return TimelineChart(line.case, build_chart(line.entries, clocks.to_json(), clocks.on))


@dataclass(frozen=True)
class WhyReport:
    """The decision in force as the record stood at ``as_of``, and its reasons."""

    answer: WhyAnswer
    as_of: datetime | None
    on: datetime | None
    full: bool = False
    """Whether :meth:`what` gives each entry's account whole (else shortened to a line)."""

    def to_json(self) -> dict[str, Any]:
        """``why --json``."""
        return self.answer.as_dict()

    def what(self, entry: Entry) -> str:
        """What an entry (known then, learned since) says, in words: whole with
        ``full``, else on about one line."""
        return describe(entry.type, entry.body, 0 if self.full else 80)


def why(
    ledger: LedgerOrOpener,
    case: str,
    *,
    as_of: Moment = None,
    on: Moment = None,
    full: bool = False,
) -> WhyReport:
    """``caseledger why CASE``: who decided what and why, what was known then, what it
    relied on, what has been learned since, and any flags; with ``full``, each entry's
    account in words is given whole (:meth:`WhyReport.what`)."""
    led = _read(ledger)
    as_of_time, on_time, now = _moments(led, as_of, on)
    answer = _cases.why(led, case, as_of_time, on_time, now=now)
    return WhyReport(answer, as_of_time, on_time, full)


# --- reindex --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reindexed:
    """What ``reindex`` did to the cross-case index."""

    catch_up: bool
    entries: int
    """Entries applied."""
    cases: int
    position: int
    seconds: float

    @property
    def entries_per_second(self) -> int:
        """The rate, for people and for a cron job's log."""
        return int(self.entries / self.seconds) if self.seconds > 0 else self.entries

    def to_json(self) -> dict[str, Any]:
        """``reindex --json``."""
        return {
            "entries": self.entries,
            "cases": self.cases,
            "position": self.position,
            "seconds": round(self.seconds, 3),
            "entries_per_second": self.entries_per_second,
        }


def reindex(
    ledger: LedgerOrOpener, *, catch_up: bool = False, progress: Progress | None = None
) -> Reindexed:
    """``caseledger reindex``: rebuild the cross-case index from the log (or, with
    ``catch_up``, apply only what was recorded since its position and refresh the clock
    facts).  Only a user who may write the index does this (else exit 4)."""
    led = _opened(ledger)
    # lazy: the index (with the clock facts) costs ~55 ms at start-up
    from projections.index.case_index import CaseIndex

    index = CaseIndex(led)
    index.require_keeper()
    what = "updating" if catch_up else "rebuilding"

    def advance(done: int, total: int) -> None:
        if progress is not None:
            progress(what, done, total)

    started = time.perf_counter()
    if catch_up:
        applied = index.catch_up(advance)
        index.refresh_clock_facts()
    else:
        applied = index.rebuild(advance)
    if progress is not None:
        progress(what, applied, applied)
    seconds = time.perf_counter() - started
    return Reindexed(catch_up, applied, index.count_cases(), index.position(), seconds)


def case_refs(ledger: LedgerOrOpener, prefix: str = "") -> tuple[str, ...]:
    """The references of the cases the cross-case index holds that start with ``prefix``
    (in any letter case), sorted: what a shell offers after ``caseledger why`` (or a form
    its choices).  The index is read as it stands, in one query: never caught up, never
    created (a store whose index is not built yet offers none), never written; a reader
    the policy narrows is offered only their own cases."""
    led = _read(ledger)
    # lazy: the index's recorders cost ~55 ms at start-up
    from projections.index.case_index import index_recorder
    from projections.index.sealing import Sealer

    backend = index_recorder(led, Sealer(led.ledger_mapper.cipher))
    if not backend.tables_exist():
        return ()
    start = prefix.casefold()
    refs = [ref for ref in backend.indexed_refs() if ref.casefold().startswith(start)]
    if _visibility.reader_in(led) is not None:
        theirs = set(led.case_refs())
        refs = [ref for ref in refs if ref in theirs]
    return tuple(refs)


# --- clocks, delays, quality, rules ---------------------------------------------------------


#: The columns of ``clocks --csv``: ``cli.md``'s keys, then the scalar extras of ``--json``.
CLOCK_FIELDS: Final = (
    "case",
    "clock",
    "started",
    "due",
    "ended",
    "status",
    "justified",
    "regime",
    "title",
    "limit",
    "unit",
    "days_over",
    "days_left",
    "start_ref",
    "end_ref",
    "delay_refs",
    "beyond_expected",
    "flags",
    "not_justified_reason",
    "on",
)


@dataclass(frozen=True)
class ClockReport:
    """The statutory clocks of one case (``case``) or of every case, on ``on``.

    The clocks are built when first asked for: as states (:attr:`shown`, :attr:`states`)
    or, for ``--json``, as rows straight from the index's clock facts, which over every
    case costs half as much (``docs/performance.md``, "Clock facts in the index")."""

    case: str | None
    as_of: datetime | None
    on: datetime
    local_rules: LocalRules | None = None
    """The local clock rules the clocks were judged with (None: the shipped packs)."""
    include_not_started: bool = False
    wanted: tuple[str, ...] = ()
    """The statuses asked for (empty: every status)."""
    source: EveryClock | None = None
    """What the clocks are built from, read when the report was made (None: no clocks)."""

    @cached_property
    def states(self) -> tuple[ClockState, ...]:
        """Every clock, not-started ones included (for counts and "not started yet")."""
        if self.source is None:
            return ()
        with without_cycle_collection():
            return tuple(self.source.states(include_not_started=True))

    @cached_property
    def shown(self) -> tuple[ClockState, ...]:
        """The clocks asked for (``status``, ``include_not_started``)."""
        return tuple(
            s
            for s in self.states
            if (self.include_not_started or s.status != "not-started")
            and (not self.wanted or s.status in self.wanted)
        )

    @cycles_collected_after
    def to_json(self) -> list[dict[str, Any]]:
        """``clocks --json``: the clocks asked for (the JSON of :attr:`shown`)."""
        if self.source is None:
            return []
        return self.source.rows(self.include_not_started, self.wanted)

    def csv_rows(self) -> list[list[Any]]:
        """``clocks --csv``: the header (:data:`CLOCK_FIELDS`), then one row per clock
        asked for, with the values of ``--json``."""
        return [list(CLOCK_FIELDS)] + [
            [_csv_cell(row[f]) for f in CLOCK_FIELDS] for row in self.to_json()
        ]


@cycles_collected_after
def clocks(
    ledger: LedgerOrOpener,
    case: str | None = None,
    *,
    as_of: Moment = None,
    on: Moment = None,
    status: Sequence[str] | None = None,
    include_not_started: bool = False,
    rules: Path | str | None = None,
) -> ClockReport:
    """``caseledger clocks [CASE]``: started, due, ended, and met, late, running, overdue
    or withdrawn on ``on``; only those with a ``status`` in the list when given, and
    not-started ones only with ``include_not_started``.  One case is folded; every case
    is answered from the cross-case index.  ``rules`` is a local clock rules file (the
    answer's ``local_rules`` discloses it)."""
    return _clocks(
        ledger,
        case,
        as_of=as_of,
        on=on,
        status=status,
        include_not_started=include_not_started,
        rules=rules,
    )


def _clock_statuses(status: Sequence[str] | None) -> list[str]:
    """The clock statuses asked for, each checked (a usage error names the statuses)."""
    # lazy: the clocks and their calendars cost ~35 ms at start-up
    from projections.assess.clocks import STATUSES

    wanted = list(status or [])
    for name in wanted:
        if name not in STATUSES:
            raise UsageError(
                f"{name!r} is not a clock status; the statuses are {', '.join(STATUSES)}",
                field="status",
            )
    return wanted


def _clocks(
    ledger: LedgerOrOpener,
    case: str | None = None,
    *,
    as_of: Moment = None,
    on: Moment = None,
    status: Sequence[str] | None = None,
    include_not_started: bool = False,
    rules: Path | str | None = None,
    regime: str | None = None,
) -> ClockReport:
    """:func:`clocks`, and for :func:`clock_table` every case of one ``regime`` only (read
    in the index's query: the other regimes' clocks are never built)."""
    # lazy: the clocks and their calendars cost ~35 ms; the index (with the clock facts)
    # costs ~55 ms at start-up
    from projections.assess.clocks import case_clocks
    from projections.index.records import EveryClock, every_clock

    wanted = _clock_statuses(status)
    local = _local_rules(rules)
    led = _read(ledger)
    as_of_time, on_time, now = _moments(led, as_of, on)
    moment = on_time or now
    source: EveryClock | None = None
    with _judged_with(local):
        if _visibility.reader_in(led) is not None:
            if case is not None:
                _cases.case_view(led, case, as_of_time, moment)  # an unknown case refused
            # no clocks: the statutory clocks are the partners' (visibility.py)
        elif case is not None:
            view = _cases.case_view(led, case, as_of_time, moment)
            states = case_clocks(view, moment, include_not_started=True)
            source = EveryClock((), tuple(states), on_day(moment))
        else:
            source = every_clock(led, moment, as_of=as_of_time, regime=regime)
    return ClockReport(case, as_of_time, moment, local, include_not_started, tuple(wanted), source)


@dataclass(frozen=True)
class ClockTable:
    """The statutory clocks across every case, filtered as the web view's clocks page asks:
    by ``regime``, ``clock`` name, the ``year`` a clock started and ``status``."""

    rows: tuple[ClockState, ...]
    """The clocks that match (this page's, when paged)."""
    regime: str | None
    clock: str | None
    year: int | None
    status: tuple[str, ...]
    as_of: datetime | None
    on: datetime
    tally: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    """Per clock name (in the order first met), how many of every matching clock (every
    page's) have each status."""
    paging: Paging | None = None
    """With ``page`` asked, which of the matching clocks ``rows`` are (None: all)."""

    def to_json(self) -> list[dict[str, Any]]:
        """One object per clock (this page's, when paged), as ``clocks --json`` gives it."""
        return [s.as_dict() for s in self.rows]

    def counts(self) -> list[tuple[str, dict[str, int]]]:
        """Per clock name (in the order first met), how many clocks have each status:
        of every matching clock, not only this page's."""
        return [(name, dict(by_status)) for name, by_status in self.tally]


def _tally(states: Sequence[ClockState]) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    """Per clock name (in the order first met), how many ``states`` have each status
    (counted by name and status in C: every clock of every case is 28,000 states at the
    benchmark store, and the chart counts them all whichever page shows; by the rule's
    name, a string, since hashing the rule itself walks all its fields each time)."""
    names, statuses = map(attrgetter("rule.name"), states), map(attrgetter("status"), states)
    pairs = Counter(zip(names, statuses, strict=True))
    found: dict[str, dict[str, int]] = {}
    for (name, status), count in pairs.items():  # in the order first met
        by_status = found.setdefault(name, {})
        by_status[status] = count
    return tuple((name, tuple(by.items())) for name, by in found.items())


def clock_table(
    ledger: LedgerOrOpener,
    *,
    regime: str | None = None,
    clock: str | None = None,
    year: int | None = None,
    status: Sequence[str] | None = None,
    as_of: Moment = None,
    on: Moment = None,
    page: int | None = None,
    per_page: int = PER_PAGE,
) -> ClockTable:
    """Every case's started clocks (:func:`clocks` without a case, from the index) of
    ``regime``, named ``clock``, started in ``year``, with a ``status`` in the list; with
    ``page`` (from 1) only that page's ``per_page`` clocks, in the same order (the
    answer's ``paging`` says of how many, and its ``counts`` are of every page's)."""
    _check_page(page, per_page)
    # lazy: the rule packs cost ~25 ms at start-up
    from projections.assess.rules import REGIMES

    if regime is not None and regime not in REGIMES:
        raise UsageError(
            f"{regime!r} is not a regime; the regimes are {', '.join(REGIMES)}", field="regime"
        )
    names = clock_names()
    if clock is not None and clock not in names:
        raise UsageError(
            f"{clock!r} is not a statutory clock; the clocks are {', '.join(names)}",
            field="clock",
        )
    if year is not None and not 1900 <= year <= 2200:
        raise UsageError(f"must be a year such as 2026, not {year}", field="year")
    report = _clocks(ledger, as_of=as_of, on=on, status=status, regime=regime)
    rows = report.shown
    if regime is not None or clock is not None or year is not None:
        rows = tuple(
            s
            for s in rows
            if (regime is None or s.regime == regime)
            and (clock is None or s.clock == clock)
            and (year is None or (s.started is not None and s.started.year == year))
        )
    paging = _paging(page, per_page, len(rows))
    return ClockTable(
        rows if paging is None else paging.rows(rows),
        regime,
        clock,
        year,
        tuple(status or ()),
        report.as_of,
        report.on,
        _tally(rows),
        paging,
    )


def clock_names() -> tuple[str, ...]:
    """Every statutory clock's name across the shipped rule packs, sorted (a form's choices)."""
    # lazy: the rule packs cost ~25 ms at start-up
    from projections.assess.rules import all_rule_packs

    return tuple(sorted({r.name for pack in all_rule_packs().values() for r in pack.clocks}))


def criterion_words(name: str) -> str:
    """A statutory criterion's name in words (``child_died``: "The child died"), as the
    export's report words it."""
    # lazy: the report's labels come with its layout (~40 ms at start-up)
    from projections.export.report import CRITERION_LABELS

    return CRITERION_LABELS.get(name, name.replace("_", " "))


def factor_words(name: str) -> str:
    """A factor the decision-maker weighed in words (``learning``: "Useful learning")."""
    # lazy: the report's labels come with its layout (~40 ms at start-up)
    from projections.export.report import FACTOR_LABELS

    return FACTOR_LABELS.get(name, name.replace("_", " "))


@dataclass(frozen=True)
class DelayReport:
    """Per case, the time from a ``from_type`` entry to the first ``to_type`` entry on or
    after it, in calendar and working days."""

    from_type: str
    to_type: str
    over: int | None
    intervals: tuple[Interval, ...]
    as_of: datetime | None
    on: datetime

    @cycles_collected_after
    def to_json(self) -> list[dict[str, Any]]:
        """``delays --json``."""
        return [i.as_dict() for i in self.intervals]

    def csv_rows(self) -> list[list[Any]]:
        """``delays --csv``: ``cli.md``'s columns, then one row per interval."""
        # lazy: the delays and the index cost ~60 ms at start-up
        from projections.queries.delays import CSV_COLUMNS

        return [list(CSV_COLUMNS)] + [i.csv_row() for i in self.intervals]

    def summary(self) -> Summary:
        """Median, 90th percentile and maximum of the completed intervals."""
        # lazy: the delays and the index cost ~60 ms at start-up
        from projections.queries.delays import summarise

        return summarise(self.intervals)


@cycles_collected_after
def delays(
    ledger: LedgerOrOpener,
    *,
    from_type: str,
    to_type: str,
    case: str | None = None,
    over: int | None = None,
    as_of: Moment = None,
    on: Moment = None,
) -> DelayReport:
    """``caseledger delays --from TYPE --to TYPE``: every case from the cross-case index,
    or one (``case``: folded; no interval when it was not referred by then, a usage error
    when the store does not hold it); only intervals longer than ``over`` working days."""
    # lazy: the fold costs ~4 ms; the delays and the index cost ~60 ms at start-up
    from projections.fold.case_view import fold
    from projections.queries.delays import (
        check_event_type,
        filter_over,
        indexed_intervals,
        view_interval,
    )

    check_event_type(from_type, "from_type")
    check_event_type(to_type, "to_type")
    led = _read(ledger)
    as_of_time, on_time, now = _moments(led, as_of, on)
    moment = on_time or now
    if case is not None:
        records = led.case_records(case)
        if not records:
            raise UsageError(
                f"case {case} is unknown: no CaseReferred has been recorded for it in this store",
                field="case",
            )
        view = fold(records, as_of_time=as_of_time, on_time=moment)
        found = view_interval(view, from_type, to_type, moment) if view is not None else None
        intervals = [found] if found is not None else []
    elif _visibility.reader_in(led) is not None:
        intervals = []
        for ref in led.case_refs():
            view = fold(led.case_records(ref), as_of_time=as_of_time, on_time=moment)
            found = view_interval(view, from_type, to_type, moment) if view is not None else None
            intervals.extend([found] if found is not None else [])
    else:
        intervals = indexed_intervals(led, from_type, to_type, moment, as_of=as_of_time)
    chosen = filter_over(intervals, over)
    return DelayReport(from_type, to_type, over, tuple(chosen), as_of_time, moment)


@dataclass(frozen=True)
class QualityReport:
    """The nine QM2 (decision making) questions answered from one case's record."""

    case: str
    answers: tuple[Answer, ...]
    as_of: datetime | None
    on: datetime
    local_rules: LocalRules | None = None
    """The local clock rules the clocks were judged with (None: the shipped packs)."""

    def to_json(self) -> list[dict[str, Any]]:
        """``quality --json``."""
        return [a.as_dict() for a in self.answers]


def quality(
    ledger: LedgerOrOpener,
    case: str,
    *,
    as_of: Moment = None,
    on: Moment = None,
    rules: Path | str | None = None,
    clock_rules: Path | str | None = None,
) -> QualityReport:
    """``caseledger quality CASE``: each question yes, partly, no or not-applicable, with
    its evidence; ``rules`` is a quality data file instead of the shipped one (or
    ``$CASELEDGER_QUALITY_RULES``), ``clock_rules`` a local clock rules file (the
    ``--rules`` of the other commands: this command's ``--rules`` was taken first)."""
    # lazy: the quality questions cost ~45 ms at start-up
    from projections.assess.quality import (
        QualityConfigError,
        answer_questions,
        default_config,
        load_config,
    )

    try:
        config = load_config(rules) if rules is not None else default_config()
    except QualityConfigError as exc:
        raise UsageError(str(exc), field="rules") from None
    local = _local_rules(clock_rules, "clock_rules")
    led = _read(ledger)
    as_of_time, on_time, now = _moments(led, as_of, on)
    moment = on_time or now
    with _judged_with(local):
        view = _cases.case_view(led, case, as_of_time, moment)
        # lazy: the cross-case index costs ~55 ms at start-up
        from projections.queries.related import related_to

        found = (
            related_to(led, view, as_of=as_of_time, on=moment)
            if _visibility.reader_in(led) is None
            else []  # other cases' learning is the partners'
        )
        answers = (
            answer_questions(view, moment, config=config, related=found)
            if _visibility.reader_in(led) is None
            else []  # the QM2 questions judge the partners' decision making, not theirs
        )
    return QualityReport(case, tuple(answers), as_of_time, moment, local)


@dataclass(frozen=True)
class RelatedReport:
    """The earlier cases sharing practice themes with one case, with their learning."""

    case: str
    themes: tuple[str, ...]
    """The case's own themes (empty: nothing to relate by)."""
    cases: tuple[RelatedCase, ...]
    """Most shared themes first, then the most recently referred."""
    as_of: datetime | None
    on: datetime | None

    def to_json(self) -> list[dict[str, Any]]:
        """``related --json``: an array of ``{case, themes, learning}``."""
        return [c.as_dict() for c in self.cases]


def related(
    ledger: LedgerOrOpener,
    case: str,
    *,
    as_of: Moment = None,
    on: Moment = None,
) -> RelatedReport:
    """``caseledger related CASE``: the cases referred before ``case`` that share at least
    one of its practice themes (``ThemesRecorded``, ``LearningRecorded``), each with the
    shared themes and the learning it recorded, from the cross-case index (caught up
    first); only the related cases are folded."""
    # lazy: the cross-case index costs ~55 ms at start-up
    from projections.queries.related import related_to

    led = _read(ledger)
    as_of_time, on_time, _ = _moments(led, as_of, on)
    view = _cases.case_view(led, case, as_of_time, on_time)
    found = (
        related_to(led, view, as_of=as_of_time, on=on_time)
        if _visibility.reader_in(led) is None
        else []  # other cases' learning is the partners'
    )
    return RelatedReport(case, view.themes, tuple(found), as_of_time, on_time)


@dataclass(frozen=True)
class RulesReport:
    """The rule packs asked for, as in force on ``on``: each regime's statutory clocks
    with their limits, effective dates and sources."""

    packs: tuple[RulePack, ...]
    """Each regime's pack, holding only the rules in force on ``on``."""
    on: date
    local_rules: LocalRules | None = None
    """The local clock rules laid over the shipped packs (None: the shipped packs)."""

    def descriptions(self, pack: RulePack) -> list[str]:
        """One sentence per clock of ``pack``, for people."""
        # lazy: the rule packs cost ~25 ms at start-up
        from projections.assess.rules import describe

        return [describe(rule) for rule in pack.clocks]

    def to_json(self) -> list[dict[str, Any]]:
        """``rules --json``: one object per clock of each pack in force on ``on``."""
        return [
            {
                "regime": pack.regime,
                "title": pack.title,
                "calendar": pack.calendar,
                "clock": rule.name,
                "clock_title": rule.title,
                "clock_words": rule.words,
                "limit": rule.limit,
                "unit": rule.unit,
                "note": rule.note,
                "source": rule.source,
                "needs_check": rule.needs_check,
                "effective_from": _iso_day(rule.effective_from),
                "effective_to": _iso_day(rule.effective_to),
                "on": self.on.isoformat(),
                "justifiable_by": list(rule.justifiable_by),
                "description": text,
            }
            for pack in self.packs
            for rule, text in zip(pack.clocks, self.descriptions(pack), strict=True)
        ]


def _iso_day(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def rules(
    regime: str | None = None, *, on: Moment = None, rules: Path | str | None = None
) -> RulesReport:
    """``caseledger rules [REGIME]``: the rule packs (one regime's, or all) as in force on
    ``on`` (default: today, in Europe/London), with a local clock rules file (``rules``)
    laid over the shipped ones when given; no store is needed."""
    # lazy: the rule packs cost ~25 ms at start-up
    from projections.assess.rules import REGIMES, all_rule_packs

    if regime is not None and regime not in REGIMES:
        raise UsageError(
            f"{regime!r} is not a regime; the regimes are {', '.join(REGIMES)}", field="regime"
        )
    local = _local_rules(rules)
    now = datetime.now().astimezone()
    day = on_day(_moment(on, "on", parse_on, now) or now)
    with _judged_with(local):
        packs = all_rule_packs()
        chosen = [packs[regime]] if regime is not None else list(packs.values())
    in_force = tuple(dataclasses.replace(p, clocks=p.rules_on(day)) for p in chosen)
    return RulesReport(in_force, day, local)


# --- the desk: what is due ------------------------------------------------------------------


@dataclass(frozen=True)
class DueList:
    """Every open deadline across the open cases on ``on``: overdue first, then soonest."""

    deadlines: tuple[Deadline, ...]
    on: datetime
    as_of: datetime | None
    within: int | None
    case: str | None
    kind: str | None
    local_rules: LocalRules | None = None
    """The local clock rules the clocks were judged with (None: the shipped packs)."""
    paging: Paging | None = None
    """With ``page`` asked, which of every open deadline ``deadlines`` are (None: all)."""

    @property
    def day(self) -> date:
        """The Europe/London day the deadlines are measured on."""
        return on_day(self.on)

    def to_json(self) -> list[dict[str, Any]]:
        """``due --json``: one object per deadline."""
        return [d.as_dict() for d in self.deadlines]

    def csv_rows(self) -> list[list[Any]]:
        """``due --csv``: the header, then one row per deadline."""
        # lazy: the desk (with the clocks) costs ~35 ms at start-up
        from projections.queries.desk import CSV_COLUMNS

        return [list(CSV_COLUMNS)] + [d.csv_row() for d in self.deadlines]


def due(
    ledger: LedgerOrOpener,
    *,
    within: int | None = None,
    case: str | None = None,
    kind: str | None = None,
    on: Moment = None,
    as_of: Moment = None,
    rules: Path | str | None = None,
    page: int | None = None,
    per_page: int = PER_PAGE,
) -> DueList:
    """``caseledger due``: every open deadline across the open cases on ``on`` (statutory
    clocks running or overdue, and replies due from agencies), overdue first, then
    soonest; with ``within``, only those due within that many working days of ``on``
    (and every overdue one); ``case`` one case, ``kind`` ``clock`` or ``reply``;
    ``rules`` a local clock rules file (disclosed in ``local_rules``); with ``page``
    (from 1) only that page's ``per_page`` deadlines, in the same order (``paging`` says
    of how many)."""
    # lazy: the desk (with the clocks) costs ~35 ms at start-up
    from projections.queries import desk as _desk

    _check_page(page, per_page)
    if within is not None and (
        isinstance(within, bool)
        or not isinstance(within, int)
        or not 0 <= within <= _desk.MOST_WITHIN
    ):
        raise UsageError(
            f"must be a number of working days from 0 to {_desk.MOST_WITHIN}, not {within}",
            field="within",
        )
    if kind is not None and kind not in _desk.KINDS:
        raise UsageError(
            f"{kind!r} is not a kind of deadline; the kinds are {', '.join(_desk.KINDS)}",
            field="kind",
        )
    local = _local_rules(rules)
    led = _read(ledger)
    as_of_time, on_time, now = _moments(led, as_of, on)
    moment = on_time or now
    with _judged_with(local):
        if _visibility.reader_in(led) is None:
            found = _desk.open_deadlines(
                led, moment, as_of=as_of_time, case=case, current=on_time is None
            )
        else:
            # A narrowed reader: their own cases folded one by one, and of each only the
            # replies due from their agency (the statutory clocks are the partners').
            found = []
            for ref in (
                [case] if case is not None else _visibility.cases_on(led, as_of_time, moment)
            ):
                found.extend(
                    d
                    for d in _desk.open_deadlines(led, moment, as_of=as_of_time, case=ref)
                    if d.kind != "clock"
                )
            found = _desk.ordered(found)
    if kind is not None:
        found = [d for d in found if d.kind == kind]
    if within is not None:
        found = _desk.within(found, within, on_day(moment))
    paging = _paging(page, per_page, len(found))
    shown = tuple(found) if paging is None else paging.rows(found)
    return DueList(shown, moment, as_of_time, within, case, kind, local, paging)


# --- the desk where people look: the digest and the calendar feed -----------------------------


def digest(
    ledger: LedgerOrOpener,
    *,
    on: Moment = None,
    send: bool = False,
    to: Sequence[str] | str | None = None,
    config: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    retry_delays: Sequence[float] | None = None,
    rules: Path | str | None = None,
) -> Digest:
    """``caseledger digest``: the desk on ``on`` as an e-mail (a plain-text and an HTML
    part): overdue clocks, clocks due this week and next week, and the agency replies to
    chase, with the counts in the subject; no personal data.  With ``send``, it is sent
    to ``to`` (one address or several) through the mail server of ``CASELEDGER_SMTP`` or
    of the ``[smtp]`` table of ``config`` (default ``caseledger.toml``; ``environ``
    instead of the process's environment), at most once; ``retry_delays`` are the pauses
    before trying again while nothing has been handed over (see
    :mod:`projections.desk.mail`).  ``rules`` is a local clock rules file (the CLI
    discloses it)."""
    # lazy: the digest (templates, the personal check, the mail) costs ~30 ms at start-up
    from projections.desk import store_identity
    from projections.desk.digest import build_digest
    from projections.desk.mail import RETRY_DELAYS, mail_address, send_message, smtp_settings

    addresses = [to] if isinstance(to, str) else list(to or [])
    recipients = [mail_address(address, "to") for address in addresses]
    if send and not recipients:
        raise UsageError("the digest is sent to an e-mail address: give one", field="to")
    if recipients and not send:
        raise UsageError(
            "an address is given only to send the digest to it; ask for it to be sent",
            field="to",
        )
    settings = smtp_settings(config, environ) if send else None
    _local_rules(rules)  # a bad file is refused before the store is opened
    led = _opened(ledger)
    listed = due(led, on=on, rules=rules)
    built = build_digest(
        led, listed.deadlines, listed.day, store_id=store_identity(led), to=recipients
    )
    if settings is None:
        return built
    message = built.message(settings.sender, recipients, led.clock())
    delivery = send_message(
        message,
        settings,
        recipients,
        retry_delays=RETRY_DELAYS if retry_delays is None else retry_delays,
    )
    return dataclasses.replace(built, sent=delivery)


def calendar(
    ledger: LedgerOrOpener,
    *,
    out_path: Path | str,
    on: Moment = None,
    rules: Path | str | None = None,
) -> CalendarFeed:
    """``caseledger calendar --out FILE.ics``: every open deadline on ``on`` as an
    all-day iCalendar event with a stable UID and an alarm the working day before, and a
    cancelled event for each deadline of the previous file at ``out_path`` that is no
    longer open; the file is replaced atomically (see :mod:`projections.desk.feed`).
    ``rules`` is a local clock rules file (the CLI discloses it)."""
    # lazy: the feed (icalendar) costs ~50 ms at start-up
    from projections.desk import store_identity
    from projections.desk.feed import write_feed

    if not str(out_path):
        raise UsageError("give the file to write the calendar to", field="out_path")
    _local_rules(rules)  # a bad file is refused before the store is opened
    led = _opened(ledger)
    listed = due(led, on=on, rules=rules)
    return write_feed(
        led,
        listed.deadlines,
        out_path,
        store_id=store_identity(led),
        day=listed.day,
        now=led.clock(),
    )


# --- export and verify ----------------------------------------------------------------------

#: ``export``'s ``report`` choices, and whether each forces the full report.
REPORT_MODES: Final[Mapping[str, bool | None]] = {"auto": None, "full": True, "index": False}


def export(
    ledger: LedgerOrOpener,
    cases: Sequence[str] | None = None,
    *,
    out_path: Path | str,
    as_zip: bool = False,
    replace: bool = False,
    occurred_from: Moment = None,
    occurred_to: Moment = None,
    as_of: Moment = None,
    include_personal_data: bool = False,
    report: str = "auto",
    signing_key: Path | str | None = None,
    progress: Progress | None = None,
    rules: Path | str | None = None,
    case_pages_above: int = 50,
) -> ExportSummary:
    """``caseledger export``: write an audit bundle of ``cases`` (default: every case) to
    ``out_path`` (a new or empty folder, or with ``as_zip`` a ``.zip`` file).  With
    ``signing_key`` (an Ed25519 key file) a fresh checkpoint is signed and kept in the
    register (the checkpoint action); ``report`` is ``auto``, ``full`` or ``index``.
    ``rules`` is a local clock rules file: the bundle records it (``rules.json``, the
    manifest's ``rules``, a banner in ``report.html``) and ``verify --shipped-rules``
    then fails it.  A bundle of more than ``case_pages_above`` cases gives each case a
    page of its own (``case-<REF>.html``), ``report.html`` keeping the overview."""
    if report not in REPORT_MODES:
        raise UsageError(f"must be auto, full or index, not {report!r}", field="report")
    local = _local_rules(rules)
    led = _read(ledger)
    _visibility.refuse_narrowed(
        led,
        "export a bundle",
        "a bundle holds every entry of its cases, so that anyone can check their hash "
        "chains; ask the business unit for what you need",
    )
    key = recorder = None
    if signing_key is not None:
        # lazy: checkpoints (Ed25519, Merkle) cost ~12 ms at start-up
        from ledger.checkpoints.checkpoint import load_signing_key

        key = load_signing_key(str(signing_key))
        recorder = led.recorder_for_action("checkpoint")
    told: Callable[[int], None] | None = None
    if progress is not None:
        total = None if cases else led.count_events()
        report_to = progress

        def told(done: int) -> None:
            report_to("exporting", done, total)

    with _judged_with(local):
        return _export(
            led,
            out_path,
            cases,
            occurred_from,
            occurred_to,
            as_of,
            include_personal_data,
            as_zip,
            report,
            told,
            key,
            recorder,
            replace,
            case_pages_above,
        )


def _export(
    led: CaseLedger,
    out_path: Path | str,
    cases: Sequence[str] | None,
    occurred_from: Moment,
    occurred_to: Moment,
    as_of: Moment,
    include_personal_data: bool,
    as_zip: bool,
    report: str,
    told: Callable[[int], None] | None,
    key: Any,
    recorder: Any,
    replace: bool,
    case_pages_above: int = 50,
) -> ExportSummary:
    """:func:`export` with the clock rules in use chosen: the bundle written."""
    # lazy: the exporter (templates, report) costs ~100 ms at start-up
    from projections.export.bundle import export_bundle

    return export_bundle(
        led,
        out_path,
        cases=list(cases) if cases else None,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        as_of=as_of,
        include_personal_data=include_personal_data,
        as_zip=True if as_zip else None,
        full_report=REPORT_MODES[report],
        progress=told,
        signing_key=key,
        recorder=recorder,
        replace=replace,
        case_pages_above=case_pages_above,
    )


@dataclass(frozen=True)
class Verdict:
    """One verdict on a store or a bundle: whether it verifies, where it first does not,
    and what was checked.

    A store: every hash and chain link (cases, snapshots, register), then the
    cross-case index against the fold of the verified entries; with a lodged checkpoint,
    its signature and that the store still extends it (RFC 9162 consistency proofs)
    instead of the index.  A bundle: its own checks (``bundle``)."""

    ok: bool
    store: str | None = None
    """The store checked, described without a password (None for a bundle)."""
    chains: VerifyResult | None = None
    index: IndexCheck | None = None
    checkpoint: CheckpointResult | None = None
    bundle: BundleVerifyResult | None = None

    @property
    def events(self) -> int:
        """How many entries were checked."""
        if self.bundle is not None:
            return self.bundle.events
        return self.chains.events if self.chains is not None else 0

    @property
    def first_bad(self) -> str | None:
        """The first entry (or part) that does not verify."""
        if self.bundle is not None:
            return self.bundle.first_bad
        for part in (self.chains, self.checkpoint, self.index):
            if part is not None and part.first_bad:
                return part.first_bad
        return None

    @property
    def reason(self) -> str | None:
        """Why it does not verify."""
        if self.bundle is not None:
            return self.bundle.failure
        for part in (self.chains, self.checkpoint, self.index):
            if part is not None and part.reason:
                return part.reason
        return None

    def to_json(self) -> dict[str, Any]:
        """``verify --json``."""
        if self.bundle is not None:
            return self.bundle.as_dict()
        chains = self.chains
        assert chains is not None
        if self.checkpoint is not None:
            return {
                "ok": self.ok,
                "events": chains.events,
                "first_bad": self.first_bad,
                "reason": self.reason,
                "proof": "consistency",
                "signature": self.checkpoint.signature,
                "checkpoint": self.checkpoint.as_dict(),
                "store": self.store,
            }
        return {
            "ok": self.ok,
            "events": chains.events,
            "cases": chains.cases,
            "register_entries": chains.register_entries,
            "first_bad": self.first_bad,
            "reason": self.reason,
            "store": self.store,
            "index": self.index.as_dict() if self.index is not None else None,
        }

    def summary(self) -> str:
        """The verdict for people, in a sentence (a few lines for a bundle)."""
        if self.bundle is not None:
            return self.bundle.summary()
        chains = self.chains
        assert chains is not None
        if not self.ok:
            text = f"DOES NOT VERIFY at {self.first_bad}: {self.reason}"
            cp = self.checkpoint
            if cp is not None and not chains.ok and not cp.ok:
                text += f"; against the checkpoint, at {cp.first_bad}: {cp.reason}"
            return text
        if self.checkpoint is not None:
            trees = ", ".join(
                f"{name} {v.old_size}→{v.new_size} ({v.proof_nodes} proof nodes)"
                for name, v in self.checkpoint.trees.items()
            )
            return (
                f"the store ({chains.events} entries) verifies and extends the checkpoint: "
                f"{trees}; signature {self.checkpoint.signature}"
            )
        return (
            f"verified {chains.events} entries in {chains.cases} cases and "
            f"{chains.register_entries} register entries: every hash and chain link "
            f"holds; {self.index.summary() if self.index is not None else ''}"
        )


_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")


def _hex64(name: str, value: str | None) -> None:
    """A hash or key given to check a bundle against: 64 hexadecimal characters."""
    if value is not None and not _HEX64.match(value.lower()):
        raise UsageError("must be 64 hexadecimal characters", field=name)


def verify(
    ledger: LedgerOrOpener | None,
    bundle: Path | str | None = None,
    *,
    since: Path | str | None = None,
    public_key: str | None = None,
    expect_root: str | None = None,
    expect_manifest: str | None = None,
    progress: Progress | None = None,
    shipped_rules: bool = False,
) -> Verdict:
    """``caseledger verify [BUNDLE]``: the verdict on the store (``ledger``; against a
    lodged checkpoint file or witness folder with ``since``, under ``public_key`` when
    given), or on a bundle (``bundle``: no store is needed, ``ledger`` is not opened and
    may be None;
    checked against ``expect_root``, ``expect_manifest`` and the signer's
    ``public_key`` when given; with ``shipped_rules``, failing unless its clocks were
    judged with the shipped rule packs).  A verdict that fails is a result, not an error."""
    if shipped_rules and bundle is None:
        raise UsageError(
            "only a bundle's clock judgements can be checked against the shipped rules: "
            "give the bundle",
            field="shipped_rules",
        )
    if since is not None and bundle is not None:
        raise UsageError(
            "a lodged checkpoint is checked against the store, not a bundle (check a bundle "
            "against the signer's public key and its expected root instead)",
            field="since",
            code="since-with-bundle",
        )
    if bundle is not None:
        for name, value in (
            ("public_key", public_key),
            ("expect_root", expect_root),
            ("expect_manifest", expect_manifest),
        ):
            _hex64(name, value)
        # lazy: the bundle verifier costs ~12 ms at start-up
        from projections.export.verify import verify_bundle

        result = verify_bundle(
            Path(bundle),
            expect_root=expect_root,
            expect_manifest_sha256=expect_manifest,
            trusted_key=public_key,
            shipped_rules=shipped_rules,
        )
        return Verdict(result.ok, bundle=result)
    if ledger is None:
        raise UsageError("give the store to verify, or a bundle", field="ledger")
    if since is not None:
        # lazy: checkpoints (Ed25519, Merkle) cost ~12 ms at start-up
        from ledger.checkpoints.checkpoint import read_checkpoint, trusted_key_hex, verify_since

        trusted = trusted_key_hex(public_key)
        lodged_at = Path(since)
        lodged = read_checkpoint(lodged_at / "head.json" if lodged_at.is_dir() else lodged_at)
        led = _opened(ledger)
        _visibility.refuse_store_check(led)
        chains = led.verify()
        extends = verify_since(led, lodged, trusted)
        return Verdict(
            chains.ok and extends.ok,
            store=led.location.describe(),
            chains=chains,
            checkpoint=extends,
        )
    # lazy: the index check costs ~20 ms beyond the index at start-up
    from projections.queries.index_trust import check_index

    led = _opened(ledger)
    _visibility.refuse_store_check(led)

    def told(what: str, total: int | None) -> Callable[[int], None] | None:
        if progress is None:
            return None
        return lambda done: progress(what, done, total)

    chains = led.verify(told("verifying", led.count_events() if progress else None))
    # The cross-case index is checked against the fold of the verified events only.
    index = check_index(led, told("checking the index", chains.cases)) if chains.ok else None
    return Verdict(
        chains.ok and (index is None or index.ok),
        store=led.location.describe(),
        chains=chains,
        index=index,
    )


#: The commands this module serves, as typed, and the function each calls
#: (``tests/test_api_coverage.py`` checks each takes the command's options).
CLI_COMMANDS: Final[Mapping[str, Callable[..., Any]]] = {
    "status": status,
    "timeline": timeline,
    "why": why,
    "reindex": reindex,
    "clocks": clocks,
    "delays": delays,
    "due": due,
    "digest": digest,
    "calendar": calendar,
    "quality": quality,
    "related": related,
    "rules": rules,
    "export": export,
    "verify": verify,
}
