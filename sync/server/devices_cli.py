"""``fieldkit-server device add|list|revoke|wipe|flags``: enroll devices, list them (with the
town's audit-anchor flags), revoke them, order a lost one wiped, list the flags."""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import time
from typing import Any

from fieldkit.i18n import t

from . import anchors, wipe_orders
from .cli_base import CliError, emit, iso
from .cli_base import open_town as _open


def cmd_device_add(args: argparse.Namespace) -> int:
    from fieldkit.i18n import t

    from .app import token_hash
    from .device_scope import DeviceScopes, checkpoint_codes, live_device_named
    from .tls import town_certificate_fingerprint

    name = " ".join(args.name.split())
    data_dir, settings, keys, repo = _open(args)
    taken = live_device_named(repo.list_devices(), name)
    if taken is not None:
        repo.close()
        raise CliError(t("console.dev.err_exists", name=taken.name))
    secret = base64.b32encode(secrets.token_bytes(15)).decode()
    token = f"{secret}.{keys.fingerprint}"
    cert_pin = town_certificate_fingerprint(data_dir)
    if cert_pin:  # the device pins the town's own TLS certificate from the token
        token += f".{cert_pin}"
    now = time.time()
    device = repo.add_device(name, token_hash(token), now + settings.token_ttl_s, now)
    repo.close()
    codes = checkpoint_codes(args.checkpoint or [])
    if codes:
        DeviceScopes(data_dir).bind(device.device_id, codes)
    scope_line = (
        t("server_security.device.scoped", codes=", ".join(codes))
        if codes
        else t("server_security.device.unscoped")
    )
    enroll_text = f"fieldkit enroll {args.url} {token}" if args.url else token
    if args.json:
        print(
            json.dumps(
                {
                    "device_id": device.device_id,
                    "name": device.name,
                    "token": token,
                    "checkpoints": codes or None,
                    "expires_at": now + settings.token_ttl_s,
                    "enroll": enroll_text,
                }
            )
        )
        return 0
    print(
        t(
            "server.device.created",
            name=device.name,
            id=device.device_id,
            until=iso(now + settings.token_ttl_s),
        )
    )
    print(scope_line)
    print(f"\n  {token}\n")
    if args.url:
        print(t("server.device.on_device", command=f"fieldkit enroll {args.url} {token}") + "\n")
    if not args.no_qr:
        import segno

        segno.make(enroll_text, error="m").terminal(compact=True)
    return 0


def _marks_json(m: wipe_orders.DeviceMarks | None) -> dict[str, Any]:
    return {
        "flags": [
            {"kind": f["kind"], "params": f["params"], "detail": f["detail"], "at": f["at"]}
            for f in (m.flags if m else [])
        ],
        "wipe": m.wipe if m else None,
    }


def cmd_device_list(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    try:
        devices = repo.list_devices()
        marks = wipe_orders.marks(repo)
    finally:
        repo.close()
    rows = [
        {
            "device_id": d.device_id,
            "name": d.name,
            "status": d.status,
            "created_at": d.created_at,
            "enrolled_at": d.enrolled_at,
            "last_seen": d.last_seen,
            **_marks_json(marks.get(d.device_id)),
        }
        for d in devices
    ]
    lines = [t("wipe_orders.list.head")]
    lines += [
        f"{d.device_id:16}  {d.name:20}  {t('server.device.status.' + d.status):8}  "
        f"{iso(d.last_seen):25}  {wipe_orders.summary(marks.get(d.device_id))}"
        for d in devices
    ]
    emit(args, rows, lines if devices else [t("server.device.none")])
    return 0


def cmd_device_flags(args: argparse.Namespace) -> int:
    """Every audit-anchor flag (newest first), or one device's."""
    _, _, _, repo = _open(args)
    try:
        device_id = None
        if args.device:
            device = wipe_orders.find_device(repo, args.device)
            if device is None:
                raise CliError(t("wipe_orders.err.unknown", device=args.device))
            device_id = device.device_id
        names = {d.device_id: d.name for d in repo.list_devices()}
        flags = anchors.flags(repo, device_id)
    finally:
        repo.close()
    rows = [
        {
            "device_id": f["device_id"],
            "name": names.get(f["device_id"], ""),
            "kind": f["kind"],
            "params": f["params"],
            "detail": f["detail"],
            "at": f["at"],
        }
        for f in flags
    ]
    lines = [t("wipe_orders.flags.head")] + [
        f"{iso(f['at']):25}  {names.get(f['device_id'], f['device_id']):20}  "
        f"{wipe_orders.kind_text(f['kind'])}: {wipe_orders.flag_text(f)}"
        for f in flags
    ]
    emit(args, rows, lines if flags else [t("wipe_orders.flags.none")])
    return 0


def _confirmed(device: Any) -> bool:
    """The operator types the device's name (or id) back; anything else, or no input, is no."""
    print(
        t(
            "wipe_orders.cli.confirm",
            name=device.name,
            id=device.device_id,
            seen=iso(device.last_seen),
        )
    )
    try:
        answer = input(t("wipe_orders.cli.type_name") + " ")
    except EOFError:
        return False
    return answer.strip() in (device.name, device.device_id)


def cmd_device_wipe(args: argparse.Namespace) -> int:
    """Order a lost or stolen device wiped at its next contact; audited on the server."""
    from .console.auth import Audit
    from .console.db import ConsoleDB

    reason = wipe_orders.check_reason(args.reason)
    _, _, _, repo = _open(args)
    try:
        repo.create_schema()
        device = wipe_orders.orderable(repo, args.device)
        if not args.yes and not _confirmed(device):
            raise CliError(t("wipe_orders.err.not_confirmed"))
        db = ConsoleDB(repo)
        try:
            db.create_schema()
            who = "cli:" + (os.environ.get("USER") or os.environ.get("USERNAME") or "?")
            new = wipe_orders.order(repo, device, Audit(db), who, reason)
        finally:
            db.close()
        order = anchors.wipe_order(repo, device.device_id) or {}
    finally:
        repo.close()
    key = "wipe_orders.cli.ordered" if new else "wipe_orders.cli.already"
    text = t(key, name=device.name, id=device.device_id, at=iso(order.get("ordered_at")))
    data = {
        "device_id": device.device_id,
        "name": device.name,
        "ordered": new,
        "ordered_at": order.get("ordered_at"),
    }
    emit(args, data, [text])
    return 0


def cmd_device_revoke(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    try:
        device = repo.revoke_device(args.device, time.time())
        order = anchors.wipe_order(repo, device.device_id) if device else None
    finally:
        repo.close()
    if device is None:
        raise CliError(t("server.err.no_device", device=args.device))
    print(t("server.device.revoked", name=device.name, id=device.device_id))
    if order is not None and order["done_at"] is None:  # the town now refuses its contact
        print(t("wipe_orders.cli.revoked_unwiped", name=device.name), file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the ``device`` commands to the ``fieldkit-server`` parser."""
    dev = sub.add_parser(
        "device", help="enroll, list, revoke and remotely wipe devices; audit flags"
    ).add_subparsers(dest="device_command", required=True)
    p = dev.add_parser("add", parents=[common], help="create a one-time enrollment token")
    p.add_argument("name")
    p.add_argument(
        "--checkpoint",
        action="append",
        help="checkpoint code the device may write records for (repeatable; without it, any)",
    )
    p.add_argument("--url", help="server URL as devices reach it (printed in the QR)")
    p.add_argument("--no-qr", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_device_add)
    p = dev.add_parser("list", parents=[common])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_device_list)
    p = dev.add_parser("revoke", parents=[common])
    p.add_argument("device", help="name or id")
    p.set_defaults(func=cmd_device_revoke)
    p = dev.add_parser(
        "wipe",
        parents=[common],
        help="order a lost or stolen device to upload what it holds, then erase itself "
        "at its next contact",
    )
    p.add_argument("device", help="name or id")
    p.add_argument("--reason", required=True, help="why (kept in the town's audit chain)")
    p.add_argument("--yes", action="store_true", help="do not ask to type the device name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_device_wipe)
    p = dev.add_parser(
        "flags",
        parents=[common],
        help="devices whose audit chain went backwards or changed under the town's anchor",
    )
    p.add_argument("--device", help="only this device (name or id)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_device_flags)
