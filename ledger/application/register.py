"""The administration register's operations: who may use the store (enrolment, removal),
the policy, legal holds, erasure of a case's personal data and signed checkpoints, each
a hash-chained register entry checked against the register as it stands."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from ledger.application.personal import PersonalData
from ledger.application.writes import Recorder, format_recorded_at, retrying
from ledger.catalogue.models import ROLES
from ledger.domain.policy import (
    ACTION_OF_REGISTER_TYPE,
    default_policy,
    default_policy_text,
    normalise_user_name,
    policy_from_text,
    policy_sha256,
)
from ledger.domain.register import REGISTER_TYPES, Enrolment, RegisterState, fold_register
from ledger.errors import InputError, UsageError
from ledger.integrity.canonical import event_hash
from ledger.store.acting import acting_user

#: The most database roles a ledger keeps a register fold for (a server acting for many
#: users on PostgreSQL keeps one per user): past this it starts again.
MOST_KEPT_ROLES = 256


@dataclasses.dataclass(frozen=True)
class _KeptRegister:
    """The register as one database role last read it: the decoded entries, the last
    stored row (its ``seq`` and stored bytes, found again at the head of the next read
    while the register is unchanged up to it), and their fold."""

    entries: tuple[dict[str, Any], ...]
    last: tuple[int, bytes] | None
    state: RegisterState


def _copy_state(state: RegisterState) -> RegisterState:
    """A copy of a kept fold that a caller may change without changing the one kept (the
    state is a plain dataclass of dicts and lists; the policy is frozen)."""
    return dataclasses.replace(
        state,
        users=dict(state.users),
        holds={case: dict(hold) for case, hold in state.holds.items()},
        erasures=[dict(e) for e in state.erasures],
        checkpoints=[dict(c) for c in state.checkpoints],
    )


class Erasure(NamedTuple):
    """A recorded erasure, and what of the erased rows the store's files may still hold
    (None: nothing), with what to do about it."""

    entry: dict[str, Any]
    remaining: str | None


class RegisterOperations(PersonalData):
    """Identities, authorisation and the register's entries."""

    _register_lock = threading.Lock()
    """Guards the creation of each ledger's own kept registers (:meth:`register_state`)."""

    def register_state(self) -> RegisterState:
        """The register's state as it stands, from the fold kept by its last position.

        The register is append-only (on PostgreSQL a trigger refuses any change to its
        rows), so a fold kept with its last row stays the register's state until a row
        follows it.  Each call asks the store for the rows from the kept last ``seq`` on:
        one indexed query that returns that row alone while nothing was appended (the
        kept fold is then the answer), the new rows when another process or connection
        appended some (folded again), or, when the kept last row is no longer there as
        it was (a store replaced under a long-lived process), every row again.

        Kept per ledger (each store its own) and, on PostgreSQL, per database role (the
        user a server acts for, :func:`ledger.store.acting.acting_user`, is the role
        every connection sets; at most :data:`MOST_KEPT_ROLES`): what one role may read
        is never answered to another, and each call's query runs as its own role.
        Each call returns its own copy, so a caller changing it changes nothing kept."""
        key = acting_user() if self.location.kind == "postgres" else None
        kept_all = self._kept_registers()
        kept = kept_all.get(key)
        decode = self.ledger_mapper.decode_state
        if kept is not None and kept.last is not None:
            rows = self.ledger_recorder.select_register(kept.last[0])
            if rows and rows[0] == kept.last:
                if len(rows) == 1:
                    return _copy_state(kept.state)
                entries = kept.entries + tuple(decode(state) for _, state in rows[1:])
                return self._keep_register(key, entries, rows[-1])
        rows = self.ledger_recorder.select_register()
        entries = tuple(decode(state) for _, state in rows)
        return self._keep_register(key, entries, rows[-1] if rows else None)

    def _kept_registers(self) -> dict[str | None, _KeptRegister]:
        """This ledger's kept registers, by database role (made on first use)."""
        kept: dict[str | None, _KeptRegister] | None = self.__dict__.get("_kept_register")
        if kept is None:
            with self._register_lock:
                kept = self.__dict__.setdefault("_kept_register", {})
        return kept

    def _keep_register(
        self, key: str | None, entries: tuple[dict[str, Any], ...], last: tuple[int, bytes] | None
    ) -> RegisterState:
        """Fold ``entries`` and keep them for ``key``'s role; a copy of the fold.  Two
        threads keeping at once leave either's (each call checks what it finds)."""
        state = fold_register(entries)
        kept_all = self._kept_registers()
        with self._register_lock:
            if key not in kept_all and len(kept_all) >= MOST_KEPT_ROLES:
                kept_all.clear()
            kept_all[key] = _KeptRegister(entries, last, state)
        return _copy_state(state)

    def recorder_for(self, role: str | None = None) -> Recorder:
        """The store identity, recording under ``role`` (default: its usual role)."""
        who = self.identity()
        if role is None:
            enrolment = self.register_state().users.get(who)
            roles = set() if enrolment is None else set(enrolment.roles)
            if not roles or "business-unit" in roles:
                role = "business-unit"
            else:
                role = sorted(roles - {"admin"} or roles)[0]
        if role not in ROLES:
            raise UsageError(f"{role!r} is not a role; roles are {', '.join(ROLES)}", field="role")
        return Recorder(who, role)

    def recorder_for_action(self, action: str) -> Recorder:
        """The store identity under one of its roles that the policy allows ``action``
        (``users``, ``hold``, ``erase-personal``, ``checkpoint``, ``policy``); the check
        itself is made again when the action runs."""
        state = self.register_state()
        who = self.identity()
        enrolment = state.users.get(who)
        if enrolment is None and not state.initialised:
            return Recorder(who, "admin")  # the first user of a new store
        roles = sorted(enrolment.roles) if enrolment is not None else []
        allowed = [
            r for r in roles if r in state.policy.roles and action in state.policy.roles[r].actions
        ]
        return Recorder(who, allowed[0] if allowed else (roles or ["admin"])[0])

    def _register_entry(
        self, fields: dict[str, Any], recorder: Recorder, after: RegisterState
    ) -> dict[str, Any]:
        """A hashed register entry that follows ``after``'s head (not yet written)."""
        assert fields["type"] in REGISTER_TYPES
        entry = {
            **fields,
            "seq": after.seq + 1,
            "recorded_at": format_recorded_at(self.clock()),
            "actor": recorder.actor,
            "role": recorder.role,
            "prev_hash": after.head_hash,
        }
        entry["hash"] = event_hash(entry)
        return entry

    def _genesis(self, actor: str) -> list[dict[str, Any]]:
        """What a new store's first command writes with its own entries, in the same
        transaction: the shipped policy, recorded as the store's policy, and the first
        user enrolled as admin and business-unit (so a single user needs no set-up)."""
        first = Recorder(actor, "admin")
        text = default_policy_text()
        policy = self._register_entry(
            {
                "type": "PolicyChanged",
                "policy": default_policy().document(),
                "text": text,
                "sha256": policy_sha256(text),
                "reason": "the policy in force when the store was created",
            },
            first,
            RegisterState(),
        )
        enrolment = self._register_entry(
            {
                "type": "UserEnrolled",
                "user": actor,
                "roles": ["admin", "business-unit"],
                "reason": "the first user of the store",
            },
            first,
            fold_register([policy]),
        )
        return [policy, enrolment]

    def authorise(
        self, recorder: Recorder, state: RegisterState | None = None
    ) -> tuple[Enrolment, RegisterState, list[dict[str, Any]]]:
        """The recorder's enrolment, the register state it was checked against, and the
        entries a new store's first command must write with its own (none otherwise):
        nothing is written here, so a refused command leaves no trace."""
        state = state if state is not None else self.register_state()
        genesis: list[dict[str, Any]] = []
        if not state.initialised:
            genesis = self._genesis(recorder.actor)
            state = fold_register(genesis)
        enrolment = state.users.get(recorder.actor)
        if enrolment is None:
            raise InputError(
                f"{recorder.actor} is not enrolled in this store; an admin can enrol them",
                field="actor",
                code="not-enrolled",
                params={"actor": recorder.actor},
            )
        if recorder.role not in enrolment.roles:
            roles = ", ".join(sorted(enrolment.roles))
            raise InputError(
                f"{recorder.actor} is enrolled as {roles}, not {recorder.role}; choose one "
                "of those roles",
                field="role",
                code="not-enrolled-as",
                params={"actor": recorder.actor, "roles": roles, "role": recorder.role},
            )
        return enrolment, state, genesis

    def check_action(self, recorder: Recorder, action: str) -> None:
        """Refuse, before any work, an administrative action the recorder may not run
        (the check is made again when the action's register entry is written)."""
        enrolment, state, _ = self.authorise(recorder)
        state.policy.check_action(recorder.actor, enrolment.roles, action)

    def _encode_register(self, entries: list[dict[str, Any]]) -> list[tuple[dict[str, Any], bytes]]:
        return [(e, self.ledger_mapper.encode_state(e)) for e in entries]

    def _append_register(
        self,
        fields: dict[str, Any],
        recorder: Recorder,
        erase_case: str | None = None,
        check: Callable[[RegisterState], None] | None = None,
    ) -> dict[str, Any]:
        """Check and append one hash-chained register entry (after a new store's first
        entries, in the same transaction), retrying if another writer won."""
        action = ACTION_OF_REGISTER_TYPE[fields["type"]]

        def append() -> dict[str, Any]:
            enrolment, state, genesis = self.authorise(recorder)
            policy = state.policy
            policy.check_action(recorder.actor, enrolment.roles, action)
            acting = recorder
            rules = policy.roles.get(recorder.role)
            if rules is None or action not in rules.actions:
                # the entry names the role that allows the action
                role = min(r for r in enrolment.roles if action in policy.roles[r].actions)
                acting = Recorder(recorder.actor, role)
            if check is not None:
                check(state)
            entry = self._register_entry(fields, acting, state)
            self.ledger_recorder.insert_register(
                self._encode_register([*genesis, entry]), erase_case
            )
            return entry

        return retrying(
            append, "the register kept changing under other writers; nothing was written"
        )

    def enrol(
        self, user: str, roles: list[str], recorder: Recorder, agency: str | None = None
    ) -> dict[str, Any]:
        """Enrol (or re-enrol, replacing the roles) a user; needs the admin role.  Names
        are normalised (NFC, no surrounding spaces) and refused when they could be
        mistaken for another enrolled user's; the last admin keeps the admin role."""
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise UsageError(f"roles must be some of {', '.join(ROLES)}", field="role")
        if "agency" in roles and not agency:
            raise UsageError(
                "a user with the agency role needs an agency", field="agency", code="agency-needed"
            )
        name = normalise_user_name(user)
        fields: dict[str, Any] = {"type": "UserEnrolled", "user": name, "roles": sorted(set(roles))}
        if agency:
            fields["agency"] = agency

        def check(state: RegisterState) -> None:
            refuse_confusable(name, state)
            after = fold_register([])
            after.users = dict(state.users)
            after.recorded_policy = state.recorded_policy
            after.users[name] = Enrolment(name, frozenset(fields["roles"]), agency, "")
            if state.admins() and not after.admins():
                raise UsageError(
                    f"{name} is the last admin; enrol another admin before taking "
                    "the admin role away",
                    field="role",
                )

        return self._append_register(fields, recorder, check=check)

    def remove_user(self, user: str, recorder: Recorder, reason: str) -> dict[str, Any]:
        """Remove a user from the register; needs the admin role."""

        def check(state: RegisterState) -> None:
            if user not in state.users:
                raise UsageError(f"{user} is not enrolled", field="name")
            if state.admins() == [user]:
                raise UsageError(
                    f"{user} is the last admin; enrol another admin first", field="name"
                )

        return self._append_register(
            {"type": "UserRemoved", "user": user, "reason": reason}, recorder, check=check
        )

    def set_policy(self, text: str, reason: str, recorder: Recorder, origin: str) -> dict[str, Any]:
        """Record a new policy for the store (its TOML text, hash and parsed form); needs
        a role the current policy allows ``policy``.  Refused when no enrolled user would
        still be an admin under it."""
        policy = policy_from_text(text, origin)
        if not reason.strip():
            raise UsageError("say why the policy changes", field="reason")

        def check(state: RegisterState) -> None:
            after = fold_register([])
            after.users = dict(state.users)
            after.recorded_policy = policy
            if not after.admins():
                raise UsageError(
                    "under this policy no enrolled user could enrol users or change the "
                    "policy again; give the admin role the actions 'users' and 'policy'",
                    field="file",
                )

        return self._append_register(
            {
                "type": "PolicyChanged",
                "policy": policy.document(),
                "text": text,
                "sha256": policy_sha256(text),
                "reason": reason,
            },
            recorder,
            check=check,
        )

    def place_hold(self, case: str, reason: str, recorder: Recorder) -> dict[str, Any]:
        """A legal hold: the case's personal data cannot be erased until it is released."""
        self._require_case(case)

        def check(state: RegisterState) -> None:
            if case in state.holds:
                raise UsageError(f"case {case} is already on hold", field="case")

        return self._append_register(
            {"type": "LegalHoldPlaced", "case": case, "reason": reason}, recorder, check=check
        )

    def release_hold(self, case: str, reason: str, recorder: Recorder) -> dict[str, Any]:
        """Release a legal hold."""

        def check(state: RegisterState) -> None:
            if case not in state.holds:
                raise UsageError(f"case {case} is not on hold", field="case")

        return self._append_register(
            {"type": "LegalHoldReleased", "case": case, "reason": reason}, recorder, check=check
        )

    def erase_personal(self, case: str, reason: str, recorder: Recorder) -> Erasure:
        """Destroy a case's keys and delete its sealed values and salts, in the same
        transaction as the register entry recording who erased what and why; SQLite then
        truncates its WAL, PostgreSQL vacuums the tables (when the user owns them), and
        what could not be removed from the store's files yet is said (``remaining``).

        The hashed entries keep their commitments, so every hash still verifies."""
        self._require_case(case)
        fields = self.personal_fields(case)

        def check(state: RegisterState) -> None:
            hold = state.holds.get(case)
            if hold is not None:
                raise InputError(
                    f"case {case} is under a legal hold ({hold['reason']}); release it first",
                    field="case",
                )
            if not fields:
                raise UsageError(f"case {case} holds no personal data to erase", field="case")

        entry = self._append_register(
            {"type": "PersonalDataErased", "case": case, "fields": fields, "reason": reason},
            recorder,
            erase_case=self.personal_key(case),
            check=check,
        )
        return Erasure(entry, self.ledger_recorder.clear_erased())

    def record_checkpoint(self, checkpoint: dict[str, Any], recorder: Recorder) -> dict[str, Any]:
        """Keep a signed checkpoint in the register (it is also lodged elsewhere)."""
        return self._append_register({"type": "CheckpointSigned", **checkpoint}, recorder)

    def _require_case(self, case: str) -> None:
        if not self.has_case(case):
            raise UsageError(f"case {case} does not exist in this store", field="case")


def refuse_confusable(name: str, state: RegisterState) -> None:
    """Refuse a new user name that could be mistaken for an enrolled user's (the same
    letters in another case, or look-alike characters such as Cyrillic "а" for "a",
    per Unicode's confusables list)."""
    from confusables import is_confusable

    for other in state.users:
        if other == name:
            continue
        if other.casefold() == name.casefold() or is_confusable(other, name):
            raise UsageError(
                f"{name!r} could be mistaken for the enrolled user {other!r}; choose a "
                "name that cannot",
                field="name",
            )
