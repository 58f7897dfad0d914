"""The business manager's desk: every open deadline across open cases, soonest first.

Two kinds of deadline are open on a day D (``--on``):

* ``clock``: a statutory clock that is ``running`` or ``overdue`` on D
  (:class:`~projections.assess.clock_states.ClockState`, from the clocks over every case,
  :func:`projections.index.records.all_clocks`, or one folded case);
* ``reply``: an information request (``InformationRequested``) with a ``due`` date that no
  reply or refusal had closed by D (the open requests ``status`` shows), due from its
  agency.

Cases closed by D (a ``CaseClosed`` entry) are left out.  Each deadline says how long is
left (or how far over it is) in the unit its clock counts in: working days for
working-day clocks and for replies (the regime's calendar, as ``status`` counts a reply's
``days_overdue``), calendar days for clocks counted in calendar days or months.

The pure part (:func:`clock_deadline`, :func:`reply_deadline`, :func:`within`,
:func:`ordered`) turns clock states and open requests into :class:`Deadline` values; the
gathering (:func:`open_deadlines`) reads the cross-case index (or folds one case).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from ledger.catalogue.terms import occurred_instant
from ledger.domain.case import answered_request
from projections.assess.calendar import Calendar
from projections.assess.clocks import ClockState, case_clocks
from projections.assess.rules import REGIMES, ClockRule, rule_pack
from projections.fold.when import on_day
from projections.queries.cases import case_view

if TYPE_CHECKING:
    from ledger.application import CaseLedger
    from projections.index.case_index import CaseIndex

__all__ = [
    "CSV_COLUMNS",
    "KINDS",
    "MOST_WITHIN",
    "UNITS",
    "Deadline",
    "clock_deadline",
    "clock_words",
    "open_deadlines",
    "ordered",
    "reply_deadline",
    "within",
]

DeadlineKind = Literal["clock", "reply"]

#: The kinds of deadline, as ``--kind`` takes them.
KINDS: Final[tuple[str, ...]] = ("clock", "reply")

#: The most working days ``within`` may look ahead: about twenty years.
MOST_WITHIN: Final = 5000

#: The units ``left`` is counted in.
UNITS: Final[tuple[str, ...]] = ("working-days", "calendar-days")

#: The columns of ``due --csv`` (``cli.md``'s keys first, then the identifiers).
CSV_COLUMNS: Final[tuple[str, ...]] = (
    "case",
    "kind",
    "what",
    "from",
    "due",
    "overdue",
    "left",
    "unit",
    "justified",
    "clock",
    "request_id",
    "agency",
    "regime",
    "status",
    "ref",
)

#: The entry types that open, close or end a reply, and close a case.
REQUEST_TYPES: Final[tuple[str, ...]] = (
    "InformationRequested",
    "InformationReceived",
    "InformationDeclined",
    "CaseClosed",
)

_DEFAULT_NATION: Final = "england-and-wales"

#: The statuses of a clock that has a deadline open (:func:`clock_deadline`).
_OPEN_STATUSES: Final = frozenset({"running", "overdue"})


@dataclass(frozen=True, slots=True)
class Deadline:
    """One open deadline of one case on the day asked about."""

    case: str
    kind: DeadlineKind
    what: str
    """What is due, in words: the clock's name ("rapid review"), or the reply from the
    agency with its request id."""
    from_: str | None
    """Who must act: the agency for a reply; for a clock, None (the rule packs do not name
    who acts)."""
    due: date
    overdue: bool
    left: int
    """Units left to the due day (0 on it), negative when overdue (the units over).  A
    working-day clock is overdue from the day after its due day, as ``clocks`` says; on a
    weekend or bank holiday straight after it no working day is over yet, so ``left`` is
    0 then."""
    unit: str
    """``working-days`` or ``calendar-days``."""
    justified: bool
    """Whether an approved delay, recorded in time, justifies an overdue clock (a reply:
    never)."""
    regime: str
    clock: str | None = None
    """The clock's identifier (``rapid_review``) for a clock, else None."""
    request_id: str | None = None
    agency: str | None = None
    status: str = "running"
    """A clock's status (``running``, ``overdue``); a reply's ``open`` or ``overdue``."""
    ref: str | None = None
    """The entry that started the clock, or the request."""
    title: str | None = None
    """The clock's title from its rule pack (None for a reply)."""

    @property
    def calendar(self) -> Calendar:
        """The working-day calendar of the case's regime."""
        nation = rule_pack(self.regime).calendar if self.regime in REGIMES else _DEFAULT_NATION
        return Calendar(nation)

    def as_dict(self) -> dict[str, Any]:
        """``due --json``: ``cli.md``'s keys first, then the identifiers."""
        return {
            "case": self.case,
            "kind": self.kind,
            "what": self.what,
            "from": self.from_,
            "due": self.due.isoformat(),
            "overdue": self.overdue,
            "left": self.left,
            "unit": self.unit,
            "justified": self.justified,
            "clock": self.clock,
            "request_id": self.request_id,
            "agency": self.agency,
            "regime": self.regime,
            "status": self.status,
            "ref": self.ref,
        }

    def csv_row(self) -> list[Any]:
        """One ``due --csv`` row (:data:`CSV_COLUMNS`): booleans as true/false, None empty."""
        values = self.as_dict()
        return [_cell(values[name]) for name in CSV_COLUMNS]


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def clock_words(rule: ClockRule) -> str:
    """A clock's name in words for people ("rapid review"): the rule pack's ``label``
    (:attr:`ClockRule.words`)."""
    return rule.words


def _calendar_of(regime: str) -> Calendar:
    nation = rule_pack(regime).calendar if regime in REGIMES else _DEFAULT_NATION
    return Calendar(nation)


def _working_left(calendar: Calendar, due: date, day: date) -> int:
    """Working days from ``day`` to ``due`` (after ``day`` up to ``due``), negative for the
    working days after ``due`` up to ``day`` when ``day`` is later."""
    if day <= due:
        return calendar.working_days_between(day, due)
    return -calendar.working_days_between(due, day)


def clock_deadline(state: ClockState) -> Deadline | None:
    """The deadline of a clock that is running or overdue on its day, else None."""
    if state.status not in _OPEN_STATUSES or state.due is None:
        return None
    rule = state.rule
    day = state.on
    if rule.unit == "working_days":
        unit = "working-days"
        left = _working_left(_calendar_of(state.regime), state.due, day)
    else:
        unit = "calendar-days"
        left = (state.due - day).days
    return Deadline(
        case=state.case,
        kind="clock",
        what=clock_words(rule),
        from_=rule.owner,
        due=state.due,
        overdue=state.status == "overdue",
        left=left,
        unit=unit,
        justified=state.justified,
        regime=state.regime,
        clock=rule.name,
        status=state.status,
        ref=state.start_ref,
        title=rule.title,
    )


def reply_deadline(
    case: str, regime: str, request: Mapping[str, Any], day: date
) -> Deadline | None:
    """The deadline of an open request on ``day``; None when it has no ``due`` date.

    Overdue once a working day has passed after its due day (as ``status`` says: a reply
    due on a Friday is overdue on Monday); ``left`` in working days."""
    due_text = request.get("due")
    if not due_text:
        return None
    due = date.fromisoformat(str(due_text)[:10])
    left = _working_left(_calendar_of(regime), due, day)
    agency = str(request.get("agency") or "")
    request_id = request.get("request_id")
    overdue = left < 0
    return Deadline(
        case=case,
        kind="reply",
        what=f"reply from {agency} (request {request_id})",
        from_=agency,
        due=due,
        overdue=overdue,
        left=left,
        unit="working-days",
        justified=False,
        regime=regime,
        request_id=None if request_id is None else str(request_id),
        agency=agency,
        status="overdue" if overdue else "open",
        ref=request.get("ref"),
    )


def within(deadlines: Iterable[Deadline], days: int, day: date) -> list[Deadline]:
    """The deadlines due within ``days`` working days of ``day`` (each case's calendar:
    due on or before the day ``days`` working days after ``day``), and every overdue one."""
    limits: dict[str, date] = {}
    out = []
    for d in deadlines:
        calendar = d.calendar
        limit = limits.get(calendar.nation)
        if limit is None:
            limit = limits[calendar.nation] = calendar.add_working_days(day, days)
        if d.overdue or d.due <= limit:
            out.append(d)
    return out


def ordered(deadlines: Iterable[Deadline]) -> list[Deadline]:
    """Overdue first, then soonest; ties by case, then clocks before replies, then what."""
    return sorted(deadlines, key=lambda d: (not d.overdue, d.due, d.case, d.kind, d.what))


def _open_requests(records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The requests still open among a case's records (in record order), and whether the
    case is closed: the fold's rule (:func:`ledger.domain.case.answered_request`)."""
    open_ids: dict[str, str] = {}
    opened: dict[str, dict[str, Any]] = {}
    closed = False
    for record in sorted(records, key=lambda r: int(r["seq"])):
        kind = record.get("type")
        if kind == "CaseClosed":
            closed = True
        elif kind == "InformationRequested":
            request_id = str(record.get("request_id"))
            open_ids[request_id] = str(record.get("agency"))
            opened[request_id] = {
                "agency": record.get("agency"),
                "request_id": request_id,
                "due": record.get("due"),
                "ref": f"{record['case']}#{record['seq']}",
            }
        elif kind in ("InformationReceived", "InformationDeclined"):
            answered = answered_request(open_ids, dict(record))
            if answered is not None:
                del open_ids[answered]
                del opened[answered]
    return list(opened.values()), closed


def open_deadlines(
    ledger: CaseLedger,
    moment: datetime,
    *,
    as_of: datetime | None = None,
    case: str | None = None,
    index: CaseIndex | None = None,
    current: bool = False,
) -> list[Deadline]:
    """Every open deadline of the open cases on ``moment`` (as the record stood at
    ``as_of``), ordered (:func:`ordered`).

    ``current`` says ``moment`` is now (no ``--on``): with no ``as_of`` either, the
    replies then come from each case's index row, as ``status`` reads them, instead of
    every request entry of every case (closed cases included) being read and unsealed.

    One ``case`` is folded (a usage error when the store does not hold it, or it was not
    referred by then); every case is read from the cross-case index, caught up first.
    """
    day = on_day(moment)
    found: list[Deadline | None] = []
    if case is not None:
        view = case_view(ledger, case, as_of, moment)
        if view.stage == "closed":
            return []
        found.extend(clock_deadline(s) for s in case_clocks(view, moment))
        found.extend(
            reply_deadline(view.case, view.regime, r.as_dict(), day) for r in view.open_requests
        )
        return ordered(d for d in found if d is not None)
    # lazy: the index (with the clock facts) costs ~55 ms at start-up, which one case does
    # not need
    from projections.index.case_index import CaseIndex
    from projections.index.records import all_clocks, indexed_case_records

    chosen = index if index is not None else CaseIndex(ledger)
    chosen.catch_up()
    closed: set[str] = set()
    if current and as_of is None:
        # Now, as the record stands: each case's row already holds its stage and open
        # requests (what `status` shows), so no request entry is read or unsealed.
        # lazy: part of the index, ~55 ms with it at start-up (as above)
        from projections.index.sealing import json_column

        # Only the open cases' rows and clock facts are read (closed ones have no
        # deadline), in the index's queries.
        opener = chosen.reads.opener
        opened: set[str] = set()
        for row in chosen.reads.select_status_rows(None, None, open_only=True):
            opened.add(row.case)
            found.extend(
                reply_deadline(row.case, row.regime, r, day)
                for r in json_column(row.open_requests, opener)
            )
        # Nine clocks in ten of the open cases are met or not running: passed over here
        # (as clock_deadline would) without a call each.
        for state in all_clocks(ledger, moment, index=chosen, open_only=True):
            if state.status in _OPEN_STATUSES and state.case in opened:
                found.append(clock_deadline(state))
        return ordered(d for d in found if d is not None)
    for item in indexed_case_records(
        ledger, REQUEST_TYPES, as_of=as_of, index=chosen, catch_up=False
    ):
        happened = [
            r
            for r in item.records
            if r.get("type") != "CaseReferred" and occurred_instant(str(r["occurred_at"])) <= moment
        ]
        requests, is_closed = _open_requests(happened)
        if is_closed:
            closed.add(item.case)
            continue
        found.extend(reply_deadline(item.case, item.regime, r, day) for r in requests)
    for state in all_clocks(ledger, moment, as_of=as_of, index=chosen):
        if state.case not in closed:
            found.append(clock_deadline(state))
    return ordered(d for d in found if d is not None)
