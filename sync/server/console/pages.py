"""Console pages for every signed-in user: log in, overview, tracing (找人), reports; and the
words of the audit list (an admin page whose rows are shown in words).

One piece (~590 lines): the pages every signed-in user sees share the session, language and
masking helpers; each handler is short.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter
from fastapi.responses import Response
from markupsafe import Markup, escape

from fieldkit.crypto import blind_index
from fieldkit.i18n import has_key, looks_like_key, t
from fieldkit.shared.identity import parse_identity

from . import views
from .chart import hourly_svg
from .exports import ledger_xlsx, report_xlsx, word
from .facts import catch_up
from .sealed import decrypt_body
from .web import LANG_COOKIE, Console, ConsoleError, Ctx, add_page, set_session_cookie

LOGIN_CSRF = "fk_login_csrf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- session ---------------------------------------------------------------------------------


def login_page(c: Ctx) -> Response:
    if c.request.method == "GET":
        return _login_form(c, c.arg("next", "/console/overview"), "")
    name, password = c.arg("name"), str(c.form.get("password", ""))
    nxt = c.arg("next", "/console/overview")
    sent, cookie = c.arg("login_csrf"), c.request.cookies.get(LOGIN_CSRF, "")
    if not sent or not hmac.compare_digest(sent, cookie):
        raise ConsoleError("console.err.csrf", 403)
    if not nxt.startswith("/console/") or nxt.startswith("//"):
        nxt = "/console/overview"
    try:
        token = c.console.accounts.login(name, password, c.lang)
    except Exception as err:  # AuthError: one sentence on the form
        from .auth import AuthError

        if not isinstance(err, AuthError):
            raise
        return _login_form(c, nxt, c.t(err.key, **err.params), 401)
    response = c.redirect(nxt)
    set_session_cookie(response, c.request, token)
    return response


def _login_form(c: Ctx, nxt: str, error: str, status: int = 200) -> Response:
    token = secrets.token_urlsafe(16)
    response = c.render("login.html", status=status, next=nxt, error=error, login_csrf=token)
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", path="/console")
    return response


def logout(c: Ctx) -> Response:
    c.console.accounts.logout(c.session)  # type: ignore[arg-type]
    response = c.redirect("/console/login")
    response.delete_cookie("fk_console", path="/console")
    return response


def set_lang(c: Ctx) -> Response:
    lang = c.arg("lang")
    if lang not in ("zh", "en"):
        raise ConsoleError("console.err.bad_form")
    if c.session:
        c.console.accounts.set_lang(c.session, lang)
    back = c.arg("back", "/console/overview")
    response = c.redirect(back if back.startswith("/console/") else "/console/overview")
    response.set_cookie(LANG_COOKIE, lang, samesite="strict", path="/console", httponly=True)
    return response


def login_lang(c: Ctx) -> Response:
    lang = c.arg("lang")
    response = c.redirect("/console/login")
    if lang in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, samesite="strict", path="/console", httponly=True)
    return response


# --- overview ---------------------------------------------------------------------------------


def overview_page(c: Ctx) -> Response:
    con = c.console
    catch_up(con.db, con.town.keys.data_key)
    day = views.today()
    late_min = int(con.setting("late_minutes", "60"))
    rows, hourly, alerts, loose = views.overview(con.db, con.repo, day, late_min * 60)
    totals = views.CheckpointRow(c.t("console.report.total"))
    for r in rows:
        for k in ("inn", "out", "turned_back", "denied", "referred", "fever", "keyperson", "total"):
            setattr(totals, k, getattr(totals, k) + getattr(r, k))
    chart = hourly_svg(hourly, c.t("console.overview.chart", day=day))
    return c.render(
        "overview.html",
        day=day,
        rows=rows,
        totals=totals,
        alerts=alerts,
        loose=loose,
        chart=chart,
        late_min=late_min,
        now=time.time(),
    )


def ack_alert(c: Ctx) -> Response:
    record_id = c.arg("record_id")
    views.acknowledge(c.console.db, record_id, c.user)
    c.console.audit.append(c.user, "alert_ack", {"record_id": record_id})
    return c.redirect("/console/overview", ok="console.overview.acked")


# --- tracing ----------------------------------------------------------------------------------


def _is_admin(c: Ctx) -> bool:
    return bool(c.session and c.session.user.role == "admin")


def _admin_for_full(c: Ctx) -> None:
    """Full names and ID numbers (a reveal, a full export) are for admins: README's
    ``user add clerk --role officer  # officers see masked data only``."""
    if not _is_admin(c):
        raise ConsoleError("fixtrace.err.full_admin_only", 403)


def _id_hash(c: Ctx) -> str:
    """The person asked for: a typed ID number (hashed at once), or the hash the result page
    carries in its follow-up forms (so the number itself is never sent back to the browser)."""
    carried = c.arg("id_hash")
    if len(carried) == 64 and not carried.strip("0123456789abcdef"):
        return carried
    ident = parse_identity(c.arg("id_number"))
    if not ident.number or ident.problem or ident.kind == "other":
        raise ConsoleError("console.trace.err_id")
    return blind_index(c.console.town.keys.index_key, ident.number)


def _minutes(c: Ctx) -> int:
    text = c.arg("minutes", c.console.setting("copresence_minutes", "30"))
    if not text.isdigit() or not 1 <= int(text) <= 24 * 60:
        raise ConsoleError("console.trace.err_minutes")
    return int(text)


def _reason(c: Ctx) -> str:
    reason = c.arg("reason")
    if len(reason) < 4:
        raise ConsoleError("console.trace.err_reason")
    return reason[:500]


def _full_bodies(c: Ctx, record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Name and ID number of each record, opened from the sealed bodies (only after an
    audited reason)."""
    cipher = AESGCM(c.console.town.keys.data_key)
    out: dict[str, dict[str, Any]] = {}
    ids = list(dict.fromkeys(record_ids))
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT record_id, body FROM records WHERE record_id IN ({marks})"
        for rid, blob in c.console.db.q(sql, chunk):
            body = json.loads(decrypt_body(cipher, rid, blob))["body"]
            out[rid] = {"name": body.get("name"), "id": body.get("id_number")}
    return out


def _trace_form(c: Ctx, err: ConsoleError) -> Response:
    """An input error: the sentence above the same form, what was typed still in it."""
    return c.render(
        "trace.html",
        status=err.status,
        result=None,
        error=c.t(err.key, **err.params),
        typed_id=c.arg("id_number"),
        minutes=c.arg("minutes", c.console.setting("copresence_minutes", "30")),
        id_hash="",
        full=None,
    )


def trace_page(c: Ctx) -> Response:
    con = c.console
    minutes = int(con.setting("copresence_minutes", "30"))
    if c.request.method == "GET":
        return c.render("trace.html", result=None, minutes=minutes, id_hash="", full=None)
    try:
        id_hash = _id_hash(c)
        minutes = _minutes(c)
    except ConsoleError as err:
        return _trace_form(c, err)
    catch_up(con.db, con.town.keys.data_key)
    result = views.trace_person(con.db, con.repo, id_hash, minutes)
    full = None
    shown = ""
    reveal_error = ""
    if c.arg("full") == "1":
        _admin_for_full(c)
        try:
            full, shown = _reveal(c, result, id_hash, minutes)
        except ConsoleError as err:  # above the reveal forms, the result still shown (masked)
            reveal_error = c.t(err.key, **err.params)
    timeline, copresent = _trace_rows(c, result, full, minutes)
    return c.render(
        "trace.html",
        status=400 if reveal_error else 200,
        result=result,
        timeline=timeline,
        copresent=copresent,
        companions=views.companions(result),
        ledger=_ledger_rows(c, result),
        minutes=minutes,
        id_hash=id_hash,
        full=full,
        shown=shown,
        reveal_error=reveal_error,
        admin=_is_admin(c),
        masked_id=(result.passages[0].id_masked if result.passages else None),
    )


def _reveal(
    c: Ctx, result: views.TraceResult, id_hash: str, minutes: int
) -> tuple[dict[str, dict[str, Any]], str]:
    """The person asked for in full, or one companion passage: each on its own reason, audited.
    Never everybody who passed at the same time on one reason."""
    reason = _reason(c)
    companion = c.arg("companion")
    if companion or c.arg("one") == "1":
        if companion not in {o.record_id for o, _, _ in result.copresent}:
            raise ConsoleError("fixtrace.trace.err_companion")
        ids, action, shown = [companion], "trace_unmask_companion", "companion"
        what: dict[str, Any] = {"id_hash": id_hash[:16], "record": companion}
    else:
        ids, action, shown = [p.record_id for p in result.passages], "trace_unmask", "person"
        what = {"id_hash": id_hash[:16], "records": len(ids)}
    full = _full_bodies(c, ids)
    c.console.audit.append(c.user, action, {**what, "minutes": minutes}, reason)
    return full, shown


# Ledger values a clerk reads in words: catalogue prefixes by field.
_VALUE_WORDS = {
    "health_status": "ledger.status.",
    "id_kind": "gate.id_kind.",
    "found_via": "ledger.found.",
    "categories": "ledger.cat.",
    "last_test_result": "cli_choice.test_result.",
}


def _ledger_value(c: Ctx, field: str, masked: str | None) -> str:
    if masked is None or masked == "":
        return "—"
    prefix = _VALUE_WORDS.get(field)
    if not prefix:
        return masked
    if field == "categories":
        try:
            codes = json.loads(masked)
        except ValueError:
            codes = [masked]
        codes = codes if isinstance(codes, list) else [codes]
        return "、".join(word(c.lang, prefix, v) for v in codes) or "—"
    return word(c.lang, prefix, masked)


def _ledger_label(c: Ctx, field: str) -> str:
    for key in ("ledger.field." + field, "fixtrace.field." + field):
        if looks_like_key(key) and has_key(key):
            return c.t(key)
    return c.t("fixtrace.field.other")


def _ledger_rows(c: Ctx, result: views.TraceResult) -> list[tuple[str, str]]:
    """The household's address (as the ledger keeps it: address levels in clear), then the
    person's own fields (masked), each labelled and valued in the catalogue's words."""
    if not result.ledger:
        return []
    con = c.console
    home = views.household_of(con.db, con.repo, con.town.keys.data_key, result.ledger)
    place = {r["field"]: r["masked"] for r in home if r["field"] in views.ADDRESS_FIELDS}
    rows = [(_ledger_label(c, f), place[f]) for f in views.ADDRESS_FIELDS if place.get(f)]
    order = ("name", "id_kind", "id_number", "relation", "phone", "health_status")
    fields = sorted(
        result.ledger,
        key=lambda r: (order.index(r["field"]) if r["field"] in order else len(order), r["field"]),
    )
    rows += [
        (_ledger_label(c, r["field"]), _ledger_value(c, r["field"], r["masked"])) for r in fields
    ]
    return rows


def _trace_rows(
    c: Ctx, result: views.TraceResult, full: dict[str, dict[str, Any]] | None, minutes: int
) -> tuple[Markup, Markup]:
    """The trace tables' rows as HTML, made once here: a well-travelled person has a thousand
    co-present rows, and looking up each row's words and times inside the template cost more
    than the page's queries. Each word is translated once per page, each minute formatted once.
    Companion rows come under a heading row for each of the person's own passages."""
    words: dict[str, str] = {}
    times: dict[int, str] = {}
    pick = _is_admin(c)

    def word(key: str) -> str:
        if key not in words:
            words[key] = c.t(key)
        return words[key]

    def when(ts: float | None) -> str:
        if ts is None:
            return "—"
        minute = int(ts // 60)
        if minute not in times:
            times[minute] = time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
        return times[minute]

    def cells(p: views.Passage) -> tuple[str, str, str, str, str]:
        shown = full.get(p.record_id) if full else None
        return (
            when(p.occurred_at),
            word("console.dir." + p.direction) if p.direction else "—",
            word("console.decision." + result.decisions.get(p.record_id, "unknown")),
            (shown["name"] if shown else p.name_masked) or "—",
            (shown["id"] if shown else p.id_masked) or "—",
        )

    timeline = []
    for p in result.passages:
        at, *rest = cells(p)
        timeline.append(_TIMELINE_ROW % _escaped(at, p.checkpoint or "—", *rest, p.device))
    copresent = []
    group = None
    span = 8 if pick else 7
    for o, mine, delta in result.copresent:
        if mine.record_id != group:
            group = mine.record_id
            at, direction, *_ = cells(mine)
            head = c.t(
                "fixtrace.trace.mine", at=at, cp=mine.checkpoint or "—", dir=direction, m=minutes
            )
            copresent.append(_MINE_ROW % (span, escape(head)))
        at, *rest = cells(o)
        apart = c.t("fixtrace.trace.apart", m=f"{round(delta):+d}")
        row = _COPRESENT_ROW % _escaped(at, o.checkpoint or "—", apart, *rest)
        if pick:
            row = row.replace("<tr>", _PICK_CELL % escape(o.record_id), 1)
        copresent.append(row)
    return Markup("".join(timeline)), Markup("".join(copresent))


def _escaped(*cells: Any) -> tuple[str, ...]:
    return tuple(str(escape(c)) for c in cells)


# One table row each, every cell escaped (one string per row, not one template output per cell:
# a thousand rows went through the template's nested generators 16 times each).
_TIMELINE_ROW = (
    '<tr><td>%s</td><td class="cp">%s</td><td>%s</td><td>%s</td><td>%s</td>'
    '<td class="mono">%s</td><td>%s</td></tr>\n'
)
_COPRESENT_ROW = (
    "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
    '<td class="mono">%s</td></tr>\n'
)
_MINE_ROW = '<tr class="mine"><th colspan="%d">%s</th></tr>\n'
_PICK_CELL = (
    '<tr><td><input type="radio" name="companion" value="%s" form="reveal-one" required></td>'
)


def _window(c: Ctx) -> tuple[str, float, float]:
    cp = c.arg("checkpoint")
    try:
        start = datetime.fromisoformat(c.arg("start")).astimezone().timestamp()
        end = datetime.fromisoformat(c.arg("end")).astimezone().timestamp()
    except ValueError:
        raise ConsoleError("console.trace.err_window") from None
    if not cp or end <= start:
        raise ConsoleError("console.trace.err_window")
    return views.checkpoint_code(c.console.db, cp), start, end


def _known_checkpoints(c: Ctx) -> list[str]:
    rows = c.console.db.q("SELECT DISTINCT checkpoint FROM console_device_cp")
    return sorted(r[0] for r in rows if r[0])


def trace_checkpoint_page(c: Ctx) -> Response:
    con = c.console
    if c.request.method == "GET" and not c.arg("checkpoint"):
        return c.render("trace_cp.html", passages=None, checkpoints=_known_checkpoints(c))
    catch_up(con.db, con.town.keys.data_key)
    try:
        cp, start, end = _window(c)
    except ConsoleError as err:  # the sentence above the same form, what was typed kept
        return c.render(
            "trace_cp.html",
            status=err.status,
            passages=None,
            error=c.t(err.key, **err.params),
            checkpoints=_known_checkpoints(c),
            checkpoint=c.arg("checkpoint"),
            start=c.arg("start"),
            end=c.arg("end"),
        )
    passages, decisions = views.trace_checkpoint(con.db, cp, start, end)
    return c.render(
        "trace_cp.html",
        passages=passages,
        decisions=decisions,
        checkpoints=_known_checkpoints(c),
        checkpoint=cp,
        start=c.arg("start"),
        end=c.arg("end"),
        admin=_is_admin(c),
    )


def trace_export(c: Ctx) -> Response:
    con = c.console
    full_wanted = c.arg("full") == "1"
    if full_wanted:
        _admin_for_full(c)
    reason = _reason(c)
    catch_up(con.db, con.town.keys.data_key)
    if c.arg("id_number") or c.arg("id_hash"):
        id_hash = _id_hash(c)
        minutes = _minutes(c)
        result = views.trace_person(con.db, con.repo, id_hash, minutes)
        rows = [(p, "", None) for p in result.passages] + [
            (o, c.t("console.trace.copresent_with", cp=mine.checkpoint or "-"), delta)
            for o, mine, delta in result.copresent
        ]
        title = c.t("console.trace.xlsx_title_person")
        what: dict[str, Any] = {"id_hash": id_hash[:16], "minutes": minutes}
        decisions = result.decisions
        in_full = [p.record_id for p in result.passages]  # the person, not the companions
    else:
        cp, start, end = _window(c)
        passages, decisions = views.trace_checkpoint(con.db, cp, start, end)
        rows = [(p, "", None) for p in passages]
        title = c.t("console.trace.xlsx_title_cp", cp=cp)
        what = {"checkpoint": cp, "from": start, "to": end}
        in_full = [p.record_id for p in passages]
    full = _full_bodies(c, in_full) if full_wanted else {}
    con.audit.append(
        c.user, "trace_export", {**what, "rows": len(rows), "full": full_wanted}, reason
    )
    headers = [
        c.t(f"console.col.{k}")
        for k in (
            "no",
            "time",
            "checkpoint",
            "direction",
            "name",
            "id",
            "decision",
            "device",
            "note",
        )
    ]
    data = []
    for n, (p, note, delta) in enumerate(rows, start=1):
        f = full.get(p.record_id, {})
        apart = c.t("fixtrace.trace.apart", m=f"{round(delta):+d}") if delta is not None else ""
        data.append(
            [
                n,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p.occurred_at or 0)),
                p.checkpoint or "—",
                c.t(f"console.dir.{p.direction}") if p.direction else "—",
                f.get("name") or p.name_masked or "—",
                f.get("id") or p.id_masked or "—",
                c.t(f"console.decision.{decisions.get(p.record_id, 'unknown')}"),
                p.device,
                f"{note} {apart}".strip(),
            ]
        )
    note = c.t(
        "console.trace.xlsx_note",
        who=c.user,
        at=time.strftime("%Y-%m-%d %H:%M"),
        reason=reason,
    )
    body = ledger_xlsx(title, note, headers, data, sheet=c.t("fixtrace.xlsx.sheet"))
    name = f"trace-{date.today().isoformat()}.xlsx"
    return Response(
        body, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


# --- reports ----------------------------------------------------------------------------------


def _day(c: Ctx) -> str:
    text = c.arg("day") or views.today()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ConsoleError("console.report.err_day") from None


def report_page(c: Ctx) -> Response:
    con = c.console
    catch_up(con.db, con.town.keys.data_key)
    day = _day(c)
    report = views.daily_report(con.db, con.repo, day, con.setting("deadline", "10:30"))
    return c.render(
        "report.html", report=report, day=day, word=lambda prefix, v: word(c.lang, prefix, v)
    )


def report_xlsx_download(c: Ctx) -> Response:
    con = c.console
    catch_up(con.db, con.town.keys.data_key)
    day = _day(c)
    report = views.daily_report(con.db, con.repo, day, con.setting("deadline", "10:30"))
    con.audit.append(c.user, "report_export", {"day": day})
    return Response(
        report_xlsx(report, c.lang),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="daily-report-{day}.xlsx"'},
    )


# --- audit list (the page itself is an admin page; its words are made here) ---------------------

_AUDIT_VALUE_WORDS = {
    "role": "console.role.",
    "mode": "console.mode.",
    "keep": "console.conflicts.keep_",
}


def audit_action(action: str, lang: str) -> str:
    """An audit action in words (``trace_export`` → 导出通行记录)."""
    key = "fixtrace.audit.act." + action
    if looks_like_key(key) and has_key(key):
        return t(key, lang)
    return t("fixtrace.audit.act.other", lang, code=action)


def _audit_value(key: str, value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return t("fixtrace.audit.yes" if value else "fixtrace.audit.no", lang)
    if key in ("from", "to", "at") and isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(value))
    if isinstance(value, list):
        return "、".join(_audit_value(key, v, lang) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k} = {v}" for k, v in value.items()) or "—"
    if value is None or value == "":
        return "—"
    prefix = _AUDIT_VALUE_WORDS.get(key)
    return word(lang, prefix, value) if prefix else str(value)


def audit_detail(detail: str, lang: str) -> str:
    """What an audit entry says, as "key: value" pairs in words, times as local dates (the
    chain keeps the JSON it hashed; this is only how the list shows it)."""
    try:
        data = json.loads(detail)
    except ValueError:
        return detail
    if not isinstance(data, dict):
        return str(data)
    pairs = []
    for key, value in data.items():
        label_key = "fixtrace.audit.key." + key
        label = t(label_key, lang) if looks_like_key(label_key) and has_key(label_key) else key
        pairs.append(
            t("fixtrace.audit.pair", lang, key=label, value=_audit_value(key, value, lang))
        )
    return t("fixtrace.audit.sep", lang).join(pairs)


def register(router: APIRouter, console: Console) -> None:
    console.env.filters["audit_action"] = audit_action
    console.env.filters["audit_detail"] = audit_detail
    add_page(router, console, "/login", login_page, ("GET", "POST"), role=None)
    add_page(router, console, "/login/lang", login_lang, ("GET",), role=None)
    add_page(router, console, "/logout", logout, ("POST",))
    add_page(router, console, "/lang", set_lang, ("POST",))
    add_page(router, console, "/overview", overview_page)
    add_page(router, console, "/alerts/ack", ack_alert, ("POST",))
    add_page(router, console, "/trace", trace_page, ("GET", "POST"))
    add_page(router, console, "/trace/checkpoint", trace_checkpoint_page, ("GET", "POST"))
    add_page(router, console, "/trace/export", trace_export, ("POST",))
    add_page(router, console, "/reports", report_page)
    add_page(router, console, "/reports/xlsx", report_xlsx_download)
