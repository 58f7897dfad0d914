"""The digest: the desk as an e-mail a business manager reads in their mail client.

The open deadlines of the ``due`` list (:mod:`projections.queries.desk`) on a day, in
four groups that do not overlap, each in date order:

- **overdue**: statutory clocks past their due day;
- **due this week**: clocks due from the day to the Sunday of its week;
- **due next week**: clocks due in the Monday-to-Sunday week after;
- **replies to chase**: agency replies overdue or due by the end of next week, with the
  agency and the request (whom to chase, and for what).

Later deadlines are only counted (``caseledger due`` lists them).  The subject carries
the counts.  The message has a plain-text part and an HTML part, rendered from Jinja2
templates (``projections/templates/digest.*``), and holds no personal data: only case
references, clock names in words, agencies, request ids and dates, and before it is
shown or sent each part is screened for the personal values recorded for its cases by
:mod:`ledger.domain.personal_screen`, as the export screens a bundle
(:mod:`projections.export.personal_check`).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ledger.errors import LedgerError
from projections.export.personal_check import read_personal_values
from projections.queries.desk import Deadline

if TYPE_CHECKING:
    from projections.desk.mail import Delivery

__all__ = [
    "GROUPS",
    "Digest",
    "DigestGroup",
    "PersonalValueInDigest",
    "build_digest",
    "days_left",
    "long_day",
]

#: The groups, in the order the message shows them: (key, title).
GROUPS: Final[tuple[tuple[str, str], ...]] = (
    ("overdue", "Overdue"),
    ("this_week", "Due this week"),
    ("next_week", "Due next week"),
    ("replies", "Replies to chase"),
)


class PersonalValueInDigest(LedgerError):
    """A part of the digest would hold a personal value of a case (exit code 1)."""


def long_day(day: date) -> str:
    """``Monday 2 March 2026``."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def short_day(day: date) -> str:
    """``Mon 2 Mar 2026``."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def days_left(deadline: Deadline) -> str:
    """How long is left, or how far over, in the deadline's own unit, in words."""
    unit = "working day" if deadline.unit == "working-days" else "day"
    count = abs(deadline.left)
    plural = "" if count == 1 else "s"
    if deadline.left == 0:
        return "over, due today" if deadline.overdue else "due today"
    if deadline.left < 0:
        return f"{count} {unit}{plural} over"
    return f"{count} {unit}{plural} left"


@dataclass(frozen=True)
class DigestGroup:
    """One group of the digest and its deadlines, in date order."""

    key: str
    title: str
    deadlines: tuple[Deadline, ...]


def _row(deadline: Deadline) -> dict[str, str]:
    """What a line of the message says about one deadline."""
    notes = [deadline.title] if deadline.title else []
    if deadline.kind == "clock" and deadline.overdue:
        notes.append("a delay is approved" if deadline.justified else "no delay approved")
    if deadline.kind == "reply":
        what = f"{deadline.agency}, request {deadline.request_id}"
    else:
        what = deadline.what
    return {
        "case": deadline.case,
        "what": what,
        "due": short_day(deadline.due),
        "due_iso": deadline.due.isoformat(),
        "left": days_left(deadline),
        "note": "; ".join(notes),
        "overdue": "overdue" if deadline.overdue else "",
    }


def group_deadlines(
    deadlines: Iterable[Deadline], day: date
) -> tuple[tuple[DigestGroup, ...], tuple[Deadline, ...]]:
    """The four groups on ``day`` (see the module), and the later deadlines left out."""
    this_sunday = day + timedelta(days=6 - day.weekday())
    next_sunday = this_sunday + timedelta(days=7)
    chosen: dict[str, list[Deadline]] = {key: [] for key, _ in GROUPS}
    later: list[Deadline] = []
    for d in sorted(deadlines, key=lambda d: (not d.overdue, d.due, d.case, d.what)):
        if d.kind == "reply":
            (chosen["replies"] if d.overdue or d.due <= next_sunday else later).append(d)
        elif d.overdue:
            chosen["overdue"].append(d)
        elif d.due <= this_sunday:
            chosen["this_week"].append(d)
        elif d.due <= next_sunday:
            chosen["next_week"].append(d)
        else:
            later.append(d)
    groups = tuple(DigestGroup(key, title, tuple(chosen[key])) for key, title in GROUPS)
    return groups, tuple(later)


def subject_line(groups: Sequence[DigestGroup], day: date) -> str:
    """``Desk on Mon 2 Mar 2026: 1 overdue, 2 due this week, 0 next week, 1 reply to
    chase``: the counts a person decides from whether to open it."""
    count = {g.key: len(g.deadlines) for g in groups}
    replies = count["replies"]
    return (
        f"Desk on {short_day(day)}: {count['overdue']} overdue, {count['this_week']} due "
        f"this week, {count['next_week']} next week, {replies} "
        f"{'reply' if replies == 1 else 'replies'} to chase"
    )


_ENV: Environment | None = None


def _templates() -> Environment:
    """The digest's templates (autoescaped HTML; the text part as written)."""
    global _ENV
    if _ENV is None:
        _ENV = Environment(
            loader=PackageLoader("projections", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    return _ENV


@dataclass(frozen=True)
class Digest:
    """The digest of one day: its groups, subject and both parts, and the delivery when
    it was sent."""

    day: date
    subject: str
    text: str
    html: str
    groups: tuple[DigestGroup, ...]
    later: tuple[Deadline, ...]
    store_id: str
    """What tells this store's digests apart (the message's id is derived from it)."""
    personal_checked: bool
    """Whether the parts were screened for the cases' personal values (not when this
    user may not read them)."""
    sent: Delivery | None = None
    to: tuple[str, ...] = field(default=())

    @property
    def deadlines(self) -> tuple[Deadline, ...]:
        """The deadlines the message shows, group by group."""
        return tuple(d for g in self.groups for d in g.deadlines)

    @property
    def message_id(self) -> str:
        """The same for the same digest to the same people, so that a mail client takes
        a digest sent again for the one it has (``Message-ID``)."""
        seed = "\n".join([self.store_id, self.day.isoformat(), *sorted(self.to), self.text])
        return f"<digest.{hashlib.sha256(seed.encode()).hexdigest()[:32]}@caseledger>"

    def message(self, sender: str, to: Sequence[str], now: datetime) -> EmailMessage:
        """The e-mail: plain text, then HTML as the alternative mail clients prefer."""
        mail = EmailMessage()
        mail["Subject"] = self.subject
        mail["From"] = sender
        mail["To"] = ", ".join(to)
        mail["Date"] = format_datetime(now)
        mail["Message-ID"] = self.message_id
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no automatic replies
        mail.set_content(self.text)
        mail.add_alternative(self.html, subtype="html")
        return mail

    def to_json(self) -> dict[str, Any]:
        """``digest --json``: cli.md's ``subject``, ``text``, ``html`` and ``deadlines``
        (those shown, as ``due --json`` prints them, each with its ``group``), then the
        day, the counts, and the delivery when sent."""
        return {
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "deadlines": [
                {**d.as_dict(), "group": g.key} for g in self.groups for d in g.deadlines
            ],
            "on": self.day.isoformat(),
            "counts": {g.key: len(g.deadlines) for g in self.groups},
            "later": len(self.later),
            "personal_data_checked": self.personal_checked,
            "sent": None if self.sent is None else self.sent.as_dict(),
        }


_TAG: Final = re.compile(r"<[^>]*>")


def _screen(ledger: Any, cases: Iterable[str], parts: dict[str, str]) -> bool:
    """Refuse a part that holds a personal value of a case; whether the check was made
    (a user who may not read the values cannot make it)."""
    check = read_personal_values(ledger, sorted(set(cases)))
    if not check.made:
        return False
    for name, text in parts.items():
        found = check.everywhere.hit(text)
        if found is not None:
            raise PersonalValueInDigest(
                f"the digest's {name} part would hold {found}; nothing was shown or sent. "
                "The entry was recorded before the ledger refused personal values in the "
                "hashed record, or written around it: ask the store's operator."
            )
    return True


def build_digest(
    ledger: Any, deadlines: Iterable[Deadline], day: date, *, store_id: str, to: Sequence[str] = ()
) -> Digest:
    """The digest of ``deadlines`` (the ``due`` list) on ``day``, screened for the
    personal values of its cases (``ledger`` reads them)."""
    groups, later = group_deadlines(deadlines, day)
    subject = subject_line(groups, day)
    context = {
        "subject": subject,
        "day": long_day(day),
        "groups": [
            {"key": g.key, "title": g.title, "rows": [_row(d) for d in g.deadlines]} for g in groups
        ],
        "later": len(later),
        "next_sunday": short_day(day + timedelta(days=13 - day.weekday())),
    }
    env = _templates()
    text = env.get_template("digest.txt.jinja").render(context)
    page = env.get_template("digest.html").render(context)
    shown = [d.case for g in groups for d in g.deadlines]
    checked = _screen(ledger, shown, {"text": text, "HTML": html.unescape(_TAG.sub(" ", page))})
    return Digest(day, subject, text, page, groups, later, store_id, checked, to=tuple(to))
