"""Who may record what: the store's policy and its checks.

The policy is part of the record: a store's policy is the one its register last
recorded (a ``PolicyChanged`` entry, made by an admin), starting with the policy shipped
in ``ledger/data/policy.toml`` when the store is created.  No environment variable or
file chosen by the client changes it.  Every check raises
:class:`~ledger.errors.InputError` (exit code 2) with the reason, before anything is
written; on PostgreSQL the database makes the same checks from its own copy.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from .catalogue import CRITERIA, EVENT_TYPES, ROLES, Envelope
from .errors import InputError, UsageError

ACTIONS = ("users", "hold", "erase-personal", "checkpoint", "policy", "export-personal")
REGIMES = tuple(CRITERIA)

#: The register entry types each administrative action appends.
ACTION_OF_REGISTER_TYPE = {
    "UserEnrolled": "users",
    "UserRemoved": "users",
    "LegalHoldPlaced": "hold",
    "LegalHoldReleased": "hold",
    "PersonalDataErased": "erase-personal",
    "CheckpointSigned": "checkpoint",
    "PolicyChanged": "policy",
}


@dataclass(frozen=True)
class RolePolicy:
    """What one role may do."""

    role: str
    description: str
    record: frozenset[str]
    regimes: frozenset[str] | None
    own_agency: bool
    actions: frozenset[str]

    def may_record(self, event_type: str) -> bool:
        """Whether the role may record entries of this type at all."""
        return "*" in self.record or event_type in self.record


@dataclass(frozen=True)
class Policy:
    """The policy of a store: one :class:`RolePolicy` per role."""

    roles: dict[str, RolePolicy]

    def document(self) -> dict[str, object]:
        """The policy as JSON (kept in ``PolicyChanged`` entries and read by the database)."""
        return {
            "roles": {
                name: {
                    "description": r.description,
                    "record": sorted(r.record),
                    "regimes": None if r.regimes is None else sorted(r.regimes),
                    "own_agency": r.own_agency,
                    "actions": sorted(r.actions),
                }
                for name, r in sorted(self.roles.items())
            }
        }

    def check_entry(
        self, actor: str, role: str, event: Envelope, regime: str, agency: str | None
    ) -> None:
        """Refuse an entry the actor's role may not record."""
        kind = type(event).__name__
        rules = self.roles.get(role)
        if rules is None or not rules.may_record(kind):
            raise InputError(f"{actor} (role {role}) may not record {kind} entries", field="type")
        if rules.regimes is not None and regime not in rules.regimes:
            raise InputError(
                f"{actor} (role {role}) may record {kind} only in cases under "
                f"{', '.join(sorted(rules.regimes))}; this case is under {regime}",
                field="type",
            )
        if rules.own_agency:
            named = getattr(event, "agency", None)
            if named is None or agency is None or named != agency:
                raise InputError(
                    f"{actor} (role {role} for {agency or 'no agency'}) may record entries "
                    f"only for their own agency, not {named or 'an entry without one'}",
                    field="agency",
                )

    def check_action(self, actor: str, roles: frozenset[str], action: str) -> None:
        """Refuse an administrative action none of the actor's roles allows."""
        if not any(action in self.roles[r].actions for r in roles if r in self.roles):
            allowed = sorted(r for r, p in self.roles.items() if action in p.actions)
            raise InputError(
                f"{actor} may not run {action}: it needs the role "
                f"{' or '.join(allowed) or '(none)'} ({actor} has "
                f"{', '.join(sorted(roles)) or 'no roles'})",
                field="role",
            )


def _names(spec: dict[str, object], key: str, where: str) -> frozenset[str]:
    """A list of strings in a role's table (a bare string would be read letter by letter)."""
    value = spec.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}.{key} must be a list of strings, not {value!r}")
    return frozenset(value)


def parse_policy(data: dict[str, object], origin: str) -> Policy:
    """Validate a policy document; unknown roles, types or actions are errors, and a
    policy must leave some role able to enrol users and change the policy (so no
    store can be locked out of its own administration)."""
    policy = _parse_roles(data, origin)
    if not any({"users", "policy"} <= r.actions for r in policy.roles.values()):
        raise ValueError(
            f"{origin}: some role (normally admin) needs the actions 'users' and 'policy', "
            "or nobody could enrol users or change the policy again"
        )
    return policy


def _parse_roles(data: dict[str, object], origin: str) -> Policy:
    roles_data = data.get("roles")
    if not isinstance(roles_data, dict):
        raise ValueError(f"{origin}: a policy needs a [roles.NAME] table per role")
    roles: dict[str, RolePolicy] = {}
    for name, spec in roles_data.items():
        if name not in ROLES:
            raise ValueError(f"{origin}: {name!r} is not a role ({', '.join(ROLES)})")
        if not isinstance(spec, dict):
            raise ValueError(f"{origin}: roles.{name} must be a table")
        where = f"{origin}: roles.{name}"
        unknown = set(spec) - {"description", "record", "regimes", "own_agency", "actions"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        record = _names(spec, "record", where)
        bad = record - set(EVENT_TYPES) - {"*"}
        if bad:
            raise ValueError(f"{where}.record: unknown types {sorted(bad)}")
        actions = _names(spec, "actions", where)
        if actions - set(ACTIONS):
            raise ValueError(f"{where}.actions: unknown {sorted(actions - set(ACTIONS))}")
        regimes = _names(spec, "regimes", where) if spec.get("regimes") is not None else None
        if regimes is not None and regimes - set(REGIMES):
            raise ValueError(f"{where}.regimes: unknown {sorted(regimes - set(REGIMES))}")
        own_agency = spec.get("own_agency", False)
        if not isinstance(own_agency, bool):
            raise ValueError(f"{where}.own_agency must be true or false, not {own_agency!r}")
        description = spec.get("description", "")
        if not isinstance(description, str):
            raise ValueError(f"{where}.description must be a string, not {description!r}")
        roles[name] = RolePolicy(
            role=name,
            description=description,
            record=record,
            regimes=regimes,
            own_agency=own_agency,
            actions=actions,
        )
    if "admin" not in roles or "users" not in roles["admin"].actions:
        raise ValueError(
            f"{origin}: the policy needs a [roles.admin] table whose actions include "
            '"users" and "policy", or no one could enrol or remove users'
        )
    return Policy(roles)


@cache
def default_policy_text() -> str:
    """The text of the policy shipped with the package (a new store's first policy)."""
    return (resources.files("ledger") / "data" / "policy.toml").read_text(encoding="utf-8")


@cache
def default_policy() -> Policy:
    """The policy shipped with the package."""
    return parse_policy(tomllib.loads(default_policy_text()), "ledger/data/policy.toml")


def policy_sha256(text: str) -> str:
    """The SHA-256 (hex) of a policy's text, as recorded in ``PolicyChanged``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_policy_text(path: str) -> str:
    """A policy file's text (validated when it is recorded); an unreadable file is an
    input error naming the reason (exit code 2)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the policy file {path}: {exc}", field="FILE") from None


def policy_from_text(text: str, origin: str) -> Policy:
    """Validate a policy's TOML text; a bad one is an input error with the reason."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            f"the policy cannot be used: {origin} is not TOML ({exc})", field="FILE"
        ) from None
    try:
        return parse_policy(document, origin)
    except ValueError as exc:
        raise InputError(f"the policy cannot be used: {exc}", field="FILE") from None


POLICY_ENV = "CASELEDGER_POLICY"


def refuse_client_policy(environ: dict[str, str]) -> None:
    """``CASELEDGER_POLICY`` is no longer read: a client could use it to widen what it may
    do.  Setting it is refused with the reason, rather than silently ignored."""
    if environ.get(POLICY_ENV):
        raise UsageError(
            f"{POLICY_ENV} is no longer read: a store's policy is part of its record. "
            "An admin changes it with: caseledger policy set FILE --reason TEXT "
            f"(unset {POLICY_ENV} to go on)",
            field=POLICY_ENV,
        )
