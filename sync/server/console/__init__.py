"""The town office console: server-rendered pages under ``/console`` of ``fieldkit-server serve``.

:func:`mount_console` adds it to the server's FastAPI app (same process, same database).
Every asset is served from ``static/``; pages work without JavaScript.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from .auth import Accounts, Audit
from .db import ConsoleDB
from .web import HERE, Console, make_env


def open_console(town: Any) -> Console:
    db = ConsoleDB(town.repo)
    db.create_schema()
    return Console(town, db, Accounts(db), Audit(db), make_env(), lambda: False)


def mount_console(app: FastAPI, town: Any) -> Console:
    """Add the console to ``app``. Plain HTTP from another machine is refused unless
    ``app.state.insecure_http`` is set (``serve --insecure-http``), then a red banner shows."""
    from . import admin, pages, wipe_pages

    console = open_console(town)
    console.insecure_http = lambda: bool(
        getattr(town, "insecure_http", False) or getattr(app.state, "insecure_http", False)
    )
    router = APIRouter(prefix="/console")
    pages.register(router, console)
    admin.register(router, console)
    wipe_pages.register(router, console)

    @router.get("", include_in_schema=False)
    @router.get("/", include_in_schema=False)
    async def _home() -> RedirectResponse:
        return RedirectResponse("/console/overview", status_code=303)

    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    app.state.console = console
    return console
