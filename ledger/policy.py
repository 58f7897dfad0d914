"""Who may record what: the policy file (``ledger/data/policy.toml``) and its checks.

The policy is data a partnership can tighten.  Every check raises
:class:`~ledger.errors.InputError` (exit code 2) with the reason, before anything is
written.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from .catalogue import CRITERIA, EVENT_TYPES, ROLES, Envelope
from .errors import InputError

ACTIONS = ("users", "hold", "erase-personal", "checkpoint")
REGIMES = tuple(CRITERIA)


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
    """Validate a policy document; unknown roles, types or actions, values of the wrong
    type, and a policy in which no admin role can manage users are errors."""
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
        regimes = _names(spec, "regimes", where) if "regimes" in spec else None
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
            '"users", or no one could enrol or remove users'
        )
    return Policy(roles)


@cache
def default_policy() -> Policy:
    """The policy shipped with the package."""
    text = (resources.files("ledger") / "data" / "policy.toml").read_text(encoding="utf-8")
    return parse_policy(tomllib.loads(text), "ledger/data/policy.toml")


def load_policy(path: str | None) -> Policy:
    """A partnership's policy file (``CASELEDGER_POLICY``), or the default."""
    if not path:
        return default_policy()
    try:
        return parse_policy(tomllib.loads(Path(path).read_text(encoding="utf-8")), path)
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise InputError(
            f"the policy file cannot be used: {exc}", field="CASELEDGER_POLICY"
        ) from None
