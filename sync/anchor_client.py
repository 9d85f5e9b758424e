"""Device side of the audit anchor (see :mod:`sync.server.anchors`) and of remote wipe.

:func:`exchange_anchor` runs at the end of every sync: it sends the audit chain's head and the
link at the count the town last acknowledged, keeps the anchor the town answers with, and turns
a flag into a warning. When the town has ordered this device wiped (a lost or stolen device:
:func:`sync.server.anchors.order_wipe`), everything pending has been uploaded by then; the
device acknowledges (``event=wipe``: the town marks the order done and revokes the device) and
the sync ends with :func:`wipe_revoked`, which destroys keys and data
(:func:`fieldkit.store.erase.crypto_erase`, the same erase as ``fieldkit wipe``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fieldkit.i18n import t
from fieldkit.store.erase import crypto_erase

from . import protocol as p
from .transport import _raise_for, _server_message

PATH_ANCHOR = "/v1/audit-anchor"
REVOKED = "device_revoked"


def _query(store: Any, at_count: int | None, event: str | None) -> str:
    head = store.audit.head()
    fields: dict[str, Any] = {"count": head["count"], "head": head["hash"]}
    if at_count is not None and at_count <= head["count"]:
        fields["at_count"] = at_count
        link = store.audit.link_at(at_count) if at_count else None
        if link:
            fields["at_link"] = link
    if event:
        fields["event"] = event
    fields["pending"] = store.outbox.counts().get("pending", 0)  # shown on the town's console
    return urlencode(fields)


def exchange_anchor(
    store: Any, town: Any, ident: Any, report: Any, event: str | None = None
) -> dict[str, Any] | None:
    """Send the head, keep the town's anchor; returns the town's reply (None: no anchor
    endpoint on this server, an older one)."""
    anchor = store.audit.anchor()
    at_count = anchor["count"] if anchor else None
    for _ in range(2):
        query = _query(store, at_count, event)
        headers = p.sign_request(ident.key, ident.device_id, "GET", PATH_ANCHOR, query)
        resp = town.request("GET", f"{PATH_ANCHOR}?{query}", headers=headers)
        if resp.status_code == 404 and _server_message(resp)[0] != REVOKED:
            return None
        _raise_for(resp, "the audit anchor")
        data = resp.json()
        if "need" in data:
            at_count = int(data["need"])
            continue
        if data.get("flag") and report is not None:
            report.warnings.append(
                f"the town flagged this device's audit trail ({data['flag']}): "
                f"{data.get('message', '')}"
            )
        if data.get("anchor"):
            store.audit.set_anchor(data["anchor"])
        if data.get("wipe") and event != "wipe" and report is not None:
            exchange_anchor(store, town, ident, None, event="wipe")
            report.wipe_ordered = True
        return data
    return None


def revoked(err: BaseException) -> bool:
    return getattr(err, "server_code", None) == REVOKED


def wipe_revoked(store: Any, report: Any) -> None:
    """The town revoked this device (found at a sync): erase it, and say so in the report."""
    try:
        store.audit.append("wipe", "town", {"reason": "device revoked by the town"})
    except Exception:  # noqa: BLE001 - the erase must happen even if the audit cannot be written
        pass
    crypto_erase(store)
    report.ok = False
    report.error = t("security.err.revoked_wiped")
    report.error_kind = "wiped"
