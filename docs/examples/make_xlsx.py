"""Build ``tracker-sample.xlsx`` from ``tracker-sample.csv``, as a business unit's
spreadsheet would hold it: dates as real Excel date cells (shown dd/mm/yyyy), everything
else as text.  The bytes are reproducible (fixed timestamps), so the file only changes
when the CSV does.

    python docs/examples/make_xlsx.py
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
UK_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")
FIXED = datetime(2026, 1, 1)


def build(
    source: Path = HERE / "tracker-sample.csv", target: Path = HERE / "tracker-sample.xlsx"
) -> None:
    """Write the workbook: one sheet, the CSV's header and rows, date cells for dates."""
    with source.open(newline="", encoding="utf-8-sig") as handle:
        grid = list(csv.reader(handle))
    book = Workbook()
    sheet = book.active
    sheet.title = "Tracker"
    for r, row in enumerate(grid, start=1):
        for c, text in enumerate(row, start=1):
            if not text:
                continue
            cell = sheet.cell(row=r, column=c)
            if r > 1 and UK_DATE.match(text):
                cell.value = datetime.strptime(text, "%d/%m/%Y")
                cell.number_format = "dd/mm/yyyy"
            else:
                cell.value = text
            if r == 1:
                cell.font = Font(bold=True)
    sheet.freeze_panes = "B2"
    book.properties.creator = "caseledger docs/examples/make_xlsx.py"
    book.properties.created = FIXED
    book.properties.modified = FIXED
    buffer = io.BytesIO()
    book.save(buffer)
    # Rewrite the zip with fixed member times so that the bytes are reproducible.
    with (
        zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps "modified" with now
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>2026-01-01T00:00:00Z\g<2>",
                    data,
                )
            dst.writestr(fixed, data)


if __name__ == "__main__":
    build()
    print(f"wrote {HERE / 'tracker-sample.xlsx'}")
