"""Console pages for every signed-in user: log in, overview, tracing (找人), reports.

One piece (~400 lines): the pages every signed-in user sees share the session, language and
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
from fieldkit.shared.identity import parse_identity

from . import views
from .chart import hourly_svg
from .exports import ledger_xlsx, report_xlsx
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
        for k in ("inn", "out", "turned_back", "referred", "fever", "keyperson", "total"):
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


def trace_page(c: Ctx) -> Response:
    con = c.console
    minutes = int(con.setting("copresence_minutes", "30"))
    if c.request.method == "GET":
        return c.render("trace.html", result=None, minutes=minutes, id_hash="", full=None)
    catch_up(con.db, con.town.keys.data_key)
    id_hash = _id_hash(c)
    minutes = _minutes(c)
    result = views.trace_person(con.db, con.repo, id_hash, minutes)
    full = None
    if c.arg("full") == "1":
        reason = _reason(c)
        ids = [p.record_id for p in result.passages] + [o.record_id for o, _, _ in result.copresent]
        full = _full_bodies(c, ids)
        con.audit.append(
            c.user,
            "trace_unmask",
            {"id_hash": id_hash[:16], "records": len(ids), "minutes": minutes},
            reason,
        )
    timeline, copresent = _trace_rows(c, result, full)
    return c.render(
        "trace.html",
        result=result,
        timeline=timeline,
        copresent=copresent,
        minutes=minutes,
        id_hash=id_hash,
        full=full,
        masked_id=(result.passages[0].id_masked if result.passages else None),
    )


def _trace_rows(
    c: Ctx, result: views.TraceResult, full: dict[str, dict[str, Any]] | None
) -> tuple[Markup, Markup]:
    """The trace tables' rows as HTML, made once here: a well-travelled person has a thousand
    co-present rows, and looking up each row's words and times inside the template cost more
    than the page's queries. Each word is translated once per page, each minute formatted once.
    """
    words: dict[str, str] = {}
    times: dict[int, str] = {}

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
        timeline.append(_TIMELINE_ROW % _escaped(at, p.checkpoint, *rest, p.device))
    copresent = []
    for o, _mine, delta in result.copresent:
        at, *rest = cells(o)
        copresent.append(_COPRESENT_ROW % _escaped(at, o.checkpoint, f"{delta:+.0f} min", *rest))
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


def _window(c: Ctx) -> tuple[str, float, float]:
    cp = c.arg("checkpoint")
    try:
        start = datetime.fromisoformat(c.arg("start")).astimezone().timestamp()
        end = datetime.fromisoformat(c.arg("end")).astimezone().timestamp()
    except ValueError:
        raise ConsoleError("console.trace.err_window") from None
    if not cp or end <= start:
        raise ConsoleError("console.trace.err_window")
    return cp, start, end


def trace_checkpoint_page(c: Ctx) -> Response:
    con = c.console
    if not c.arg("checkpoint"):
        cps = [r[0] for r in con.db.q("SELECT DISTINCT checkpoint FROM console_device_cp") if r[0]]
        return c.render("trace_cp.html", passages=None, checkpoints=sorted(cps))
    catch_up(con.db, con.town.keys.data_key)
    cp, start, end = _window(c)
    passages = con.repo.trace_checkpoint(cp, start, end)
    decisions = views.decisions_of(con.db, [p.record_id for p in passages])
    return c.render(
        "trace_cp.html",
        passages=passages,
        decisions=decisions,
        checkpoints=[],
        checkpoint=cp,
        start=c.arg("start"),
        end=c.arg("end"),
    )


def trace_export(c: Ctx) -> Response:
    con = c.console
    reason = _reason(c)
    full_wanted = c.arg("full") == "1"
    if c.arg("id_number") or c.arg("id_hash"):
        id_hash = _id_hash(c)
        minutes = _minutes(c)
        result = views.trace_person(con.db, con.repo, id_hash, minutes)
        rows = [(p, "", None) for p in result.passages] + [
            (o, c.t("console.trace.copresent_with", cp=mine.checkpoint or "-"), delta)
            for o, mine, delta in result.copresent
        ]
        title = c.t("console.trace.xlsx_title_person")
        what = {"id_hash": id_hash[:16], "minutes": minutes}
        decisions = result.decisions
    else:
        cp, start, end = _window(c)
        passages = con.repo.trace_checkpoint(cp, start, end)
        rows = [(p, "", None) for p in passages]
        title = c.t("console.trace.xlsx_title_cp", cp=cp)
        what = {"checkpoint": cp, "from": start, "to": end}
        decisions = views.decisions_of(con.db, [p.record_id for p in passages])
    full = _full_bodies(c, [p.record_id for p, _, _ in rows]) if full_wanted else {}
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
        data.append(
            [
                n,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p.occurred_at or 0)),
                p.checkpoint or "",
                c.t(f"console.dir.{p.direction}") if p.direction else "",
                f.get("name") or p.name_masked or "",
                f.get("id") or p.id_masked or "",
                c.t(f"console.decision.{decisions.get(p.record_id, 'unknown')}"),
                p.device,
                note + (f" {delta:+.0f} min" if delta is not None else ""),
            ]
        )
    note = c.t(
        "console.trace.xlsx_note",
        who=c.user,
        at=time.strftime("%Y-%m-%d %H:%M"),
        reason=reason,
    )
    body = ledger_xlsx(title, note, headers, data)
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
    return c.render("report.html", report=report, day=day)


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


def register(router: APIRouter, console: Console) -> None:
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
