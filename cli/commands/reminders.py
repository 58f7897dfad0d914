"""The desk where people already look: ``digest`` (an e-mail) and ``calendar`` (an
iCalendar feed), both renderings of the ``due`` list.

Thin by design: parse the options, call :func:`projections.api.digest` or
:func:`projections.api.calendar`, print for people or ``--json`` for programs.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from cli.common import (
    JSON_HELP,
    ON_HELP,
    RULES_ENV,
    RULES_HELP,
    app,
    disclose_rules,
    emit_json,
    ledger,
    out,
)

SMTP_HELP = (
    "The mail server: CASELEDGER_SMTP (a URL, smtp://USER@HOST:587, with starttls, "
    "password_file and from in its query) or the \\[smtp] table of caseledger.toml (host, "
    "port, starttls, username, password_file, from, ca_file); the password is read only "
    "from its file."
)


@app.command(
    epilog=(
        "Examples: caseledger digest  |  caseledger digest --on 2026-12-01 --json  |  "
        "caseledger digest --send --to bu.manager@example.org"
    )
)
def digest(
    ctx: typer.Context,
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    send: bool = typer.Option(
        False, "--send", help="Send it (to --to) instead of printing it. " + SMTP_HELP
    ),
    to: list[str] | None = typer.Option(
        None, "--to", help="Whom to send it to: an e-mail address (again for each one more)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    rules: Path | None = typer.Option(None, "--rules", envvar=RULES_ENV, help=RULES_HELP),
) -> None:
    """The desk as an e-mail: overdue clocks, clocks due this week and
    next week, and the agency replies to chase; the counts in the subject.

    A plain-text part and an HTML part, with case references, clocks,
    agencies and dates only: no personal data (each part is checked
    against the personal values recorded for its cases). Printed here,
    or with --send sent once through the mail server (a server that
    cannot be reached: exit 4, nothing sent).
    """
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    answer = api.digest(
        lambda: ledger(ctx),  # opened once the options are found good
        on=on,
        send=send,
        to=to,
        rules=rules,
    )
    disclose_rules(api.local_rules(rules), to_stderr=True)
    if as_json:
        emit_json(answer.to_json())
        return
    if answer.sent is not None:
        sent = answer.sent
        refused = f"; refused: {', '.join(sent.refused)}" if sent.refused else ""
        out.print(
            f"sent {escape(repr(answer.subject))} to {escape(', '.join(sent.accepted))} "
            f"through {escape(sent.server)}{escape(refused)}"
        )
        return
    out.print(escape(answer.text), end="")


@app.command(
    epilog=(
        "Examples: caseledger calendar --out deadlines.ics  |  "
        "caseledger calendar --out deadlines.ics --on 2026-12-01 --json"
    )
)
def calendar(
    ctx: typer.Context,
    out_path: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="The .ics file to write (replaced whole, atomically; a file there that is not "
        "a feed written by caseledger is never replaced).",
    ),
    on: str | None = typer.Option(None, "--on", help=ON_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    rules: Path | None = typer.Option(None, "--rules", envvar=RULES_ENV, help=RULES_HELP),
) -> None:
    """Every open deadline as an all-day calendar event (iCalendar), for
    a calendar to import or subscribe to.

    Each event keeps its UID from run to run, so importing the file again
    updates it; an alarm goes off at 09:00 on the working day before.
    Deadlines of the previous file that are no longer open (met, or the
    case closed) are written as cancelled events, so the calendar
    removes them.
    """
    # lazy: the read-side API (the queries) costs ~8 ms at start-up
    from projections import api

    feed = api.calendar(lambda: ledger(ctx), out_path=out_path, on=on, rules=rules)
    disclose_rules(api.local_rules(rules), to_stderr=True)
    if as_json:
        emit_json(feed.to_json())
        return
    count = len(feed.events)
    gone = len(feed.cancelled)
    out.print(
        f"wrote {count} open deadline{'s' if count != 1 else ''} and {gone} cancelled "
        f"event{'s' if gone != 1 else ''} to {escape(str(feed.file))}"
    )
    for event in feed.events:
        out.print(f"  {event.due.isoformat()}  {escape(event.summary)}")


__all__ = ["calendar", "digest"]
