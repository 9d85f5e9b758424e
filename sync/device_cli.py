"""``fieldkit enroll URL TOKEN`` and ``fieldkit sync``: registered by :mod:`fieldkit.cli`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_SYNC_FAILED = 6


def cmd_enroll(args: argparse.Namespace) -> int:
    from fieldkit.cli import emit, login, open_cli_store
    from fieldkit.errors import InputError

    from .client import enroll

    ca_pem = None
    if args.ca_file:
        try:
            ca_pem = Path(args.ca_file).read_text()
        except OSError as err:
            raise InputError(f"cannot read --ca-file {args.ca_file}: {err.strerror}") from None
    store = open_cli_store(args)
    try:
        login(store, args)
        result = enroll(
            store,
            args.url,
            args.token,
            timeout=store.settings.sync.timeout_s,
            ca_pem=ca_pem,
            force=args.force,
        )
    finally:
        store.close()
    emit(
        args,
        {
            "device_id": result.device_id,
            "name": result.name,
            "server_url": result.server_url,
            "fingerprint": result.fingerprint,
        },
        f"Enrolled as {result.name!r} ({result.device_id}) at {result.server_url}; town key "
        f"{result.fingerprint} pinned. Next: fieldkit sync",
    )
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from fieldkit.cli import emit, login, open_cli_store

    from .client import run_sync

    store = open_cli_store(args)
    try:
        login(store, args)
        report = run_sync(
            store, store.settings, operator=store.operator.name, download=not args.upload_only
        )
    finally:
        store.close()
    data: dict[str, Any] = report.to_dict()
    emit(args, data, report.summary())
    if not args.json:
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0 if report.ok else EXIT_SYNC_FAILED


def register(sub: Any) -> None:
    from fieldkit.cli import _common

    p = sub.add_parser("enroll", help="register this device with the town server (once)")
    p.add_argument("url", help="town server URL, e.g. http://10.0.0.2:8470")
    p.add_argument("token", help="one-time token from `fieldkit-server device add`")
    p.add_argument("--ca-file", help="PEM certificate to trust for an https URL (pinned)")
    p.add_argument("--force", action="store_true", help="enroll again (new device key)")
    _common(p, pin=True)
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("sync", help="send pending records, receive key persons and revocations")
    p.add_argument("--upload-only", action="store_true", help="do not download updates")
    _common(p, pin=True)
    p.set_defaults(func=cmd_sync)
