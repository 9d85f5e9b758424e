"""Import the household ledgers offices already keep (XLSX, or CSV in UTF-8 or GBK).

Real files are messy: a merged title row, a two-row header with merged group cells (地址 over
楼栋/单元/房号), household cells merged down over the members' rows, blank rows, 同上, full-width
digits, spaces inside ID numbers, IDs stored as numbers. Every data row ends up in exactly one
of: imported (new), updated, unchanged, rejected (with its row number and the reason). Nothing is
dropped silently, and importing the same file again changes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..i18n import t
from ..shared.identity import mask_name
from ..sheets import layout
from . import households  # the clock read at each call: tests set households.now_local
from .model import CATEGORIES, HEALTH_STATUSES, address_key
from .rows import (  # noqa: F401  (re-exported: callers import them from here)
    HEADERS,
    HOUSEHOLD_KEYS,
    MEMBER_KEYS,
    ImportFileError,
    RowError,
    _text,
    find_header,
    header_field,
    normalise_header,
    parse_row,
    read_rows,
)

if TYPE_CHECKING:
    from ..store import Store

SAME_AS_ABOVE = layout.SAME_AS_ABOVE
# A cell can only be 同上 … if it starts with one of their first characters or with a space:
# other cells are not stripped and looked up (a 50k-row ledger has half a million cells).
_DITTO_FIRST = frozenset(s[0] for s in SAME_AS_ABOVE)

# -- the import -----------------------------------------------------------------------------


@dataclass
class Rejected:
    row: int
    reason: str
    message: str
    name_masked: str | None = None
    id_masked: str | None = None


@dataclass
class RowWarning:
    """A row imported with a cell kept in the notes or left out (trial_town item 2)."""

    row: int
    reason: str
    message: str
    name_masked: str | None = None


@dataclass
class ImportSummary:
    file: str
    rows: int = 0  # data rows (not blank)
    imported: int = 0  # new members (or new households for household-only rows)
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)  # imported, to be checked
    blank_rows: int = 0
    households_created: int = 0
    households_updated: int = 0
    header_rows: tuple[int, int] = (0, 0)
    footer_rows: list[int] = field(default_factory=list)  # 合计/制表人 rows, skipped
    ignored_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rejected_count"] = len(self.rejected)
        d["warning_count"] = len(self.warnings)
        return d


def _accepted(code: str, lang: str) -> str:
    """The words a cell may hold, as a message names them: every category, every status."""
    sep = t("ledger.note.words_sep", lang)
    if code == "unknown_category":
        return sep.join(t(f"ledger.cat.{c}", lang) for c in CATEGORIES)
    return sep.join(t(f"ledger.status.{s}", lang) for s in HEALTH_STATUSES[1:])


def _message(code: str, params: dict[str, Any], lang: str, kind: str = "reject") -> str:
    if "column" in params:
        params = {**params, "column": t(f"ledger.field.{params['column']}", lang)}
    if "problem" in params:  # a phone number's: what it should look like
        params = {**params, "problem": t(f"ledger.phone_problem.{params['problem']}", lang)}
    if kind == "warn":
        params = {**params, "accepted": _accepted(code, lang)}
    return t(f"ledger.{kind}.{code}", lang, **params)


def import_file(
    store: Store, path: str | Path, *, lang: str | None = None, source: str = "import"
) -> ImportSummary:
    path = Path(path)
    rows = read_rows(path)
    return import_rows(store, rows, name=path.name, lang=lang, source=source)


def _same_place(
    ledger: Any, known: dict[str, Any], communities: list[str], fields: dict[str, Any]
) -> Any:
    """The household stored at this building, unit and room under another 小区 when one side
    names none (a second sheet without the 小区 column, or the first one was): that household,
    if it is the only one; else None (a new household). Trial item 10: one address from two
    sheets made two households."""
    community = fields.get("community") or ""
    others = [c for c in communities if c != community and not (community and c)]
    place = (str(fields["building"]), str(fields.get("unit") or ""), str(fields["room"]))
    hits = [
        known[k] for c in others if (k := ledger.address_index(address_key(c, *place))) in known
    ]
    return hits[0] if len(hits) == 1 else None


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
    columns = [(col, lbl) for col, lbl in enumerate(labels) if lbl and not lbl.startswith("_")]
    akeys: dict[tuple[str, ...], str] = {}  # members of one household share its address
    parsed_households: dict[tuple, dict[str, Any]] = {}  # and its cells
    merged: dict[str, dict[str, Any]] = {}
    akey_of: dict[int, str] = {}  # id of a parsed household's cells (kept alive in the memo)
    warned: list[tuple[str, dict[str, Any]]] = []  # this row's, filled by parse_row
    for index in range(data_start, len(rows)):
        raw = rows[index]
        if layout.is_blank(raw):
            summary.blank_rows += 1
            continue
        if layout.is_footer(raw):
            summary.footer_rows.append(index + 1)  # 合计 …: not a person, not an error
            continue
        excel_row = index + 1
        summary.rows += 1
        cells: dict[str, Any] = {}
        for col, lbl in columns:
            if col < len(raw):
                value = raw[col]
                if value is None or value == "":
                    continue  # an empty cell is an absent field
                if (
                    value.__class__ is str
                    and (value[0] in _DITTO_FIRST or value[0].isspace())
                    and value.strip() in SAME_AS_ABOVE
                ):
                    value = previous.get(lbl)
                cells[lbl] = value
        previous.update(cells)
        try:
            h, m = parse_row(cells, parsed_households, warned, lang)
            akey = akey_of.get(id(h))  # h is the memo's: one per household's cells
            if akey is None:
                where = (h["community"] or "", h["building"], h["unit"] or "", h["room"])
                akey = akeys.get(where) or akeys.setdefault(where, address_key(*where))
                akey_of[id(h)] = akey
            person = m.get("id_number") or (m.get("name") and f"{akey}/{m['name']}")
            if person and person in seen_people:
                raise RowError("duplicate_in_file", first=seen_people[person])
        except RowError as err:
            warned.clear()  # a refused row is refused, not warned about
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
        if warned:
            name_text = _text(cells.get("name"))
            summary.warnings.extend(
                RowWarning(
                    excel_row,
                    code,
                    _message(code, params, lang, "warn"),
                    mask_name(name_text) if name_text else None,
                )
                for code, params in warned
            )
            warned.clear()
        if person:
            seen_people[person] = excel_row
        if merged.get(akey) is not h:  # the same cells as this household's last row: no news
            merged[akey] = h
            gathered = household_fields.setdefault(akey, {})
            for k, v in h.items():
                if v is not None and k not in gathered:
                    gathered[k] = v
        parsed.append((excel_row, akey, m))

    ledger = store.ledger
    ts = households.now_local()
    with store.g.tx():
        # Look every existing record up once: a 50k-person ledger must not cost 100k queries.
        known_households = {r["address_key"]: r for r in store.g.query("SELECT * FROM households")}
        known_members = {r["match_key"]: r for r in store.g.query("SELECT * FROM members")}
        by_name = any(k.startswith("name:") for k in known_members)  # anyone without an ID?
        household_ids: dict[str, str] = {}
        household_state: dict[str, str] = {}
        # Households are written before any member: a member who moved to a new household is
        # an UPDATE run at once, which needs that household's row already there.
        communities = sorted({r["community"] or "" for r in known_households.values()})
        with ledger.batched():
            for akey, fields in household_fields.items():
                stored_key = ledger.address_index(akey)
                current = known_households.get(stored_key)
                if current is None:
                    current = _same_place(ledger, known_households, communities, fields)
                hid, state = ledger._save_household(
                    fields,
                    None,
                    source,
                    ts,
                    current=current,
                    address=stored_key,
                )
                household_ids[akey], household_state[akey] = hid, state
                summary.households_created += state == "created"
                summary.households_updated += state == "updated"
        with ledger.batched():
            for excel_row, akey, m in parsed:
                if not (m.get("name") or m.get("id_number")):
                    state = household_state[akey]  # a row about the household only
                else:
                    hid = household_ids[akey]
                    key = ledger.match_key(hid, m.get("id_number"), m.get("name"))
                    current = known_members.get(key)
                    if current is None and by_name and m.get("id_number") and m.get("name"):
                        # Registered before by name only: the ID number now joins that record.
                        current = known_members.get(ledger.match_key(hid, None, m["name"]))
                    try:
                        _, state = ledger._save_member(
                            hid,
                            m,  # None values count as absent there
                            None,
                            source,
                            ts,
                            current=current,
                            match=key,
                        )
                    except InputError as err:
                        summary.rejected.append(Rejected(excel_row, "invalid", str(err)))
                        continue
                    except sqlite3.IntegrityError:
                        # One row never makes the whole file fail.
                        summary.rejected.append(
                            Rejected(excel_row, "conflict", _message("conflict", {}, lang))
                        )
                        continue
                if state == "created":
                    summary.imported += 1
                elif state == "updated":
                    summary.updated += 1
                else:
                    summary.unchanged += 1
        summary.rejected.sort(key=lambda r: r.row)
        if summary.warnings and summary.rejected:  # refused when saved: not warned about
            refused = {r.row for r in summary.rejected}
            summary.warnings = [w for w in summary.warnings if w.row not in refused]
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
                "warnings": len(summary.warnings),
            },
        )
    return summary


def iter_rejected_text(summary: ImportSummary, lang: str | None = None) -> Iterable[str]:
    for r in summary.rejected:
        who = " ".join(x for x in (r.name_masked, r.id_masked) if x)
        line = t("ledger.cli.rejected_row", lang, row=r.row, message=r.message)
        yield "  " + line + (f" ({who})" if who else "")


def iter_warning_text(summary: ImportSummary, lang: str | None = None) -> Iterable[str]:
    """One line per warning: '第 5 行：人员类别“外星人”…（李*）'."""
    for w in summary.warnings:
        line = t("ledger.cli.rejected_row", lang, row=w.row, message=w.message)
        yield "  " + line + (f" ({w.name_masked})" if w.name_masked else "")
