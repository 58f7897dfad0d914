"""Reading a tracker's header and rows from a CSV or an ``.xlsx`` file (through ``openpyxl``),
within bounds that refuse a crafted workbook (a zip bomb, a sheet declaring a million rows)
in moments, and checking that the header holds every column the mapping names.
"""

from __future__ import annotations

import csv
import difflib
import io
import time as time_module
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.errors import InputError
from ledger.importing.mapping import Cell, MappingError, TrackerMapping, match_key

#: Bounds on a workbook, checked before and while openpyxl reads it, so that a crafted
#: file (a zip bomb, a sheet declaring a million rows) is refused in moments instead of
#: filling memory.  A real tracker holds a few thousand rows of a few dozen columns.
MAX_XLSX_UNCOMPRESSED: Final = 256 * 1_048_576
"""The workbook's members together, uncompressed (as the zip declares them)."""
MAX_XLSX_MEMBERS: Final = 1_000
"""The files inside the workbook."""
MAX_XLSX_RATIO: Final = 200
"""How many times a large member (over 1 MiB) may expand (spreadsheet XML: 5 to 50)."""
MAX_TRACKER_ROWS: Final = 100_000
"""Rows of a tracker (CSV or sheet)."""
MAX_TRACKER_COLUMNS: Final = 1_000
"""Columns of a tracker sheet."""
MAX_TRACKER_CELLS: Final = 5_000_000
"""Cells read from a sheet, empty ones included (openpyxl fills gaps with them)."""
MAX_XLSX_SECONDS: Final = 120.0
"""Time spent reading one sheet."""


@dataclass(frozen=True)
class TrackerRow:
    """One row of the tracker: its spreadsheet row number and its cells by column."""

    number: int
    cells: Mapping[str, Cell]


@dataclass(frozen=True)
class Tracker:
    """A tracker as read: its file name, header and non-blank rows."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[TrackerRow, ...]


def blank_cell(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _header(cells: Sequence[Cell]) -> list[str]:
    return ["" if c is None else " ".join(str(c).split()) for c in cells]


def _rows(name: str, grid: Iterable[Sequence[Cell]], header_row: int) -> Tracker:
    header: list[str] | None = None
    rows: list[TrackerRow] = []
    for number, cells in enumerate(grid, start=1):
        if number > MAX_TRACKER_ROWS + header_row:
            raise InputError(
                f"{name} holds more than {MAX_TRACKER_ROWS} rows; split it", field="file"
            )
        if number < header_row:
            continue
        if header is None:
            header = _header(cells)
            if not any(header):
                raise MappingError(
                    f"{name}: row {header_row} (tracker.header_row) is empty; it should hold "
                    "the column names",
                    field="tracker.header_row",
                )
            continue
        if all(blank_cell(c) for c in cells):
            continue
        values: dict[str, Cell] = {}
        for column, cell in zip(header, cells, strict=False):
            if column and column not in values:
                values[column] = cell
        rows.append(TrackerRow(number, values))
    if header is None:
        raise MappingError(
            f"{name} has no row {header_row} to read the column names from",
            field="tracker.header_row",
        )
    return Tracker(name, tuple(header), tuple(rows))


def read_tracker(path: Path | str, mapping: TrackerMapping) -> Tracker:
    """Read a CSV or ``.xlsx`` tracker and check its header against the mapping."""
    where = Path(path)
    if not where.is_file():
        raise InputError(f"{where} is not a file", field="file")
    suffix = where.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        tracker = _read_xlsx(where, mapping)
    elif suffix in (".csv", ".txt", ".tsv"):
        tracker = _read_csv(where, mapping)
    elif suffix == ".xls":
        raise InputError(
            f"{where.name} is an old-style Excel file: open it and save it as .xlsx or CSV",
            field="file",
        )
    else:
        raise InputError(f"{where.name}: a tracker is a .csv or an .xlsx file", field="file")
    check_columns(tracker, mapping)
    return tracker


def _read_csv(where: Path, mapping: TrackerMapping) -> Tracker:
    data = where.read_bytes()
    encodings = [mapping.encoding] if mapping.encoding else ["utf-8-sig", "cp1252"]
    text = None
    for encoding in encodings:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise InputError(
            f"{where.name} is not UTF-8 or Windows-1252 text: set tracker.encoding in the mapping",
            field="file",
        )
    if "\x00" in text:
        raise InputError(f"{where.name} is not a text (CSV) file", field="file")
    delimiter = "\t" if where.suffix.lower() == ".tsv" else mapping.delimiter
    try:
        grid = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"{where.name} is not a readable CSV file: {exc}", field="file") from None
    return _rows(where.name, grid, mapping.header_row)


def _read_xlsx(where: Path, mapping: TrackerMapping) -> Tracker:
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    with warnings.catch_warnings():  # openpyxl warns about styles and odd cells: noise here
        warnings.simplefilter("ignore")
        return _read_book(where, mapping, load_workbook)


def check_workbook_archive(where: Path) -> None:
    """Refuse a workbook whose zip declares too much data or too high a compression
    ratio, before anything is decompressed (Python's zip reader never inflates a member
    beyond its declared size, so the declared sizes bound what openpyxl can read)."""
    try:
        with zipfile.ZipFile(where) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            f"{where.name} cannot be read as an Excel workbook: {exc}", field="file"
        ) from None
    if len(members) > MAX_XLSX_MEMBERS:
        raise InputError(
            f"{where.name} holds {len(members)} files; a workbook may hold at most "
            f"{MAX_XLSX_MEMBERS}",
            field="file",
        )
    total = sum(m.file_size for m in members)
    if total > MAX_XLSX_UNCOMPRESSED:
        raise InputError(
            f"{where.name} would expand to {total} bytes; a workbook may expand to at most "
            f"{MAX_XLSX_UNCOMPRESSED} bytes ({MAX_XLSX_UNCOMPRESSED // 1_048_576} MiB): "
            "save it as CSV or split it",
            field="file",
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1_048_576 and ratio > MAX_XLSX_RATIO:
            raise InputError(
                f"{where.name}: {member.filename} expands {ratio:.0f} times (at most "
                f"{MAX_XLSX_RATIO}); this is not an ordinary workbook",
                field="file",
            )


def _bounded_grid(where: Path, sheet: Any) -> list[list[Cell]]:
    """The sheet's rows, refused beyond the row, column, cell and time bounds."""
    name = f"{where.name}: sheet {sheet.title!r}"
    rows, columns = getattr(sheet, "max_row", None), getattr(sheet, "max_column", None)
    if isinstance(rows, int) and rows > MAX_TRACKER_ROWS:
        raise InputError(
            f"{name} declares {rows} rows; a tracker holds at most {MAX_TRACKER_ROWS}",
            field="file",
        )
    if isinstance(columns, int) and columns > MAX_TRACKER_COLUMNS:
        raise InputError(
            f"{name} declares {columns} columns; a tracker holds at most {MAX_TRACKER_COLUMNS}",
            field="file",
        )
    grid: list[list[Cell]] = []
    cells = 0
    deadline = time_module.monotonic() + MAX_XLSX_SECONDS
    for row in sheet.iter_rows(values_only=True):
        cells += len(row)
        if len(grid) >= MAX_TRACKER_ROWS or cells > MAX_TRACKER_CELLS:
            raise InputError(
                f"{name} holds more than {MAX_TRACKER_ROWS} rows or {MAX_TRACKER_CELLS} "
                "cells (empty ones included); delete the unused rows and columns or save "
                "it as CSV",
                field="file",
            )
        if len(row) > MAX_TRACKER_COLUMNS:
            if any(v is not None for v in row[MAX_TRACKER_COLUMNS:]):
                raise InputError(
                    f"{name} row {len(grid) + 1} has more than {MAX_TRACKER_COLUMNS} columns",
                    field="file",
                )
            row = row[:MAX_TRACKER_COLUMNS]
        if len(grid) % 1_000 == 0 and time_module.monotonic() > deadline:
            raise InputError(
                f"{name} took more than {MAX_XLSX_SECONDS:.0f} seconds to read; save it as CSV",
                field="file",
            )
        grid.append(list(row))
    return grid


def _read_book(where: Path, mapping: TrackerMapping, load_workbook: Any) -> Tracker:
    check_workbook_archive(where)
    try:
        book = load_workbook(where, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            f"{where.name} cannot be read as an Excel workbook: {exc}", field="file"
        ) from None
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise InputError(
            f"{where.name} cannot be read as an Excel workbook ({type(exc).__name__}: {exc}); "
            "open it in Excel and save it again, or save it as CSV",
            field="file",
        ) from None
    try:
        if mapping.sheet is not None:
            if mapping.sheet not in book.sheetnames:
                raise MappingError(
                    f"{where.name} has no sheet {mapping.sheet!r} (tracker.sheet); sheets: "
                    f"{', '.join(book.sheetnames)}",
                    field="tracker.sheet",
                )
            sheet = book[mapping.sheet]
        else:
            sheet = book.worksheets[0]
        try:
            grid = _bounded_grid(where, sheet)
        except InputError:
            raise
        except Exception as exc:  # a damaged sheet inside a readable workbook
            raise InputError(
                f"{where.name}: sheet {sheet.title!r} cannot be read ({type(exc).__name__}: "
                f"{exc}); open it in Excel and save it again, or save it as CSV",
                field="file",
            ) from None
    finally:
        book.close()
    return _rows(where.name, grid, mapping.header_row)


def _closest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate most like ``name``: most words in common, then most letters."""
    words = set(match_key(name).split())

    def score(candidate: str) -> tuple[float, float]:
        theirs = set(match_key(candidate).split())
        shared = len(words & theirs) / len(words | theirs) if words | theirs else 0.0
        return shared, difflib.SequenceMatcher(None, match_key(name), match_key(candidate)).ratio()

    best = max(candidates, key=score, default=None)
    if best is None:
        return None
    shared, letters = score(best)
    return best if shared > 0 or letters >= 0.6 else None


def check_columns(tracker: Tracker, mapping: TrackerMapping) -> None:
    """Every column the mapping names is in the tracker's header (blanks and case aside)."""
    present = {match_key(c): c for c in tracker.columns if c}
    missing = []
    for column, where in mapping.columns().items():
        if match_key(column) not in present:
            hint = _closest(column, list(present.values()))
            missing.append(f"{column!r} ({where})" + (f", did you mean {hint!r}?" if hint else ""))
    if missing:
        raise MappingError(
            f"{tracker.name}: the mapping names column(s) not in the header row "
            f"{mapping.header_row}: {'; '.join(missing)}. The header holds: "
            f"{', '.join(c for c in tracker.columns if c)}",
            field="mapping",
        )
