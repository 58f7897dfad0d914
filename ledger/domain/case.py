"""The case aggregate: the write-side state one case needs to check its next entry.

Each stored entry is one aggregate event whose ``entry`` is the complete hashed record
(wire fields, ledger-assigned fields and ``hash``).  Following the library's style, the
events' ``apply`` methods only change state; every check is made before an event is
triggered (see :mod:`ledger.domain.invariants`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, Snapshot

#: Namespace of case aggregate ids: the id is ``uuid5(CASE_NAMESPACE, case_ref)``.
CASE_NAMESPACE = uuid.UUID("5a3e6c4e-2f0b-4c1a-9d57-ca5e1ed9e000")


def case_id(case_ref: str) -> uuid.UUID:
    """The aggregate id of a case, derived from its reference so no lookup can drift."""
    return uuid.uuid5(CASE_NAMESPACE, case_ref)


class Case(Aggregate):
    """One case's write-side state: chain head, regime, dates, requests and closure."""

    class Referred(Aggregate.Created):
        """The ``CaseReferred`` entry that opens the case."""

        entry: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.open(self.entry)

    class Recorded(Aggregate.Event):
        """Any later entry of the case."""

        entry: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.apply_entry(self.entry)

    # --- commands ------------------------------------------------------------------

    @classmethod
    def refer(cls, entry: dict[str, Any], recorded_at: datetime) -> Case:
        """Open a case with its checked and hashed ``CaseReferred`` entry."""
        return cls._create(
            cls.Referred, id=case_id(entry["case"]), entry=entry, timestamp=recorded_at
        )

    def record(self, entry: dict[str, Any], recorded_at: datetime) -> None:
        """Append a checked and hashed entry to the case."""
        self.trigger_event(self.Recorded, entry=entry, timestamp=recorded_at)

    # --- state changes (no checks here) --------------------------------------------

    def open(self, entry: dict[str, Any]) -> None:
        """Initial state from the referral."""
        self.ref: str = entry["case"]
        self.regime: str = entry["regime"]
        self.incident_date: str = entry["incident_date"]
        self.closed: bool = False
        self.types: list[str] = []
        self.request_ids: list[str] = []
        self.open_requests: dict[str, str] = {}
        self.apply_entry(entry)

    def apply_entry(self, entry: dict[str, Any]) -> None:
        """Move the chain head and keep what later checks need."""
        self.head_hash: str = entry["hash"]
        self.last_recorded_at: str = entry["recorded_at"]
        kind = entry["type"]
        self.types.append(kind)
        if kind == "InformationRequested":
            self.request_ids.append(entry["request_id"])
            self.open_requests[entry["request_id"]] = entry["agency"]
        elif kind in ("InformationReceived", "InformationDeclined"):
            closed = answered_request(self.open_requests, entry)
            if closed is not None:
                del self.open_requests[closed]
        elif kind == "CaseClosed":
            self.closed = True
        elif kind == "EntryCorrected":
            if corrects_referral(entry):
                changes = entry["changes"]
                self.regime = changes.get("regime", self.regime)
                self.incident_date = changes.get("incident_date", self.incident_date)

    def type_of(self, seq: int) -> str | None:
        """The type of this case's entry ``seq``, or None if there is none yet."""
        return self.types[seq - 1] if 1 <= seq <= len(self.types) else None


def agency_key(name: str) -> str:
    """An agency's name as the ledger compares it: case-folded, runs of white space made
    one space, ends trimmed ("Northshire  police " is "Northshire Police").

    Names are typed by people, in spreadsheets and minutes; the same agency must not
    keep a request open because a reply spelled its name in another case or spacing.
    """
    return " ".join(name.split()).casefold()


def answered_request(open_requests: Mapping[str, str], entry: Mapping[str, Any]) -> str | None:
    """Which open request a reply or refusal closes.

    A reply naming a ``request_id`` closes that request; one that names none closes the
    earliest open request to the same agency, the names compared by :func:`agency_key`.
    The aggregate, the read-side folds and the cross-case index all use this one rule.
    """
    given = entry.get("request_id")
    if given is not None:
        return given if given in open_requests else None
    wanted = agency_key(str(entry.get("agency") or ""))
    for request_id, agency in open_requests.items():
        if agency_key(str(agency)) == wanted:
            return request_id
    return None


def corrects_referral(entry: dict[str, Any]) -> bool:
    """Whether a correction corrects its case's referral (entry 1): the one rule, with the
    database's (``pgauthority.sql``), for when a correction changes a case's regime."""
    return str(entry.get("corrects", "")).rsplit("#", 1)[-1] == "1"


class CaseSnapshot(Snapshot):
    """A snapshot of the case state, stored through the ledger's mapper."""


Case.Snapshot = CaseSnapshot  # the library looks here first
