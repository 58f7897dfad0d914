"""The ``caseledger`` console command: registers every command module on the app."""

from __future__ import annotations

import importlib

from .common import app, run

# Command modules register themselves on ``app`` when imported.  Modules that belong to
# features not built yet are skipped, so the CLI always starts.
for _module in (
    "record",
    "entries",
    "queries",
    "exports",
    "demo",
    "admin",
    "assessments",
    "tracker",
):
    try:
        importlib.import_module(f"cli.{_module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"cli.{_module}":
            raise

__all__ = ["app", "run"]

if __name__ == "__main__":
    run()
