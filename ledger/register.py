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

REGISTER_TYPES = (
    "UserEnrolled",
    "UserRemoved",
    "LegalHoldPlaced",
    "LegalHoldReleased",
    "PersonalDataErased",
    "CheckpointSigned",
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
    seq: int = 0
    head_hash: str = "0" * 64

    @property
    def initialised(self) -> bool:
        """Whether anyone has been enrolled yet."""
        return self.seq > 0


def fold_register(entries: Iterable[dict[str, Any]]) -> RegisterState:
    """The register's state from its entries in ``seq`` order."""
    state = RegisterState()
    for entry in entries:
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
        state.seq = entry["seq"]
        state.head_hash = entry["hash"]
    return state
