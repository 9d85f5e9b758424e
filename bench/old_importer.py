"""The ledger importer as it was before fieldkit/sheets (commit e158bbe): bench/patrol.py's
"today" baseline, with bench/old_xlsx_reader.py. Not used by FieldKit.

Import the household ledgers offices already keep (XLSX, or CSV in UTF-8 or GBK).

Real files are messy: a merged title row, a two-row header with merged group cells (地址 over
楼栋/单元/房号), household cells merged down over the members' rows, blank rows, 同上, full-width
digits, spaces inside ID numbers, IDs stored as numbers. Every data row ends up in exactly one
of: imported (new), updated, unchanged, rejected (with its row number and the reason). Nothing is
dropped silently, and importing the same file again changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.old_ledger import OldLedger
from bench.old_text import address_key, clean_text
from fieldkit.errors import FieldkitError, InputError
from fieldkit.i18n import t
from fieldkit.ledger.households import now_local
from fieldkit.ledger.model import (
    EMPTY_WORDS,
    parse_categories,
    parse_found_via,
    parse_status,
)
from scanners.idnumber import mask_id, mask_name, parse_identity

if TYPE_CHECKING:
    from fieldkit.store import Store


class ImportFileError(FieldkitError):
    """The file as a whole cannot be read (not a spreadsheet, no header found ...)."""

    exit_code = 2


# Field → header variants seen in office ledgers (normalised: no spaces, no '*').
HEADERS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "居民姓名", "人员姓名", "户主姓名", "成员姓名"),
    "id_number": (
        "身份证号",
        "身份证号码",
        "证件号码",
        "证件号",
        "公民身份号码",
        "身份证",
        "身份证件号码",
    ),
    "phone": ("联系电话", "手机号", "手机号码", "电话", "联系方式", "电话号码", "手机"),
    "grid": ("网格", "所属网格", "网格名称", "网格号"),
    "community": ("小区", "小区名称", "村组", "村民小组", "小区(村组)"),
    "building": ("楼栋", "楼栋号", "栋", "楼号", "幢", "栋号", "楼栋名称"),
    "unit": ("单元", "单元号"),
    "room": ("房号", "门牌号", "房间号", "室", "户号", "房屋号", "门牌"),
    "address": ("详细地址", "住址", "地址", "现住址", "家庭住址", "居住地址"),
    "relation": ("与户主关系", "关系", "家庭关系"),
    "categories": ("人员类别", "人员分类", "类别", "重点人群类别", "人员类型", "重点人员类别"),
    "occupation": ("职业", "职业类别", "工作类别", "重点行业", "从业类别"),
    "health_status": (
        "健康管理状态",
        "管控状态",
        "管理状态",
        "健康管理措施",
        "管控措施",
        "管理措施",
        "隔离状态",
    ),
    "status_start": (
        "开始时间",
        "开始日期",
        "隔离开始时间",
        "管控开始日期",
        "隔离开始日期",
        "管控开始时间",
    ),
    "status_end": (
        "解除时间",
        "计划解除日期",
        "结束日期",
        "预计解除时间",
        "解除日期",
        "计划解除时间",
    ),
    "worker": ("包户干部", "包户人", "包户", "责任人", "包户责任人", "网格员", "包保人"),
    "registered_count": ("户籍人口数", "户籍人数", "户籍人口"),
    "resident_count": ("常住人口数", "常住人数", "常住人口"),
    "tested_count": ("核酸检测人数", "已检测人数", "检测人数"),
    "is_rental": ("是否出租", "出租房", "是否出租房"),
    "landlord_name": ("房东", "房东姓名", "房主", "房主姓名"),
    "landlord_phone": ("房东电话", "房东联系电话", "房主电话"),
    "found_via": ("来源", "发现途径", "排查来源", "信息来源", "发现方式"),
    "vaccination": ("疫苗接种", "疫苗接种情况", "接种情况", "疫苗接种剂次"),
    "last_test_date": (
        "最近核酸时间",
        "核酸检测时间",
        "末次核酸",
        "最近一次核酸时间",
        "最近核酸日期",
        "核酸检测日期",
    ),
    "last_test_result": ("核酸结果", "核酸检测结果", "最近核酸结果"),
    "notes": ("备注", "说明", "其他情况"),
    "_seq": ("序号", "编号", "序"),
    "_sex": ("性别",),
    "_age": ("年龄",),
}
_ALIAS = {alias: f for f, aliases in HEADERS.items() for alias in aliases}
HOUSEHOLD_KEYS = (
    "grid",
    "community",
    "building",
    "unit",
    "room",
    "address",
    "worker",
    "registered_count",
    "resident_count",
    "tested_count",
    "is_rental",
    "landlord_name",
    "landlord_phone",
)
MEMBER_KEYS = (
    "name",
    "id_number",
    "phone",
    "relation",
    "categories",
    "health_status",
    "status_start",
    "status_end",
    "found_via",
    "vaccination",
    "last_test_date",
    "last_test_result",
    "notes",
)
SAME_AS_ABOVE = {"同上", "〃", "''", '"'}
_ADDRESS = re.compile(
    r"(?P<community>.*?(?:小区|花园|苑|村|组|社区))?\s*"
    r"(?P<building>[0-9A-Za-z一二三四五六七八九十]+)(?:栋|幢|号楼)\s*"
    r"(?:(?P<unit>[0-9A-Za-z一二三四五六七八九十]+)单元)?\s*"
    r"(?P<room>[0-9A-Za-z\-]+)(?:室|号)?\s*$"
)
_DASHED = re.compile(r"^(?P<building>\d+)-(?P<unit>\d+)-(?P<room>\d+)$")
_TRUE = {"是", "y", "yes", "1", "√", "✓", "出租", "true"}
_FALSE = {"否", "n", "no", "0", "×", "自住", "false"}


def normalise_header(value: Any) -> str:
    s = clean_text(value)
    s = re.sub(r"[\s*＊:：]", "", s)
    return s.replace("（", "(").replace("）", ")")


def header_field(value: Any) -> str | None:
    s = normalise_header(value)
    if not s:
        return None
    if s in _ALIAS:
        return _ALIAS[s]
    base = re.sub(r"\(.*?\)$", "", s)
    if base in _ALIAS:
        return _ALIAS[base]
    # '户主身份证号码', '联系电话(手机)': the longest known alias inside the header.
    best = max((a for a in _ALIAS if len(a) >= 2 and a in s), key=len, default=None)
    return _ALIAS[best] if best else None


# -- reading the file -----------------------------------------------------------------------


def read_rows(path: Path) -> list[list[Any]]:
    """The first sheet (or the CSV) as rows of raw cell values, merged ranges filled."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            return _read_xlsx(path)
        if suffix in (".csv", ".txt"):
            return _read_csv(path.read_bytes())
    except FileNotFoundError:
        raise ImportFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read the file ({exc.strerror})") from None
    if suffix == ".xls":
        raise ImportFileError(
            f"{path}: old .xls format: open it in Excel or WPS and save it as "
            ".xlsx, then import again"
        )
    raise ImportFileError(f"{path}: not an .xlsx or .csv file")


def _read_xlsx(path: Path) -> list[list[Any]]:
    from bench.old_xlsx_reader import XlsxError, read_first_sheet

    try:
        rows, merged = read_first_sheet(str(path))
    except XlsxError:
        rows, merged = _read_xlsx_openpyxl(path)
    for min_row, min_col, max_row, max_col in merged:
        if min_row >= len(rows):
            continue
        top_row = rows[min_row]
        top = top_row[min_col] if min_col < len(top_row) else None
        for r in range(min_row, min(max_row + 1, len(rows))):
            row = rows[r]
            if len(row) <= max_col:
                row.extend([None] * (max_col + 1 - len(row)))
            for c in range(min_col, max_col + 1):
                row[c] = top
    return rows


def _read_xlsx_openpyxl(path: Path) -> tuple[list[list[Any]], list[tuple[int, int, int, int]]]:
    """The slow, thorough path for workbooks the streaming reader does not understand."""
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ImportFileError(f"{path}: not a readable .xlsx file ({exc})") from None
    ws = wb.worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    merged = [
        (r.min_row - 1, r.min_col - 1, r.max_row - 1, r.max_col - 1) for r in ws.merged_cells.ranges
    ]
    wb.close()
    return rows, merged


def _read_csv(data: bytes) -> list[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ImportFileError("the CSV is neither UTF-8 nor GBK text")
    sample = text[:4096]
    delimiter = max(",\t;", key=sample.count)
    return [list(r) for r in csv.reader(io.StringIO(text), delimiter=delimiter)]


def find_header(rows: list[list[Any]]) -> tuple[int, int, list[str | None], list[str]]:
    """(first header row, first data row, field per column, unknown header labels)."""
    scan = rows[:20]
    scores = [sum(1 for v in r if (f := header_field(v)) and not f.startswith("_")) for r in scan]
    if not scores or max(scores) < 2:
        raise ImportFileError(
            "no header row found: the first rows should hold column names "
            "such as 姓名, 身份证号, 楼栋, 单元, 房号 (see `fieldkit ledger template`)"
        )
    best = scores.index(max(scores))
    first, last = best, best
    width = max(len(r) for r in scan)

    def fields_of(i: int) -> list[str | None]:
        row = rows[i] + [None] * (width - len(rows[i]))
        return [header_field(v) for v in row]

    labels = fields_of(best)
    for other in (best - 1, best + 1):
        if not 0 <= other < len(rows):
            continue
        extra = fields_of(other)
        neighbour = rows[other] + [None] * (width - len(rows[other]))
        own = rows[best] + [None] * (width - len(rows[best]))
        # A header row holds only column names (or the same text, filled from a merged cell);
        # a data row never qualifies, so no data row is ever taken for a header.
        only_names = all(
            clean_text(v) == "" or e is not None or clean_text(v) == clean_text(o)
            for v, e, o in zip(neighbour, extra, own, strict=False)
        )
        adds = any(
            e and e != lbl and (not lbl or lbl == "address")
            for e, lbl in zip(extra, labels, strict=False)
        )
        if not (only_names and adds):
            continue
        merged = []
        for lbl, e in zip(labels, extra, strict=False):
            # The lower row names the sub-column (楼栋 under a merged 地址).
            lower, upper = (e, lbl) if other > best else (lbl, e)
            merged.append(lower or upper)
        labels = merged
        first, last = min(first, other), max(last, other)
    seen: set[str] = set()
    unknown: list[str] = []
    for i, lbl in enumerate(labels):
        if lbl and lbl in seen:
            labels[i] = None  # a repeated column: the first one counts
            unknown.append(clean_text(rows[last][i] if i < len(rows[last]) else ""))
        elif lbl:
            seen.add(lbl)
        else:
            text = clean_text(rows[last][i] if i < len(rows[last]) else "") or clean_text(
                rows[first][i] if i < len(rows[first]) else ""
            )
            if text:
                unknown.append(text)
    if not ({"building", "room", "address"} & seen):
        raise ImportFileError(
            "the header has no address columns (楼栋/单元/房号 or 地址): "
            "every household needs an address"
        )
    return first, last + 1, labels, unknown


# -- one row ---------------------------------------------------------------------------------


class RowError(Exception):
    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return clean_text(value)


def parse_date(value: Any, column: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    s = clean_text(value)
    if s.lower() in EMPTY_WORDS:
        return None
    s2 = re.sub(r"[年月./]", "-", s).replace("日", "").strip("-")
    s2 = s2.split(" ")[0].split("T")[0]
    try:
        if re.fullmatch(r"\d{8}", s2):
            return date(int(s2[:4]), int(s2[4:6]), int(s2[6:])).isoformat()
        parts = [int(p) for p in s2.split("-")]
        if len(parts) == 3:
            return date(*parts).isoformat()
        if len(parts) == 2:  # '4月1日': this year
            return date(now_local().year, *parts).isoformat()
    except ValueError:
        pass
    raise RowError("bad_date", column=column, value=s)


def parse_count(value: Any, column: str) -> int | None:
    s = clean_text(value).rstrip("人")
    if not s or s.lower() in EMPTY_WORDS:
        return None
    if re.fullmatch(r"\d{1,3}", s):
        return int(s)
    raise RowError("bad_count", column=column, value=s)


def parse_phone(value: Any, column: str) -> str | None:
    s = clean_text(value)
    if not s or s.lower() in EMPTY_WORDS:
        return None
    parts = [re.sub(r"[\s\-()]", "", p) for p in re.split(r"[/,，、;；]", s) if p.strip()]
    if not parts or not all(re.fullmatch(r"\+?\d{5,20}", p) for p in parts):
        raise RowError("bad_phone", column=column, value=s)
    return "/".join(parts)


def parse_id_cell(value: Any) -> tuple[str, str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        # Excel kept the number as a float: the last digits of an 18-digit ID are gone.
        if not value.is_integer() or value >= 1e15:
            raise RowError("id_as_number")
        value = int(value)
    text = clean_text(value)
    if not text or text.lower() in EMPTY_WORDS:
        return None
    ident = parse_identity(text)
    if ident.problem or not ident.number:
        code = (
            "id_check_digit"
            if ident.kind == "resident_id"
            and not ident.check_ok
            and ident.birth_date is not None
            and "check digit" in (ident.problem or "")
            else "id_invalid"
        )
        raise RowError(code, value=mask_id(ident.number or text), why=ident.problem or "")
    return ident.number, ident.kind


def parse_bool(value: Any, column: str) -> bool | None:
    s = clean_text(value).lower()
    if not s:
        return None
    if s in _TRUE:
        return True
    if s in _FALSE or s in EMPTY_WORDS:
        return False
    raise RowError("bad_yes_no", column=column, value=s)


def parse_row(cells: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(household fields, member fields) of one row; raises RowError."""
    h: dict[str, Any] = {}
    m: dict[str, Any] = {}
    for key in (
        "grid",
        "community",
        "building",
        "unit",
        "room",
        "address",
        "worker",
        "landlord_name",
    ):
        v = _text(cells.get(key))
        h[key] = v if v and v.lower() not in EMPTY_WORDS else None
    for key in ("registered_count", "resident_count", "tested_count"):
        h[key] = parse_count(cells.get(key), key)
    h["is_rental"] = parse_bool(cells.get("is_rental"), "is_rental")
    h["landlord_phone"] = parse_phone(cells.get("landlord_phone"), "landlord_phone")
    if h["room"] and not h["building"] and (dm := _DASHED.match(h["room"])):
        h.update(building=dm["building"], unit=dm["unit"], room=dm["room"])
    if not (h["building"] and h["room"]) and h["address"]:
        am = _ADDRESS.search(h["address"].replace(" ", ""))
        if am:
            for key in ("community", "building", "unit", "room"):
                if am[key] and not h[key]:
                    h[key] = am[key]
    ident = parse_id_cell(cells.get("id_number"))
    if ident:
        m["id_number"], m["id_kind"] = ident
    name = _text(cells.get("name"))
    m["name"] = name if name and name.lower() not in EMPTY_WORDS else None
    m["phone"] = parse_phone(cells.get("phone"), "phone")
    cats, unknown = parse_categories(_text(cells.get("categories")))
    occ, unknown_occ = parse_categories(_text(cells.get("occupation")))
    if unknown or unknown_occ:
        raise RowError("unknown_category", value=(unknown + unknown_occ)[0])
    cats += [c for c in occ if c not in cats]
    m["categories"] = cats or None
    if cells.get("health_status") not in (None, ""):
        status = parse_status(_text(cells.get("health_status")))
        if status is None:
            raise RowError("unknown_status", value=_text(cells.get("health_status")))
        m["health_status"] = status or None
    m["status_start"] = parse_date(cells.get("status_start"), "status_start")
    m["status_end"] = parse_date(cells.get("status_end"), "status_end")
    m["last_test_date"] = parse_date(cells.get("last_test_date"), "last_test_date")
    for key in ("relation", "vaccination", "last_test_result", "notes"):
        v = _text(cells.get(key))
        m[key] = v if v and v.lower() not in EMPTY_WORDS else None
    fv = parse_found_via(_text(cells.get("found_via")))
    m["found_via"] = fv or None
    if not (h["building"] and h["room"]):
        raise RowError("address_missing")
    return h, m


# -- the import -----------------------------------------------------------------------------


@dataclass
class Rejected:
    row: int
    reason: str
    message: str
    name_masked: str | None = None
    id_masked: str | None = None


@dataclass
class ImportSummary:
    file: str
    rows: int = 0  # data rows (not blank)
    imported: int = 0  # new members (or new households for household-only rows)
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    blank_rows: int = 0
    households_created: int = 0
    households_updated: int = 0
    header_rows: tuple[int, int] = (0, 0)
    ignored_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rejected_count"] = len(self.rejected)
        return d


def _message(code: str, params: dict[str, Any], lang: str) -> str:
    if "column" in params:
        params = {**params, "column": t(f"ledger.field.{params['column']}", lang)}
    return t(f"ledger.reject.{code}", lang, **params)


def import_file(
    store: Store, path: str | Path, *, lang: str | None = None, source: str = "import"
) -> ImportSummary:
    path = Path(path)
    rows = read_rows(path)
    return import_rows(store, rows, name=path.name, lang=lang, source=source)


def import_rows(
    store: Store,
    rows: list[list[Any]],
    *,
    name: str = "<rows>",
    lang: str | None = None,
    source: str = "import",
) -> ImportSummary:
    """Parse every row first, then save each household once (its fields gathered from all of
    its rows: the first value given wins) and each member; all in one transaction."""
    operator = store.require_operator().name
    lang = lang or store.settings.ui.language
    first, data_start, labels, unknown = find_header(rows)
    summary = ImportSummary(file=name, header_rows=(first + 1, data_start), ignored_columns=unknown)
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    household_fields: dict[str, dict[str, Any]] = {}
    seen_people: dict[str, int] = {}
    previous: dict[str, Any] = {}  # for 同上 (same as above)
    for index in range(data_start, len(rows)):
        raw = rows[index]
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in raw):
            summary.blank_rows += 1
            continue
        excel_row = index + 1
        summary.rows += 1
        cells: dict[str, Any] = {}
        for col, lbl in enumerate(labels):
            if lbl and not lbl.startswith("_") and col < len(raw):
                value = raw[col]
                if isinstance(value, str) and value.strip() in SAME_AS_ABOVE:
                    value = previous.get(lbl)
                cells[lbl] = value
        previous.update((k, v) for k, v in cells.items() if v is not None and v != "")
        try:
            h, m = parse_row(cells)
            akey = address_key(h["community"] or "", h["building"], h["unit"] or "", h["room"])
            person = m.get("id_number") or (m.get("name") and f"{akey}/{m['name']}")
            if person and person in seen_people:
                raise RowError("duplicate_in_file", first=seen_people[person])
        except RowError as err:
            name_text = _text(cells.get("name"))
            summary.rejected.append(
                Rejected(
                    excel_row,
                    err.code,
                    _message(err.code, err.params, lang),
                    mask_name(name_text) if name_text else None,
                    err.params.get("value") if err.code.startswith("id_") else None,
                )
            )
            continue
        if person:
            seen_people[person] = excel_row
        gathered = household_fields.setdefault(akey, {})
        for k, v in h.items():
            if v is not None and k not in gathered:
                gathered[k] = v
        parsed.append((excel_row, akey, m))

    ledger = OldLedger(store)  # the write path of that time (bench/old_ledger.py)
    ts = now_local()
    with store.g.tx():
        # Look every existing record up once: a 50k-person ledger must not cost 100k queries.
        known_households = {r["address_key"]: r for r in store.g.query("SELECT * FROM households")}
        known_members = {r["match_key"]: r for r in store.g.query("SELECT * FROM members")}
        household_ids: dict[str, str] = {}
        household_state: dict[str, str] = {}
        with ledger.batched():
            for akey, fields in household_fields.items():
                hid, state = ledger._save_household(
                    fields, None, source, ts, current=known_households.get(akey)
                )
                household_ids[akey], household_state[akey] = hid, state
                summary.households_created += state == "created"
                summary.households_updated += state == "updated"
            for excel_row, akey, m in parsed:
                if not (m.get("name") or m.get("id_number")):
                    state = household_state[akey]  # a row about the household only
                else:
                    hid = household_ids[akey]
                    current = known_members.get(
                        ledger.match_key(hid, m.get("id_number"), m.get("name"))
                    )
                    if current is None and m.get("id_number") and m.get("name"):
                        # Registered before by name only: the ID number now joins that record.
                        current = known_members.get(ledger.match_key(hid, None, m["name"]))
                    try:
                        _, state = ledger._save_member(
                            hid,
                            {k: v for k, v in m.items() if v is not None},
                            None,
                            source,
                            ts,
                            current=current,
                        )
                    except InputError as err:
                        summary.rejected.append(Rejected(excel_row, "invalid", str(err)))
                        continue
                if state == "created":
                    summary.imported += 1
                elif state == "updated":
                    summary.updated += 1
                else:
                    summary.unchanged += 1
        summary.rejected.sort(key=lambda r: r.row)
        store.audit.append(
            "ledger_import",
            operator,
            {
                "file": name,
                "rows": summary.rows,
                "imported": summary.imported,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
                "rejected": len(summary.rejected),
            },
        )
    return summary


def iter_rejected_text(summary: ImportSummary) -> Iterable[str]:
    for r in summary.rejected:
        who = " ".join(x for x in (r.name_masked, r.id_masked) if x)
        yield f"  row {r.row}: {r.message}" + (f" ({who})" if who else "")
