"""Sending the digest: the mail server's settings and one careful delivery over SMTP.

The settings come from ``CASELEDGER_SMTP`` (a URL, when set) or else from the ``[smtp]``
table of ``caseledger.toml`` (in the current folder, or the file ``CASELEDGER_CONFIG``
names)::

    [smtp]
    host = "smtp.example.org"
    port = 587
    starttls = true
    username = "bu.manager"
    password_file = "/home/bu/.config/caseledger/smtp-password"
    from = "Safeguarding business unit <sbu@example.org>"

    CASELEDGER_SMTP=smtp://bu.manager@smtp.example.org:587?starttls=1&password_file=/path&from=sbu@example.org

``ca_file`` (both forms) names the certificate authority of a relay that uses its own.
The password is read only from its file, never from the URL or the command line, and is
only ever sent after STARTTLS.  A missing or bad setting is a usage error naming it
(``smtp.host``); a server that cannot be reached, or that will not encrypt, is
:class:`MailServerUnavailable` naming the server.

Delivery is at most once: connecting, greeting, encryption, log-in, the sender and the
recipients are retried after a temporary failure (nothing has been handed over yet), but
once the message's data has been sent, a connection that breaks before the server's
answer is not retried, because the server may already have taken it.  A server that
hangs up after accepting the message has delivered it.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from ledger.errors import StoreUnavailable, UsageError

__all__ = [
    "CONFIG_FILE",
    "Delivery",
    "MailServerUnavailable",
    "SmtpSettings",
    "mail_address",
    "send_message",
    "smtp_settings",
]

#: The configuration file read from the current folder when ``CASELEDGER_CONFIG`` is unset.
CONFIG_FILE: Final = "caseledger.toml"

#: The settings an ``[smtp]`` table (or the URL's query) may hold.
_KEYS: Final = ("host", "port", "starttls", "username", "password_file", "from", "ca_file")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
#: Retried once more after each of these pauses (seconds), while nothing is handed over.
RETRY_DELAYS: Final = (1.0, 3.0)


class MailServerUnavailable(StoreUnavailable):
    """The mail server cannot be reached, will not encrypt, or broke off (exit code 4,
    as for a store that cannot be reached)."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how the digest is sent; no password is held, only the file it is in."""

    host: str
    port: int
    starttls: bool
    sender: str
    """The ``from`` setting: the digest's From header and envelope sender."""
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    origin: str = CONFIG_FILE
    """Where the settings were read (``CASELEDGER_SMTP`` or the file), for messages."""

    @property
    def server(self) -> str:
        """``host:port``, as messages name the server."""
        return f"{self.host}:{self.port}"

    def password(self) -> str:
        """The password, read from its file now (its last line break dropped)."""
        assert self.password_file is not None
        try:
            text = self.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"the password file {self.password_file} cannot be read ({_why(exc)})",
                field="smtp.password_file",
            ) from None
        password = text.rstrip("\r\n")
        if not password:
            raise UsageError(
                f"the password file {self.password_file} is empty", field="smtp.password_file"
            )
        return password


def _why(exc: BaseException) -> str:
    """An OS or library error in a few words (its strerror where it has one)."""
    return str(getattr(exc, "strerror", None) or exc) or type(exc).__name__


def mail_address(value: str, field: str) -> str:
    """``value`` checked as one e-mail address (``name@example.org``, or with a display
    name, ``Business unit <bu@example.org>``): ASCII, no line breaks, one ``@``."""
    text = value.strip()
    if len(getaddresses([text])) != 1:
        raise UsageError(f"{value!r} is more than one address: give one at a time", field=field)
    _, address = parseaddr(text)
    local, at, domain = address.rpartition("@")
    if (
        not text
        or any(c in text for c in "\r\n")
        or not text.isascii()
        or not at
        or not local
        or "." not in domain
        or any(c.isspace() for c in address)
    ):
        raise UsageError(f"{value!r} is not an e-mail address (name@example.org)", field=field)
    return text


def _flag(value: Any, field: str, origin: str) -> bool:
    """A yes/no setting: a TOML boolean, or ``1``/``0``, ``true``/``false`` in a URL."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise UsageError(f"{origin}: must be true or false, not {value!r}", field=field)


def _settings(values: Mapping[str, Any], origin: str, base: Path) -> SmtpSettings:
    """Checked settings from a table or a URL's parts; paths relative to ``base``."""
    unknown = sorted(set(values) - set(_KEYS))
    if unknown:
        raise UsageError(
            f"{origin}: unknown setting {unknown[0]!r}; the settings are {', '.join(_KEYS)}",
            field=f"smtp.{unknown[0]}",
        )
    host = values.get("host")
    if not isinstance(host, str) or not host.strip():
        raise UsageError(f"{origin}: the mail server's host name is missing", field="smtp.host")
    starttls = _flag(values.get("starttls", True), "smtp.starttls", origin)
    port_value = values.get("port", 587 if starttls else 25)
    try:
        port = int(port_value)
    except (TypeError, ValueError):
        port = 0
    if isinstance(port_value, bool) or not 0 < port < 65536:
        raise UsageError(f"{origin}: {port_value!r} is not a port number", field="smtp.port")
    sender = values.get("from")
    if not isinstance(sender, str):
        raise UsageError(
            f"{origin}: the address the digest is sent from is missing", field="smtp.from"
        )
    paths: dict[str, Path | None] = {}
    for key in ("password_file", "ca_file"):
        given = values.get(key)
        if given is not None and (not isinstance(given, str) or not given):
            raise UsageError(f"{origin}: must be a file name", field=f"smtp.{key}")
        paths[key] = (base / given) if isinstance(given, str) else None
    username = values.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        raise UsageError(f"{origin}: the user name must be text", field="smtp.username")
    if (username is None) != (paths["password_file"] is None):
        missing = "password_file" if username is not None else "username"
        raise UsageError(
            f"{origin}: a log-in needs both a user name and a password file",
            field=f"smtp.{missing}",
        )
    if username is not None and not starttls:
        raise UsageError(
            f"{origin}: a password is sent only over an encrypted connection: turn starttls on",
            field="smtp.starttls",
        )
    ca_file = paths["ca_file"]
    if ca_file is not None and not ca_file.is_file():
        raise UsageError(f"{origin}: {ca_file} is not a file", field="smtp.ca_file")
    return SmtpSettings(
        host=host.strip(),
        port=port,
        starttls=starttls,
        sender=mail_address(sender, "smtp.from"),
        username=username,
        password_file=paths["password_file"],
        ca_file=ca_file,
        origin=origin,
    )


def _from_url(url: str) -> SmtpSettings:
    """The settings of ``CASELEDGER_SMTP``."""
    origin = "CASELEDGER_SMTP"
    parts = urlsplit(url.strip())
    if parts.scheme != "smtp":
        raise UsageError(
            f"{origin} must be a URL such as smtp://user@host:587?starttls=1&password_file=PATH",
            field="smtp",
        )
    if parts.password is not None:
        raise UsageError(
            f"{origin} holds a password: it is read only from a file (password_file=PATH)",
            field="smtp.password_file",
        )
    values: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in values:
            raise UsageError(f"{origin}: {key} is given twice", field=f"smtp.{key}")
        values[key] = value
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"{origin}: the port is not a number", field="smtp.port") from None
    if parts.hostname:
        values["host"] = parts.hostname
    if port is not None:
        values["port"] = port
    if parts.username:
        values["username"] = unquote(parts.username)
    return _settings(values, origin, Path.cwd())


def smtp_settings(
    config: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> SmtpSettings:
    """The mail server's settings: ``CASELEDGER_SMTP`` when set, else the ``[smtp]``
    table of ``config`` (default: ``CASELEDGER_CONFIG``, else ``caseledger.toml`` here)."""
    env = os.environ if environ is None else environ
    url = env.get("CASELEDGER_SMTP", "").strip()
    if url:
        return _from_url(url)
    path = Path(config if config is not None else env.get("CASELEDGER_CONFIG") or CONFIG_FILE)
    origin = str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"no mail server is set up: set CASELEDGER_SMTP, or add an [smtp] table to {origin}",
            field="smtp",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{origin} cannot be read ({_why(exc)})", field="smtp") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{origin} is not valid TOML ({exc})", field="smtp") from None
    table = document.get("smtp")
    if not isinstance(table, dict):
        raise UsageError(f"{origin} has no [smtp] table", field="smtp")
    return _settings(table, f"{origin} [smtp]", path.parent)


# --- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What the server did with the digest."""

    server: str
    message_id: str
    accepted: tuple[str, ...]
    refused: tuple[str, ...]
    """Recipients the server refused while it took the message for the others."""
    attempts: int
    hung_up: bool
    """Whether the server broke off after taking the message (it is delivered)."""

    def as_dict(self) -> dict[str, Any]:
        """The ``sent`` part of ``digest --json``."""
        return {
            "server": self.server,
            "message_id": self.message_id,
            "to": list(self.accepted),
            "refused": list(self.refused),
            "attempts": self.attempts,
        }


class _Temporary(Exception):
    """A failure before the message was handed over: trying again sends it once."""


def _said(reply: bytes | str) -> str:
    """A server's reply text, as text."""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _context(settings: SmtpSettings) -> ssl.SSLContext:
    """Certificate checking as a browser does, against ``ca_file`` when given."""
    cafile = str(settings.ca_file) if settings.ca_file is not None else None
    return ssl.create_default_context(cafile=cafile)


def _check(reply: tuple[int, bytes], what: str, permanent: Callable[[str], Exception]) -> None:
    """A 2xx reply goes on, a 4xx one is temporary, anything else is ``permanent``."""
    code, text = reply
    said = f"{code} {text.decode('utf-8', 'replace')}".strip()
    if 200 <= code < 300:
        return
    if 400 <= code < 500:
        raise _Temporary(f"{what}: {said}")
    raise permanent(f"{what}: {said}")


def _open(settings: SmtpSettings, timeout: float) -> smtplib.SMTP:
    """Connected, greeted, encrypted and logged in, or a failure saying which."""
    server = settings.server
    try:
        client = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    except smtplib.SMTPConnectError as exc:
        raise _Temporary(f"it refused the connection: {exc.smtp_code}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise _Temporary(_why(exc)) from None
    try:
        _check(client.ehlo(), "greeting", lambda s: MailServerUnavailable(f"{server}: {s}"))
        if settings.starttls:
            _encrypt(client, settings)
        if settings.username is not None:
            _log_in(client, settings)
    except smtplib.SMTPResponseException as exc:
        client.close()
        if 400 <= exc.smtp_code < 500:
            raise _Temporary(f"{exc.smtp_code}") from None
        raise MailServerUnavailable(
            f"the mail server {server} refused the session ({exc.smtp_code} "
            f"{_said(exc.smtp_error)}); nothing was sent"
        ) from None
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        client.close()
        raise _Temporary(_why(exc)) from None
    except BaseException:
        client.close()
        raise
    return client


def _encrypt(client: smtplib.SMTP, settings: SmtpSettings) -> None:
    """STARTTLS with the server's certificate checked, or a refusal: never in clear."""
    server = settings.server
    if not client.has_extn("starttls"):
        raise MailServerUnavailable(
            f"the mail server {server} does not offer STARTTLS, and the digest is sent only "
            "encrypted; nothing was sent"
        )
    try:
        client.starttls(context=_context(settings))
    except ssl.SSLCertVerificationError as exc:
        raise MailServerUnavailable(
            f"the certificate of the mail server {server} is not trusted "
            f"({exc.verify_message}); nothing was sent (a relay with a certificate authority "
            "of its own is trusted with the ca_file setting)"
        ) from None
    except ssl.SSLError as exc:
        raise MailServerUnavailable(
            f"encryption with the mail server {server} failed ({exc.reason}); nothing was sent"
        ) from None
    client.ehlo()


def _log_in(client: smtplib.SMTP, settings: SmtpSettings) -> None:
    """Log in with the user name and the password from its file."""
    assert settings.username is not None
    server = settings.server
    try:
        client.login(settings.username, settings.password())
    except smtplib.SMTPAuthenticationError as exc:
        if 400 <= exc.smtp_code < 500:
            raise _Temporary(f"log-in: {exc.smtp_code}") from None
        raise UsageError(
            f"the mail server {server} refused the user name and password ({exc.smtp_code})",
            field="smtp.password_file",
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise MailServerUnavailable(
            f"the mail server {server} offers no log-in; remove username and password_file, "
            "or choose its submission port"
        ) from None


def _hand_over(
    client: smtplib.SMTP, settings: SmtpSettings, message: EmailMessage, to: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """Sender, recipients, then the data: (accepted, refused, whether it hung up after)."""
    server = settings.server
    accepted: list[str] = []
    refused: list[str] = []
    temporary: list[str] = []
    try:
        _check(
            client.mail(parseaddr(settings.sender)[1]),
            "sender",
            lambda s: UsageError(
                f"the mail server {server} refused the sender ({s})", field="smtp.from"
            ),
        )
        for recipient in to:
            code, text = client.rcpt(parseaddr(recipient)[1])
            if 200 <= code < 300:
                accepted.append(recipient)
            elif 400 <= code < 500:
                temporary.append(f"{recipient}: {code} {text.decode('utf-8', 'replace')}")
            else:
                refused.append(recipient)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _Temporary(_why(exc)) from None
    if temporary:
        raise _Temporary("; ".join(temporary))
    if not accepted:
        raise UsageError(
            f"the mail server {server} refused every recipient ({', '.join(refused)})", field="to"
        )
    data = message.as_bytes(policy=SMTP_POLICY)
    # From here the server may have the message: a broken connection is not retried.
    try:
        code, text = client.data(data)
    except smtplib.SMTPDataError as exc:
        if 400 <= exc.smtp_code < 500:
            raise _Temporary(f"message: {exc.smtp_code}") from None
        raise MailServerUnavailable(
            f"the mail server {server} refused the digest ({exc.smtp_code} "
            f"{_said(exc.smtp_error)}); nothing was sent"
        ) from None
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise MailServerUnavailable(
            f"the connection to the mail server {server} broke while it was taking the "
            f"digest ({_why(exc)}): it may have been delivered, so it was not sent again; "
            "look for it before sending again"
        ) from None
    hung_up = False
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        hung_up = True  # the message was accepted (250) before the server went
    return tuple(accepted), tuple(refused), hung_up


def send_message(
    message: EmailMessage,
    settings: SmtpSettings,
    to: Sequence[str],
    *,
    retry_delays: Sequence[float] = RETRY_DELAYS,
    timeout: float = 30.0,
) -> Delivery:
    """Deliver ``message`` to ``to`` through the server, at most once (see the module)."""
    last = ""
    for attempt, pause in enumerate((0.0, *retry_delays), start=1):
        if pause:
            time.sleep(pause)
        try:
            client = _open(settings, timeout)
        except _Temporary as exc:
            last = str(exc)
            continue
        try:
            accepted, refused, hung_up = _hand_over(client, settings, message, to)
        except _Temporary as exc:
            last = str(exc)
            continue
        finally:
            client.close()
        return Delivery(
            settings.server, str(message["Message-ID"]), accepted, refused, attempt, hung_up
        )
    raise MailServerUnavailable(
        f"the mail server {settings.server} cannot be reached ({last}) after "
        f"{1 + len(retry_delays)} attempts; nothing was sent"
    )
