"""The business unit's forms: one per entry type, built from the catalogue, recorded through
the CLI's own path.

A form is read from the entry type's pydantic model (``ledger.catalogue.registry.KINDS``),
the same source the one-entry commands (``caseledger decide``) are generated from: each
field becomes an input, a ``Literal`` vocabulary a choice (``choices_of``, which the
commands' prompts offer), a required field a required mark, so a form cannot offer what the
catalogue refuses nor leave out what it needs. A submission is turned into the fields a
person would have typed at the command line and given to :func:`ledger.api.record_entry`
(the same validation, policy, personal-data screen and hash chain as ``caseledger decide``);
every problem the facade names is shown next to its field at once and nothing is written; a
recorded entry gets a confirmation page with its reference and hash.

Cross-site request forgery: every POST must carry the token of the form it came from
(:class:`CsrfGuard`): a random session value in a ``SameSite=Strict``, ``HttpOnly`` cookie,
and in the form the same value signed (``itsdangerous``); :class:`CsrfMiddleware` refuses
any POST without a valid pair (403) before an endpoint runs.

Why one module: the form's description, the reading of a submission back into fields, the
CSRF guard and the routes are one feature whose parts change together (a new widget kind is
described, read back and rendered at once).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from cli.web.identity import Identity, enrolment
from cli.web.respond import respond
from ledger import api as ledger_api
from ledger.catalogue.fields import MAX_TEXT_CHARS
from ledger.catalogue.registry import KINDS, EventKind
from ledger.errors import InputError, each_problem, gathered
from ledger.importing.entry_form import (
    choices_of,
    field_kind,
    key_choices_of,
    unwrap,
    validated_entry,
)

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
    title: str
    """The type in words (``Discussion held``)."""

    def to_json(self) -> dict[str, Any]:
        """What the form's page answers with ``Accept: application/json``."""
        return {
            "type": self.entry_type,
            "command": self.command,
            "title": self.title,
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


def _form_field(name: str, info: FieldInfo) -> FormField:
    annotation, required = info.annotation, info.is_required()
    kind = field_kind(annotation)
    core, optional = unwrap(annotation)
    choices = tuple(choices_of(annotation))
    label = _label(name)
    if name == "occurred_at":
        return FormField(
            name,
            "When it happened",
            kind,
            "text",
            False,
            hint="YYYY-MM-DD or YYYY-MM-DDTHH:MM (Europe/London); empty: now",
        )
    if kind == "bool":
        offered = ("yes", "no", "unknown") if optional else ("yes", "no")
        return FormField(name, label, kind, "select", required, offered)
    if kind == "list":
        if choices:
            return FormField(name, label, kind, "checkboxes", required, choices)
        return FormField(name, label, kind, "lines", required, hint="one per line")
    if kind == "object-list":
        return FormField(
            name, label, kind, "lines", required, hint="one per line: title|ref or title|ref|sha256"
        )
    if kind == "mapping":
        keys = tuple(key_choices_of(annotation))
        if keys:  # criteria: a finding and a reason for each of the regime's criteria
            return FormField(
                name,
                label,
                kind,
                "criteria",
                required,
                keys,
                hint="a finding and its reason for each criterion of the case's regime",
            )
        if isinstance(core, type) and issubclass(core, BaseModel):  # factors
            return FormField(
                name,
                label,
                kind,
                "subfields",
                required,
                tuple(core.model_fields),
                hint="each optional",
            )
        return FormField(
            name,
            label,
            kind,
            "lines",
            required,
            hint="one per line: key=value (values in JSON where not plain text)",
        )
    if choices:
        return FormField(name, label, kind, "select", required, choices)
    if core is date:
        return FormField(name, label, kind, "date", required, hint="YYYY-MM-DD")
    long = _long_text(annotation) or any(
        getattr(meta, "max_length", None) == MAX_TEXT_CHARS for meta in info.metadata
    )  # pydantic keeps a required field's constraints apart from its annotation
    return FormField(name, label, kind, "textarea" if long else "text", required)


#: The fields every entry has (the envelope's), shown after the type's own.
ENVELOPE: Final[tuple[str, ...]] = ("occurred_at", "sources", "note")


def form_of(kind: EventKind) -> EntryForm:
    """The form of an entry type: every field of its model but ``type`` and ``case``, as
    the catalogue types it; the type's own fields first, in the catalogue's order, then
    when it happened, its sources and a note (the envelope every entry shares)."""
    named = {n: i for n, i in kind.model.model_fields.items() if n not in ("type", "case")}
    order = [n for n in named if n not in ENVELOPE] + [n for n in ENVELOPE if n in named]
    fields = tuple(_form_field(name, named[name]) for name in order)
    title = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", kind.name)
    return EntryForm(
        kind.name,
        kind.command,
        (kind.model.__doc__ or "").strip(),
        fields,
        title[:1] + title[1:].lower(),
    )


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
                        InputError(
                            "a form cannot name a file (@...): type the values", field=f.name
                        )
                    )
                    continue
                sub.fields[f.name] = items or None
            else:
                sub.fields[f.name] = text.strip() or None
    return sub


def problems_by_field(error: InputError, form: EntryForm) -> tuple[dict[str, list[str]], list[str]]:
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
    ``itsdangerous``'s timed signature of that value under a secret of the server's, so a
    token is good only with its own cookie, for :data:`CSRF_MAX_AGE`.  Another site can
    read neither the cookie nor the form (the same-origin policy), and the browser sends
    no cookie with its cross-site POST."""

    def __init__(self, secret: bytes | None = None, *, secure: bool = False) -> None:
        from itsdangerous import URLSafeTimedSerializer

        self._signer = URLSafeTimedSerializer(
            secret or secrets.token_bytes(32), salt="caseledger-form"
        )
        self.secure = secure

    def session_of(self, request: Request) -> str | None:
        """The request's session value (None: it has no cookie yet)."""
        value = request.cookies.get(CSRF_COOKIE)
        return value if value and len(value) <= 100 else None

    def token(self, session: str) -> str:
        """The token the forms of a session carry."""
        return str(self._signer.dumps({"s": session}))

    def valid(self, session: str | None, token: str | None) -> bool:
        """Whether ``token`` was issued by this server for this session, not too long ago."""
        from itsdangerous import BadData

        if not session or not token:
            return False
        try:
            payload = self._signer.loads(token, max_age=CSRF_MAX_AGE)
        except BadData:
            return False
        return isinstance(payload, dict) and secrets.compare_digest(
            str(payload.get("s", "")), session
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


def csrf_token(request: Request) -> str:
    """The token the forms of this request's page carry (:class:`CsrfMiddleware` put it
    on the request)."""
    return str(request.scope.get("state", {}).get("csrf_token", ""))


class CsrfMiddleware:
    """Gives every browser its session value and every page its forms' token, and
    refuses every POST (PUT, PATCH, DELETE) without a valid token (403), before any
    endpoint reads it.

    The body is read once (at most :data:`MAX_BODY`, else 413), its ``csrf_token`` field
    checked against the session cookie, and handed on unchanged.  A cross-site request
    (``Sec-Fetch-Site: cross-site``) is refused whatever it carries.
    ``refuse(scope, status, reason)`` is the page that says so."""

    def __init__(
        self,
        app: ASGIApp,
        guard: CsrfGuard,
        refuse: Callable[[MutableMapping[str, Any], int, str], Response],
    ) -> None:
        self.app = app
        self.guard = guard
        self.refuse = refuse

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = self.guard.session_of(Request(scope))
        fresh = session is None
        if session is None:
            session = new_session()
        scope.setdefault("state", {})["csrf_token"] = self.guard.token(session)

        async def send_with_cookie(message: Any) -> None:
            if fresh and message["type"] == "http.response.start":
                cookie = Response()
                self.guard.set_cookie(cookie, session)
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in cookie.raw_headers if h[0] == b"set-cookie"),
                ]
            await send(message)

        if scope["method"] not in _UNSAFE:
            await self.app(scope, receive, send_with_cookie)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > MAX_BODY:
                await self.refuse(scope, 413, "The form sent more than the server accepts.")(
                    scope, receive, send_with_cookie
                )
                return
            if not message.get("more_body", False):
                break
        reason = None if not fresh else "The form came without this browser's session."
        if reason is None:
            reason = await self._problem(scope, bytes(body), session)
        if reason is not None:
            await self.refuse(scope, 403, reason)(scope, receive, send_with_cookie)
            return
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_cookie)

    async def _problem(
        self, scope: MutableMapping[str, Any], body: bytes, session: str
    ) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("sec-fetch-site") == "cross-site":
            return "A form of another site cannot send anything here."
        delivered = False

        async def once() -> Any:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            data = await Request(scope, once).form(max_files=10, max_fields=2000)
        except Exception:  # a body that is no form has no token to find: refused below
            return "The form could not be read; reload the page and send it again."
        token = data.get(CSRF_FIELD)
        await data.close()
        if not self.guard.valid(session, token if isinstance(token, str) else None):
            return (
                "The form's security token is missing, expired or not this browser's: "
                "reload the page and send it again (nothing was recorded)."
            )
        return None


# --- the pages ----------------------------------------------------------------------------


def _ledger(request: Request) -> ledger_api.CaseLedger:
    store: Callable[[], ledger_api.CaseLedger] = request.app.state.ledger
    return store()


def _identity(request: Request) -> Identity:
    identity: Identity = request.state.identity
    return identity


def recording_roles(request: Request) -> Callable[[str], list[str]]:
    """For an entry type, which of the user's enrolled roles the store's recorded policy
    lets record it (the facade checks it again when the entry is recorded); the register
    is read once."""
    policy = ledger_api.show_policy(_ledger(request)).policy
    roles, _ = enrolment(request, _identity(request))

    def allowed(entry_type: str) -> list[str]:
        return [r for r in roles if r in policy.roles and policy.roles[r].may_record(entry_type)]

    return allowed


def _own_agency(request: Request, roles: Sequence[str]) -> str | None:
    """The user's agency, where the policy binds every role they record under to it."""
    policy = ledger_api.show_policy(_ledger(request)).policy
    _, agency = enrolment(request, _identity(request))
    if agency and roles and all(policy.roles[r].own_agency for r in roles):
        return agency
    return None


def _form(request: Request) -> EntryForm:
    command = request.path_params["command"]
    form = FORMS.get(command)
    if form is None:
        raise InputError(
            f"{command!r} records no entry type; the forms are "
            + ", ".join(f.command for f in form_order()),
            field="command",
        )
    return form


def _refusal(request: Request, form: EntryForm, case: str) -> Response:
    identity = _identity(request)
    roles = ", ".join(enrolment(request, identity)[0]) or "none"
    reason = (
        f"{identity.name} (roles: {roles}) may not record {form.entry_type} entries under "
        "this store's policy; nothing was recorded."
    )
    data = {"error": "Not allowed", "status": 403, "problems": [{"field": None, "reason": reason}]}
    context = {"title": "Not allowed", "status": 403, "problems": data["problems"], "case": case}
    return respond(request, "error.html", context, data, 403)


def _page(
    request: Request,
    form: EntryForm,
    case: str,
    roles: Sequence[str],
    *,
    shown: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    apart: Sequence[str] = (),
    role: str | None = None,
    status: int = 200,
) -> Response:
    agency = _own_agency(request, roles)
    values = dict(shown or {})
    if agency and not values.get("agency"):
        values["agency"] = agency
    problems: list[dict[str, str | None]] = [
        {"field": name, "reason": r} for name, rs in (errors or {}).items() for r in rs
    ]
    problems += [{"field": None, "reason": r} for r in apart]
    data = {
        "case": case,
        "form": form.to_json(),
        "roles": list(roles),
        "own_agency": agency,
        "problems": problems,
        "csrf_token": csrf_token(request),
    }
    context = {
        "title": f"{form.entry_type} · {case}",
        "page": "form",
        "case": case,
        "form": form,
        "roles": roles,
        "role": role or (roles[0] if roles else ""),
        "own_agency": agency,
        "values": values,
        "errors": errors or {},
        "apart": apart,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request),
        "count": len(problems),
    }
    return respond(request, "form.html", context, data, status)


def forms_index(request: Request) -> Response:
    """``/cases/{case}/record``: the forms of one case, the everyday ones first, each
    marked with whether the user may record it."""
    case = request.path_params["case"]
    allowed = recording_roles(request)
    offered = [
        {
            "command": f.command,
            "type": f.entry_type,
            "title": f.title,
            "description": f.description,
            "allowed": bool(allowed(f.entry_type)),
        }
        for f in form_order()
    ]
    data = {"case": case, "forms": offered}
    context = {
        "title": f"Record in {case}",
        "page": "form",
        "case": case,
        "forms": offered,
        "everyday": len(EVERYDAY),
    }
    return respond(request, "forms.html", context, data)


def show_form(request: Request) -> Response:
    """``GET /cases/{case}/record/{command}``: the empty form (403 for a user whose roles
    may not record its type: an inspector never gets a form)."""
    form = _form(request)
    case = request.path_params["case"]
    roles = recording_roles(request)(form.entry_type)
    if not roles:
        return _refusal(request, form, case)
    return _page(request, form, case, roles)


def record(request: Request, data: FormData) -> Response:
    """``POST /cases/{case}/record/{command}``: the submission recorded through
    :func:`ledger.api.record_entry`, as the entry command records it, or shown again with
    every problem next to its field (422, nothing written)."""
    form = _form(request)
    case = request.path_params["case"]
    roles = recording_roles(request)(form.entry_type)
    if not roles:
        return _refusal(request, form, case)
    sub = read_submission(form, data)
    role = str(data.get("role") or "") or None
    if role is not None and role not in roles:
        sub.problems.append(
            InputError(f"{role} is not one of your roles that may record this", field="role")
        )
    errors: dict[str, list[str]] = {}
    apart: list[str] = []
    if sub.problems:
        errors, apart = problems_by_field(gathered(sub.problems), form)
    try:
        if sub.problems:  # the facade's own problems too, all at once; nothing is written
            rest = {k: v for k, v in sub.fields.items() if k not in errors}
            validated_entry(form.entry_type, case, rest)
        else:
            recorded = ledger_api.record_entry(
                _ledger(request), form.entry_type, case, role=role, **sub.fields
            )
            receipt = recorded.receipts[0]
            out = {"case": case, "type": form.entry_type, **recorded.to_json()[0]}
            context = {
                "title": f"Recorded: {receipt.ref}",
                "page": "form",
                "case": case,
                "receipt": receipt,
                "form": form,
            }
            return respond(request, "form_done.html", context, out, 201)
    except InputError as error:
        more, more_apart = problems_by_field(error, form)
        for name, reasons in more.items():
            errors.setdefault(name, []).extend(reasons)
        apart.extend(more_apart)
    return _page(
        request,
        form,
        case,
        roles,
        shown=sub.shown,
        errors=errors,
        apart=apart,
        role=role,
        status=422,
    )


#: The forms' pages: path, function, methods, name (``app.py`` mounts them).
ROUTES: Final = (
    ("/cases/{case}/record", forms_index, ["GET"], "forms"),
    ("/cases/{case}/record/{command}", show_form, ["GET"], "form"),
)
#: The one POST: its function reads the submitted form first.
POST_ROUTES: Final = (("/cases/{case}/record/{command}", record, ["POST"], "record"),)
