"""Tables as files for people: CSV that Excel opens in Chinese (UTF-8 with a byte-order mark) and ``.xlsx``
workbooks (openpyxl), the same rows as the table on the page.

Texts come from records (purposes, department names, codes a caller sent): a text cell starting with ``=``, ``+``,
``-``, ``@`` (or a tab or carriage return) would be read as a formula by a spreadsheet (CSV/formula injection), so it
is written with a leading apostrophe, in the workbook as in the CSV, and workbook cells are always typed as text or
number, never formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from openpyxl import Workbook

Cell = str | int
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def safe(cell: Cell) -> Cell:
    """A cell a spreadsheet shows as what it is: a text that would start a formula gets a leading apostrophe."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe(h) for h in header])
    writer.writerows([safe(c) for c in row] for row in rows)
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def xlsx_bytes(sheets: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Cell]]]]) -> bytes:
    """A workbook of one sheet per (title, header, rows); titles are cut to Excel's 31 characters."""
    book = Workbook()
    for sheet in book.worksheets:  # the empty sheet a new workbook starts with
        book.remove(sheet)
    for title, header, rows in sheets:
        sheet = book.create_sheet(_sheet_title(title))
        for values in (header, *rows):
            sheet.append([safe(v) for v in values])
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # never a formula, whatever the text
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_title(title: str) -> str:
    for bad in "[]:*?/\\":
        title = title.replace(bad, " ")
    return title[:31] or "sheet"
