"""The business unit's forms: one per entry type, built from the catalogue, recorded
through the CLI's own path.

A form is read from the entry type's pydantic model (:data:`ledger.catalogue.registry.KINDS`),
the same source the one-entry commands (``caseledger decide``) are generated from: each
field becomes an input, a ``Literal`` vocabulary a choice (``cli.commands.prompts.choices_of``),
a required field a required mark, so a form cannot offer what the catalogue refuses nor
leave out what it needs.  A submission is turned into the fields a person would have typed
at the command line and given to :func:`ledger.api.record_entry` (the same validation,
policy, personal-data screen and hash chain as ``caseledger decide``); every problem the
facade names is shown next to its field at once and nothing is written; a recorded entry
gets a confirmation page with its reference and hash.

Cross-site request forgery: every POST must carry the token of the form it came from
(:class:`CsrfGuard`): a random session value in a ``SameSite=Strict``, ``HttpOnly``
cookie, and in the form the same value signed (``itsdangerous``) together with the user
it was issued to; :class:`CsrfMiddleware` refuses any POST without a valid pair (403)
before an endpoint runs.

Why one module: the form's description, the reading of a submission back into fields,
the CSRF guard and the routes are one feature whose parts change together (a new widget
kind is described, read back and rendered at once).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, get_args

from pydantic import BaseModel
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from cli.commands.prompts import choices_of, key_choices_of
from ledger.catalogue.fields import MAX_TEXT_CHARS
from ledger.catalogue.registry import KINDS, EventKind
from ledger.errors import InputError, LedgerError, each_problem
from ledger.importing.entry_form import field_kind, unwrap

#: The entries a business unit records every day, in the order the index offers them;
#: every other type of the catalogue has a form too, listed after them.
EVERYDAY: Final[tuple[str, ...]] = (
    "InformationRequested",
    "InformationReceived",
    "InformationDeclined",
    "DiscussionHeld",
    "RecommendationMade",
    "DecisionDelayed",
    "DecisionMade",
    "EntryCorrected",
)

#: Each type's kind, by the command that records it (``decide``): the form's address.
KIND_BY_COMMAND: Final[Mapping[str, EventKind]] = {kind.command: kind for kind in KINDS}

_FINDINGS: Final[tuple[str, ...]] = ("met", "not-met", "unclear")

# --- the form, from the catalogue ----------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    """One input of a form, as the catalogue types its field."""

    name: str
    """The catalogue's field (``decided_by``)."""
    label: str
    kind: str
    """``scalar``, ``bool``, ``list``, ``mapping`` or ``object-list`` (the CLI's kinds)."""
    widget: str
    """How it is shown: ``text``, ``textarea``, ``date``, ``select``, ``checkboxes``,
    ``lines`` (one item a line), ``criteria``, ``subfields``."""
    required: bool
    choices: tuple[str, ...] = ()
    """A vocabulary offered (a select, checkboxes; criteria's names; a mapping's keys)."""
    hint: str = ""

    def to_json(self) -> dict[str, Any]:
        """The field as the form's JSON describes it."""
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "widget": self.widget,
            "required": self.required,
            "choices": list(self.choices),
            "hint": self.hint,
        }


@dataclass(frozen=True)
class EntryForm:
    """The form of one entry type."""

    entry_type: str
    command: str
    description: str
    fields: tuple[FormField, ...]

    def to_json(self) -> dict[str, Any]:
        """What the form's page answers with ``Accept: application/json``."""
        return {
            "type": self.entry_type,
            "command": self.command,
            "description": self.description,
            "fields": [f.to_json() for f in self.fields],
        }


def _label(name: str) -> str:
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _long_text(annotation: Any) -> bool:
    """Whether a text field is free text (``Text``: a textarea) rather than a name."""
    for arg in get_args(annotation):
        if _long_text(arg):
            return True
    for meta in getattr(annotation, "__metadata__", ()):
        if getattr(meta, "max_length", None) == MAX_TEXT_CHARS:
            return True
    return False


def _form_field(name: str, annotation: Any, required: bool) -> FormField:
    kind = field_kind(annotation)
    core, optional = unwrap(annotation)
    choices = tuple(choices_of(annotation))
    label = _label(name)
    if name == "occurred_at":
        return FormField(
            name, "When it happened", kind, "text", False, hint="YYYY-MM-DD or "
            "YYYY-MM-DDTHH:MM (Europe/London); empty: now"
        )
    if kind == "bool":
        offered = ("yes", "no", "unknown") if optional else ("yes", "no")
        return FormField(name, label, kind, "select", required, offered)
    if kind == "list":
        if choices:
            return FormField(name, label, kind, "checkboxes", required, choices)
        return FormField(name, label, kind, "lines", required, hint="one a line")
    if kind == "object-list":
        return FormField(name, label, kind, "lines", required, hint="one a line: title|ref or title|ref|sha256")
    if kind == "mapping":
        keys = tuple(key_choices_of(annotation))
        if keys:  # criteria: a finding and a reason for each of the regime's criteria
            return FormField(
                name, label, kind, "criteria", required, keys,
                hint="a finding and its reason for each criterion of the case's regime",
            )
        if isinstance(core, type) and issubclass(core, BaseModel):  # factors
            return FormField(
                name, label, kind, "subfields", required, tuple(core.model_fields),
                hint="each optional",
            )
        return FormField(
            name, label, kind, "lines", required,
            hint="one a line: key=value (values in JSON where not plain text)",
        )
    if choices:
        return FormField(name, label, kind, "select", required, choices)
    if core is date:
        return FormField(name, label, kind, "date", required, hint="YYYY-MM-DD")
    return FormField(name, label, kind, "textarea" if _long_text(annotation) else "text", required)


def form_of(kind: EventKind) -> EntryForm:
    """The form of an entry type: every field of its model but ``type`` and ``case``, in
    the catalogue's order (as the command's options)."""
    fields = tuple(
        _form_field(name, info.annotation, info.is_required())
        for name, info in kind.model.model_fields.items()
        if name not in ("type", "case")
    )
    return EntryForm(kind.name, kind.command, (kind.model.__doc__ or "").strip(), fields)


FORMS: Final[Mapping[str, EntryForm]] = {kind.command: form_of(kind) for kind in KINDS}
"""Every entry type's form, by its command (``decide``)."""


def form_order() -> list[EntryForm]:
    """The forms in the order a business unit looks for them: the everyday ones first."""
    everyday = [FORMS[k.command] for n in EVERYDAY for k in KINDS if k.name == n]
    return everyday + [f for f in FORMS.values() if f not in everyday]


# --- a submission, back into fields --------------------------------------------------------


@dataclass
class Submission:
    """What a submitted form gives: the fields for :func:`ledger.api.record_entry`, the
    values to show again, and the problems found before the facade was asked."""

    fields: dict[str, Any] = field(default_factory=dict)
    shown: dict[str, Any] = field(default_factory=dict)
    problems: list[InputError] = field(default_factory=list)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_submission(form: EntryForm, data: FormData) -> Submission:
    """The fields of a submitted form, each as a person would type its option (``yes``,
    ``title|ref`` items, ``key=value`` items), criteria and factors as mappings.  An empty
    input is left out (the catalogue then refuses it if required).  A value naming a file
    (``@file.json``, which the command line reads) is refused: a form reads no file of
    the server's."""
    sub = Submission()
    for f in form.fields:
        if f.widget == "checkboxes":
            picked = [str(v) for v in data.getlist(f.name) if str(v)]
            sub.shown[f.name] = picked
            sub.fields[f.name] = picked or None
        elif f.widget == "criteria":
            criteria: dict[str, Any] = {}
            shown: dict[str, dict[str, str]] = {}
            for key in f.choices:
                finding = str(data.get(f"{f.name}.{key}.finding") or "").strip()
                reason = str(data.get(f"{f.name}.{key}.reason") or "").strip()
                shown[key] = {"finding": finding, "reason": reason}
                if finding or reason:
                    criteria[key] = {"finding": finding, "reason": reason}
            sub.shown[f.name] = shown
            sub.fields[f.name] = criteria or None
        elif f.widget == "subfields":
            parts = {k: str(data.get(f"{f.name}.{k}") or "").strip() for k in f.choices}
            sub.shown[f.name] = parts
            sub.fields[f.name] = {k: v for k, v in parts.items() if v} or None
        else:
            text = str(data.get(f.name) or "")
            sub.shown[f.name] = text
            if f.widget == "lines":
                items = _lines(text)
                if any(item.startswith("@") for item in items):
                    sub.problems.append(
                        InputError("a form cannot name a file (@...): type the values", field=f.name)
                    )
                    continue
                sub.fields[f.name] = items or None
            else:
                sub.fields[f.name] = text.strip() or None
    return sub


def problems_by_field(
    error: InputError, form: EntryForm
) -> tuple[dict[str, list[str]], list[str]]:
    """The facade's problems placed on the form: each under its top field
    (``criteria harm.reason`` under ``criteria``, with its inner part kept in the words),
    and those of no field of the form (the case, who records, the store) apart."""
    names = {f.name for f in form.fields} | {"role"}
    placed: dict[str, list[str]] = {}
    apart: list[str] = []
    for problem in each_problem(error):
        top, _, inner = (problem.field or "").partition(" ")
        reason = f"{inner}: {problem.reason}" if inner else problem.reason
        if top in names:
            placed.setdefault(top, []).append(reason)
        elif top:
            apart.append(f"{top}: {problem.reason}")
        else:
            apart.append(problem.reason)
    return placed, apart


# --- cross-site request forgery ------------------------------------------------------------

CSRF_COOKIE: Final = "caseledger_session"
CSRF_FIELD: Final = "csrf_token"
#: How long a form's token stays good: a working day, then the page must be reloaded.
CSRF_MAX_AGE: Final = 12 * 3600
_UNSAFE: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The most a POST may send (a bundle to verify is the largest): more is refused (413).
MAX_BODY: Final = 64 * 1024 * 1024


class CsrfGuard:
    """Issues and checks the tokens of a synchronizer-token pattern.

    The session value is random (32 bytes) and lives in a ``SameSite=Strict``,
    ``HttpOnly`` cookie (``Secure`` in host mode, served over HTTPS); each form carries
    ``itsdangerous``'s signature of that value and the user's name under a secret of the
    server's, so a token is good only with its own cookie, for its own user, for
    :data:`CSRF_MAX_AGE`.  Another site can neither read the cookie nor the form (the
    same-origin policy), and the browser sends no cookie with its cross-site POST."""

    def __init__(self, secret: bytes | None = None, *, secure: bool = False) -> None:
        from itsdangerous import URLSafeTimedSerializer

        self._signer = URLSafeTimedSerializer(secret or secrets.token_bytes(32), salt="caseledger-form")
        self.secure = secure

    def session_of(self, request: Request) -> str | None:
        """The request's session value (None: it has no cookie yet)."""
        value = request.cookies.get(CSRF_COOKIE)
        return value if value and len(value) <= 100 else None

    def token(self, session: str, user: str) -> str:
        """The token a form of ``user``'s session carries."""
        return str(self._signer.dumps({"s": session, "u": user}))

    def valid(self, session: str | None, user: str, token: str | None) -> bool:
        """Whether ``token`` was issued by this server for this session and user."""
        from itsdangerous import BadData

        if not session or not token:
            return False
        try:
            payload = self._signer.loads(token, max_age=CSRF_MAX_AGE)
        except BadData:
            return False
        return (
            isinstance(payload, dict)
            and secrets.compare_digest(str(payload.get("s", "")), session)
            and payload.get("u") == user
        )

    def set_cookie(self, response: Response, session: str) -> None:
        """Give the browser its session value (once: it is then sent with every request)."""
        response.set_cookie(
            CSRF_COOKIE, session, httponly=True, samesite="strict", secure=self.secure, path="/"
        )


def new_session() -> str:
    """A fresh random session value."""
    return secrets.token_urlsafe(32)


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class CsrfMiddleware:
    """Refuses every POST (PUT, PATCH, DELETE) that does not carry a valid token (403),
    before any endpoint reads it: the body is read once (at most :data:`MAX_BODY`), its
    ``csrf_token`` field checked against the session cookie and the request's user, and
    handed on unchanged.  A cross-site request (``Sec-Fetch-Site: cross-site``) is
    refused whatever it carries.  ``user_of(scope)`` is who the request is for (the
    identity middleware's answer); ``refuse(scope, reason)`` renders the 403 page."""

    def __init__(
        self,
        app: ASGIApp,
        guard: CsrfGuard,
        user_of: Callable[[MutableMapping[str, Any]], str | None],
        refuse: Callable[[MutableMapping[str, Any], int, str], Response],
    ) -> None:
        self.app = app
        self.guard = guard
        self.user_of = user_of
        self.refuse = refuse

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http" or scope["method"] not in _UNSAFE:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > MAX_BODY:
                await self.refuse(scope, 413, "The form sent more than the server accepts.")(
                    scope, receive, send
                )
                return
            if not message.get("more_body", False):
                break
        reason = await self._problem(scope, bytes(body))
        if reason is not None:
            await self.refuse(scope, 403, reason)(scope, receive, send)
            return
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _problem(self, scope: MutableMapping[str, Any], body: bytes) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("sec-fetch-site") == "cross-site":
            return "A form of another site cannot send entries here."
        delivered = False

        async def once() -> Any:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        request = Request(scope, once)
        try:
            data = await request.form(max_files=10, max_fields=2000)
        except Exception:  # a malformed body has no token to find
            return "The form could not be read; reload the page and send it again."
        token = data.get(CSRF_FIELD)
        await data.close()
        user = self.user_of(scope)
        if user is None:
            return "Nobody is identified for this request."
        if not self.guard.valid(
            self.guard.session_of(request), user, token if isinstance(token, str) else None
        ):
            return (
                "The form's security token is missing, expired or not yours: reload the "
                "page and send it again (nothing was recorded)."
            )
        return None


def may_record(policy_roles: Mapping[str, Iterable[str]], roles: Sequence[str], entry_type: str) -> list[str]:
    """Which of a user's ``roles`` the policy (each role's ``record`` list) lets record
    ``entry_type``."""
    return [
        r for r in roles if entry_type in set(policy_roles.get(r, ())) or "*" in set(policy_roles.get(r, ()))
    ]


def refused_by_store(error: LedgerError) -> bool:
    """Whether a refusal is the store's (the database refusing the user) rather than
    the entry's."""
    return not isinstance(error, InputError)
