"""How the ``caseledger`` command's arguments are read before any parser sees them:
where ``--store`` was written.  Imports nothing, so the fast path and typer's path
(:func:`cli.common.hoist_store`) share it without the fast path importing typer."""

from __future__ import annotations


def hoisted(args: list[str]) -> tuple[list[str], list[str]]:
    """The ``--store`` forms (``--store X`` with its value, ``--store=X``; nothing after
    ``--``), and the rest: people write it after the command too, and it is the app's
    option, so it is moved to the front."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--store" and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 2
            continue
        (front if arg.startswith("--store=") else rest).append(arg)
        i += 1
    return front, rest
