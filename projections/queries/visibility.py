"""What the reader may see: the one place the read facades narrow a store to a reader.

The store's policy says, per role, what its users read (``sees``): ``all`` (every case
and entry) or ``own-agency``.  A reader whose enrolled roles *all* see ``own-agency`` is
a :class:`Reader`; every read facade (:mod:`projections.api`) then reads the store
through :func:`narrowed`, so the CLI, the web view and any other front end answer them
the same narrowed answer.  What such a reader sees (``docs/security.md``, "What each
role sees"):

- only the cases in which some entry names their enrolled agency (``agency``, as
  corrected); another case is "unknown or not theirs", in the same words whether it
  exists or not, so its existence is not disclosed;
- in those cases, the referral (:data:`SHARED_TYPES`: ``CaseReferred``, without its
  ``personal`` commitments), the case's closing and publication (public facts that end
  their part), and every entry naming their own agency (the requests made of it, its
  replies, refusals and views), with the corrections of those entries;
- never the other agencies' entries, the partners' discussion, recommendations, decisions
  and their reasons, delays, reviews or learning, and no statutory clocks (the clocks
  are the partners' duties, and the reader's narrowed record lacks the entries that
  stop them, so they would mislead): their deadlines are their own replies; nor the QM2
  answers (they judge the partners' decision making) or other cases' learning.

A user not enrolled, or enrolled with any role that sees ``all``, is not narrowed (on
SQLite the file's permissions are then the boundary, as for recording).

On PostgreSQL (a store not encrypted at rest) the database enforces the same rule for the
narrowed user's own role, by row-level security (``ledger/data/pgauthority.sql``): their
SQL reads no more than this module would show them, and the facades read their records
through the database's choice (``caseledger_seen_entries``), so the database is the
authority and both stores answer alike.  Personal values
are never opened by a read facade for anyone; only ``export --include-personal-data``
opens them, for a role with the ``export-personal`` action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, cast

import orjson

from ledger.catalogue.terms import parse_ref
from ledger.domain.case import case_id
from ledger.errors import InputError, UsageError

if TYPE_CHECKING:
    from ledger.application import CaseLedger

__all__ = [
    "SHARED_TYPES",
    "Reader",
    "cases_on",
    "narrowed",
    "reader_in",
    "reader_of",
    "refuse_narrowed",
    "refuse_store_check",
    "without_clocks",
]

#: The entry types an own-agency reader sees in each of their cases whatever agency
#: they name: the referral (its personal commitments removed) and the case's end.
SHARED_TYPES: Final = frozenset({"CaseReferred", "CaseClosed", "ReportPublished"})


@dataclass(frozen=True)
class Reader:
    """A reader the policy narrows to their own agency's part of the record."""

    name: str
    agency: str | None
    """Their enrolled agency (None: enrolled for none, so they see no case)."""

    def unknown(self, case: str) -> UsageError:
        """The one answer for a case they may not read and a case that does not exist."""
        return UsageError(
            f"case {case} is unknown, or not one {self.name} may read (the policy lets "
            f"their role read only the cases naming their agency, "
            f"{self.agency or 'and they are enrolled for none'})",
            field="case",
        )

    def records(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The records of one case this reader sees, in the order given (empty: the case
        is not theirs).  An entry's agency is judged as corrected (a correction that
        moves an entry to another agency takes it out of view, with its corrections)."""
        listed = [dict(r) for r in records]
        if self.agency is None:
            return []
        agency_of: dict[int, Any] = {}
        for r in sorted(listed, key=lambda r: int(r["seq"])):
            if r.get("type") == "EntryCorrected":
                changes = r.get("changes")
                if isinstance(changes, dict) and "agency" in changes:
                    agency_of[parse_ref(str(r["corrects"]))[1]] = changes["agency"]
            elif "agency" in r:
                agency_of.setdefault(int(r["seq"]), r["agency"])
        own = {seq for seq, agency in agency_of.items() if agency == self.agency}
        if not own:
            return []
        out: list[dict[str, Any]] = []
        for r in listed:
            kind = r.get("type")
            if kind == "EntryCorrected":
                target = parse_ref(str(r["corrects"]))[1]
                if target in own or _shared_target(listed, target):
                    out.append(_without_personal(r))
            elif kind in SHARED_TYPES or int(r["seq"]) in own:
                out.append(_without_personal(r))
        return out


def _shared_target(records: list[dict[str, Any]], seq: int) -> bool:
    """Whether entry ``seq`` of the case is one of :data:`SHARED_TYPES`."""
    return any(int(r["seq"]) == seq and r.get("type") in SHARED_TYPES for r in records)


def _without_personal(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its personal-data commitments (nor a correction's)."""
    out = {k: v for k, v in record.items() if k != "personal"}
    changes = out.get("changes")
    if isinstance(changes, dict) and "personal" in changes:
        out["changes"] = {k: v for k, v in changes.items() if k != "personal"}
    return out


def reader_of(ledger: CaseLedger) -> Reader | None:
    """The reader ``ledger`` acts for, if the store's policy narrows them (None: they see
    every case): its user (the OS user, the database user, or inside
    :func:`ledger.api.acting_as` the user a server acts for), enrolled only with roles
    that see ``own-agency``."""
    state = ledger.register_state()
    policy = state.policy
    if not any(r.sees != "all" for r in policy.roles.values()):
        return None  # nobody is narrowed: asking who reads would cost a query for nothing
    who = ledger.identity()
    enrolment = state.users.get(who)
    if enrolment is None:
        return None
    roles = [policy.roles[r] for r in enrolment.roles if r in policy.roles]
    if not roles or any(r.sees == "all" for r in roles):
        return None
    return Reader(who, enrolment.agency)


class _Narrowed:
    """A ledger read through a :class:`Reader`: its cases and their records narrowed,
    everything else the ledger's own (the clock, the register, identity).

    On PostgreSQL (a store not encrypted at rest) the database chooses the records
    (:func:`_database_records`): row security hides the rest from the reader's role, and
    the referral's body comes with its personal commitments taken out.  The reader's own
    rule is applied to what it returns as well, so both stores answer alike."""

    def __init__(self, ledger: CaseLedger, reader: Reader) -> None:
        self._ledger = ledger
        self.reader = reader
        self._visible: list[str] | None = None
        self._by_case: dict[str, list[dict[str, Any]]] | None = None
        # an encrypted store's entries are ciphertext to the database: it keeps no scope
        self._in_database = ledger.location.kind == "postgres" and not ledger.encrypted

    def _stored(self, ref: str) -> list[dict[str, Any]]:
        """The case's stored records as this reader's store gives them."""
        if not self._in_database:
            return self._ledger.case_records(ref)
        if self._by_case is not None:
            return self._by_case.get(ref, [])
        return _database_records(self._ledger, ref)

    def case_records(self, ref: str) -> list[dict[str, Any]]:
        """The case's records this reader sees; a case not theirs is unknown."""
        records = self.reader.records(self._stored(ref))
        if not records:
            raise self.reader.unknown(ref)
        return records

    def case_refs(self) -> list[str]:
        """The cases naming the reader's agency, in the order they were opened (each case
        is read once, then kept for this facade call; on PostgreSQL every record the
        database lets them see is read in one query)."""
        if self._visible is None:
            if self._in_database:
                self._by_case = {}
                for record in _database_records(self._ledger, None):
                    self._by_case.setdefault(str(record["case"]), []).append(record)
                refs = list(self._by_case)
            else:
                refs = self._ledger.case_refs()
            self._visible = [ref for ref in refs if self.reader.records(self._stored(ref))]
        return list(self._visible)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def _database_records(ledger: CaseLedger, ref: str | None) -> list[dict[str, Any]]:
    """The records of one case (or, for None, of all) that PostgreSQL lets the acting
    narrowed user read, in stored order, each with its ``position``: through
    ``caseledger_seen_entries`` (``ledger/data/pgauthority.sql``), which applies the same
    rule as :meth:`Reader.records` and takes the personal commitments out of the bodies
    that hold them (those come back re-serialised, and are put in canonical key order
    again, as every other record is stored)."""
    # lazy: PostgreSQL stores only (the driver costs ~70 ms at start-up)
    from ledger.integrity.canonical import canonical_json
    from ledger.store.pgroles import seen_entries

    decode = ledger.ledger_mapper.decode_state
    datastore = ledger.factory.datastore  # type: ignore[attr-defined]
    out: list[dict[str, Any]] = []
    for position, state, rebuilt in seen_entries(datastore, None if ref is None else case_id(ref)):
        record = decode(state)
        if rebuilt:
            record = orjson.loads(canonical_json(record))
        record["position"] = position
        out.append(record)
    return out


def narrowed(ledger: CaseLedger) -> CaseLedger:
    """``ledger`` as its reader may see it: itself when the policy does not narrow them,
    else a view whose ``case_refs`` and ``case_records`` hold only what they may read
    (so every query over it answers for them alone)."""
    if isinstance(ledger, _Narrowed):
        return cast("CaseLedger", ledger)
    reader = reader_of(ledger)
    if reader is None:
        return ledger
    return cast("CaseLedger", _Narrowed(ledger, reader))


def reader_in(ledger: CaseLedger) -> Reader | None:
    """The reader a ledger from :func:`narrowed` is narrowed to (None: not narrowed)."""
    return ledger.reader if isinstance(ledger, _Narrowed) else None


def cases_on(ledger: CaseLedger, as_of: datetime | None, on: datetime | None) -> list[str]:
    """The narrowed reader's cases that were in the record as of ``as_of`` and referred
    by ``on`` (a case not yet referred then has no answer, as for every case)."""
    # lazy: the fold costs ~4 ms at start-up
    from projections.fold.case_view import fold

    return [
        ref
        for ref in ledger.case_refs()
        if fold(ledger.case_records(ref), as_of_time=as_of, on_time=on) is not None
    ]


def without_clocks(row: dict[str, Any]) -> dict[str, Any]:
    """A ``status`` row for a narrowed reader: no statutory clock (overdue, next
    deadline), since those are the partners' and their narrowed record cannot stop them."""
    return {**row, "overdue": [], "next_deadline": None}


def refuse_narrowed(ledger: CaseLedger, what: str, why: str) -> None:
    """Refuse ``what`` to a narrowed reader, saying ``why`` it cannot be narrowed."""
    reader = reader_in(ledger)
    if reader is not None:
        raise InputError(
            f"{reader.name} may not {what}: the policy lets their role read only their own "
            f"agency's entries, and {why}",
            field="role",
        )


def refuse_store_check(ledger: CaseLedger) -> None:
    """Refuse ``verify`` of a PostgreSQL store to a narrowed reader: the database lets
    them read only their part of the record (row security), so every chain would look
    broken to them; a bundle, or the business unit, can give them a verdict."""
    if ledger.location.kind == "postgres" and not ledger.encrypted:
        refuse_narrowed(
            narrowed(ledger),
            "verify the store",
            "verifying reads every entry of every case, and the database lets them read "
            "only their own part; verify a bundle the business unit exports instead",
        )
