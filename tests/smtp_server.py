"""A real SMTP server for the digest's tests: ``aiosmtpd`` on 127.0.0.1 at a free port,
keeping every message it accepts, optionally with STARTTLS (a certificate made in the
test with ``cryptography``) and log-in, and with handlers that misbehave on purpose."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

USER = "bu.manager"
VALID_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
VALID_TO = dt.datetime(2099, 12, 31, tzinfo=dt.UTC)
PASSWORD = "correct horse battery staple"


class Mailbox:
    """A handler that accepts every message and keeps it, with how the session was."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.sessions: list[dict[str, Any]] = []
        self.data_calls = 0

    @property
    def messages(self) -> list[EmailMessage]:
        """The accepted messages, parsed."""
        found = []
        for envelope in self.envelopes:
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_calls += 1
        self.envelopes.append(envelope)
        self.sessions.append(
            {
                "tls": session.ssl is not None,
                "authenticated": bool(session.authenticated),
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
            }
        )
        return "250 OK"


class BusyOnce(Mailbox):
    """Says "try again later" (421) to the first recipient of the first session."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if not self.refused:
            self.refused += 1
            return "451 4.3.2 busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class HangsUpAfterTaking(Mailbox):
    """Accepts the message (250), then drops the connection instead of answering QUIT."""

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        server.transport.abort()
        return "221 never heard"


class BreaksWhileTaking(Mailbox):
    """Keeps the message, then drops the connection before answering the data: the
    client cannot know whether it was delivered."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await super().handle_DATA(server, session, envelope)
        server.transport.abort()
        return "250 OK"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    """The one user and password the server knows."""
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # the server answers 535 on a failure


@contextmanager
def smtp_server(handler: Mailbox | None = None, **options: Any) -> Iterator[tuple[Mailbox, int]]:
    """A running server on 127.0.0.1 (its mailbox and port), stopped afterwards;
    ``options`` are ``aiosmtpd.smtp.SMTP``'s (``tls_context``, ``require_starttls``...)."""
    box = handler if handler is not None else Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@dataclass(frozen=True)
class Certificates:
    """A certificate authority made for one test and a server certificate it signed for
    127.0.0.1 and localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """The server's side of STARTTLS."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificates(folder: Path) -> Certificates:
    """A fresh certificate authority and a server certificate, valid from 2000 to 2099:
    fixed dates, as OpenSSL checks them by the real clock, which a test that moves
    Python's clock (``CASELEDGER_TEST_TODAY``) does not move."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "caseledger test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_TO)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_TO)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    found = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    found.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    found.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found
