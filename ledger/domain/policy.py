"""Who may record and read what: the store's policy and its checks.

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
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ledger.catalogue.registry import KINDS
from ledger.catalogue.terms import CRITERIA, ROLES
from ledger.errors import InputError, UsageError

if TYPE_CHECKING:  # the catalogue's pydantic models: only checking an entry needs them
    from ledger.catalogue.models import Envelope

ACTIONS = ("users", "hold", "erase-personal", "checkpoint", "policy", "export-personal")
REGIMES = tuple(CRITERIA)
#: What a role may read: ``all`` (every case and entry) or ``own-agency`` (only the cases
#: and entries naming the reader's enrolled agency, ``projections.queries.visibility``).
SEES = ("all", "own-agency")

APPROVER_FIELD = "approved_by"
#: The entry types that need someone's approval: every catalogue type with an
#: ``approved_by`` field (``DecisionDelayed`` today; ``PublicationDeferred`` and
#: ``NotificationDeferred`` join by being added to the catalogue).  A role's ``approves``
#: may name only these.  Written out so that reading a policy imports no pydantic model (a
#: cold ``why`` folds the register's); ``tests/test_fast_path.py`` checks it is exactly
#: the catalogue's types with that field.
APPROVABLE: tuple[str, ...] = ("DecisionDelayed", "PublicationDeferred", "NotificationDeferred")
#: Every entry type of the catalogue, in its order (``tests/test_registry.py``).
EVENT_TYPES: tuple[str, ...] = tuple(kind.name for kind in KINDS)

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
    approves: frozenset[str] = frozenset()
    sees: str = "all"
    """What the role reads (one of :data:`SEES`); a policy recorded before ``sees``
    existed reads as ``all`` for every role, as it was then."""

    def may_approve(self, event_type: str, regime: str) -> bool:
        """Whether the role's approval counts for entries of this type in a case under
        ``regime`` (its ``regimes``, if given, bound approval as they bound recording)."""
        return event_type in self.approves and (self.regimes is None or regime in self.regimes)

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
                    "approves": sorted(r.approves),
                    "sees": r.sees,
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

    def approving_roles(self, event_type: str, regime: str) -> list[str]:
        """The roles whose approval counts for ``event_type`` in a case under ``regime``."""
        return sorted(n for n, r in self.roles.items() if r.may_approve(event_type, regime))

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


class _Enrolled(Protocol):
    """What the approval check needs of an enrolment: the user's roles."""

    @property
    def roles(self) -> frozenset[str]: ...


def approval_of(body: Mapping[str, Any], type_of: Callable[[int], str | None]) -> str | None:
    """Which approvable type an entry (a validated event or a stored body) gives the
    approver of, if any: its own type, or for a correction that changes ``approved_by``
    the type of the entry it corrects (``type_of(seq)``)."""
    kind = body.get("type")
    if kind in APPROVABLE:
        return str(kind)
    changes = body.get("changes")
    if kind == "EntryCorrected" and isinstance(changes, dict) and APPROVER_FIELD in changes:
        target = type_of(int(str(body.get("corrects", "")).rpartition("#")[2] or 0))
        if target in APPROVABLE:
            return target
    return None


def approver_named(body: Mapping[str, Any]) -> str | None:
    """The approver an entry names: ``approved_by``, or a correction's new one."""
    if body.get("type") == "EntryCorrected":
        changes = body.get("changes")
        value = changes.get(APPROVER_FIELD) if isinstance(changes, dict) else None
    else:
        value = body.get(APPROVER_FIELD)
    return value if isinstance(value, str) else None


def provenance_approval(
    body: Mapping[str, Any], type_of: Callable[[int], str | None]
) -> dict[str, str | None]:
    """What the database checks and keeps of an entry's approval: ``approval`` (the type
    approved) and ``approved_by`` (the approver), both None for an entry needing none."""
    approval = approval_of(body, type_of)
    return {
        "approval": approval,
        "approved_by": approver_named(body) if approval is not None else None,
    }


def check_approval(
    policy: Policy,
    users: Mapping[str, _Enrolled],
    event: Envelope,
    regime: str,
    type_of: Callable[[int], str | None],
) -> Envelope:
    """Refuse an entry needing approval (a ``DecisionDelayed``, or a correction of its
    ``approved_by``) unless ``approved_by`` names a user enrolled with a role the policy
    lets approve that type in the case's regime, whoever records it.

    The name matches the enrolment's user name after the normalisation enrolment itself
    applies (Unicode NFC, surrounding white space removed); nothing else is folded, so
    "chair" does not match an enrolled "Chair" (the message suggests it).  Returns the
    event with the approver written exactly as enrolled, so the stored entry names the
    user the database and an inspector can find in the register.
    """
    body = {
        "type": type(event).__name__,
        "corrects": getattr(event, "corrects", None),
        "changes": getattr(event, "changes", None),
        APPROVER_FIELD: getattr(event, APPROVER_FIELD, None),
    }
    kind = approval_of(body, type_of)
    if kind is None:
        return event
    # lazy: the catalogue's pydantic models cost ~150 ms at start-up; only a write checks
    from ledger.catalogue.models import EntryCorrected

    correction = isinstance(event, EntryCorrected)
    field = f"changes.{APPROVER_FIELD}" if correction else APPROVER_FIELD
    given = approver_named(body)
    if given is None:
        raise InputError(f"{APPROVER_FIELD} must name the approver", field=field)
    try:
        name = normalise_user_name(given)
    except UsageError as exc:
        raise InputError(f"{given!r}: {exc.reason}", field=field) from None
    roles = policy.approving_roles(kind, regime)
    enrolment = users.get(name)
    if enrolment is not None and any(r in roles for r in enrolment.roles):
        if name == given:
            return event
        if correction:
            changes = {**event.changes, APPROVER_FIELD: name}  # type: ignore[attr-defined]
            return event.model_copy(update={"changes": changes})
        return event.model_copy(update={APPROVER_FIELD: name})
    raise _refusal(name, kind, regime, roles, users, enrolment, field)


def _refusal(
    name: str,
    kind: str,
    regime: str,
    roles: list[str],
    users: Mapping[str, _Enrolled],
    enrolment: _Enrolled | None,
    field: str,
) -> InputError:
    """Why ``name`` cannot approve: who may, who is enrolled that could, and how to fix."""
    if not roles:
        return InputError(
            f"no role of this store's policy approves {kind} entries in a case under "
            f"{regime}, so none can be recorded; an admin records a policy that says who "
            "does (approves = [...] in a role, see caseledger policy show and "
            "caseledger policy set)",
            field=field,
        )
    could = sorted(u for u, e in users.items() if any(r in roles for r in e.roles))
    if enrolment is None:
        why = f"{name!r} is not enrolled in this store"
        alike = [u for u in could if u.casefold() == name.casefold()]
        if alike:
            why += f" (did you mean {alike[0]!r}?)"
    else:
        why = f"{name!r} is enrolled as {', '.join(sorted(enrolment.roles))}"
    approvers = " or ".join(roles)
    if not could:
        return InputError(
            f"{why}; a {kind} in a case under {regime} is approved only by a user enrolled "
            f"as {approvers} (nobody enrolled may; an admin enrols the decision-maker as "
            f"{roles[0]})",
            field=field,
            code="no-approver",
            params={
                "why": why,
                "kind": kind,
                "regime": regime,
                "roles": approvers,
                "role": roles[0],
            },
        )
    return InputError(
        f"{why}; a {kind} in a case under {regime} is approved only by a user enrolled as "
        f"{approvers} (enrolled who may: {', '.join(repr(u) for u in could)})",
        field=field,
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
        unknown = set(spec) - {
            "description",
            "record",
            "regimes",
            "own_agency",
            "actions",
            "approves",
            "sees",
        }
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        record = _names(spec, "record", where)
        bad = record - set(EVENT_TYPES) - {"*"}
        if bad:
            raise ValueError(f"{where}.record: unknown types {sorted(bad)}")
        actions = _names(spec, "actions", where)
        if actions - set(ACTIONS):
            raise ValueError(f"{where}.actions: unknown {sorted(actions - set(ACTIONS))}")
        approves = _names(spec, "approves", where)
        if approves - set(APPROVABLE):
            raise ValueError(
                f"{where}.approves: {sorted(approves - set(APPROVABLE))} cannot be approved "
                f"(entry types that carry {APPROVER_FIELD}: {', '.join(APPROVABLE)})"
            )
        regimes = _names(spec, "regimes", where) if spec.get("regimes") is not None else None
        if regimes is not None and regimes - set(REGIMES):
            raise ValueError(f"{where}.regimes: unknown {sorted(regimes - set(REGIMES))}")
        own_agency = spec.get("own_agency", False)
        if not isinstance(own_agency, bool):
            raise ValueError(f"{where}.own_agency must be true or false, not {own_agency!r}")
        sees = spec.get("sees", "all")
        if sees not in SEES:
            raise ValueError(
                f"{where}.sees must be one of {', '.join(repr(v) for v in SEES)}, not {sees!r}"
            )
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
            approves=approves,
            sees=str(sees),
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
    origin = "ledger/data/policy.toml"
    return require_approvers(parse_policy(tomllib.loads(default_policy_text()), origin), origin)


def require_approvers(policy: Policy, origin: str) -> Policy:
    """A policy being put in force must say who approves each type that needs approval
    (else no such entry could be recorded).  Policies recorded before ``approves``
    existed still fold, and the refusal of each such entry then says how to fix it."""
    missing = [t for t in APPROVABLE if not any(t in r.approves for r in policy.roles.values())]
    if missing:
        raise ValueError(
            f"{origin}: no role approves {', '.join(missing)}; give the decision-makers' "
            f'roles approves = ["{missing[0]}"] (normally chair and safeguarding-partner)'
        )
    return policy


def policy_sha256(text: str) -> str:
    """The SHA-256 (hex) of a policy's text, as recorded in ``PolicyChanged``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_policy_text(path: str) -> str:
    """A policy file's text (validated when it is recorded); an unreadable file is an
    input error naming the reason (exit code 2)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the policy file {path}: {exc}", field="file") from None


def policy_from_text(text: str, origin: str) -> Policy:
    """Validate a policy's TOML text; a bad one is an input error with the reason."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            f"the policy cannot be used: {origin} is not TOML ({exc})", field="file"
        ) from None
    try:
        return require_approvers(parse_policy(document, origin), origin)
    except ValueError as exc:
        raise InputError(f"the policy cannot be used: {exc}", field="file") from None


POLICY_ENV = "CASELEDGER_POLICY"


def refuse_client_policy(environ: dict[str, str]) -> None:
    """``CASELEDGER_POLICY`` is no longer read: a client could use it to widen what it may
    do.  Setting it is refused with the reason, rather than silently ignored."""
    if environ.get(POLICY_ENV):
        raise UsageError(
            f"{POLICY_ENV} is no longer read: a store's policy is part of its record, which "
            f"an admin changes by recording a new policy (unset {POLICY_ENV} to go on)",
            field=POLICY_ENV,
            code="client-policy",
            params={"env": POLICY_ENV},
        )


def normalise_user_name(user: str) -> str:
    """A user name as enrolled: NFC, without surrounding spaces; empty names and names
    with control characters are refused."""
    name = unicodedata.normalize("NFC", user.strip())
    if not name:
        raise UsageError("the user name is empty", field="name")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise UsageError("the user name holds a control or format character", field="name")
    return name
