"""Download half of a sync run: the town's signed updates (key persons, revocations, rules,
area mode), each page checked to answer this very request and to be no older than the one held.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from fieldkit.errors import ConfigError
from fieldkit.i18n import t as word_t

from . import protocol as p
from .report import SyncReport
from .transport import SyncServerError, TownClient, _Identity, _raise_for

if TYPE_CHECKING:  # the store's real type, for checkers: the client never imports it
    from fieldkit.store import Store

log = logging.getLogger("fieldkit.sync")


def _download(store: Store, town: TownClient, ident: _Identity, report: SyncReport) -> None:
    cursor = int(store.kv.get("sync.cursor", 0) or 0)
    for _ in range(1000):  # pages; a bound so a misbehaving server cannot loop us forever
        query = f"cursor={cursor}"
        headers = p.sign_request(ident.key, ident.device_id, "GET", p.PATH_UPDATES, query)
        resp = town.request("GET", f"{p.PATH_UPDATES}?{query}", headers=headers)
        _raise_for(resp, "the update request")
        try:
            doc = p.verify_document(resp.json(), ident.town_ed25519)
        except (ValueError, p.ProtocolError) as err:
            raise SyncServerError("syncerr.update_invalid", why=str(err)[:120]) from None
        if doc.get("device_id") != ident.device_id or doc.get("cursor_from") != cursor:
            raise SyncServerError("syncerr.update_other_request")
        _refuse_stale_update(store, doc, headers["X-Fieldkit-Time"])
        added, removed = doc.get("keypersons", []), doc.get("keypersons_removed", [])
        if added or removed:
            store.keypersons.apply(added, removed)
        if doc.get("revocations"):
            store.revocations.apply(doc["revocations"])
        scoped_rules = _take_scoped(store, doc.get("scoped"), report)
        if doc.get("rules") is not None:
            _apply_town_rules(store, doc["rules"], report)
        elif scoped_rules:  # over the town-wide rules held (before this kept: those applied)
            wide = store.kv.get("town_rules_wide")
            _apply_town_rules(store, wide if wide is not None else store.town_rules(), report)
        if doc.get("mode") is not None:
            mode = doc["mode"].get("mode")
            store.kv.set("town_area_mode", mode)
            mode = store.kv.get("cp_area_mode") or mode  # this checkpoint's own mode wins
            store.kv.set("area_mode", mode)
            if hasattr(store, "apply_kv_overrides"):
                store.apply_kv_overrides()
            store.audit.append(
                "setting_change",
                "town",
                {"key": "checkpoint.area_mode", "to": mode, "by": "town server"},
            )
            report.mode = mode
        report.keypersons_added += len(added)
        report.keypersons_removed += len(removed)
        report.revocations += len(doc.get("revocations", []))
        if doc.get("compression") is not None:
            store.kv.set("sync.compression", p.choose_compression(doc["compression"]))
        cursor = int(doc["cursor"])
        store.kv.set("sync.cursor", cursor)
        store.kv.set("sync.updates_at", float(doc["issued_at"]))
        if "seq" in doc:
            store.kv.set("sync.update_seq", int(doc["seq"]))
        skew = float(doc["issued_at"]) - time.time()
        store.kv.set("sync.skew_s", skew)
        if not doc.get("more"):
            break
    report.cursor = cursor


UPDATE_CLOCK_SLACK_S = 300.0  # the town's clock may step back this much between updates


def _refuse_stale_update(store: Store, doc: dict[str, Any], request_time: str) -> None:
    """An update older than the one this device holds is refused (a replay by someone on the
    way, withholding the town's newer changes): it must answer this very request (its
    ``request_time``), reach at least the sequence already held, and not be issued before
    the update already applied. A town server from before sequences (no ``seq``) is taken
    as before, until the device has once seen one that has it."""
    held_seq = store.kv.get("sync.update_seq")
    if "seq" not in doc and held_seq is None:
        return
    from fieldkit.i18n import t

    try:
        seq, issued = int(doc["seq"]), float(doc["issued_at"])
    except (KeyError, TypeError, ValueError):
        raise SyncServerError(t("server_security.client.update_unsequenced")) from None
    held_at = store.kv.get("sync.updates_at")
    if (
        doc.get("request_time") != request_time
        or (held_seq is not None and seq < int(held_seq))
        or not math.isfinite(issued)
        or (held_at is not None and issued < float(held_at) - UPDATE_CLOCK_SLACK_S)
    ):
        log.warning("refused a stale or replayed update (seq %s, issued %s)", seq, issued)
        raise SyncServerError(t("server_security.client.update_stale"))


def _take_scoped(store: Store, scoped: Any, report: SyncReport) -> bool:
    """Keep the mode and rules the town set for this device's checkpoint only (changes naming
    other checkpoints are passed over). Their mode is applied here; returns whether this
    checkpoint's rules changed (the caller applies them over the town-wide ones)."""
    code = store.settings.checkpoint.code
    rules_changed = False
    for item in scoped if isinstance(scoped, list) else []:
        if not isinstance(item, dict) or code not in (item.get("checkpoints") or []):
            continue
        if "rules" in item:
            if not isinstance(item["rules"], dict):
                report.warnings.append(word_t("console3.sync.cp_rules_not_table"))
                continue
            store.kv.set("cp_rules", item["rules"] or None)
            rules_changed = True
        if "mode" in item:
            own = item["mode"] or None  # "" / None: back to the town-wide mode
            store.kv.set("cp_area_mode", own)
            mode = own or store.kv.get("town_area_mode")
            if mode:
                store.kv.set("area_mode", mode)
                if hasattr(store, "apply_kv_overrides"):
                    store.apply_kv_overrides()
                store.audit.append(
                    "setting_change",
                    "town",
                    {
                        "key": "checkpoint.area_mode",
                        "to": mode,
                        "by": "town server",
                        "checkpoint": code,
                    },
                )
                report.mode = mode
    return rules_changed


def _apply_town_rules(store: Store, rules: Any, report: SyncReport) -> None:
    """The town's rules take effect at once; keys this device's checks refuse are skipped.
    Rules the town set for this checkpoint only win over the town-wide ones."""
    store.kv.set("town_rules_wide", rules)
    own = store.kv.get("cp_rules")
    if own and isinstance(rules, dict):
        rules = {**rules, **own}
    try:
        changes, skipped = store.set_town_rules(rules)
    except ConfigError as err:
        report.warnings.append(word_t("syncerr.warn.rules_not_applied", err=err))
        return
    report.warnings.extend(word_t("syncerr.warn.rule_skipped", line=line) for line in skipped)
    report.rules_changed = True
    report.rules_changed_keys += [k for k in changes if k not in report.rules_changed_keys]
