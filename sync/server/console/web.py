"""Request plumbing of the console: the shared state, the guard every page goes through
(transport, session, role, CSRF) and rendering. The pages themselves are in :mod:`.pages`."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

from fieldkit.i18n import t

from .auth import Accounts, Audit, AuthError, Session, csrf_ok
from .db import ConsoleDB

log = logging.getLogger("fieldkit.server.console")
HERE = Path(__file__).parent
COOKIE = "fk_console"
LANG_COOKIE = "fk_lang"
MAX_FORM = 6 * 1024 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ConsoleError(Exception):
    """Shown as one sentence on the page (catalogue key + parameters), with a status."""

    def __init__(self, key: str, status: int = 400, /, **params: Any) -> None:
        super().__init__(key)
        self.key, self.status, self.params = key, status, params


@dataclass
class Console:
    """What every page shares."""

    town: Any  # sync.server.app.TownServer
    db: ConsoleDB
    accounts: Accounts
    audit: Audit
    env: Environment
    insecure_http: Callable[[], bool]
    lock: Any = field(default=None)

    @property
    def repo(self) -> Any:
        return self.town.repo

    def setting(self, key: str, default: str) -> str:
        return self.db.meta("setting." + key, default) or default


def make_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["age"] = _age
    return env


def _when(ts: float | None, fmt: str = "%m-%d %H:%M") -> str:
    if ts is None:
        return "—"
    return time.strftime(fmt, time.localtime(ts))


@pass_context
def _age(context: Any, seconds: float | None) -> str:
    """A duration in the page's language (16 秒, 2 分钟): one wording with the 设备 page's."""
    if seconds is None:
        return "—"
    return age_words(seconds, context.get("lang") or "zh")


def age_words(seconds: float, lang: str) -> str:
    """A duration in the page's words: 16 秒, 2 分钟, 3 小时, 2 天."""
    from fieldkit.i18n import t

    s = max(0, int(seconds))
    if s < 120:
        return t("fixscope.age.s", lang, n=s)
    if s < 7200:
        return t("fixscope.age.min", lang, n=s // 60)
    if s < 172800:
        return t("fixscope.age.h", lang, n=s // 3600)
    return t("fixscope.age.d", lang, n=s // 86400)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass
class Ctx:
    """One request as a page sees it."""

    console: Console
    request: Request
    session: Session | None
    lang: str
    form: dict[str, Any]
    files: dict[str, Any]
    banner: bool

    @property
    def user(self) -> str:
        return self.session.user.name if self.session else ""

    def t(self, key: str, /, **params: Any) -> str:
        return t(key, self.lang, **params)

    def arg(self, name: str, default: str = "") -> str:
        if name in self.form:
            return str(self.form[name]).strip()
        return str(self.request.query_params.get(name, default)).strip()

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        tpl = self.console.env.get_template(template)
        html = tpl.render(
            _=self.t,
            lang=self.lang,
            session=self.session,
            user=self.session.user if self.session else None,
            csrf=self.session.csrf if self.session else "",
            banner=self.banner,
            path=self.request.url.path,
            notice=self.request.query_params.get("ok", ""),
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def redirect(self, url: str, ok: str = "") -> RedirectResponse:
        if ok:
            url += ("&" if "?" in url else "?") + "ok=" + quote(ok)
        return RedirectResponse(url, status_code=303)


def _secure_cookie(request: Request) -> bool:
    return request.url.scheme == "https" or _loopback(request.url.hostname)


def add_page(
    router: APIRouter,
    console: Console,
    path: str,
    fn: Callable[[Ctx], Response],
    methods: tuple[str, ...] = ("GET",),
    role: str | None = "officer",
) -> None:
    """Register one page: every request is checked here before ``fn`` sees it."""

    async def endpoint(request: Request) -> Response:
        form: dict[str, Any] = {}
        files: dict[str, Any] = {}
        if request.method == "POST":
            length = request.headers.get("content-length", "")
            # Browsers state the length of a form; a body without one (chunked) could be any
            # size before the parser sees its end, so it is refused unread.
            if not length.isdigit() or int(length) > MAX_FORM:
                return await anyio.to_thread.run_sync(
                    _fail, console, request, ConsoleError("console.err.too_large", 413)
                )
            try:
                async with request.form(max_files=1, max_fields=200) as data:
                    for key, value in data.multi_items():
                        if isinstance(value, str):
                            form[key] = value
                        else:
                            files[key] = (value.filename or "", await value.read(MAX_FORM + 1))
            except Exception:  # noqa: BLE001 - a malformed body is a bad request, not a crash
                return await anyio.to_thread.run_sync(
                    _fail, console, request, ConsoleError("console.err.bad_form")
                )
        return await anyio.to_thread.run_sync(_handle, console, request, form, files, fn, role)

    router.add_api_route(path, endpoint, methods=list(methods), response_class=HTMLResponse)


def _lang_of(request: Request, session: Session | None) -> str:
    lang = session.lang if session else request.cookies.get(LANG_COOKIE, "zh")
    return lang if lang in ("zh", "en") else "zh"


def _handle(
    console: Console,
    request: Request,
    form: dict[str, Any],
    files: dict[str, Any],
    fn: Callable[[Ctx], Response],
    role: str | None,
) -> Response:
    session = console.accounts.session(request.cookies.get(COOKIE))
    lang = _lang_of(request, session)
    plain_remote = request.url.scheme != "https" and not _loopback(
        request.client.host if request.client else None
    )
    ctx = Ctx(
        console, request, session, lang, form, files, plain_remote and console.insecure_http()
    )
    try:
        if plain_remote and not console.insecure_http():
            raise ConsoleError("console.err.plain_http", 403)
        if role is not None:
            if session is None:
                back = quote(request.url.path)
                return RedirectResponse(f"/console/login?next={back}", status_code=303)
            if role == "admin" and session.user.role != "admin":
                raise ConsoleError("console.err.admin_only", 403)
        if request.method == "POST" and role is not None:
            if session is None or not csrf_ok(session, form.get("csrf")):
                raise ConsoleError("console.err.csrf", 403)
        response = fn(ctx)
    except ConsoleError as err:
        response = ctx.render("error.html", status=err.status, message=ctx.t(err.key, **err.params))
    except AuthError as err:
        response = ctx.render("error.html", status=400, message=ctx.t(err.key, **err.params))
    except Exception:  # noqa: BLE001 - logged in full; the page gets one sentence
        log.exception("console %s %s failed", request.method, request.url.path)
        response = ctx.render("error.html", status=500, message=ctx.t("console.err.server"))
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    return response


def _fail(console: Console, request: Request, err: ConsoleError) -> Response:
    session = console.accounts.session(request.cookies.get(COOKIE))
    ctx = Ctx(console, request, session, _lang_of(request, session), {}, {}, False)
    response = ctx.render("error.html", status=err.status, message=ctx.t(err.key, **err.params))
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    return response


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        secure=_secure_cookie(request),
        samesite="strict",
        path="/console",
    )
