"""Ledger exports in the spreadsheet form offices use (台账 = Excel), and the blank template.

Personal data is masked (张*, 110105********1234, 138****8000; free-text address and notes left
out) unless a supervisor asks for full data; every export is written to the audit log, a full one
as ``export_full``. Files are written to a temporary file beside the target and renamed into
place, so a full disk or a read-only folder leaves no half-written file behind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanners.idnumber import mask_name, mask_phone

from ..errors import PermissionDenied
from ..i18n import current_language, t
from ..reports.atomic import ExportError
from ..reports.atomic import write_atomic as _write_atomic
from . import households  # the clock read at each call: tests set households.now_local
from .model import MEMBER_ORDER

if TYPE_CHECKING:
    from ..store import Store
    from ..store.keyring import Operator


# The template layout: (field, Chinese header). Household fields first, then the member's.
HOUSEHOLD_COLUMNS = (
    ("seq", "序号"),
    ("grid", "网格"),
    ("community", "小区"),
    ("building", "楼栋"),
    ("unit", "单元"),
    ("room", "房号"),
    ("address", "详细地址"),
    ("worker", "包户干部"),
    ("registered_count", "户籍人口数"),
    ("resident_count", "常住人口数"),
    ("tested_count", "核酸检测人数"),
    ("is_rental", "是否出租"),
    ("landlord_name", "房东姓名"),
    ("landlord_phone", "房东电话"),
    ("name", "姓名"),
    ("id_number", "身份证号码"),
    ("phone", "联系电话"),
    ("relation", "与户主关系"),
    ("categories", "人员类别"),
    ("health_status", "健康管理状态"),
    ("status_start", "开始时间"),
    ("status_end", "计划解除日期"),
    ("found_via", "来源"),
    ("vaccination", "疫苗接种情况"),
    ("last_test_date", "最近核酸时间"),
    ("last_test_result", "核酸结果"),
    ("notes", "备注"),
)
TEMPLATE_TITLE = "一户一档台账"
MONITORING_COLUMNS = (
    ("seq", "序号"),
    ("name", "姓名"),
    ("id_number", "身份证号码"),
    ("phone", "联系电话"),
    ("place", "楼栋-单元-房号"),
    ("health_status", "健康管理状态"),
    ("status_start", "开始时间"),
    ("status_end", "计划解除日期"),
    ("day", "日期"),
    ("morning", "早测体温"),
    ("evening", "晚测体温"),
    ("symptoms", "症状"),
    ("abnormal", "异常"),
)
MONITORING_TITLE = "居家隔离/健康监测人员台账"


def write_atomic(path: str | Path, write: Callable[[Any], None], private: bool = False) -> Path:
    """The one atomic write every export uses (:func:`fieldkit.reports.atomic.write_atomic`:
    temp file beside the target, fsync, rename; a full disk, a read-only or missing folder is
    one line saying so, and leaves no partial file and the older file as it was)."""
    path = Path(path)
    _write_atomic(path, write, lang=current_language(), private=private)
    return path


def _label(kind: str, code: str | None) -> str:
    return t(f"ledger.{kind}.{code}", "zh") if code else ""


WIDTHS = {"id_number": 21, "phone": 14, "categories": 18, "health_status": 16, "address": 24}
TEXT_KEYS = ("id_number", "phone", "landlord_phone", "room")


def _save_table(
    path: Path,
    title: str,
    columns: tuple[tuple[str, str], ...],
    rows: list[list[Any]],
    private: bool = False,
) -> Path:
    """Through the one spreadsheet writer (fieldkit.sheets.writer), as every export: cells
    from a ledger file are text, never formulas, in CSV and XLSX alike."""
    from ..sheets.writer import Book, write_csv

    headers = [h for _, h in columns]
    if path.suffix.lower() == ".csv":
        return write_atomic(path, lambda fh: write_csv(fh, headers, rows), private)
    if path.suffix.lower() != ".xlsx":
        raise ExportError("err.export_suffix", path=str(path))

    def write_xlsx(fh) -> None:
        book = Book(fh, title=title)
        book.table(
            title,
            headers,
            rows,
            kinds=["id" if key in TEXT_KEYS else "text" for key, _ in columns],
            title=title,
            widths=[WIDTHS.get(key, 10) for key, _ in columns],
        )
        book.close()

    return write_atomic(path, write_xlsx, private)


def write_template(path: str | Path) -> Path:
    """A blank household ledger in the layout ``fieldkit ledger import`` reads."""
    return _save_table(Path(path), TEMPLATE_TITLE, HOUSEHOLD_COLUMNS, [])


def _check_full(full: bool, supervisor: Operator | None) -> None:
    if full and (supervisor is None or not supervisor.is_supervisor):
        if supervisor is None:
            raise PermissionDenied("err.full_export_needs_pin")
        raise PermissionDenied("err.full_export_needs_supervisor", name=supervisor.name)


def household_rows(store: Store, *, full: bool) -> list[list[Any]]:
    ledger = store.ledger
    out: list[list[Any]] = []
    # Building, unit and room are sealed: the ledger decrypts them, the order is applied here.
    households = sorted(
        (ledger.open_household(h) for h in store.g.query("SELECT * FROM households")),
        key=lambda h: (h["grid"], h["building"], h["unit"], h["sort_key"]),
    )
    members: dict[str, list[dict[str, Any]]] = {}
    # The head of each household first, then the others as given (trial_town item 24).
    for m in store.g.query(f"SELECT * FROM members WHERE removed = 0 ORDER BY {MEMBER_ORDER}"):
        members.setdefault(m["household_id"], []).append(ledger.open_member(m))
    for h in households:
        hf = (
            ledger.household_fields(h)
            if full
            else {
                k: h[k]
                for k in (
                    "grid",
                    "community",
                    "building",
                    "unit",
                    "room",
                    "worker",
                    "registered_count",
                    "resident_count",
                    "tested_count",
                )
            }
        )
        if not full:
            hf["is_rental"] = bool(h["is_rental"])
            name = store.cipher.decrypt(h["id"], "landlord_name", h["landlord_name_enc"])
            phone = store.cipher.decrypt(h["id"], "landlord_phone", h["landlord_phone_enc"])
            hf["landlord_name"] = mask_name(name) if name else None
            hf["landlord_phone"] = mask_phone(phone) if phone else None
        hf["is_rental"] = "是" if hf.get("is_rental") else ""
        for m in members.get(h["id"]) or [None]:  # type: ignore[list-item]
            row = dict(hf)
            if m is not None:
                if full:
                    row.update(ledger.member_fields(m))
                else:
                    row.update(
                        {
                            "name": m["name_masked"],
                            "id_number": m["id_masked"],
                            "phone": m["phone_masked"],
                        }
                    )
                    row.update(
                        {
                            k: m[k]
                            for k in (
                                "relation",
                                "health_status",
                                "status_start",
                                "status_end",
                                "found_via",
                                "vaccination",
                                "last_test_date",
                                "last_test_result",
                            )
                        }
                    )
                    row["categories"] = list(m["categories"])
                row["categories"] = "、".join(_label("cat", c) for c in row.get("categories") or [])
                status = row.get("health_status")
                row["health_status"] = _label("status", status) if status != "none" else ""
                row["found_via"] = _label("found", row.get("found_via"))
            row["seq"] = len(out) + 1
            if not full:
                row.pop("address", None)
                row.pop("notes", None)
            out.append([row.get(k) for k, _ in HOUSEHOLD_COLUMNS])
    return out


def export_households(
    store: Store, path: str | Path, *, full: bool = False, supervisor: Operator | None = None
) -> dict[str, Any]:
    """The household ledger (一户一档) in the template layout; masked unless ``full``."""
    return _export(
        store,
        path,
        "household_ledger",
        TEMPLATE_TITLE,
        HOUSEHOLD_COLUMNS,
        household_rows,
        full,
        supervisor,
    )


def monitoring_rows(store: Store, *, full: bool, today: date | None = None) -> list[list[Any]]:
    today = today or households.now_local().date()
    out: list[list[Any]] = []
    for m in store.monitoring.ledger_rows():
        if full:
            fields = store.ledger.member_fields(m)
            name, idn, phone = fields["name"], fields["id_number"], fields["phone"]
        else:
            name, idn, phone = m["name_masked"], m["id_masked"], m["phone_masked"]
        by_day: dict[str, dict[str, Any]] = {}
        for r in m["readings"]:
            d = by_day.setdefault(r["day"], {"symptoms": set(), "abnormal": False})
            d[r["slot"]] = r["temperature"]
            d["symptoms"].update(r["symptoms"])
            d["abnormal"] = d["abnormal"] or bool(r["abnormal"])
        days = set(by_day)
        if m["status_start"]:
            start = date.fromisoformat(m["status_start"])
            end = min(date.fromisoformat(m["status_end"]) if m["status_end"] else today, today)
            days.update(
                (start + timedelta(days=i)).isoformat()
                for i in range(max(0, (end - start).days + 1))
            )
        for day in sorted(days):
            d = by_day.get(day, {})
            out.append(
                [
                    len(out) + 1,
                    name,
                    idn,
                    phone,
                    m["place"],
                    _label("status", m["health_status"]) if m["health_status"] != "none" else "",
                    m["status_start"],
                    m["status_end"],
                    day,
                    d.get("morning", "未测" if day < today.isoformat() else ""),
                    d.get("evening", "未测" if day < today.isoformat() else ""),
                    "、".join(_label("symptom", s) for s in sorted(d.get("symptoms", ()))),
                    "是" if d.get("abnormal") else "",
                ]
            )
    return out


def export_monitoring(
    store: Store, path: str | Path, *, full: bool = False, supervisor: Operator | None = None
) -> dict[str, Any]:
    """The home monitoring ledger: one row per person per day, morning and evening readings."""
    return _export(
        store,
        path,
        "monitoring_ledger",
        MONITORING_TITLE,
        MONITORING_COLUMNS,
        monitoring_rows,
        full,
        supervisor,
    )


def _export(
    store: Store,
    path: str | Path,
    kind: str,
    title: str,
    columns: Any,
    rows_of: Any,
    full: bool,
    supervisor: Operator | None,
) -> dict[str, Any]:
    """Check the right to full data, build the rows, write the file atomically, audit."""
    operator = store.require_operator().name
    _check_full(full, supervisor)
    rows = rows_of(store, full=full)
    written = _save_table(Path(path), title, columns, rows, private=full)
    _audit(store, operator, kind, written, len(rows), full, supervisor)
    return {"file": str(written), "rows": len(rows), "full": full}


def _audit(
    store: Store,
    operator: str,
    kind: str,
    path: Path,
    rows: int,
    full: bool,
    supervisor: Operator | None,
) -> None:
    with store.g.tx():
        store.audit.append(
            "export_full" if full else "export",
            operator,
            {
                "kind": kind,
                "file": path.name,
                "rows": rows,
                "confirmed_by": supervisor.name if full and supervisor else None,
            },
        )
