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

from .catalogue import EVENT_TYPES, ROLES, Envelope
from .errors import InputError

ACTIONS = ("users", "hold", "erase-personal", "checkpoint", "export-personal")


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


def parse_policy(data: dict[str, object], origin: str) -> Policy:
    """Validate a policy document; unknown roles, types or actions are errors."""
    roles_data = data.get("roles")
    if not isinstance(roles_data, dict):
        raise ValueError(f"{origin}: a policy needs a [roles.NAME] table per role")
    roles: dict[str, RolePolicy] = {}
    for name, spec in roles_data.items():
        if name not in ROLES:
            raise ValueError(f"{origin}: {name!r} is not a role ({', '.join(ROLES)})")
        if not isinstance(spec, dict):
            raise ValueError(f"{origin}: roles.{name} must be a table")
        unknown = set(spec) - {"description", "record", "regimes", "own_agency", "actions"}
        if unknown:
            raise ValueError(f"{origin}: roles.{name}: unknown keys {sorted(unknown)}")
        record = frozenset(spec.get("record", []))
        bad = record - set(EVENT_TYPES) - {"*"}
        if bad:
            raise ValueError(f"{origin}: roles.{name}.record: unknown types {sorted(bad)}")
        actions = frozenset(spec.get("actions", []))
        if actions - set(ACTIONS):
            raise ValueError(
                f"{origin}: roles.{name}.actions: unknown {sorted(actions - set(ACTIONS))}"
            )
        regimes = spec.get("regimes")
        roles[name] = RolePolicy(
            role=name,
            description=str(spec.get("description", "")),
            record=record,
            regimes=frozenset(regimes) if regimes is not None else None,
            own_agency=bool(spec.get("own_agency", False)),
            actions=actions,
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
