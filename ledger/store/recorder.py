"""What the ledger needs of a recorder beyond the library's own ``ApplicationRecorder``:
the typed face of both backends (:mod:`ledger.store.sqlite`, :mod:`ledger.store.postgres`),
so the application is checked against one interface rather than ``# type: ignore`` at
every call.  Each backend module asserts, for the type checker, that it satisfies it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from uuid import UUID

from ledger.store.sealing import PersonalRow

#: The keys of an entry's clear envelope, in the order a PostgreSQL recorder's
#: ``insert_events`` is given their values (a tuple per entry, not a dict: a large
#: command holds one per entry until its insert, which makes the dicts a chunk at a time).
ENVELOPE_KEYS = (
    "case",
    "seq",
    "type",
    "actor",
    "role",
    "prev_hash",
    "hash",
    "recorded_at",
    "regime",
    "agency",
    "approval",
    "approved_by",
)


class LedgerRecorder(Protocol):
    """The ledger's tables and read queries, on either store."""

    def get_meta(self, key: str) -> bytes | None:
        """A value of the store's metadata (e.g. the encryption key check)."""

    def put_meta_if_absent(self, key: str, value: bytes) -> None:
        """Set a metadata value once; a later call never overwrites it."""

    def select_register(self, from_seq: int = 0) -> list[tuple[int, bytes]]:
        """``(seq, state)`` of every register entry from ``seq`` ``from_seq`` on."""

    def insert_register(
        self, entries: Sequence[tuple[dict[str, Any], bytes]], erase_case: str | None = None
    ) -> None:
        """Append register entries in one transaction (with ``erase_case``, deleting that
        case's personal values and keys in it); a taken ``seq`` raises IntegrityError."""

    def clear_erased(self) -> str | None:
        """After an erasure, remove the deleted rows' bytes from the store's files (SQLite:
        truncate the WAL; PostgreSQL: VACUUM the tables); None when done, else what is
        left where, and why (said to the user: the erasure itself stands)."""

    def check_personal_reader(self) -> None:
        """Refuse (exit 4), before anything is written, a user the store gives no keys."""

    def select_personal_keys(self, case_ref: str) -> dict[int, bytes]:
        """The stored keys of a case's personal values, by entry ``seq``."""

    def select_personal(self, case_ref: str) -> list[PersonalRow]:
        """The personal values and salts kept for a case."""

    def select_personal_with_keys(self, case_ref: str) -> list[tuple[PersonalRow, bytes | None]]:
        """The personal values and salts kept for a case, each with the stored key of its
        entry (None: none stored), in one read; on PostgreSQL the database refuses the keys
        of any value to a session user it does not give keys (a case without values has
        none to refuse: an empty answer, as the two reads give)."""

    def select_case(self, originator_id: UUID) -> list[tuple[int, bytes]]:
        """``(position, state)`` of every entry of one case, in ``seq`` order."""

    def iter_states(self, after: int = 0, batch: int = 5000) -> Iterator[tuple[int, bytes]]:
        """``(position, state)`` of every entry in global order, after a position."""

    def count_events(self) -> int:
        """How many entries the store holds."""


class AuthorityRecorder(LedgerRecorder, Protocol):
    """What only the PostgreSQL recorder has: the database's own record of every write
    (provenance, enrolments and policy), its screen of personal values, and the
    session it runs in."""

    datastore: Any
    """The library's PostgreSQL datastore (its connections give the session user)."""

    def screen_personal(self, case_ref: str, texts: Sequence[str]) -> set[int]:
        """The numbers of the folded texts that hold a personal value of the case."""

    def iter_states(
        self, after: int = 0, batch: int = 5000, upto: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """``(position, state)`` of every entry in global order, after a position, up to
        the settled position ``upto`` (read now if None)."""

    def settled(self) -> int:
        """The log's settled position: no entry can still be committed at or below it."""

    def iter_provenance(
        self, batch: int = 5000, upto: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The database's provenance rows in global order, up to the settled position
        ``upto`` (read now if None)."""

    def select_register_provenance(self) -> list[dict[str, Any]]:
        """The clear columns the register function kept for each register entry."""

    def select_provenance_head(self, originator_id: UUID, seq: int) -> dict[str, Any] | None:
        """The provenance of one entry (for checking a snapshot before use)."""

    def select_provenance_last(self, originator_id: UUID) -> dict[str, Any] | None:
        """The provenance of a case's last entry (for checking a kept case head)."""

    def select_authority(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The database's own enrolments and policy (kept from the register)."""
