"""The write side's Python API: everything ``caseledger`` records, through one function each.

Open a store with :func:`open_store`, then pass the ledger to the other functions::

    from ledger import api

    led = api.open_store("cases.db", create=True)
    api.record_lines(led, ['{"type": "CaseReferred", "case": "SCR-2026-001", ...}'])
    api.record_entry(led, "DecisionMade", "SCR-2026-001", outcome="review", ...)
    api.add_user(led, "jsmith", role=["chair"])

Each function's keyword parameters are named as the options of the command that calls
it (``caseledger users add NAME --role R --agency A`` is ``add_user(led, name, role=...,
agency=...)``); :data:`CLI_COMMANDS` says which function serves which command.  Results
are frozen dataclasses whose ``to_json()`` is what the command's ``--json`` prints.
Refusals are :mod:`ledger.errors` types: :class:`~ledger.errors.InputError` (bad input,
naming its field), :class:`~ledger.errors.ConflictError`,
:class:`~ledger.errors.StoreUnavailable`.

The functions that read their input before they write (:func:`record_file`,
:func:`record_lines`, :func:`record_entry`, :func:`set_policy`, :func:`import_tracker`)
take either the opened ledger or a function that opens it (:data:`LedgerOrOpener`),
called only once the input is read (a file, a mapping, a tracker) and, for one entry,
validated: so a missing file or a refused entry creates no store.  The read side's
questions (status, why, clocks, export, verify) are in ``projections.api``;
``docs/api.md`` shows every function at work.
"""

from __future__ import annotations

import base64
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from ledger.application import CaseLedger, Progress, Receipt, open_store
from ledger.catalogue.models import input_schema
from ledger.catalogue.registry import KINDS
from ledger.domain.policy import Policy, read_policy_text
from ledger.errors import InputError
from ledger.importing.entry_form import ENTRY_COMMANDS, field_order, on_fields, validated_entry
from ledger.store.acting import acting_as as _acting_as

if TYPE_CHECKING:
    from ledger.importing.tracker import ImportReport

LedgerOrOpener = CaseLedger | Callable[[], CaseLedger]
"""The opened ledger, or a function that opens it: called once the input is read (and an
entry validated), so that input refused before then creates no store."""


def _opened(ledger: LedgerOrOpener) -> CaseLedger:
    return ledger if isinstance(ledger, CaseLedger) else ledger()


# --- recording -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordSummary:
    """A recording in a few lines, for people (``record`` of a large file): how many
    entries each case and each entry type received, the first and last entry, and the
    command that recorded them all (every entry carries its ``command_id``)."""

    entries: int
    by_case: tuple[tuple[str, int], ...]
    """Each case and its number of new entries, in the order the cases first appear."""
    by_type: tuple[tuple[str, int], ...]
    """Each entry type and its number of new entries, in the catalogue's order."""
    first_ref: str
    last_ref: str
    command_id: str

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON (not what ``record --json`` prints: that is the receipts)."""
        return {
            "entries": self.entries,
            "by_case": dict(self.by_case),
            "by_type": dict(self.by_type),
            "first_ref": self.first_ref,
            "last_ref": self.last_ref,
            "command_id": self.command_id,
        }


@dataclass(frozen=True)
class Recorded:
    """The entries one recording stored, in order: each one's ref, hash and time (and
    type and command), and :meth:`summary` of them all."""

    receipts: tuple[Receipt, ...]

    def to_json(self) -> list[dict[str, str]]:
        """What ``record --json`` (and every entry command's ``--json``) prints."""
        return [{"ref": r.ref, "hash": r.hash, "recorded_at": r.recorded_at} for r in self.receipts]

    def summary(self) -> RecordSummary:
        """The entries counted per case and per entry type, the first and last ref, and
        the command id: what a person reads after recording many entries at once."""
        by_case: Counter[str] = Counter(r.ref.rpartition("#")[0] for r in self.receipts)
        by_type: Counter[str] = Counter(r.type for r in self.receipts)
        order = {kind.name: n for n, kind in enumerate(KINDS)}
        receipts = self.receipts
        return RecordSummary(
            entries=len(receipts),
            by_case=tuple(by_case.items()),
            by_type=tuple(sorted(by_type.items(), key=lambda item: order.get(item[0], -1))),
            first_ref=receipts[0].ref if receipts else "",
            last_ref=receipts[-1].ref if receipts else "",
            command_id=receipts[0].command_id if receipts else "",
        )


def record_lines(
    ledger: LedgerOrOpener,
    lines: Iterable[str | bytes],
    *,
    role: str | None = None,
    progress: Progress | None = None,
) -> Recorded:
    """Append entries given as JSON lines in the catalogue's wire form, all or nothing,
    under ``role`` (one of the user's enrolled roles; default their usual one).  Every
    problem of every line is refused at once (:class:`~ledger.errors.InputErrors`).
    ``progress(what, done, total)`` follows the lines being validated, checked against
    their cases and saved (``"validating"``, ``"checking"``, ``"saving"``), once per
    thousand lines, never per line."""
    led = _opened(ledger)
    return Recorded(tuple(led.record_lines(lines, led.recorder_for(role), progress)))


def _read_input(file: str | os.PathLike[str] | IO[bytes]) -> bytes:
    """The bytes of ``record``'s input: a file, ``-`` for standard input, or a stream."""
    if not isinstance(file, (str, os.PathLike)):
        return file.read()
    if file == "-":
        return sys.stdin.buffer.read()
    path = Path(file)
    try:
        if not path.is_file():
            raise InputError(f"{file} is not a file", field="file")
        return path.read_bytes()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, no permission
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"{file} cannot be read: {reason}", field="file") from None


def record_file(
    ledger: LedgerOrOpener,
    file: str | os.PathLike[str] | IO[bytes],
    *,
    role: str | None = None,
    progress: Progress | None = None,
) -> Recorded:
    """Append the entries of a JSON Lines file (``-``: standard input; or an open binary
    stream), all or nothing, as :func:`record_lines` does (``progress`` too); the file is
    read before the store is opened."""
    data = _read_input(file)
    return record_lines(ledger, data.splitlines(), role=role, progress=progress)


def record_entry(
    ledger: LedgerOrOpener,
    entry_type: str,
    case: str,
    *,
    role: str | None = None,
    **fields: Any,
) -> Recorded:
    """Record one entry of ``entry_type`` (``"DecisionMade"``) in ``case`` from its
    fields, as the entry commands (``caseledger decide``) do.  A field is given in its
    Python form or as typed at the command line (``"yes"``, ``["harm=met:reason"]``,
    ``["@criteria.json"]``, ``["title|ref"]``: :mod:`ledger.importing.entry_form`).  Every
    problem is refused at once, each named by its field, before the store is opened."""
    parsed = validated_entry(entry_type, case, fields)
    led = _opened(ledger)
    try:  # who records is checked with the entry: a bad role is a problem of the entry
        receipts = led.record(parsed, led.recorder_for(role))
    except InputError as exc:
        raise on_fields(exc, field_order(entry_type)) from None
    return Recorded(tuple(receipts))


def entry_schema() -> dict[str, Any]:
    """The JSON Schema of one input line: the event catalogue (``caseledger schema``)."""
    return input_schema()


@contextmanager
def acting_as(ledger: CaseLedger, user: str) -> Iterator[None]:
    """Within the block, ``ledger`` acts as ``user`` (an enrolled user's name) in this
    thread or task only: a web server serving that user.  Every function given this
    ledger then records and reads as them, with their roles and the policy's rules; on
    PostgreSQL every statement also runs under their own database role (``SET ROLE``,
    reset before the connection returns to the pool), so the database's checks apply to
    them exactly as to their own login.  The server's login must be a member of each
    user's role (``docs/hosting.md``).  On SQLite it is the name recorded as the actor:
    the file's permissions are the boundary (``docs/security.md``)."""
    del ledger  # the identity is the thread's or task's, for every ledger it uses
    with _acting_as(user):
        yield


# --- administration: the register ----------------------------------------------------------


@dataclass(frozen=True)
class RegisterEntry:
    """One entry of the administration register, as recorded (``seq``, ``type``,
    ``actor``, ... and what it is about)."""

    entry: Mapping[str, Any]

    @property
    def seq(self) -> int:
        return int(self.entry["seq"])

    @property
    def actor(self) -> str:
        return str(self.entry["actor"])

    def to_json(self) -> dict[str, Any]:
        """What the administration commands' ``--json`` prints: the register entry."""
        return dict(self.entry)


@dataclass(frozen=True)
class ErasureEntry(RegisterEntry):
    """A ``PersonalDataErased`` entry, and what of the erased rows the store's files may
    still hold (``remaining``: None when nothing; else where, why, and what to run)."""

    remaining: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``erase-personal --json``: the register entry and ``remaining``."""
        return {**self.entry, "remaining": self.remaining}


def add_user(
    ledger: CaseLedger, name: str, *, role: Sequence[str], agency: str | None = None
) -> RegisterEntry:
    """Enrol ``name`` (a login name on SQLite, a database user on PostgreSQL) with one or
    more roles, replacing their roles if already enrolled (``caseledger users add``)."""
    return RegisterEntry(
        ledger.enrol(name, list(role), ledger.recorder_for_action("users"), agency=agency)
    )


def remove_user(ledger: CaseLedger, name: str, *, reason: str) -> RegisterEntry:
    """Remove ``name`` from the register; their past entries stay as recorded."""
    return RegisterEntry(ledger.remove_user(name, ledger.recorder_for_action("users"), reason))


@dataclass(frozen=True)
class EnrolledUser:
    """One enrolled user: their roles, agency, and the register entry that enrolled them."""

    user: str
    roles: tuple[str, ...]
    agency: str | None
    ref: str

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "roles": list(self.roles),
            "agency": self.agency,
            "ref": self.ref,
        }


@dataclass(frozen=True)
class Users:
    """Who is enrolled, by name."""

    users: tuple[EnrolledUser, ...]

    def to_json(self) -> list[dict[str, Any]]:
        """What ``users list --json`` prints."""
        return [u.to_json() for u in self.users]


def list_users(ledger: CaseLedger) -> Users:
    """Who is enrolled, with which roles (``caseledger users list``)."""
    state = ledger.register_state()
    return Users(
        tuple(
            EnrolledUser(e.user, tuple(sorted(e.roles)), e.agency, e.ref)
            for e in sorted(state.users.values(), key=lambda e: e.user)
        )
    )


@dataclass(frozen=True)
class PolicyInForce:
    """The policy in force and the register entry that recorded it (None: the shipped
    default)."""

    ref: str | None
    policy: Policy

    def to_json(self) -> dict[str, Any]:
        """What ``policy show --json`` prints: ``ref`` and the policy document."""
        return {"ref": self.ref, **self.policy.document()}


def show_policy(ledger: CaseLedger) -> PolicyInForce:
    """The policy in force: who may record what (``caseledger policy show``)."""
    state = ledger.register_state()
    return PolicyInForce(state.policy_ref, state.policy)


def set_policy(
    ledger: LedgerOrOpener, file: str | os.PathLike[str], *, reason: str
) -> RegisterEntry:
    """Record the policy in the TOML ``file`` (the form of the shipped one) as the
    store's, from now on (needs the admin role); the file is read and checked before the
    store is opened."""
    text = read_policy_text(str(file))
    led = _opened(ledger)
    return RegisterEntry(led.set_policy(text, reason, led.recorder_for_action("policy"), str(file)))


def hold(ledger: CaseLedger, case: str, *, reason: str, release: bool = False) -> RegisterEntry:
    """Place a legal hold on ``case`` (its personal data cannot be erased while it
    holds), or with ``release`` release it."""
    who = ledger.recorder_for_action("hold")
    if release:
        return RegisterEntry(ledger.release_hold(case, reason, who))
    return RegisterEntry(ledger.place_hold(case, reason, who))


def erase_personal(ledger: CaseLedger, case: str, *, reason: str) -> ErasureEntry:
    """Delete ``case``'s personal data (names, dates of birth) and their salts; every hash
    still verifies, and the register records who erased what and why.  ``remaining``
    says what the store's files may still hold of them (a reader or an older transaction
    elsewhere kept the WAL or the heap from being cleared), and what to run."""
    erasure = ledger.erase_personal(case, reason, ledger.recorder_for_action("erase-personal"))
    return ErasureEntry(erasure.entry, erasure.remaining)


# --- keys and checkpoints ------------------------------------------------------------------


@dataclass(frozen=True)
class KeyWritten:
    """A new key's file, and for a signing key the public key to publish (hex)."""

    path: Path
    public_key: str | None = None


def new_key(out_file: str | os.PathLike[str]) -> KeyWritten:
    """Write a new AES-256 key for encryption at rest to ``out_file`` (a new file, mode
    0600): use it as ``CASELEDGER_KEY_FILE`` (or :func:`open_store`'s ``key_file``)
    when creating a store, and keep a copy safe."""
    # lazy: checkpoints (Ed25519, Merkle) cost ~12 ms at start-up
    from ledger.checkpoints.checkpoint import write_new_key_file

    path = Path(out_file)
    write_new_key_file(path, base64.b64encode(os.urandom(32)) + b"\n")
    return KeyWritten(path)


def new_signing_key(out_file: str | os.PathLike[str]) -> KeyWritten:
    """Write a new Ed25519 key for signing checkpoints to ``out_file`` (PEM, mode 0600);
    the result carries the public key to publish."""
    # lazy: checkpoints (Ed25519, Merkle) cost ~12 ms at start-up
    from ledger.checkpoints.checkpoint import new_signing_key as write_signing_key

    path = Path(out_file)
    return KeyWritten(path, write_signing_key(path))


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint of the store's three logs, what each witness checked, and the
    file it was also written to (if any)."""

    checkpoint: Mapping[str, Any]
    witnesses: tuple[Mapping[str, Any], ...] = ()
    out_file: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """What ``checkpoint --json`` prints: the checkpoint and its ``witnesses``."""
        return {**self.checkpoint, "witnesses": [dict(w) for w in self.witnesses]}


def checkpoint(
    ledger: CaseLedger,
    *,
    signing_key: str | None = None,
    out_file: str | os.PathLike[str] | None = None,
    witness: Sequence[str | os.PathLike[str]] = (),
    witness_store: Sequence[str] = (),
) -> Checkpoint:
    """Sign the store's events, register and personal-data commitments as RFC 9162
    Merkle trees (key: ``signing_key``, default ``CASELEDGER_SIGNING_KEY``), have each
    witness (a file or folder; a second store) check it extends the checkpoint it holds,
    record it in the register and, given ``out_file``, write it there too.  If any witness
    refuses, nothing is recorded (:class:`~ledger.checkpoints.witness.WitnessRefused`)."""
    # lazy: checkpoints (Ed25519, Merkle) cost ~12 ms; the witnesses cost ~13 ms at start-up
    from ledger.checkpoints.witness import checkpoint_and_lodge

    out = Path(out_file) if out_file is not None else None
    made, reports = checkpoint_and_lodge(
        ledger,
        signing_key=signing_key,
        out_file=out,
        witness=[Path(w) for w in witness],
        witness_store=list(witness_store),
    )
    return Checkpoint(made, tuple(reports), out)


# --- a tracker, and the demo ---------------------------------------------------------------


def import_tracker(
    ledger: LedgerOrOpener,
    file: str | os.PathLike[str],
    *,
    mapping: str | os.PathLike[str],
    dry_run: bool = False,
    skip_bad_rows: bool = False,
    role: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    recording: Callable[[int], AbstractContextManager[object]] | None = None,
) -> ImportReport:
    """Import a spreadsheet tracker (CSV or ``.xlsx``) by its TOML ``mapping``: each new
    row becomes the entries it evidences, all recorded in one batch; rows imported before
    are skipped.  A bad row blocks the whole import unless ``skip_bad_rows``; a
    ``dry_run`` writes nothing.  The report says every row's fate; when the import was
    refused its ``refusal()`` is the error to raise after showing it.  ``progress(done,
    total)`` follows the check of the rows, ``recording(n)`` wraps the write."""
    # lazy: the tracker import (openpyxl) costs ~17 ms at start-up
    from ledger.importing.tracker import run_import

    return run_import(
        lambda: _opened(ledger),
        Path(file),
        Path(mapping),
        dry_run=dry_run,
        skip_bad_rows=skip_bad_rows,
        role=role,
        progress=progress,
        recording=recording,
    )


@dataclass(frozen=True)
class DemoStore:
    """The demo's new store and how many sample entries it holds."""

    path: Path
    entries: int = field(default=0)


def record_demo(folder: str | os.PathLike[str] = ".") -> DemoStore:
    """Record the demo's fictional cases into a new SQLite file in ``folder``
    (``caseledger-demo.db``, or ``-2``, ``-3`` ... if taken), each entry as if recorded on
    the day it happened; no other store is touched."""
    # lazy: the sample (its files, its recording) costs ~1 ms at start-up, only the demo needs it
    from ledger.importing.sample import fresh_name, record_sample

    path = fresh_name(folder=folder)
    return DemoStore(path, record_sample(str(path)))


#: The command (as typed) each function serves; the entry commands all record through
#: :func:`record_entry`.
CLI_COMMANDS: Final[Mapping[str, Callable[..., Any]]] = {
    "record": record_file,
    "schema": entry_schema,
    "users add": add_user,
    "users remove": remove_user,
    "users list": list_users,
    "policy show": show_policy,
    "policy set": set_policy,
    "keys new": new_key,
    "keys signing": new_signing_key,
    "hold": hold,
    "erase-personal": erase_personal,
    "checkpoint": checkpoint,
    "import-tracker": import_tracker,
    "demo": record_demo,
    **{command: record_entry for command in ENTRY_COMMANDS.values()},
}

__all__ = [
    "CLI_COMMANDS",
    "CaseLedger",
    "Checkpoint",
    "DemoStore",
    "EnrolledUser",
    "KeyWritten",
    "LedgerOrOpener",
    "PolicyInForce",
    "RecordSummary",
    "Recorded",
    "RegisterEntry",
    "Users",
    "acting_as",
    "add_user",
    "checkpoint",
    "entry_schema",
    "erase_personal",
    "hold",
    "import_tracker",
    "list_users",
    "new_key",
    "new_signing_key",
    "open_store",
    "record_demo",
    "record_entry",
    "record_file",
    "record_lines",
    "remove_user",
    "set_policy",
    "show_policy",
]
