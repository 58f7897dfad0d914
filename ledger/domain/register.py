"""The administration register: enrolments, legal holds, erasures and checkpoints.

It is kept as hash-chained entries in the same store as the cases (its own table, so
the case notification log stays cases only), and folded into :class:`RegisterState`.
Erasure deletes personal values in the same transaction as the entry that records who
erased what and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ledger.domain.policy import Policy, default_policy, parse_policy
from ledger.errors import StoreUnavailable

REGISTER_TYPES = (
    "UserEnrolled",
    "UserRemoved",
    "LegalHoldPlaced",
    "LegalHoldReleased",
    "PersonalDataErased",
    "CheckpointSigned",
    "PolicyChanged",
)


@dataclass(frozen=True)
class Enrolment:
    """A user's roles (and agency, for the agency role)."""

    user: str
    roles: frozenset[str]
    agency: str | None
    ref: str


@dataclass
class RegisterState:
    """What the register says now."""

    users: dict[str, Enrolment] = field(default_factory=dict)
    holds: dict[str, dict[str, Any]] = field(default_factory=dict)
    erasures: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    recorded_policy: Policy | None = None
    policy_ref: str | None = None
    seq: int = 0
    head_hash: str = "0" * 64

    @property
    def initialised(self) -> bool:
        """Whether anyone has been enrolled yet."""
        return self.seq > 0

    @property
    def policy(self) -> Policy:
        """The policy in force: the last one the register recorded (a store made before
        policies were recorded keeps the shipped default until an admin records one)."""
        return self.recorded_policy or default_policy()

    def admins(self) -> list[str]:
        """The users enrolled with a role that may enrol users and change the policy."""
        policy = self.policy
        return sorted(
            user
            for user, e in self.users.items()
            if any(
                {"users", "policy"} <= policy.roles[r].actions for r in e.roles if r in policy.roles
            )
        )


def fold_register(entries: Iterable[dict[str, Any]]) -> RegisterState:
    """The register's state from its entries in ``seq`` order; an entry that cannot be
    read (written behind the ledger's back) makes the store unusable, said plainly."""
    state = RegisterState()
    for entry in entries:
        try:
            _apply(state, entry)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreUnavailable(
                f"register#{entry.get('seq', '?') if isinstance(entry, dict) else '?'} "
                f"cannot be read ({type(exc).__name__}: {exc}); run caseledger verify"
            ) from None
    return state


def _apply(state: RegisterState, entry: dict[str, Any]) -> None:
    """Fold one register entry into the state."""
    kind = entry["type"]
    ref = f"register#{entry['seq']}"
    if kind == "UserEnrolled":
        state.users[entry["user"]] = Enrolment(
            entry["user"], frozenset(entry["roles"]), entry.get("agency"), ref
        )
    elif kind == "UserRemoved":
        state.users.pop(entry["user"], None)
    elif kind == "LegalHoldPlaced":
        state.holds[entry["case"]] = {**entry, "ref": ref}
    elif kind == "LegalHoldReleased":
        state.holds.pop(entry["case"], None)
    elif kind == "PersonalDataErased":
        state.erasures.append({**entry, "ref": ref})
    elif kind == "CheckpointSigned":
        state.checkpoints.append({**entry, "ref": ref})
    elif kind == "PolicyChanged":
        state.recorded_policy = parse_policy(entry["policy"], ref)
        state.policy_ref = ref
    state.seq = entry["seq"]
    state.head_hash = entry["hash"]
