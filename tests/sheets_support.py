"""Spreadsheets for the import tests and bench/patrol.py: .ods from a small zip writer, .xls
through xlwt, and hostile .xlsx files (each built in a few MB of memory, streamed)."""

from __future__ import annotations

import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

Merge = tuple[int, int, int, int]  # 0-based first row, first col, last row, last col

ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"'
)
MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
    'manifest:version="1.2">'
    '<manifest:file-entry manifest:full-path="/" manifest:version="1.2" '
    'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    "</manifest:manifest>"
)


def _ods_cell(value: Any, span: tuple[int, int] | None) -> str:
    attrs = ""
    if span:
        attrs = f' table:number-rows-spanned="{span[0]}" table:number-columns-spanned="{span[1]}"'
    if value is None or value == "":
        return f"<table:table-cell{attrs}/>"
    if isinstance(value, bool):
        return (
            f'<table:table-cell{attrs} office:value-type="boolean" '
            f'office:boolean-value="{str(value).lower()}"><text:p>{value}</text:p>'
            "</table:table-cell>"
        )
    if isinstance(value, int | float):
        return (
            f'<table:table-cell{attrs} office:value-type="float" office:value="{value}">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )
    if isinstance(value, date):
        return (
            f'<table:table-cell{attrs} office:value-type="date" '
            f'office:date-value="{value.isoformat()}"><text:p>{value.isoformat()}</text:p>'
            "</table:table-cell>"
        )
    return (
        f'<table:table-cell{attrs} office:value-type="string"><text:p>{escape(str(value))}'
        "</text:p></table:table-cell>"
    )


def write_ods(path: Path, rows: list[list[Any]], merges: list[Merge] = ()) -> Path:
    """An OpenDocument spreadsheet as LibreOffice writes it: merged cells spanned over
    covered cells, and a million empty rows repeated at the end."""
    spans = {(r0, c0): (r1 - r0 + 1, c1 - c0 + 1) for r0, c0, r1, c1 in merges}
    covered = {
        (r, c)
        for r0, c0, r1, c1 in merges
        for r in range(r0, r1 + 1)
        for c in range(c0, c1 + 1)
        if (r, c) != (r0, c0)
    }
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODS_NS}>'
        '<office:body><office:spreadsheet><table:table table:name="台账">'
    ]
    width = max((len(r) for r in rows), default=1)
    for r, row in enumerate(rows):
        parts.append("<table:table-row>")
        for c in range(width):
            value = row[c] if c < len(row) else None
            if (r, c) in covered:
                parts.append("<table:covered-table-cell/>")
            else:
                parts.append(_ods_cell(value, spans.get((r, c))))
        parts.append("</table:table-row>")
    parts.append(
        '<table:table-row table:number-rows-repeated="1048000">'
        '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("META-INF/manifest.xml", MANIFEST)
        z.writestr("content.xml", "".join(parts))
    return path


def write_xls(path: Path, rows: list[list[Any]], merges: list[Merge] = ()) -> Path:
    """An Excel 97-2003 .xls (BIFF8, written by xlwt), merged ranges included."""
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("台账")
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    starts = {(r0, c0): (r1, c1) for r0, c0, r1, c1 in merges}
    covered = {
        (r, c)
        for r0, c0, r1, c1 in merges
        for r in range(r0, r1 + 1)
        for c in range(c0, c1 + 1)
        if (r, c) != (r0, c0)
    }
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if (r, c) in covered or value is None:
                continue
            style = date_style if isinstance(value, date | datetime) else xlwt.Style.default_style
            if (r, c) in starts:
                r1, c1 = starts[(r, c)]
                ws.write_merge(r, r1, c, c1, value, style)
            else:
                ws.write(r, c, value, style)
    wb.save(str(path))
    return path


# -- hostile workbooks ------------------------------------------------------------------------

OOXML = "http://schemas.openxmlformats.org"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT}.worksheet+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{OOXML}/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/>'
    "</Relationships>"
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="台账" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{OOXML}/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    "</Relationships>"
)
SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>楼栋</t></is></c>'
    '<c r="C1" t="inlineStr"><is><t>房号</t></is></c></row>'
    '<row r="2"><c r="A2" t="inlineStr"><is><t>张三</t></is></c>'
    '<c r="B2"><v>1</v></c><c r="C2"><v>101</v></c></row>'
)


def write_raw_xlsx(path: Path, sheet_body: str, *, after: str = "", extra=None) -> Path:
    """A minimal .xlsx: the header and one good row, then ``sheet_body`` rows, then ``after``
    (merged ranges …) after sheetData. ``extra``: {member name: bytes iterator} streamed in."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        z.writestr(
            "xl/worksheets/sheet1.xml",
            SHEET_HEAD + sheet_body + "</sheetData>" + after + "</worksheet>",
        )
        for name, pieces in (extra or {}).items():
            with z.open(name, "w", force_zip64=True) as fh:
                for piece in pieces:
                    fh.write(piece)
    return path


def far_cell(path: Path) -> Path:
    """1.7 KB: one more cell, at A300000000."""
    return write_raw_xlsx(path, '<row r="300000000"><c r="A300000000"><v>1</v></c></row>')


def far_cell_spelt_oddly(path: Path) -> Path:
    """far_cell with a namespace prefix on its tags and a tab and a newline before their
    ``r``: XML allows both, and the bounds must not depend on a single space before it."""
    return write_raw_xlsx(
        path, '<x:row\tr="300000000"><x:c\nr="A300000000"><x:v>1</x:v></x:c></x:row>'
    )


def whole_sheet_merge(path: Path) -> Path:
    return write_raw_xlsx(
        path, "", after='<mergeCells count="1"><mergeCell ref="A1:XFD1048576"/></mergeCells>'
    )


def huge_column(path: Path) -> Path:
    """A column with a value in each of 250,000 rows (a few hundred KB zipped)."""
    body = "".join(f'<row r="{r}"><c r="D{r}"><v>1</v></c></row>' for r in range(3, 250_001))
    return write_raw_xlsx(path, body)


def wide_row(path: Path) -> Path:
    return write_raw_xlsx(path, '<row r="3"><c r="XFD3"><v>1</v></c></row>')


def zip_bomb(path: Path, inflated_mb: int = 210) -> Path:
    """Well-formed XML whose comment unfolds to ``inflated_mb`` MB (~0.25 MB zipped)."""

    def pieces():
        yield b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><!--'
        block = b" " * (1 << 20)
        for _ in range(inflated_mb):
            yield block
        yield b"--></sst>"

    return write_raw_xlsx(path, "", extra={"xl/theme/theme1.xml": pieces()})


def huge_shared_strings(path: Path, mb: int = 80) -> Path:
    def pieces():
        yield b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        item = b"<si><t>" + b"A" * 1000 + b"</t></si>"
        for _ in range(mb * 1000):
            yield item
        yield b"</sst>"

    return write_raw_xlsx(path, "", extra={"xl/sharedStrings.xml": pieces()})


def billion_laughs(path: Path) -> Path:
    lol = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
            for i in range(1, 10)
        )
        + ']><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<si><t>&lol9;</t></si></sst>"
    )
    return write_raw_xlsx(path, "", extra={"xl/sharedStrings.xml": iter([lol.encode()])})


def far_cells_xls(path: Path) -> Path:
    """6 KB .xls with a value in A1 and one in IV65536: opened, a 65,536 × 256 grid (~1 GB)."""
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("台账")
    ws.write(0, 0, "姓名")
    ws.write(65535, 255, 1)
    wb.save(str(path))
    return path
