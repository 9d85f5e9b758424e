"""Remote wipe orders and audit-anchor flags as the town office issues and reads them.

The wire and the device's side are in :mod:`.anchors` (the order reaches a device in its next
audit-anchor exchange; the device uploads what is pending, erases itself and says so). This
module is what ``fieldkit-server device wipe|flags|list`` and the console's device page share:
finding the device, refusing an order that could never arrive, and saying each flag in the
reader's language (``wipe_orders.*`` in the catalogue).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fieldkit.errors import FieldkitError
from fieldkit.i18n import t

from . import anchors
from .rows import Device

MAX_REASON = 500  # characters: a sentence, kept in the audit chain


class WipeOrderError(FieldkitError):
    """An order refused before anything was written: one line, exit code 2."""

    exit_code = 2


def find_device(repo: Any, name_or_id: str) -> Device | None:
    """The device with this id or name (names are unique), whatever its status."""
    key = name_or_id.strip()
    if not key:
        return None
    device = repo.get_device(key)
    if device is not None:
        return device
    return next((d for d in repo.list_devices() if d.name == key), None)


def check_reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if not text:
        raise WipeOrderError("wipe_orders.err.reason")
    if len(text) > MAX_REASON:
        raise WipeOrderError("wipe_orders.err.reason_long", limit=MAX_REASON)
    return text


def orderable(repo: Any, name_or_id: str) -> Device:
    """The device a wipe can be ordered for, or :class:`WipeOrderError` saying why not: an
    unknown device; a revoked one (the town refuses its contact, so the order would never
    arrive); one not enrolled yet (it holds nothing: revoking its token is enough)."""
    device = find_device(repo, name_or_id)
    if device is None:
        raise WipeOrderError("wipe_orders.err.unknown", device=name_or_id.strip())
    if device.status == "revoked":
        raise WipeOrderError("wipe_orders.err.revoked", name=device.name)
    if device.status != "active":
        raise WipeOrderError("wipe_orders.err.pending", name=device.name)
    return device


def order(
    repo: Any, device: Device, audit: Any, who: str, reason: str, now: float | None = None
) -> bool:
    """Order ``device`` wiped and write it to the town's audit chain (``device_wipe``).
    False when an order is already waiting for the device (its time is kept, nothing written).
    The audit entry and the order stand together: when the entry cannot be written, the order
    is taken back and the error raised."""
    now = time.time() if now is None else now
    waiting = anchors.wipe_order(repo, device.device_id)
    if waiting is not None and waiting["done_at"] is None:
        return False
    anchors.order_wipe(repo, device.device_id, now)
    try:
        audit.append(
            who, "device_wipe", {"device": device.device_id, "name": device.name}, reason, now
        )
    except BaseException:
        anchors.withdraw_wipe(repo, device.device_id)
        raise
    return True


# --- reading ------------------------------------------------------------------------------------


@dataclass
class DeviceMarks:
    """What the town knows of one device beyond its status: anchor flags, newest first, and
    its wipe order (``None``: none ordered)."""

    flags: list[dict[str, Any]] = field(default_factory=list)
    wipe: dict[str, Any] | None = None

    @property
    def wipe_pending(self) -> bool:
        return self.wipe is not None and self.wipe["done_at"] is None


def marks(repo: Any) -> dict[str, DeviceMarks]:
    """Flags and wipe orders of every device that has any, by device id."""
    out: dict[str, DeviceMarks] = {}
    for flag in anchors.flags(repo):
        out.setdefault(flag["device_id"], DeviceMarks()).flags.append(flag)
    for device_id, wipe in anchors.wipe_orders(repo).items():
        out.setdefault(device_id, DeviceMarks()).wipe = wipe
    return out


def kind_text(kind: str, lang: str | None = None) -> str:
    key = f"wipe_orders.kind.{kind}"
    return t(key, lang) if kind in anchors.FLAG_TEXT else kind


def flag_text(flag: dict[str, Any], lang: str | None = None) -> str:
    """What the flag says, in ``lang``: from the catalogue with its numbers, or, for a flag
    stored before flags kept their numbers, the English sentence it was stored with."""
    if flag["params"] and flag["kind"] in anchors.FLAG_TEXT:
        return t(f"wipe_orders.flag.{flag['kind']}", lang, **flag["params"])
    return str(flag["detail"])


def summary(m: DeviceMarks | None, lang: str | None = None) -> str:
    """One cell for a device list: each flag kind with its count, then the wipe order's state;
    ``-`` when there is nothing."""
    if m is None:
        return "-"
    counts: dict[str, int] = {}
    for flag in m.flags:
        counts[flag["kind"]] = counts.get(flag["kind"], 0) + 1
    parts = [
        kind_text(kind, lang) + (f"×{n}" if n > 1 else "")
        for kind, n in counts.items()
        if kind != "wiped"
    ]
    if m.wipe is not None:
        done = m.wipe["done_at"] is not None
        parts.append(t("wipe_orders.state.done" if done else "wipe_orders.state.pending", lang))
    elif "wiped" in counts:
        parts.append(kind_text("wiped", lang))
    return ", ".join(parts) or "-"
