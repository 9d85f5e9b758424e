"""``fieldkit-server device add|list|revoke``: enroll devices, list them, revoke them."""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import time

from fieldkit.i18n import t

from .cli_base import CliError, emit, iso
from .cli_base import open_town as _open


def cmd_device_add(args: argparse.Namespace) -> int:
    from fieldkit.i18n import t

    from .app import token_hash
    from .device_scope import DeviceScopes
    from .tls import town_certificate_fingerprint

    data_dir, settings, keys, repo = _open(args)
    secret = base64.b32encode(secrets.token_bytes(15)).decode()
    token = f"{secret}.{keys.fingerprint}"
    cert_pin = town_certificate_fingerprint(data_dir)
    if cert_pin:  # the device pins the town's own TLS certificate from the token
        token += f".{cert_pin}"
    now = time.time()
    device = repo.add_device(args.name, token_hash(token), now + settings.token_ttl_s, now)
    repo.close()
    codes = sorted({c.strip() for c in args.checkpoint or [] if c.strip()})
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


def cmd_device_list(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    devices = repo.list_devices()
    repo.close()
    rows = [
        {
            "device_id": d.device_id,
            "name": d.name,
            "status": d.status,
            "created_at": d.created_at,
            "enrolled_at": d.enrolled_at,
            "last_seen": d.last_seen,
        }
        for d in devices
    ]
    lines = [t("server.device.list_head")]
    lines += [
        f"{d.device_id:16}  {d.name:20}  {t('server.device.status.' + d.status):8}  "
        f"{iso(d.last_seen)}"
        for d in devices
    ]
    emit(args, rows, lines if devices else [t("server.device.none")])
    return 0


def cmd_device_revoke(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    device = repo.revoke_device(args.device, time.time())
    repo.close()
    if device is None:
        raise CliError(t("server.err.no_device", device=args.device))
    print(t("server.device.revoked", name=device.name, id=device.device_id))
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the ``device`` commands to the ``fieldkit-server`` parser."""
    dev = sub.add_parser("device", help="enroll, list and revoke devices").add_subparsers(
        dest="device_command", required=True
    )
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
