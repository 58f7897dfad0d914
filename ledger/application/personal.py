"""Personal data: values replaced by salted commitments in the hashed entries and kept
aside, sealed with a key of each entry's own; the screen that refuses an entry whose
hashed text holds a personal value of its case; and the values opened again for exports
by a user allowed them (``ledger/domain/personal_screen.py``, :mod:`ledger.store.sealing`)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from ledger.application.reading import LedgerReads
from ledger.domain.personal_screen import Screen, ScreenRow, folded, hashed_strings, screen_rows
from ledger.errors import InputError, StoreUnavailable
from ledger.integrity.canonical import canonical_json, commitment, new_salt
from ledger.store.sealing import (
    PersonalKey,
    PersonalRow,
    SealBroken,
    associated_data,
    new_case_key,
    seal,
    unseal,
    wrapping_key,
)


class PersonalData(LedgerReads):
    """Sealing, screening and reading back a case's personal data."""

    _personal_reader_checked = False
    """Whether :meth:`check_personal_export` has let this ledger's user through."""

    def _commit_personal(
        self,
        body: dict[str, Any],
        ref: str,
        seq: int,
        rows: list[PersonalRow],
        keys: list[PersonalKey],
    ) -> dict[str, Any]:
        """Replace personal values by salted commitments; keep values and salts aside,
        sealed with a new key of this entry's own (AES-256-GCM), and the key in the key
        table (itself sealed by the store key when the store is encrypted).  A writer
        never needs to read a key, so recording needs no right to export personal data."""
        stored_ref = self.personal_key(ref)
        key: bytes | None = None

        def commit(values: dict[str, Any]) -> dict[str, str]:
            nonlocal key
            if key is None:
                key = new_case_key()
                keys.append(PersonalKey(stored_ref, seq, self._wrap_key(stored_ref, seq, key)))
            commitments = {}
            for field, value in values.items():
                salt = new_salt()
                commitments[field] = commitment(salt, value)
                raw = canonical_json(value)
                rows.append(
                    PersonalRow(
                        stored_ref,
                        seq,
                        field,
                        seal(key, raw, associated_data(stored_ref, seq, field, "value")),
                        seal(key, salt, associated_data(stored_ref, seq, field, "salt")),
                    )
                )
            return commitments

        if "personal" in body:
            body["personal"] = commit(body["personal"])
        changes = body.get("changes")
        if (
            body["type"] == "EntryCorrected"
            and isinstance(changes, dict)
            and isinstance(changes.get("personal"), dict)
        ):
            body["changes"] = {**changes, "personal": commit(changes["personal"])}
        return body

    def _refuse_personal_in_text(
        self,
        body: dict[str, Any],
        ref: str,
        new_case: bool,
        screens: dict[str, Screen],
        line: int,
    ) -> None:
        """Refuse (exit 2, the field named) an entry whose hashed text holds a personal
        value recorded for its case: the stored ones, those given earlier in this
        command and those this entry gives itself (``personal``, ``changes.personal``)."""
        screen = screens.get(ref)
        if screen is None:
            screen = screens[ref] = Screen() if new_case else self._case_screen(ref)
        given = body.get("personal")
        if isinstance(given, dict):
            screen.add_all(given)
        changes = body.get("changes")
        if body["type"] == "EntryCorrected" and isinstance(changes, dict):
            if isinstance(changes.get("personal"), dict):
                screen.add_all(changes["personal"])
        found = screen.hit_body(body)
        if found is not None:
            where, personal_field = found
            raise InputError(
                f"holds the personal value {personal_field} recorded for case {ref} "
                "(compared ignoring case, accents, spaces and punctuation, dates in every "
                "usual form); names and dates of birth go only in personal, never in the "
                'hashed record: refer to the child by a pseudonym such as "Child K"',
                field=where,
            ).at_line(line)
        if screen.ask_database:
            strings = list(hashed_strings(body))
            hits = self.authority_recorder.screen_personal(
                self.personal_key(ref), [folded(text) for _, text in strings]
            )
            if hits:
                raise InputError(
                    f"holds a personal value recorded for case {ref} (the database's "
                    "screen found it; compared ignoring case, accents, spaces and "
                    "punctuation, dates in every usual form); names and dates of birth go "
                    "only in personal, never in the hashed record",
                    field=strings[min(hits)][0],
                ).at_line(line)

    def _case_screen(self, ref: str) -> Screen:
        """A screen of a case's stored personal values: opened here when this user can
        read them (SQLite; PostgreSQL with ``export-personal``), else one that asks the
        database, which keeps salted digests of them."""
        screen = Screen()
        if self.location.kind == "postgres" and not self._may_read_personal():
            screen.ask_database = True
            return screen
        stored_ref = self.personal_key(ref)
        rows = self.ledger_recorder.select_personal_with_keys(stored_ref)  # one read
        for row in self._opened(ref, stored_ref, rows):
            screen.add(row.field, orjson.loads(row.value))
        return screen

    def _may_read_personal(self) -> bool:
        """Whether the database gives this session user the personal-data keys."""
        if not hasattr(self, "_reads_personal"):
            try:
                self.ledger_recorder.check_personal_reader()
                self._reads_personal = True
            except StoreUnavailable:
                self._reads_personal = False
        return self._reads_personal

    def _keep_screen_digests(
        self, body: dict[str, Any], ref: str, seq: int, digests: list[ScreenRow]
    ) -> None:
        """On PostgreSQL, the salted digests of the personal values this entry gives, for
        the database's screen of later entries by writers who may not read them."""
        if self.location.kind != "postgres":
            return
        values = body.get("personal")
        changes = body.get("changes")
        if body["type"] == "EntryCorrected" and isinstance(changes, dict):
            values = changes.get("personal")
        if not isinstance(values, dict) or not values:
            return
        salt = new_salt()
        for key, value in values.items():
            digests.extend(screen_rows(self.personal_key(ref), seq, key, value, salt))

    def _wrap_key(self, stored_ref: str, seq: int, key: bytes) -> bytes:
        """A case key as stored: sealed by a key derived from the store key when the
        store is encrypted at rest, as it is otherwise."""
        cipher: Any = self.ledger_mapper.cipher
        if cipher is None:
            return key
        aad = associated_data(stored_ref, seq, "", "key")
        return seal(wrapping_key(cipher.key), key, aad)

    def _unwrap_key(self, stored_ref: str, seq: int, stored: bytes) -> bytes:
        cipher: Any = self.ledger_mapper.cipher
        if cipher is None:
            return stored
        return unseal(wrapping_key(cipher.key), stored, associated_data(stored_ref, seq, "", "key"))

    def personal_data(self, ref: str) -> list[PersonalRow]:
        """The personal values and salts of a case, opened with the case's keys (for
        exports that include them).  A command that gives them to its user first calls
        :meth:`check_personal_export`; on PostgreSQL the database refuses keys to a user
        not allowed ``export-personal`` whatever the caller does.  Values whose key is
        gone (an erased case in a data backup) exit 4 rather than come back wrong."""
        stored_ref = self.personal_key(ref)
        rows: list[PersonalRow] = self.ledger_recorder.select_personal(stored_ref)
        if not rows:
            return []
        stored = self.ledger_recorder.select_personal_keys(stored_ref)
        return self._opened(ref, stored_ref, [(r, stored.get(r.seq)) for r in rows])

    def _opened(
        self, ref: str, stored_ref: str, rows: list[tuple[PersonalRow, bytes | None]]
    ) -> list[PersonalRow]:
        """Stored personal rows opened with their entries' keys (None: no key stored)."""
        opened = []
        for r, wrapped in rows:
            if wrapped is None:
                raise StoreUnavailable(
                    f"the personal data of {ref}#{r.seq} has no key in this store: it was "
                    "erased, or this is a data backup restored without its key backup"
                )
            try:
                key = self._unwrap_key(stored_ref, r.seq, wrapped)
                value = unseal(key, r.value, associated_data(stored_ref, r.seq, r.field, "value"))
                salt = unseal(key, r.salt, associated_data(stored_ref, r.seq, r.field, "salt"))
            except SealBroken as exc:
                raise StoreUnavailable(
                    f"the personal data of {ref}#{r.seq} ({r.field}) cannot be opened: {exc}"
                ) from None
            opened.append(PersonalRow(ref, r.seq, r.field, value, salt))
        return opened

    def case_keys(self, ref: str) -> dict[int, bytes]:
        """A case's keys, unwrapped, by entry ``seq`` (for tests and key audits); read
        as :meth:`personal_data` reads them."""
        stored_ref = self.personal_key(ref)
        stored = self.ledger_recorder.select_personal_keys(stored_ref)
        return {seq: self._unwrap_key(stored_ref, seq, key) for seq, key in stored.items()}

    def personal_fields(self, ref: str) -> list[str]:
        """``CASE#seq:field`` of every personal value kept for a case, without opening
        any (erasure lists them; it needs no right to read them)."""
        rows = self.ledger_recorder.select_personal(self.personal_key(ref))
        return sorted({f"{ref}#{r.seq}:{r.field}" for r in rows})

    def check_personal_export(self) -> None:
        """Refuse (exit 2) a user none of whose enrolled roles the policy allows
        ``export-personal``, then (exit 4) one the database refuses keys to; checked
        once per ledger, before an export writes anything."""
        if self._personal_reader_checked:
            return
        who = self.identity()
        enrolment = self.register_state().users.get(who)
        self.policy.check_action(
            who, enrolment.roles if enrolment else frozenset(), "export-personal"
        )
        self.ledger_recorder.check_personal_reader()
        self._personal_reader_checked = True

    def personal_key(self, ref: str) -> str:
        """How the personal-data table names a case: its reference, or in an encrypted
        store a keyed hash of it, so the table shows no case reference in clear."""
        cipher: Any = self.ledger_mapper.cipher
        if cipher is None:
            return ref
        return hmac.new(cipher.key, b"personal:" + ref.encode(), hashlib.sha256).hexdigest()
