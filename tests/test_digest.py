"""The digest (issue 15 item 2): the desk as an e-mail, grouped, with no personal data,
sent once through a real SMTP server that the test starts (``tests/smtp_server.py``).

The store (``tests/desk_store.py``) has a deadline in every group on Monday 23 February
2026; every question fixes that day with ``on``.  Tests about sending itself (the
settings, encryption, retries) use an SQLite store: the store only supplies the message.
"""

from __future__ import annotations

import html
import re
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import StoreUnavailable, UsageError
from projections import api
from projections.desk.digest import PersonalValueInDigest, build_digest
from projections.queries.desk import Deadline
from tests.conftest import FixedClock, open_ledger
from tests.desk_store import ON, PERSONAL, personal_screen, record_desk
from tests.smtp_server import (
    PASSWORD,
    USER,
    BreaksWhileTaking,
    BusyOnce,
    HangsUpAfterTaking,
    authenticate,
    free_port,
    make_certificates,
    smtp_server,
)

TO = "bu.manager@example.org"
FROM = "Safeguarding business unit <sbu@example.org>"
SUBJECT = "Desk on Mon 23 Feb 2026: 1 overdue, 1 due this week, 1 next week, 2 replies to chase"


@pytest.fixture(autouse=True)
def _no_mail_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting of the person running the tests leaks in: a folder of its own, no
    ``CASELEDGER_SMTP`` or ``CASELEDGER_CONFIG``."""
    monkeypatch.delenv("CASELEDGER_SMTP", raising=False)
    monkeypatch.delenv("CASELEDGER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def desk_store(store_url: str, clock: FixedClock) -> str:
    record_desk(store_url, clock)
    return store_url


@pytest.fixture
def sqlite_desk(sqlite_url: str, clock: FixedClock) -> str:
    record_desk(sqlite_url, clock)
    return sqlite_url


def smtp_url(port: int, **query: str) -> str:
    """``CASELEDGER_SMTP`` for the test server (``starttls=0`` unless told)."""
    params = {"starttls": "0", "from": "sbu@example.org", **query}
    return f"smtp://127.0.0.1:{port}?" + "&".join(f"{k}={v}" for k, v in params.items())


def visible(page: str) -> str:
    """An HTML part as a reader sees it: tags out, characters unescaped."""
    return html.unescape(re.sub(r"<[^>]*>", " ", page))


def sections(text: str) -> dict[str, list[str]]:
    """The case references under each heading of the text part, in order."""
    found: dict[str, list[str]] = {}
    heading = None
    for line in text.splitlines():
        title = re.match(r"^([A-Z][A-Z ]+) \((\d+)\)$", line)
        if title:
            heading = title.group(1)
            found[heading] = []
        elif heading and line.startswith("- "):
            found[heading].append(line[2:].split()[0])
    return found


EXPECTED_SECTIONS = {
    "OVERDUE": ["RR-2026-050"],
    "DUE THIS WEEK": ["RR-2026-051"],
    "DUE NEXT WEEK": ["RR-2026-004"],
    "REPLIES TO CHASE": ["RR-2026-004", "RR-2026-050"],
}


def assert_no_personal_value(*texts: str) -> None:
    screen = personal_screen()
    assert screen.hit("the child, Maisie Quartermain, born 03/06/2015") is not None  # it can
    for text in texts:
        assert screen.hit(text) is None, screen.hit(text)
        for values in PERSONAL.values():
            assert values["name"] not in text


# --- what the digest says ---------------------------------------------------------------------


def test_the_digest_groups_the_desk(desk_store: str) -> None:
    led = open_ledger(desk_store)
    digest = api.digest(led, on=ON)
    assert digest.subject == SUBJECT
    assert {g.key: [d.case for d in g.deadlines] for g in digest.groups} == {
        "overdue": ["RR-2026-050"],
        "this_week": ["RR-2026-051"],
        "next_week": ["RR-2026-004"],
        "replies": ["RR-2026-004", "RR-2026-050"],
    }
    assert [d.case for d in digest.later] == ["RR-2026-052"]
    assert sections(digest.text) == EXPECTED_SECTIONS
    replies = digest.groups[3].deadlines
    assert [(d.agency, d.request_id, d.due) for d in replies] == [
        ("Northshire Education", "R6", date(2026, 2, 20)),
        ("Westmoor Police", "R2", date(2026, 2, 25)),
    ]
    assert "- RR-2026-004  Northshire Education, request R6" in digest.text
    assert "due Fri 20 Feb 2026: 1 working day over" in digest.text
    assert "- RR-2026-050  notification\n  due Mon 16 Feb 2026: 5 working days over" in digest.text
    assert "1 later deadline, after Sun 8 Mar 2026" in digest.text
    page = visible(digest.html)
    for title in ("Overdue (1)", "Due this week (1)", "Due next week (1)", "Replies to chase (2)"):
        assert title in page
    assert page.index("RR-2026-050") < page.index("RR-2026-051") < page.index("Due next week")
    assert "Westmoor Police, request R2" in page
    assert_no_personal_value(digest.text, digest.html, page, digest.subject)
    assert digest.personal_checked


def test_digest_json_is_cli_md_shape(desk_store: str, cli: Any) -> None:
    result = cli(["--store", desk_store, "digest", "--on", ON, "--json"])
    assert result.exit_code == 0, result.stderr
    body = result.json()
    assert list(body)[:4] == ["subject", "text", "html", "deadlines"]
    assert body["subject"] == SUBJECT
    assert [(d["case"], d["group"]) for d in body["deadlines"]] == [
        ("RR-2026-050", "overdue"),
        ("RR-2026-051", "this_week"),
        ("RR-2026-004", "next_week"),
        ("RR-2026-004", "replies"),
        ("RR-2026-050", "replies"),
    ]
    assert body["deadlines"][0]["clock"] == "notification" and body["deadlines"][0]["left"] == -5
    assert body["counts"] == {"overdue": 1, "this_week": 1, "next_week": 1, "replies": 2}
    assert body["later"] == 1 and body["sent"] is None and body["on"] == ON
    assert_no_personal_value(result.stdout)


def test_the_digest_for_people_is_its_text_part(desk_store: str, cli: Any) -> None:
    result = cli(["--store", desk_store, "digest", "--on", ON])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == SUBJECT
    assert sections(result.stdout) == EXPECTED_SECTIONS
    assert_no_personal_value(result.stdout)


def test_a_part_holding_a_personal_value_is_refused(sqlite_desk: str) -> None:
    """The guard behind the recording screen: a value that reached an entry around it
    (here, an agency named after the child) stops the digest, naming the field only."""
    led = open_ledger(sqlite_desk)
    planted = Deadline(
        case="RR-2026-050",
        kind="reply",
        what="reply from Maisie Quartermain (request R2)",
        from_="Maisie Quartermain",
        due=date(2026, 2, 25),
        overdue=False,
        left=2,
        unit="working-days",
        justified=False,
        regime="wt2023",
        request_id="R2",
        agency="Maisie Quartermain",
    )
    with pytest.raises(PersonalValueInDigest) as refused:
        build_digest(led, [planted], date(2026, 2, 23), store_id="x")
    assert "personal.name" in str(refused.value) and "Maisie" not in str(refused.value)


# --- sending ----------------------------------------------------------------------------------


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert text is not None and page is not None
    return text.get_content(), page.get_content()


def test_send_delivers_one_message_with_both_parts(desk_store: str, cli: Any) -> None:
    with smtp_server() as (box, port):
        result = cli(
            ["--store", desk_store, "digest", "--on", ON, "--send", "--to", TO],
            env={"CASELEDGER_SMTP": smtp_url(port)},
        )
    assert result.exit_code == 0, result.stderr
    assert f"to {TO} through 127.0.0.1:{port}" in result.stdout
    assert box.data_calls == 1 and len(box.messages) == 1
    message = box.messages[0]
    assert message["Subject"] == SUBJECT
    assert message["To"] == TO and message["From"] == "sbu@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@caseledger>")
    assert message.get_content_type() == "multipart/alternative"
    text, page = parts(message)
    assert sections(text) == EXPECTED_SECTIONS
    assert "Replies to chase (2)" in visible(page)
    assert "Westmoor Police, request R2" in visible(page)
    assert box.sessions[0]["rcpt_tos"] == [TO]
    assert_no_personal_value(message.as_string(), text, page, visible(page))


def test_settings_from_caseledger_toml(sqlite_desk: str, tmp_path: Path, cli: Any) -> None:
    with smtp_server() as (box, port):
        (tmp_path / "caseledger.toml").write_text(
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nstarttls = false\nfrom = "{FROM}"\n'
        )
        result = cli(["--store", sqlite_desk, "digest", "--on", ON, "--send", "--to", TO])
        assert result.exit_code == 0, result.stderr
        led = open_ledger(sqlite_desk)
        again = api.digest(led, on=ON, send=True, to=[TO, "chair@example.org"])
    assert [m["Subject"] for m in box.messages] == [SUBJECT, SUBJECT]
    assert box.messages[0]["From"] == FROM
    assert box.sessions[1]["rcpt_tos"] == [TO, "chair@example.org"]
    assert again.sent is not None and again.sent.accepted == (TO, "chair@example.org")
    assert again.to_json()["sent"]["server"] == f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("", "smtp"),  # nothing configured
        ("smtp://127.0.0.1:PORT?starttls=0", "smtp.from"),
        ("smtp://:PORT?starttls=0&from=sbu@example.org", "smtp.host"),
        ("smtp://127.0.0.1:99999?starttls=0&from=sbu@example.org", "smtp.port"),
        ("smtp://bu:secret@127.0.0.1:PORT?from=sbu@example.org", "smtp.password_file"),
        ("smtp://bu@127.0.0.1:PORT?from=sbu@example.org", "smtp.password_file"),
        ("smtp://bu@127.0.0.1:PORT?starttls=0&password_file=p&from=s@example.org", "smtp.starttls"),
        ("smtp://127.0.0.1:PORT?starttls=perhaps&from=sbu@example.org", "smtp.starttls"),
        ("smtp://127.0.0.1:PORT?starttls=0&from=nobody", "smtp.from"),
        ("smtp://127.0.0.1:PORT?starttls=0&from=s@example.org&tls=1", "smtp.tls"),
        ("http://127.0.0.1:PORT", "smtp"),
    ],
)
def test_a_bad_setting_is_exit_2_naming_it(
    sqlite_desk: str, cli: Any, setting: str, field: str
) -> None:
    with smtp_server() as (box, port):
        result = cli(
            ["--store", sqlite_desk, "digest", "--on", ON, "--send", "--to", TO],
            env={"CASELEDGER_SMTP": setting.replace("PORT", str(port))},
        )
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert f"field `{field}`" in result.stderr and "Traceback" not in result.stderr
    assert "secret" not in result.stderr
    assert box.envelopes == [] and result.stdout == ""


def test_a_bad_config_file_names_the_field(sqlite_desk: str, tmp_path: Path, cli: Any) -> None:
    config = tmp_path / "caseledger.toml"
    for text, field in (
        ("[smtp\n", "smtp"),
        ("[other]\n", "smtp"),
        ('[smtp]\nhost = "mail.example.org"\nport = "x"\nfrom = "a@example.org"\n', "smtp.port"),
        ('[smtp]\nhost = "mail.example.org"\nfrom = "a@example.org"\npasword_file = "p"\n',
         "smtp.pasword_file"),
    ):  # fmt: skip
        config.write_text(text)
        result = cli(["--store", sqlite_desk, "digest", "--on", ON, "--send", "--to", TO])
        assert result.exit_code == 2 and f"field `{field}`" in result.stderr, result.stderr


def test_recipients_are_asked_for_and_checked(sqlite_desk: str, cli: Any) -> None:
    for args in (
        ["--send"],
        ["--to", TO],
        ["--send", "--to", "not an address"],
        ["--send", "--to", f"{TO}, chair@example.org"],
    ):
        result = cli(["--store", sqlite_desk, "digest", "--on", ON, *args])
        assert result.exit_code == 2 and "field `--to`" in result.stderr, result.stderr
    with pytest.raises(UsageError) as refused:
        api.digest(open_ledger(sqlite_desk), on=ON, send=True, to=["a@example.org\r\nBcc: x"])
    assert refused.value.field == "to"


def test_an_unreachable_server_is_exit_4_naming_it(sqlite_desk: str, cli: Any) -> None:
    port = free_port()
    result = cli(
        ["--store", sqlite_desk, "digest", "--on", ON, "--send", "--to", TO],
        env={"CASELEDGER_SMTP": smtp_url(port)},
    )
    assert result.exit_code == 4, result.stderr
    assert f"127.0.0.1:{port} cannot be reached" in result.stderr
    assert "after 3 attempts; nothing was sent" in result.stderr


# --- STARTTLS and log-in ------------------------------------------------------------------------


def tls_options(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    certificates = make_certificates(tmp_path)
    options = {
        "tls_context": certificates.server_context(),
        "require_starttls": True,
        "authenticator": authenticate,
        "auth_required": True,
        # smtplib answers LOGIN's first challenge before aiosmtpd asks it: PLAIN only.
        "auth_exclude_mechanism": ["LOGIN"],
    }
    return options, certificates.ca_file


def test_starttls_and_log_in_with_a_password_file(
    sqlite_desk: str, tmp_path: Path, cli: Any
) -> None:
    options, ca_file = tls_options(tmp_path)
    secret = tmp_path / "smtp-password"
    secret.write_text(PASSWORD + "\n")
    with smtp_server(**options) as (box, port):
        (tmp_path / "caseledger.toml").write_text(
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nstarttls = true\n'
            f'username = "{USER}"\npassword_file = "smtp-password"\nfrom = "{FROM}"\n'
            f'ca_file = "{ca_file}"\n'
        )
        sent = cli(["--store", sqlite_desk, "digest", "--on", ON, "--send", "--to", TO])
        secret.write_text("not the password")
        refused = cli(["--store", sqlite_desk, "digest", "--on", ON, "--send", "--to", TO])
    assert sent.exit_code == 0, sent.stderr
    assert box.sessions == [
        {"tls": True, "authenticated": True, "mail_from": "sbu@example.org", "rcpt_tos": [TO]}
    ]
    assert refused.exit_code == 2 and "field `smtp.password_file`" in refused.stderr
    assert "refused the user name and password" in refused.stderr
    assert PASSWORD not in refused.stderr + sent.stdout + sent.stderr


def test_an_untrusted_certificate_is_refused(sqlite_desk: str, tmp_path: Path, cli: Any) -> None:
    options, _ = tls_options(tmp_path)
    (tmp_path / "pw").write_text(PASSWORD)
    with smtp_server(**options) as (box, port):
        url = smtp_url(port, starttls="1", password_file="pw")
        result = cli(
            ["--store", sqlite_desk, "digest", "--on", ON, "--send", "--to", TO],
            env={"CASELEDGER_SMTP": url.replace("smtp://", f"smtp://{USER}@")},
        )
    assert result.exit_code == 4, result.stderr
    assert f"certificate of the mail server 127.0.0.1:{port} is not trusted" in result.stderr
    assert box.envelopes == []


def test_a_server_without_starttls_is_not_sent_to_in_clear(sqlite_desk: str, cli: Any) -> None:
    with smtp_server() as (box, port):
        result = cli(
            ["--store", sqlite_desk, "digest", "--on", ON, "--send", "--to", TO],
            env={"CASELEDGER_SMTP": smtp_url(port, starttls="1")},
        )
    assert result.exit_code == 4, result.stderr
    assert "does not offer STARTTLS" in result.stderr and "nothing was sent" in result.stderr
    assert box.envelopes == []


# --- at most once -------------------------------------------------------------------------------


def test_a_temporary_refusal_is_retried_and_sent_once(sqlite_desk: str) -> None:
    with smtp_server(BusyOnce()) as (box, port):
        sent = api.digest(
            open_ledger(sqlite_desk),
            on=ON,
            send=True,
            to=TO,
            environ={"CASELEDGER_SMTP": smtp_url(port)},
            retry_delays=(0.05,),
        )
    assert sent.sent is not None and sent.sent.attempts == 2
    assert box.data_calls == 1 and len(box.messages) == 1


def test_a_server_that_hangs_up_after_taking_it_has_it_once(sqlite_desk: str) -> None:
    with smtp_server(HangsUpAfterTaking()) as (box, port):
        sent = api.digest(
            open_ledger(sqlite_desk),
            on=ON,
            send=True,
            to=TO,
            environ={"CASELEDGER_SMTP": smtp_url(port)},
            retry_delays=(0.05, 0.05),
        )
    assert sent.sent is not None and sent.sent.attempts == 1 and sent.sent.hung_up
    assert box.data_calls == 1


def test_a_connection_broken_while_it_takes_the_message_is_not_retried(
    sqlite_desk: str,
) -> None:
    with smtp_server(BreaksWhileTaking()) as (box, port):
        with pytest.raises(StoreUnavailable) as broken:
            api.digest(
                open_ledger(sqlite_desk),
                on=ON,
                send=True,
                to=TO,
                environ={"CASELEDGER_SMTP": smtp_url(port)},
                retry_delays=(0.05, 0.05),
            )
    assert "it may have been delivered, so it was not sent again" in str(broken.value)
    assert box.data_calls == 1


def test_the_same_digest_has_the_same_message_id(sqlite_desk: str) -> None:
    """A digest sent again is the same message to a mail client (its Message-ID)."""
    led = open_ledger(sqlite_desk)
    first = api.digest(led, on=ON)
    assert api.digest(led, on=ON).message_id == first.message_id
    assert api.digest(led, on="2026-02-24").message_id != first.message_id
