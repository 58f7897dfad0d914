"""``caseledger demo``: build a sample store of realistic fictional cases and walk a
newcomer through it, one real command at a time.

The sample (shipped in ``ledger/data/demo/``) is recorded by :func:`ledger.api.record_demo`,
with the ledger clock set as if each entry had been recorded on the day it happened,
except the few entries the tour shows being recorded late (a backdated reply, a
correction).  The store is a new file the demo names; the user's own store is never
touched.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.rule import Rule

from cli.common import app, out, run

#: The day the tour's questions are asked about (``--on``): after the sample's last entry
#: (13 November 2026) and after RR-2026-031's rapid review fell due (26 November), so each
#: step answers the same on whatever day the demo is run, and pasted again years later.
DEMO_DAY = "2026-12-01"

TOUR: tuple[tuple[str, list[str]], ...] = (
    (
        "Where every case stood on 1 December 2026: stage, decision, open requests, overdue "
        "clocks.",
        ["status", "--on", DEMO_DAY],
    ),
    (
        "What is due on that day, overdue first: the open case's rapid review and the reply "
        "it still waits for, in working days.",
        ["due", "--on", DEMO_DAY],
    ),
    (
        "One case's history in the order things happened, with the correction applied.",
        ["timeline", "RR-2025-017"],
    ),
    (
        "Why RR-2025-017 was decided as it was: the decision in force now (a revisited one), "
        "what was known when it was taken, and what was learned since.",
        ["why", "RR-2025-017"],
    ),
    (
        "The same question as the record stood on 1 April 2025: the first decision, before the "
        "panel disagreed; education's late reply shows as learned after it.",
        ["why", "RR-2025-017", "--as-of", "2025-04-01"],
    ),
    (
        "Its rapid review was sent to the national panel on 27 March 2025; the panel disagreed "
        "on 14 April, and the partners answered it on 25 April with a revisited decision.",
        ["timeline", "RR-2025-017", "--on", "2025-04-30"],
    ),
    (
        "The statutory clocks of an old-regime SCR: the decision was late, but an approved "
        "delay justifies it.",
        ["clocks", "SCR-2016-011", "--on", DEMO_DAY],
    ),
    (
        "A case still open on 1 December 2026: its rapid review clock has run out.",
        ["clocks", "RR-2026-031", "--on", DEMO_DAY],
    ),
    (
        "From notification to decision, across every case, in calendar and working days.",
        ["delays", "--from", "IncidentNotified", "--to", "DecisionMade", "--on", DEMO_DAY],
    ),
    (
        "The nine quality-marker questions answered from the record, with the entries that "
        "evidence each.",
        ["quality", "RR-2026-004", "--on", DEMO_DAY],
    ),
    (
        "The open case's practice themes are neglect, unsafe sleep, parental substance misuse "
        "and information sharing: the earlier cases that share them, with what their reviews "
        "taught.",
        ["related", "RR-2026-031", "--on", DEMO_DAY],
    ),
    (
        "An audit bundle for an inspector: events, timeline, report, manifest and a checker "
        "(--replace: pasted again, it replaces this earlier bundle, and only that).",
        ["export", "--out", "{bundle}", "--replace"],
    ),
    ("The inspector checks the bundle without trusting us.", ["verify", "{bundle}"]),
    ("And the whole store: every hash and chain link re-computed.", ["verify"]),
)


def _shown_path(path: Path) -> str:
    """A path as the user would type it here: relative to the current folder when that is
    shorter (with ``./`` so the shell does not search PATH), else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, os.getcwd())
    if "/" not in relative:
        relative = f"./{relative}"
    return relative if len(relative) < len(absolute) else absolute


def program() -> tuple[str, str | None]:
    """How to run caseledger again from this shell, as the demo was run, and (when that
    is not plain ``caseledger``) how to put it on PATH.

    The console script that ran the demo (``sys.argv[0]``, e.g. ``.venv/bin/caseledger``
    after the README's set-up), or the one beside this Python (``python -m cli.main``);
    plain ``caseledger`` when that is what PATH finds."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    script: Path | None = None
    if argv0 is not None and argv0.name == "caseledger" and argv0.is_file():
        script = argv0
    else:
        beside = Path(sys.executable).parent / "caseledger"
        script = beside if beside.is_file() else None
    if script is None:
        return f"{shlex.quote(sys.executable)} -m cli.main", None
    found = shutil.which("caseledger")
    if found and os.path.samefile(found, script):
        return "caseledger", None
    venv = Path(os.path.abspath(script)).parent.parent
    hint = None
    if (venv / "pyvenv.cfg").is_file() and (venv / "bin" / "activate").is_file():
        hint = (
            "caseledger is not on your PATH in this shell: paste the commands as printed, "
            f"or first run `. {shlex.quote(_shown_path(venv / 'bin' / 'activate'))}` "
            "and type just `caseledger`."
        )
    return shlex.quote(_shown_path(script)), hint


@app.command(epilog="Example: caseledger demo  |  caseledger demo --no-tour")
def demo(
    tour: bool = typer.Option(True, "--tour/--no-tour", help="Walk through the queries."),
) -> None:
    """Build a sample store of realistic fictional cases in a new file and walk through it."""
    # lazy: ledger.api (its result types) costs ~5 ms at start-up
    from ledger.api import record_demo

    prog, hint = program()
    made = record_demo()
    path, count = made.path, made.entries
    bundle = Path(f"{path.stem}-bundle")
    out.print(
        Panel(
            f"Recorded {count} entries of 4 fictional cases into [bold]{path}[/bold]\n"
            "(a new file: your own store is untouched). The cases: an SCR under Working "
            "Together 2015 with a justified late decision and the learning its review "
            "recorded; a rapid review sent to the national panel, whose first decision was "
            "revisited after the panel disagreed, with a late reply, a correction and its "
            "learning; the shared scenario RR-2026-004; and a case still open, whose themes "
            "relate it to the two earlier reviews. The tour "
            "asks about 1 December 2026, so its answers do not change with the day.",
            title="caseledger demo",
        ),
        soft_wrap=False,
    )
    if hint is not None:
        out.print(escape(hint), soft_wrap=True)
    if not tour:
        out.print(f"Explore it yourself: {escape(prog)} --store {_quote(str(path))} status")
        return
    failures = []
    for number, (sentence, args) in enumerate(TOUR, start=1):
        argv = ["--store", str(path), *(a.replace("{bundle}", str(bundle)) for a in args)]
        out.print(Rule(f"Step {number} of {len(TOUR)}"))
        out.print(f"[bold]{sentence}[/bold]", soft_wrap=False)
        out.print(f"[dim]$ {escape(prog)} {escape(' '.join(_quote(a) for a in argv))}[/dim]\n")
        try:
            run(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                failures.append(" ".join(argv))
    out.print(Rule())
    out.print(
        f"The store [bold]{escape(str(path))}[/bold] stays for you to explore; every command "
        f"above works when pasted here, again and again. Start with: {escape(prog)} --help"
    )
    if failures:
        out.print(f"[red]{len(failures)} step(s) did not complete:[/red] " + "; ".join(failures))
        raise typer.Exit(1)


def _quote(arg: str) -> str:
    """An argument as a POSIX shell reads it back unchanged."""
    return shlex.quote(arg)
