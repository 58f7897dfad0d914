"""Verifying the store: every case's chain and the register's re-hashed in order, and
on PostgreSQL every entry compared with the database's provenance and its enrolments and
policy with the register's; every snapshot compared with the chain it summarises."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.application.reading import CASE_TOPIC, SNAPSHOT_FIELDS, SNAPSHOT_KEYS, LedgerReads
from ledger.application.writes import format_recorded_at
from ledger.domain.case import case_id, corrects_referral
from ledger.domain.register import fold_register
from ledger.integrity.canonical import GENESIS_HASH, event_hash


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-hashing the store's chains (cases, then the register)."""

    ok: bool
    events: int
    cases: int
    first_bad: str | None
    reason: str | None
    register_entries: int = 0


def _wrong_target(
    record: dict[str, Any], ref: str, seq: int, corrections: set[tuple[str, int]]
) -> str | None:
    """Why a stored correction's target is not one the ledger could have accepted (an
    earlier entry of its own case that is not itself a correction), or None.  The read
    side applies a correction by its target's number alone, so a correction naming
    another case, or a later entry, that a client with its own write access stored is
    named here."""
    corrects = record.get("corrects")
    target = None
    if isinstance(corrects, str):
        case_ref, _, number = corrects.rpartition("#")
        if case_ref == ref and number.isascii() and number.isdigit() and number[0] != "0":
            target = int(number)
    if target is None or target >= seq or (ref, target) in corrections:
        return (
            f"this correction names {corrects!r}: a correction must name an earlier entry "
            f"of case {ref} that is not itself a correction"
        )
    return None


class Verification(LedgerReads):
    """``caseledger verify``: the store's hashes, chains, provenance and snapshots."""

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyResult:
        """Re-hash every case's chain in global order; stop at the first bad entry."""
        heads: dict[str, tuple[int, str]] = {}
        count = 0
        decode = self.ledger_mapper.decode_state
        states: Iterator[tuple[int, bytes]]
        provenance: Iterator[dict[str, Any]] | None
        if self.location.kind == "postgres":
            # the entries and the database's rows of them up to one settled position:
            # read each to its own, an entry committed between would look deleted
            upto = self.authority_recorder.settled()
            states = self.authority_recorder.iter_states(0, upto=upto)
            provenance = self.authority_recorder.iter_provenance(upto=upto)
        else:
            states, provenance = self.ledger_recorder.iter_states(0), None
        regimes: dict[str, Any] = {}  # each case's regime as its entries give it
        corrections: set[tuple[str, int]] = set()  # the corrections read so far
        for position, state in states:
            count += 1
            if progress is not None and count % 10_000 == 0:
                progress(count)
            try:
                record = decode(state)
                ref = record["case"]
                seq = record["seq"]
            except Exception as exc:
                return VerifyResult(
                    False,
                    count,
                    len(heads),
                    f"position {position}",
                    f"the stored entry cannot be read: {exc}",
                )
            label = f"{ref}#{seq}"
            last_seq, last_hash = heads.get(ref, (0, GENESIS_HASH))
            if seq != last_seq + 1:
                return VerifyResult(
                    False,
                    count,
                    len(heads),
                    label,
                    f"expected {ref}#{last_seq + 1} next in the chain",
                )
            if record.get("prev_hash") != last_hash:
                return VerifyResult(
                    False,
                    count,
                    len(heads),
                    label,
                    "prev_hash does not match the previous entry's hash",
                )
            if record.get("hash") != event_hash(record):
                return VerifyResult(
                    False, count, len(heads), label, "the stored entry does not match its hash"
                )
            if record.get("type") == "EntryCorrected":
                wrong = _wrong_target(record, ref, seq, corrections)
                if wrong:
                    return VerifyResult(False, count, len(heads), label, wrong)
                corrections.add((ref, seq))
            if provenance is not None:
                row = next(provenance, None)
                if row is not None and row["notification_id"] < position:
                    return VerifyResult(
                        False,
                        count,
                        len(heads),
                        f"{row['case_ref']}#{row['seq']}",
                        "the database appended this entry and the store no longer holds it: "
                        "it was deleted",
                    )
                if record["type"] == "CaseReferred":
                    regimes[ref] = record.get("regime")
                elif record["type"] == "EntryCorrected" and corrects_referral(record):
                    regimes[ref] = (record.get("changes") or {}).get("regime", regimes.get(ref))
                differs = self._provenance_differs(record, position, row, regimes.get(ref))
                if differs:
                    return VerifyResult(False, count, len(heads), label, differs)
            heads[ref] = (seq, record["hash"])
        previous = GENESIS_HASH
        register = self.register_entries()
        for seq, entry in enumerate(register, start=1):
            label = f"register#{entry.get('seq')}"
            if entry.get("seq") != seq or entry.get("prev_hash") != previous:
                return VerifyResult(
                    False, count, len(heads), label, "the register's chain is broken here"
                )
            if entry.get("hash") != event_hash(entry):
                return VerifyResult(
                    False, count, len(heads), label, "the register entry does not match its hash"
                )
            previous = entry["hash"]
        entries = len(register) if previous != GENESIS_HASH else 0
        lost = next(provenance, None) if provenance is not None else None
        if lost is not None:
            return VerifyResult(
                False,
                count,
                len(heads),
                f"{lost['case_ref']}#{lost['seq']}",
                "the database appended this entry and the store no longer holds it: it was deleted",
                entries,
            )
        problem = self._authority_differs(register) or self._snapshot_differs(list(heads))
        if problem is not None:
            return VerifyResult(False, count, len(heads), problem[0], problem[1], entries)
        return VerifyResult(True, count, len(heads), None, None, entries)

    def _provenance_differs(
        self, record: dict[str, Any], position: int, row: dict[str, Any] | None, regime: Any
    ) -> str | None:
        """Why an entry disagrees with the database's record of who appended it (an entry
        the database's functions did not append has no provenance row), or None."""
        if row is None or row["notification_id"] != position:
            return (
                "the database has no provenance for this entry: it was not appended through "
                "the ledger's functions"
            )
        expected = {
            "case": self.provenance_case(record["case"]),
            "seq": record["seq"],
            "type": record["type"],
            "actor": record["actor"],
            "role": record["role"],
            "prev_hash": record["prev_hash"],
            "hash": record["hash"],
        }
        kept = {**{k: row[k] for k in expected if k != "case"}, "case": row["case_ref"]}
        for name, value in expected.items():
            if kept[name] != value:
                return (
                    f"the entry's {name} ({value}) differs from the database's provenance "
                    f"({kept[name]}): it was not recorded as it claims"
                )
        try:
            claimed = datetime.fromisoformat(str(record["recorded_at"]).replace("Z", "+00:00"))
        except ValueError:
            return "the entry's recorded_at is not a time the ledger writes"
        if row["recorded_at"] != claimed or format_recorded_at(claimed) != record["recorded_at"]:
            return "the entry's recorded_at differs from the database's provenance"
        if not self.encrypted and row.get("agency") != record.get("agency"):
            return "the entry's agency differs from the one the database checked"
        approver = row.get("approved_by")
        if approver is not None and approver != record.get(
            "approved_by", _changed_approver(record)
        ):
            return "the entry's approver differs from the one the database checked"
        if row.get("regime") != regime:
            return "the case's regime after this entry differs from the one the database kept"
        return None

    def _authority_differs(self, register: list[dict[str, Any]]) -> tuple[str, str] | None:
        """On PostgreSQL, whether the database's own enrolments and policy (by which it
        checks every write) agree with the verified register."""
        if self.location.kind != "postgres":
            return None
        kept = self.authority_recorder.select_register_provenance()
        for entry, row in zip(register, kept, strict=False):
            claimed = {
                k: entry.get(k) for k in ("seq", "type", "actor", "role", "prev_hash", "hash")
            }
            if row != claimed:
                return (
                    f"register#{entry.get('seq')}",
                    "the register entry differs from what the database's register function "
                    "kept: it was not appended through the ledger's functions",
                )
        if len(kept) != len(register):
            return "register", "the database's register rows and the register's entries differ"
        users, policy = self.authority_recorder.select_authority()
        state = fold_register(register)
        folded_users = {
            u: {"roles": sorted(e.roles), "agency": e.agency} for u, e in state.users.items()
        }
        if users != folded_users:
            return "register", "the database's enrolments differ from the register's"
        if state.recorded_policy is not None:
            folded = {
                role: {k: v for k, v in spec.items() if k != "description"}
                for role, spec in state.recorded_policy.document()["roles"].items()  # type: ignore[attr-defined]
            }
            if policy != folded:
                return "register", "the database's policy differs from the register's"
        return None

    def _snapshot_differs(self, refs: list[str]) -> tuple[str, str] | None:
        """Whether any case's snapshot differs from the state its chain gives at that
        entry (a snapshot is used only after a cheap check; this is the full one)."""
        if self.snapshots is None:
            return None
        for ref in refs:
            aggregate_id = case_id(ref)
            snapshots: dict[int, Any] = {
                s.originator_version: s for s in self.snapshots.get(aggregate_id)
            }
            if not snapshots:
                continue
            case: Any = None
            for event in self.events.get(aggregate_id, lte=max(snapshots)):
                case = event.mutate(case)  # type: ignore[attr-defined]
                snapshot = snapshots.get(case.version)
                if snapshot is None:
                    continue
                if snapshot.topic != CASE_TOPIC or set(snapshot.state) != SNAPSHOT_KEYS:
                    return (
                        f"{ref}#{case.version}",
                        "the case's snapshot at this entry is not a snapshot of a case",
                    )
                for name in SNAPSHOT_FIELDS:
                    if snapshot.state.get(name) != getattr(case, name, None):
                        return (
                            f"{ref}#{case.version}",
                            f"the case's snapshot at this entry differs from its chain ({name})",
                        )
            missing = set(snapshots) - set(range(1, (case.version if case else 0) + 1))
            if missing:
                return f"{ref}#{min(missing)}", "a snapshot claims an entry the chain lacks"
        return None


def _changed_approver(record: dict[str, Any]) -> Any:
    """The approver a correction writes (``changes.approved_by``), if any."""
    changes = record.get("changes")
    return changes.get("approved_by") if isinstance(changes, dict) else None
