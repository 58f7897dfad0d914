"""Importing a business unit's tracker spreadsheet (:mod:`ledger.importing.tracker`, the
import's public names): it records entries, so it is write side, above the application.
One step a module: the mapping, reading the sheet, reading a row's cells, converting a row,
planning and recording the import."""
