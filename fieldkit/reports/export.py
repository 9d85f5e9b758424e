"""``export``: build a document from the store, write it atomically, record it in the audit log.

Every export is audited (kind, format, masked or full, rows, file name — never the content); a
full export needs a supervisor, who is the operator of the unlocked store. The audit entry is
written before the file is renamed into place, so no file appears without its entry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import InputError
from ..i18n import word
from .atomic import ExportError, write_atomic
from .csvfile import write_csv
from .document import FORMATS, Document, build_document
from .xlsx import write_xlsx

if TYPE_CHECKING:
    from ..store import Store

WRITERS: dict[str, Callable[[Document, BinaryIO], None]] = {"xlsx": write_xlsx, "csv": write_csv}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    kind: str
    format: str
    full: bool
    rows: int
    size: int


def guess_format(out: str | os.PathLike[str], fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            allowed = ", ".join(FORMATS)
            raise InputError("err.choice", what=word("format"), allowed=allowed, value=fmt)
        return fmt
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise InputError("err.format_unknown")


def data_rows(doc: Document, fmt: str) -> int:
    """The rows of data the file holds: the detail table's (in a workbook a daily report's
    passages sheet, beside its summary sheet), else the summary's (a daily report's CSV is its
    summary, label | value)."""
    if doc.table is not None and (doc.kind != "daily" or fmt == "xlsx"):
        return len(doc.table.rows)
    return len(doc.summary)


def export(
    store: Store,
    kind: str,
    out: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    day: date | str | None = None,
    shift_id: str | None = None,
    full: bool = False,
    lang: str | None = None,
    by: Any = None,
    reason: str | None = None,
) -> ExportResult:
    """``by``: the supervisor who confirmed a full export with their PIN (default: the
    logged-in operator). The store must be unlocked either way. A full export needs
    ``reason`` (why full personal data leaves the device), which goes into the audit entry."""
    session = store.require_operator()
    operator = by or session
    fmt = guess_format(out, fmt)
    lang = lang or store.settings.ui.language
    doc = build_document(store, kind, day=day, shift_id=shift_id, full=full, lang=lang, by=operator)
    reason = (reason or "").strip() or None
    if full and reason is None:  # checked after the supervisor's right to it (build_document)
        raise InputError("export_reason.needed")
    rows = data_rows(doc, fmt)
    path = Path(out).expanduser()
    writer = WRITERS[fmt]

    def write(fh: BinaryIO) -> None:
        writer(doc, fh)
        # Audited once the content is complete and before it is renamed into place.
        store.audit.append(
            "export",
            operator.name,
            {
                "kind": kind,
                "format": fmt,
                "full": full,
                **({"reason": reason} if full else {}),
                "rows": rows,
                "file": path.name,
                **{k: v for k, v in doc.meta.items() if k in ("day", "shift_id")},
            },
        )

    try:
        size = write_atomic(path, write, lang=lang, private=full)
    except ExportError as err:
        store.audit.append(
            "export_failed",
            operator.name,
            {"kind": kind, "format": fmt, "full": full, "file": path.name, "error": str(err)[:200]},
        )
        raise
    return ExportResult(path, kind, fmt, full, rows, size)
