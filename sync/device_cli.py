"""``fieldkit enroll URL TOKEN`` and ``fieldkit sync``: registered by :mod:`fieldkit.cli`; the
helpers every command module shares come from :mod:`fieldkit.cliparts`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fieldkit.i18n import t

EXIT_SYNC_FAILED = 6


def cmd_enroll(args: argparse.Namespace) -> int:
    from fieldkit.cliparts import emit, login, open_cli_store
    from fieldkit.errors import InputError

    from .client import enroll

    ca_pem = None
    if args.ca_file:
        try:
            ca_pem = Path(args.ca_file).read_text()
        except OSError as err:
            raise InputError(
                "syncerr.cli.ca_unreadable", path=args.ca_file, why=err.strerror
            ) from None
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
        t(
            "syncerr.cli.enrolled",
            name=result.name,
            device=result.device_id,
            url=result.server_url,
            fingerprint=result.fingerprint,
        ),
    )
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from fieldkit.cliparts import emit, login, open_cli_store

    from .client import run_sync

    store = open_cli_store(args)
    try:
        login(store, args)
        report = run_sync(
            store, store.settings, operator=store.operator.name, download=not args.upload_only
        )
        rejected = rejected_by_reason(store)
    finally:
        store.close()
    data: dict[str, Any] = report.to_dict()
    data["rejected"] = [{"reason": r, "count": n} for r, n in rejected]
    emit(args, data, summary(report) + rejected_lines(rejected))
    if not args.json:
        for warning in report.warnings:
            print(t("syncerr.cli.warning", text=warning), file=sys.stderr)
    return 0 if report.ok else EXIT_SYNC_FAILED


def rejected_by_reason(store: Any) -> list[tuple[str, int]]:
    """The records the server rejected that the device still holds (not uploaded), counted by
    reason in the run's words, most first."""
    from .client import rejection_text

    counts: dict[str, int] = {}
    for q in store.outbox.quarantined(1_000_000):
        reason = rejection_text(q["sync_reason"])
        counts[reason] = counts.get(reason, 0) + 1
    return sorted(counts.items(), key=lambda rc: -rc[1])


def rejected_lines(rejected: list[tuple[str, int]]) -> str:
    """After the summary: how many rejected records wait, why, and how to requeue them."""
    total = sum(n for _, n in rejected)
    if not total:
        return ""
    lines = [t("fixscope.sync.cli_rejected", n=total)]
    lines += [t("fixscope.sync.cli_reason", n=n, reason=reason) for reason, n in rejected]
    lines.append(t("fixscope.sync.cli_hint"))
    return "\n" + "\n".join(lines)


def summary(report: Any) -> str:
    """One line on what a sync did, in the run's language."""
    if report.error:
        return t("syncerr.cli.failed", error=report.error)
    parts = [
        t(
            "syncerr.cli.sent",
            sent=report.sent,
            stored=report.stored,
            duplicate=report.duplicate,
        )
    ]
    if report.quarantined:
        parts.append(t("syncerr.cli.quarantined", n=report.quarantined))
    parts.append(t("syncerr.cli.pending", n=report.pending))
    added, removed = report.keypersons_added, report.keypersons_removed
    parts.append(t("syncerr.cli.keypersons", added=added, removed=removed))
    if report.revocations:
        parts.append(t("syncerr.cli.revocations", n=report.revocations))
    if report.mode:
        parts.append(t("syncerr.cli.mode", mode=t("mode." + report.mode)))
    if report.rules_changed:
        keys = ", ".join(report.rules_changed_keys)
        parts.append(
            t("syncerr.cli.rules_changed", keys=keys) if keys else t("syncerr.cli.rules_unchanged")
        )
    return t("syncerr.cli.synced", parts="，".join(parts) if _zh() else ", ".join(parts))


def _zh() -> bool:
    from fieldkit.i18n import current_language

    return current_language() == "zh"


def register(sub: Any) -> None:
    from fieldkit.cliparts import common_options

    p = sub.add_parser("enroll", help="register this device with the town server (once)")
    p.add_argument("url", help="town server URL, e.g. http://10.0.0.2:8470")
    p.add_argument("token", help="one-time token from `fieldkit-server device add`")
    p.add_argument("--ca-file", help="PEM certificate to trust for an https URL (pinned)")
    p.add_argument("--force", action="store_true", help="enroll again (new device key)")
    common_options(p, pin=True)
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("sync", help="send pending records, receive key persons and revocations")
    p.add_argument("--upload-only", action="store_true", help="do not download updates")
    common_options(p, pin=True)
    p.set_defaults(func=cmd_sync)
