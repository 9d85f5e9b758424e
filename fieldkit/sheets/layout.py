"""The shape of an office sheet, shared by every import: where the header is, which rows are
footers, what 同上 means.

Real sheets start with a merged title row (幸福社区一户一档台账), sometimes a date line, then a
header that may take two rows (地址 merged over 楼栋/单元/房号), then data, then a footer
(合计 12 户 30 人, 制表人: …). :func:`find_header` takes the row among the first 20 that names
the most known columns and joins the row above or below when it only adds sub-column names;
:func:`is_footer` recognises the footer by its first non-empty cell.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from .guard import SheetError

HEADER_SCAN_ROWS = 20
SAME_AS_ABOVE = {"同上", "〃", "''", '"', "同左"}
FOOTER = re.compile(
    r"^(合\s*计|总\s*计|小\s*计|共\s*计|总数|统计|制表|填表|审核|负责人|联系人|备注[:：]|说明[:：]"
    r"|注[:：]|total\b|subtotal\b|sum\b|prepared by|checked by)",
    re.I,
)


def cell_text(value: Any) -> str:
    """NFKC (full-width to ASCII), trimmed; None → ''; 3.0 → '3'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def is_blank(row: list[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def is_footer(row: list[Any]) -> bool:
    """A totals or signature line under the data: its first non-empty cell says so
    (合计, 总计, 小计, 制表人 …), and it carries no ID-shaped value."""
    first = next((v for v in row if v is not None and v != ""), None)
    if not isinstance(first, str) or not FOOTER.match(cell_text(first)):
        return False  # the common case costs one look at the first cell
    texts = [cell_text(v) for v in row]
    return not any(re.fullmatch(r"\d{15}|\d{17}[\dXx]", s.replace(" ", "")) for s in texts)


def find_header(
    rows: list[list[Any]],
    field_of: Callable[[Any], str | None],
    *,
    min_fields: int = 2,
    examples: str = "姓名, 身份证号",
) -> tuple[int, int, list[str | None], list[str]]:
    """(first header row, first data row, field per column, unknown header labels), 0-based.

    ``field_of(cell)`` names the field a header cell stands for (None: not a known column;
    names starting with ``_`` are known but not counted, e.g. 序号).
    """
    scan = rows[:HEADER_SCAN_ROWS]
    scores = [sum(1 for v in r if (f := field_of(v)) and not f.startswith("_")) for r in scan]
    if not scores or max(scores) < min_fields:
        raise SheetError("sheets.error.no_header", rows=HEADER_SCAN_ROWS, examples=examples)
    best = scores.index(max(scores))
    first = last = best
    width = max(len(r) for r in scan)

    def padded(i: int) -> list[Any]:
        return rows[i] + [None] * (width - len(rows[i]))

    labels = [field_of(v) for v in padded(best)]
    for other in (best - 1, best + 1):
        if not 0 <= other < len(rows):
            continue
        neighbour, own = padded(other), padded(best)
        extra = [field_of(v) for v in neighbour]
        # A header row holds only column names (or the same text, filled from a merged cell);
        # a data row never qualifies, so no data row is ever taken for a header.
        only_names = all(
            cell_text(v) == "" or e is not None or cell_text(v) == cell_text(o)
            for v, e, o in zip(neighbour, extra, own, strict=False)
        )
        adds = any(
            e and e != lbl and (not lbl or lbl == "address")
            for e, lbl in zip(extra, labels, strict=False)
        )
        if not (only_names and adds):
            continue
        joined = []
        for lbl, e in zip(labels, extra, strict=False):
            # The lower row names the sub-column (楼栋 under a merged 地址).
            lower, upper = (e, lbl) if other > best else (lbl, e)
            joined.append(lower or upper)
        labels = joined
        first, last = min(first, other), max(last, other)
    seen: set[str] = set()
    unknown: list[str] = []
    for i, lbl in enumerate(labels):
        below = cell_text(rows[last][i] if i < len(rows[last]) else "")
        if lbl and lbl in seen:
            labels[i] = None  # a repeated column: the first one counts
            unknown.append(below)
        elif lbl:
            seen.add(lbl)
        elif text := below or cell_text(rows[first][i] if i < len(rows[first]) else ""):
            unknown.append(text)
    return first, last + 1, labels, unknown
