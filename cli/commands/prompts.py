"""At a terminal, the one-entry commands ask for the required options a person left out.

``caseledger decide SCR-2026-001`` typed at a terminal asks for ``--outcome`` (offering
its choices), ``--decided-by`` (one name per answer), ``--criteria``, ``--rationale``;
then the entry is validated as a whole, as if every answer had been typed as its option,
and every problem is shown at once, as it is without prompts.  An answer left empty
leaves the option out (it is then refused with the others); a choice not offered is
asked again at once, since the choices are on the screen.

Never when standard input or output is not a terminal (a script, a pipe) and never with
``--json``: a program gets exit code 2 and the list of what is missing, as before.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, get_args, get_origin

from rich.markup import escape
from rich.prompt import Prompt

from cli.common import err, out
from ledger.catalogue.fields import Theme, themes_vocabulary
from ledger.catalogue.models import FACTORS
from ledger.importing.entry_form import choices_of, key_choices_of, unwrap

__all__ = [
    "Asked",
    "ask_missing",
    "at_terminal",
    "choices_of",
    "complete_theme",
    "is_themes",
    "key_choices_of",
]


def is_themes(annotation: Any) -> bool:
    """Whether a field takes practice themes (``ThemesRecorded.themes``): its choices are
    the themes vocabulary, kept as data and read only when they are offered."""
    core, _ = unwrap(annotation)
    if get_origin(core) is list:
        core = get_args(core)[0]
    return bool(core == Theme)


def complete_theme(incomplete: str) -> list[str]:
    """The themes of the vocabulary that start with what is typed (the tab key)."""
    start = incomplete.casefold()
    return [theme for theme in themes_vocabulary() if theme.casefold().startswith(start)]


@dataclass(frozen=True)
class Asked:
    """One required option of an entry command, as a prompt asks for it."""

    name: str
    """The field (``decided_by``)."""
    option: str
    """The option a person would have typed (``--decided-by``)."""
    kind: str
    """``scalar``, ``bool``, ``list``, ``mapping`` or ``object-list``."""
    choices: tuple[str, ...]
    """The values offered (a ``Literal`` vocabulary; yes/no for a flag), or none."""
    hint: str
    """What an answer looks like, in a few words."""
    themes: bool = False
    """Whether the values offered are the themes vocabulary (read when asked, not before)."""

    @property
    def offered(self) -> tuple[str, ...]:
        """The values offered: the choices, or the themes of the vocabulary."""
        return tuple(themes_vocabulary()) if self.themes else self.choices

    @classmethod
    def of(cls, name: str, option: str, kind: str, annotation: Any) -> Asked:
        """The prompt of field ``name`` (typed ``annotation``, of ``kind``)."""
        core, optional = unwrap(annotation)
        choices = choices_of(annotation)
        if kind == "bool":
            choices = ["yes", "no", "unknown"] if optional else ["yes", "no"]
        hint = ""
        if core is date:
            hint = "a date, YYYY-MM-DD"
        elif kind == "mapping" and name == "criteria":
            names = ", ".join(key_choices_of(annotation))
            hint = f"name=finding:reason, finding met, not-met or unclear; names: {names}"
        elif kind == "mapping" and name == "factors":
            hint = "factor=text; factors: " + ", ".join(FACTORS)
        elif kind == "mapping":
            hint = "key=value"
        elif kind == "object-list":
            hint = "title|ref or title|ref|sha256"
        if kind in ("list", "mapping", "object-list"):
            hint = "; ".join(p for p in (hint, "one per answer, empty to finish") if p)
        return cls(name, option, kind, tuple(choices), hint, themes=is_themes(annotation))

    def _label(self, item: int | None) -> str:
        label = f"[bold]{escape(self.option)}[/]"
        if item is not None:
            label += f" item {item}"
        notes = [self.hint] if self.hint and item in (None, 1) else []
        if self.offered:
            notes.append("one of " + ", ".join(self.offered))
        return label + (f" [dim]({escape('; '.join(notes))})[/]" if notes else "")

    def _answer(self, item: int | None) -> str:
        """One answer; a value not among the choices is refused and asked again."""
        while True:
            answer = Prompt.ask(self._label(item), console=out, default="", show_default=False)
            answer = answer.strip()
            offered = self.offered
            if not answer or not offered or answer in offered:
                return answer
            err.print(f"'{escape(answer)}' is not one of: {escape(', '.join(offered))}")

    def ask(self) -> str | list[str] | None:
        """The answer as the option would have been typed (a list of items for a
        repeated option); None when left empty."""
        if self.kind not in ("list", "mapping", "object-list"):
            return self._answer(None) or None
        items: list[str] = []
        while answer := self._answer(len(items) + 1):
            items.append(answer)
        return items or None


def at_terminal() -> bool:
    """Whether a person is at the keyboard: standard input and output are terminals."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def ask_missing(command: str, asked: Sequence[Asked], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with an answer for each required option it leaves out, asked in the
    command's order (Ctrl-D stops asking: the rest stay out)."""
    missing = [a for a in asked if given.get(a.name) in (None, [])]
    if not missing:
        return dict(given)
    names = ", ".join(a.option for a in missing)
    out.print(
        f"[bold]{escape(command)}[/] needs {escape(names)}: type each (an empty answer "
        "leaves it out; nothing is recorded before every answer is checked)."
    )
    answers = dict(given)
    for item in missing:
        try:
            answers[item.name] = item.ask()
        except EOFError:
            out.print()
            break
    return answers
