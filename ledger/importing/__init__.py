"""Importing a business unit's tracker spreadsheet (:mod:`ledger.importing.tracker`): it
records entries, so it is write side, above the application."""
