"""Console pages that change what devices do: key-person list (any signed-in user), and for
admins devices, area mode and rules, ledger conflicts, accounts and the audit chain.

One piece (~400 lines): each page is a short handler over the same admin check, CSRF and form
helpers; split by page, one pattern would be spread over many files.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from fieldkit.crypto import keyperson_hash
from fieldkit.shared.identity import parse_identity

from .kpfile import UploadError, read_upload
from .sealed import token_hash
from .web import Console, ConsoleError, Ctx, add_page, age_words
from .wipe_pages import device_marks

MODES = ("normal", "low", "medium", "high", "sealed")


# --- key-person list ---------------------------------------------------------------------------


def _kp_counts(c: Ctx) -> tuple[list[tuple], dict[str, int]]:
    today = date.today().isoformat()
    rows = c.console.db.q(
        "SELECT COALESCE(category, '-'), count(*), "
        "SUM(CASE WHEN end_date IS NOT NULL AND end_date < ? THEN 1 ELSE 0 END), "
        "min(end_date), max(end_date) FROM keypersons WHERE active = ? "
        "GROUP BY category ORDER BY 2 DESC",
        (today, True if c.console.db.pg else 1),
    )
    total = sum(r[1] for r in rows)
    expired = sum(r[2] or 0 for r in rows)
    return rows, {"total": total, "expired": expired}


def _kp_page(c: Ctx, status: int = 200, **values: Any) -> Response:
    rows, totals = _kp_counts(c)
    values.setdefault("preview", None)
    return c.render("keypersons.html", status=status, rows=rows, totals=totals, **values)


def _kp_form(c: Ctx, err: ConsoleError, form: str) -> Response:
    """An input error: the sentence above the same form (``remove`` or ``upload``), what was
    typed still in it, as 找人 does; not a separate page with a link to the overview."""
    return _kp_page(
        c,
        err.status,
        error=c.t(err.key, **err.params),
        error_form=form,
        typed_id=c.arg("id_number"),
        category=c.arg("category"),
    )


def keypersons_page(c: Ctx) -> Response:
    return _kp_page(c)


def keyperson_upload(c: Ctx) -> Response:
    try:
        return _upload(c)
    except ConsoleError as err:
        return _kp_form(c, err, "upload")


def _upload(c: Ctx) -> Response:
    name, data = c.files.get("file", ("", b""))
    if not name:
        raise ConsoleError("console.kp.err_nofile")
    if not data:  # a file was chosen, and it holds nothing
        raise ConsoleError("fixconfirm.kp.err_empty_file", name=name)
    category = c.arg("category") or "重点人员"
    try:
        preview = read_upload(data, name, c.console.town.keys.index_key, category)
    except UploadError as err:
        raise ConsoleError(err.key, **err.params) from None
    upload_id = uuid.uuid4().hex
    now = time.time()
    db = c.console.db
    with db.tx():
        db.q("DELETE FROM console_staged WHERE created_at < ?", (now - 86400,))
        db.insert_ignore(
            "console_staged",
            "upload_id, id_hash, category, end_date, created_at",
            [(upload_id, e["id_hash"], e["category"], e["end_date"], now) for e in preview.entries],
        )
    by_cat: dict[str, int] = {}
    for e in preview.entries:
        by_cat[e["category"]] = by_cat.get(e["category"], 0) + 1
    return _kp_page(
        c,
        preview=preview,
        upload_id=upload_id,
        by_cat=by_cat,
        filename=name,
        category=c.arg("category"),
    )


def keyperson_publish(c: Ctx) -> Response:
    db, upload_id = c.console.db, c.arg("upload_id")
    staged = db.q(
        "SELECT id_hash, category, end_date FROM console_staged WHERE upload_id = ?", (upload_id,)
    )
    if not staged:
        return _kp_form(c, ConsoleError("console.kp.err_gone"), "upload")
    entries = [{"id_hash": h, "category": cat, "end_date": end} for h, cat, end in staged]
    replace = c.arg("replace") == "1"
    removed = []
    if replace:
        keep = {e["id_hash"] for e in entries}
        removed = [{"id_hash": h} for h in sorted(c.console.repo.keyperson_hashes() - keep)]
    now = time.time()
    c.console.repo.add_changes("keyperson", entries, now)
    if removed:
        c.console.repo.add_changes("keyperson_removed", removed, now)
    db.q("DELETE FROM console_staged WHERE upload_id = ?", (upload_id,))
    c.console.audit.append(
        c.user, "keyperson_publish", {"added": len(entries), "removed": len(removed)}
    )
    return c.redirect("/console/keypersons", ok="console.kp.published")


def _removal(c: Ctx, how: str) -> list[str]:
    """The hashes a removal takes off the list; ConsoleError for a bad form or nobody."""
    db, repo = c.console.db, c.console.repo
    active = True if db.pg else 1
    if how == "expired":
        hashes = [
            r[0]
            for r in db.q(
                "SELECT id_hash FROM keypersons WHERE active = ? AND end_date IS NOT NULL "
                "AND end_date < ?",
                (active, date.today().isoformat()),
            )
        ]
    elif how == "category":
        hashes = [
            r[0]
            for r in db.q(
                "SELECT id_hash FROM keypersons WHERE active = ? AND category = ?",
                (active, c.arg("category")),
            )
        ]
    elif how == "id":
        ident = parse_identity(c.arg("id_number"))
        if not ident.number or ident.problem or ident.kind == "other":
            raise ConsoleError("console.trace.err_id")
        h = keyperson_hash(c.console.town.keys.index_key, ident.number)
        hashes = [h] if h in repo.keyperson_hashes() else []
    else:
        raise ConsoleError("console.err.bad_form")
    if not hashes:
        raise ConsoleError("console.kp.err_none")
    return hashes


def keyperson_remove_confirm(c: Ctx) -> Response:
    """移除该类别 first shows what it will do (the category, how many people) with a second
    button; nothing is removed by this page."""
    try:
        hashes = _removal(c, "category")
    except ConsoleError as err:
        return _kp_form(c, err, "remove")
    return _kp_page(c, confirm={"category": c.arg("category"), "n": len(hashes)})


def keyperson_remove(c: Ctx) -> Response:
    how = c.arg("how")
    if how == "category" and c.arg("confirm") != "1":  # a whole category: only once confirmed
        return keyperson_remove_confirm(c)
    try:
        hashes = _removal(c, how)
    except ConsoleError as err:
        return _kp_form(c, err, "remove")
    c.console.repo.add_changes("keyperson_removed", [{"id_hash": h} for h in hashes], time.time())
    c.console.audit.append(c.user, "keyperson_remove", {"how": how, "removed": len(hashes)})
    return c.redirect("/console/keypersons", ok="console.kp.removed")


# --- devices ---------------------------------------------------------------------------------


def _device_table(c: Ctx) -> dict[str, Any]:
    """What the device table shows beside the devices: each one's checkpoint scope, how long
    ago it was last seen (catalogue words), the anchor marks."""
    scopes = getattr(c.console.town, "scopes", None)
    devices = c.console.repo.list_devices()
    now = time.time()
    return {
        "devices": devices,
        "now": now,
        "scopes": {
            d.device_id: sorted(scopes.checkpoints(d.device_id) or ()) if scopes else []
            for d in devices
        },
        "ago": {
            d.device_id: c.t("fixscope.age.ago", age=age_words(now - d.last_seen, c.lang))
            for d in devices
            if d.last_seen
        },
        **device_marks(c),
    }


def devices_page(c: Ctx) -> Response:
    return c.render("devices.html", new=None, **_device_table(c))


def device_enroll(c: Ctx) -> Response:
    import segno

    from ..device_scope import checkpoint_codes, live_device_named
    from ..repository import RepositoryError

    name = " ".join(c.arg("name").split())
    if not name or len(name) > 64:
        raise ConsoleError("console.dev.err_name")
    taken = live_device_named(c.console.repo.list_devices(), name)
    if taken is not None:
        raise ConsoleError("console.dev.err_exists", name=taken.name)
    town = c.console.town
    keys, settings = town.keys, town.settings
    typed = c.arg("checkpoints")
    codes = checkpoint_codes(typed)
    scopes = getattr(town, "scopes", None)  # the checkpoints a device may write for
    data_dir = getattr(getattr(scopes, "path", None), "parent", None)
    binder = scopes if codes and data_dir is not None else None
    if codes and binder is None:
        raise ConsoleError("console.dev.err_scope")
    token = f"{base64.b32encode(secrets.token_bytes(15)).decode()}.{keys.fingerprint}"
    pin = _certificate_pin(data_dir)
    if pin:  # the device pins the town's own TLS certificate from the token, as the CLI's
        token += f".{pin}"
    now = time.time()
    try:
        device = c.console.repo.add_device(name, token_hash(token), now + settings.token_ttl_s, now)
    except RepositoryError:
        raise ConsoleError("console.dev.err_exists", name=name) from None
    if binder is not None:
        binder.bind(device.device_id, codes)
    url = c.arg("url") or str(c.request.base_url).rstrip("/")
    enroll_text = f"fieldkit enroll {url} {token}"
    qr = segno.make(enroll_text, error="m").png_data_uri(scale=5, border=2)
    c.console.audit.append(
        c.user, "device_enroll", {"device": device.device_id, "name": name, "checkpoints": codes}
    )
    return c.render(
        "devices.html",
        **_device_table(c),
        new={
            "name": name,
            "checkpoints": codes,
            "upper_cased": bool(codes) and any(ch.islower() for ch in typed),
            "token": token,
            "command": enroll_text,
            "qr": qr,
            "expires": now + settings.token_ttl_s,
        },
    )


def _certificate_pin(data_dir: Any) -> str | None:
    if data_dir is None:
        return None
    try:
        from ..tls import town_certificate_fingerprint
    except ImportError:  # a server without its own TLS certificate support
        return None
    return town_certificate_fingerprint(data_dir)


def _revocable(c: Ctx) -> Any:
    device = c.console.repo.get_device(c.arg("device_id"))
    if device is None or device.status == "revoked":
        raise ConsoleError("console.dev.err_unknown")
    return device


def device_revoke_confirm(c: Ctx) -> Response:
    """吊销 first shows what it does to which device (its checkpoints, the records it sent,
    which stay) with a second button; nothing is revoked by this page."""
    device = _revocable(c)
    scopes = getattr(c.console.town, "scopes", None)
    sent = c.console.db.scalar(
        "SELECT count(*) FROM records WHERE device_id = ?", (device.device_id,)
    )
    return c.render(
        "device_revoke.html",
        device=device,
        checkpoints=sorted(scopes.checkpoints(device.device_id) or ()) if scopes else [],
        sent=int(sent or 0),
    )


def device_revoke(c: Ctx) -> Response:
    device_id = c.arg("device_id")
    device = c.console.repo.revoke_device(device_id, time.time())
    if device is None:
        raise ConsoleError("console.dev.err_unknown")
    c.console.audit.append(c.user, "device_revoke", {"device": device_id, "name": device.name})
    return c.redirect("/console/devices", ok="console.dev.revoked")


# --- mode and rules ------------------------------------------------------------------------------


def _current(c: Ctx) -> tuple[str, dict[str, Any]]:
    repo = c.console.repo
    mode = repo.latest_change("mode")
    rules = repo.latest_change("rules")
    return (
        (mode.data.get("mode") if mode else "") or "",
        rules.data if rules and isinstance(rules.data, dict) else {},
    )


def _parse_rules(c: Ctx) -> dict[str, Any]:
    import json
    import tomllib

    from fieldkit.errors import ConfigError
    from fieldkit.shared.rulecheck import validate_rules

    text = c.arg("rules")
    if not text:
        return {}
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except ValueError:
        raise ConsoleError("console.rules.err_syntax") from None
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    try:
        return validate_rules(data, "console")
    except ConfigError as err:
        raise ConsoleError("console.rules.err_invalid", why=str(err)) from None


def rules_page(c: Ctx) -> Response:
    from . import scoped_rules

    if c.arg("scope"):
        return scoped_rules.page(c, c.arg("scope"), MODES)
    mode, rules = _current(c)
    return c.render(
        "rules.html",
        mode=mode,
        rules=rules,
        modes=MODES,
        confirm=None,
        scope="",
        scopes=scoped_rules.known_checkpoints(c),
    )


def rules_preview(c: Ctx) -> Response:
    from . import scoped_rules

    if c.arg("scope"):
        return scoped_rules.preview(c, c.arg("scope"), MODES, _parse_rules(c))
    mode, rules = _current(c)
    new_mode = c.arg("mode")
    if new_mode not in MODES:
        raise ConsoleError("console.rules.err_mode")
    new_rules = _parse_rules(c)
    if c.arg("confirmed") == "1":
        now = time.time()
        if new_mode != mode:
            c.console.repo.add_changes("mode", [{"mode": new_mode, "note": c.arg("note")}], now)
        if new_rules != rules:
            c.console.repo.add_changes("rules", [new_rules], now)
        c.console.audit.append(
            c.user, "rules_push", {"mode": new_mode, "rules": new_rules}, c.arg("note")
        )
        return c.redirect("/console/rules", ok="console.rules.sent")
    changes = []
    if new_mode != mode:
        old_label = c.t(f"console.mode.{mode}") if mode else c.t("console.rules.device_own")
        changes.append(
            c.t("console.rules.mode_change", old=old_label, new=c.t(f"console.mode.{new_mode}"))
        )
    changes += scoped_rules.rules_diff(c, rules, new_rules)
    return c.render(
        "rules.html",
        mode=mode,
        rules=rules,
        modes=MODES,
        scope="",
        scopes=scoped_rules.known_checkpoints(c),
        confirm={
            "mode": new_mode,
            "rules": c.arg("rules"),
            "changes": changes,
            "note": c.arg("note"),
        },
    )


# --- ledger conflicts, accounts, audit -----------------------------------------------------------


def conflicts_page(c: Ctx) -> Response:
    rows = c.console.repo.ledger_conflicts(include_resolved=c.arg("all") == "1")
    return c.render("conflicts.html", rows=rows)


def conflict_resolve(c: Ctx) -> Response:
    from ..ledger import LedgerError

    keep, cid = c.arg("keep"), c.arg("conflict_id")
    if keep not in ("kept", "other") or not cid.isdigit():
        raise ConsoleError("console.err.bad_form")
    try:
        c.console.repo.resolve_ledger_conflict(int(cid), keep, c.user, time.time())
    except LedgerError:
        raise ConsoleError("console.conflicts.err_unknown") from None
    c.console.audit.append(c.user, "ledger_resolve", {"conflict": int(cid), "keep": keep})
    return c.redirect("/console/conflicts", ok="console.conflicts.resolved")


def users_page(c: Ctx) -> Response:
    con = c.console
    return c.render(
        "users.html",
        users=con.accounts.list(),
        now=time.time(),
        deadline=con.setting("deadline", "10:30"),
        minutes=con.setting("copresence_minutes", "30"),
        late=con.setting("late_minutes", "60"),
    )


def user_action(c: Ctx) -> Response:
    acc, name, action = c.console.accounts, c.arg("name"), c.arg("action")
    if action == "add":
        acc.add(name, c.arg("role"), str(c.form.get("password", "")))
    elif action in ("disable", "enable"):
        if name == c.user:
            raise ConsoleError("console.users.err_self")
        acc.set_disabled(name, action == "disable")
    elif action == "reset":
        acc.reset_password(name, str(c.form.get("password", "")))
    else:
        raise ConsoleError("console.err.bad_form")
    c.console.audit.append(c.user, "user_" + action, {"name": name})
    return c.redirect("/console/users", ok="console.users.done")


def settings_save(c: Ctx) -> Response:
    db = c.console.db
    deadline, minutes, late = c.arg("deadline"), c.arg("minutes"), c.arg("late")
    try:
        hh, mm = (int(x) for x in deadline.split(":"))
        assert 0 <= hh < 24 and 0 <= mm < 60
        assert minutes.isdigit() and 1 <= int(minutes) <= 1440
        assert late.isdigit() and 1 <= int(late) <= 10080
    except (ValueError, AssertionError):
        raise ConsoleError("console.settings.err") from None
    db.set_meta("setting.deadline", f"{hh:02d}:{mm:02d}")
    db.set_meta("setting.copresence_minutes", minutes)
    db.set_meta("setting.late_minutes", late)
    c.console.audit.append(c.user, "settings", {"deadline": deadline, "minutes": minutes})
    return c.redirect("/console/users", ok="console.settings.saved")


def audit_page(c: Ctx) -> Response:
    broken = c.console.audit.verify()
    return c.render("audit.html", rows=c.console.audit.rows(), broken=broken)


def register(router: APIRouter, console: Console) -> None:
    add_page(router, console, "/keypersons", keypersons_page)
    add_page(router, console, "/keypersons/upload", keyperson_upload, ("POST",))
    add_page(router, console, "/keypersons/publish", keyperson_publish, ("POST",))
    add_page(router, console, "/keypersons/remove", keyperson_remove_confirm)
    add_page(router, console, "/keypersons/remove", keyperson_remove, ("POST",))
    admin = "admin"
    add_page(router, console, "/devices", devices_page, role=admin)
    add_page(router, console, "/devices/enroll", device_enroll, ("POST",), role=admin)
    add_page(router, console, "/devices/revoke", device_revoke_confirm, role=admin)
    add_page(router, console, "/devices/revoke", device_revoke, ("POST",), role=admin)
    add_page(router, console, "/rules", rules_page, role=admin)
    add_page(router, console, "/rules/preview", rules_preview, ("POST",), role=admin)
    add_page(router, console, "/conflicts", conflicts_page)
    add_page(router, console, "/conflicts/resolve", conflict_resolve, ("POST",), role=admin)
    add_page(router, console, "/users", users_page, role=admin)
    add_page(router, console, "/users/action", user_action, ("POST",), role=admin)
    add_page(router, console, "/settings", settings_save, ("POST",), role=admin)
    add_page(router, console, "/audit", audit_page, role=admin)
