"""Rules page for one checkpoint: its own area mode and rule overrides, which win over the
town-wide ones at that checkpoint's gates (see :mod:`sync.server.scoped`). The town-wide page
stays in :mod:`.admin`; this module is used when the page's scope names a checkpoint."""

from __future__ import annotations

import time
from typing import Any

from fastapi.responses import Response

from .. import scoped
from .web import ConsoleError, Ctx


def known_checkpoints(c: Ctx) -> list[str]:
    """Checkpoint codes the town knows: devices' bindings, passages seen, earlier overrides."""
    from .facts import catch_up

    con = c.console
    catch_up(con.db, con.town.keys.data_key)  # checkpoints of passages that came in since
    codes = {r[0] for r in con.db.q("SELECT DISTINCT checkpoint FROM console_device_cp") if r[0]}
    bindings = getattr(con.town, "scopes", None)
    if bindings is not None:
        for device in con.repo.list_devices():
            codes.update(bindings.checkpoints(device.device_id) or ())
    codes.update(scoped.known_checkpoints(con.repo))
    return sorted(codes)


def _current(c: Ctx, code: str) -> tuple[str, dict[str, Any]]:
    repo = c.console.repo
    mode = scoped.current(repo, code, "mode") or ""
    rules = scoped.current(repo, code, "rules")
    return mode, rules if isinstance(rules, dict) else {}


def _town_mode(c: Ctx) -> str:
    last = c.console.repo.latest_change("mode")
    return (last.data.get("mode") if last else "") or ""


def _mode_label(c: Ctx, mode: str) -> str:
    if mode:
        return c.t(f"console.mode.{mode}")
    town = _town_mode(c)
    town_label = c.t(f"console.mode.{town}") if town else c.t("console.rules.device_own")
    return c.t("console3.rules.follow_town", mode=town_label)


def _checked_code(c: Ctx, code: str) -> str:
    if code not in known_checkpoints(c):
        raise ConsoleError("console3.rules.err_scope", code=code[:32])
    return code


def page(c: Ctx, code: str, modes: tuple[str, ...]) -> Response:
    code = _checked_code(c, code)
    mode, rules = _current(c, code)
    return c.render("rules.html", **_values(c, code, mode, rules, modes), confirm=None)


def _values(c: Ctx, code: str, mode: str, rules: dict[str, Any], modes: tuple[str, ...]) -> dict:
    return {
        "mode": mode,
        "rules": rules,
        "modes": ("", *modes),
        "scope": code,
        "scopes": known_checkpoints(c),
        "mode_label": _mode_label(c, mode),
    }


def preview(c: Ctx, code: str, modes: tuple[str, ...], new_rules: dict[str, Any]) -> Response:
    """The confirmation names the checkpoint on every line; confirmed, the change is pushed
    for that checkpoint only."""
    code = _checked_code(c, code)
    mode, rules = _current(c, code)
    new_mode = c.arg("mode")
    if new_mode and new_mode not in modes:
        raise ConsoleError("console.rules.err_mode")
    if c.arg("confirmed") == "1":
        now = time.time()
        if new_mode != mode:
            scoped.push(c.console.repo, code, "mode", new_mode, now)
        if new_rules != rules:
            scoped.push(c.console.repo, code, "rules", new_rules, now)
        c.console.audit.append(
            c.user,
            "rules_push",
            {"checkpoint": code, "mode": new_mode, "rules": new_rules},
            c.arg("note"),
        )
        return c.redirect(f"/console/rules?scope={code}", ok="console.rules.sent")
    changes = []
    if new_mode != mode:
        changes.append(
            c.t(
                "console.rules.mode_change",
                old=_mode_label(c, mode),
                new=_mode_label(c, new_mode),
            )
        )
    changes += rules_diff(c, rules, new_rules, own="console3.rules")
    only = [c.t("console3.rules.only", code=code, change=line) for line in changes]
    return c.render(
        "rules.html",
        **_values(c, code, mode, rules, modes),
        confirm={
            "mode": new_mode,
            "rules": c.arg("rules"),
            "changes": only,
            "note": c.arg("note"),
        },
    )


def _shown(value: Any) -> str:
    return ", ".join(map(str, value)) or "—" if isinstance(value, list) else str(value)


def rules_diff(
    c: Ctx, before: dict[str, Any], after: dict[str, Any], own: str = "console.rules"
) -> list[str]:
    """One line per rule the push sets, changes, or gives back to the devices' own config
    (``own``: the catalogue section saying what a rule had before, for one checkpoint)."""
    lines = []
    for key, value in after.items():
        if key not in before:
            lines.append(c.t(f"{own}.set_new", key=key, value=_shown(value)))
        elif before[key] != value:
            lines.append(
                c.t(
                    "console.rules.set_changed",
                    key=key,
                    old=_shown(before[key]),
                    value=_shown(value),
                )
            )
    lines += [
        c.t(f"{own}.set_removed", key=key, old=_shown(value))
        for key, value in before.items()
        if key not in after
    ]
    return lines
