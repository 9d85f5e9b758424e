"""The device page's remote wipe (admins only) and its audit-anchor flags.

``/console/devices/wipe`` (GET) shows what the wipe does and asks for a reason and the device's
name typed back; the POST (CSRF-checked like every console form) orders it through
:mod:`sync.server.wipe_orders`, the same code as ``fieldkit-server device wipe``, and writes it
to the town's audit chain under the admin's name.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from .. import anchors, wipe_orders
from .web import Console, ConsoleError, Ctx, add_page


def device_marks(c: Ctx) -> dict[str, Any]:
    """What the device page shows beside each device, and the flags below the table."""
    repo = c.console.repo
    names = {d.device_id: d.name for d in repo.list_devices()}
    flags = [
        {
            "at": f["at"],
            "device": names.get(f["device_id"], f["device_id"]),
            "kind": f["kind"],
            "kind_text": wipe_orders.kind_text(f["kind"], c.lang),
            "text": wipe_orders.flag_text(f, c.lang),
        }
        for f in anchors.flags(repo)
    ]
    marks = wipe_orders.marks(repo)
    return {
        "marks": {k: wipe_orders.summary(m, c.lang) for k, m in marks.items()},
        "wipe_pending": {k for k, m in marks.items() if m.wipe_pending},
        "flags": flags,
    }


def _orderable(c: Ctx) -> Any:
    try:
        return wipe_orders.orderable(c.console.repo, c.arg("device_id"))
    except wipe_orders.WipeOrderError as err:
        if err.code == "wipe_orders.err.unknown":
            raise ConsoleError("console.dev.err_unknown") from None
        raise ConsoleError(err.code or "console.err.bad_form", 400, **err.params) from None


def wipe_confirm(c: Ctx) -> Response:
    device = _orderable(c)
    return c.render("device_wipe.html", device=device, reason="", error="")


def wipe_order(c: Ctx) -> Response:
    device = _orderable(c)
    reason = c.arg("reason")
    if c.arg("confirm") not in (device.name, device.device_id):
        return c.render(
            "device_wipe.html",
            status=400,
            device=device,
            reason=reason,
            error=c.t("wipe_orders.console.err_confirm"),
        )
    try:
        text = wipe_orders.check_reason(reason)
    except wipe_orders.WipeOrderError as err:
        message = err.render(c.lang)
        return c.render("device_wipe.html", status=400, device=device, reason=reason, error=message)
    new = wipe_orders.order(c.console.repo, device, c.console.audit, c.user, text)
    ok = "wipe_orders.console.ordered" if new else "wipe_orders.console.already"
    return c.redirect("/console/devices", ok=ok)


def register(router: APIRouter, console: Console) -> None:
    add_page(router, console, "/devices/wipe", wipe_confirm, role="admin")
    add_page(router, console, "/devices/wipe", wipe_order, ("POST",), role="admin")
