"""The ``caseledger`` console command: registers every command module on the app."""

from __future__ import annotations

import importlib
from typing import Final

from .common import app, run

#: The command modules, in the order ``caseledger --help`` lists their commands; each
#: registers its commands on ``app`` when imported.
COMMAND_MODULES: Final = (
    "record",
    "entries",
    "queries",
    "exports",
    "demo",
    "admin",
    "assessments",
    "tracker",
)

for _module in COMMAND_MODULES:
    importlib.import_module(f"cli.{_module}")

__all__ = ["COMMAND_MODULES", "app", "run"]

if __name__ == "__main__":
    run()
