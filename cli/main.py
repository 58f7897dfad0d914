"""The ``caseledger`` console command: registers every command module on the app."""

from __future__ import annotations

import importlib
from typing import Final

from cli.common import app, run

#: The command modules, in the order ``caseledger --help`` lists their commands; each
#: registers its commands on ``app`` when imported.
COMMAND_MODULES: Final = (
    "record",
    "entries",
    "queries",
    "desk",
    "reminders",
    "exports",
    "demo",
    "admin",
    "assessments",
    "tracker",
    "web",
)

for _module in COMMAND_MODULES:
    importlib.import_module(f"cli.commands.{_module}")


def _listed_order(command: object) -> int:
    """Where a registered command's module stands in :data:`COMMAND_MODULES`."""
    module = getattr(getattr(command, "callback", None), "__module__", "") or ""
    name = module.rpartition(".")[2]
    return COMMAND_MODULES.index(name) if name in COMMAND_MODULES else len(COMMAND_MODULES)


# A module imported before this one (``from cli.commands.demo import ...`` in a program or a test)
# registers its commands first: order them as listed, whatever the order of import.
app.registered_commands.sort(key=_listed_order)

__all__ = ["COMMAND_MODULES", "app", "run"]

if __name__ == "__main__":
    run()
