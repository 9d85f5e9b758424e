"""``fieldkit ledger …``: import, template, export of the household and monitoring ledgers,
coverage of the current round, and the home-monitoring due list.

A full (unmasked) export needs a supervisor: either the operator logged in is one, or
``--supervisor NAME`` names one whose PIN comes next (``FIELDKIT_SUPERVISOR_PIN`` or the next
``--pin-stdin`` line). It is written to the audit log.
"""

from __future__ import annotations

import argparse
from typing import Any

from .cliparts import EXIT_OK, PinSource, emit, login, open_cli_store
from .cliparts import common_options as _common
from .i18n import Msg, current_language, t


def _lang(store) -> str:
    return store.settings.ui.language


def cmd_import(args: argparse.Namespace) -> int:
    from .ledger.importer import import_file, iter_rejected_text, iter_warning_text

    store = open_cli_store(args)
    login(store, args)
    summary = import_file(store, args.file)
    lang = _lang(store)
    lines = [
        t(
            "ledger.cli.import_done",
            lang,
            file=summary.file,
            imported=summary.imported,
            updated=summary.updated,
            unchanged=summary.unchanged,
            rejected=len(summary.rejected),
            warned=len(summary.warnings),
            rows=summary.rows,
            blank=summary.blank_rows,
        )
    ]
    if summary.ignored_columns:
        lines.append(
            t("ledger.cli.ignored_columns", lang, columns=", ".join(summary.ignored_columns))
        )
    if summary.rejected:
        lines.append(t("ledger.cli.rejected_rows", lang))
        lines.extend(iter_rejected_text(summary, lang))
    if summary.warnings:  # imported, but a cell was kept in the notes or left out
        lines.append(t("ledger.cli.warning_rows", lang))
        lines.extend(iter_warning_text(summary, lang))
    emit(args, summary.as_dict(), "\n".join(lines))
    return 1 if summary.rejected else EXIT_OK


def cmd_template(args: argparse.Namespace) -> int:
    from .ledger.exporter import write_template

    path = write_template(args.file)
    lang = args.lang or current_language()
    emit(args, {"file": str(path)}, t("ledger.cli.template_done", lang, file=path))
    return EXIT_OK


def _supervisor(store, args: argparse.Namespace, pins: PinSource):
    """The supervisor confirming a full export (None for a masked one)."""
    if not args.full:
        return None
    if store.operator.is_supervisor and not args.supervisor:
        return store.operator
    from .errors import InputError

    if not args.supervisor:
        raise InputError("ledger.cli.full_needs_supervisor")
    pin = pins.get("FIELDKIT_SUPERVISOR_PIN", Msg("cli.what.supervisor_pin", who=args.supervisor))
    return store.keyring.verify_pin(args.supervisor, pin)


def _export(args: argparse.Namespace, which: str) -> int:
    from .ledger.exporter import export_households, export_monitoring

    store = open_cli_store(args)
    pins = login(store, args)
    supervisor = _supervisor(store, args, pins)
    fn = export_households if which == "households" else export_monitoring
    result: dict[str, Any] = fn(store, args.file, full=args.full, supervisor=supervisor)
    lang = _lang(store)
    emit(
        args,
        result,
        t(
            "ledger.cli.export_done",
            lang,
            rows=result["rows"],
            file=result["file"],
            mode=t("ledger.cli.full" if args.full else "ledger.cli.masked", lang),
        ),
    )
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    return _export(args, "households")


def cmd_export_monitoring(args: argparse.Namespace) -> int:
    return _export(args, "monitoring")


def cmd_coverage(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    login(store, args)
    cov = store.ledger.coverage()
    lines = [
        f"{b['grid'] or '-'} {b['building']}: {b['visited']}/{b['total']}" for b in cov["buildings"]
    ]
    tot = cov["total"]
    total = t("ledger.cli.coverage_total", **{k: tot[k] for k in ("visited", "total", "people")})
    lines.append("= " + total)
    emit(args, cov, "\n".join(lines))
    return EXIT_OK


def _today() -> str:
    from .ledger import monitoring

    return monitoring.now_local().date().isoformat()


def cmd_monitoring(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    login(store, args)
    new = store.monitoring.check_missed()
    due = store.monitoring.due()
    alerts = store.monitoring.alerts()
    lang = _lang(store)
    data = {
        "new_missed_alerts": new,
        "due": [d.__dict__ for d in due if d.state != "done"],
        "alerts": [
            {k: a[k] for k in ("id", "ts", "day", "kind", "slot", "place", "name_masked", "detail")}
            for a in alerts
        ],
        "ending": [
            {k: e[k] for k in ("id", "place", "name_masked", "health_status", "status_end")}
            for e in store.monitoring.ending()
        ],
    }

    def word(prefix: str, code: str | None) -> str:
        return t(prefix + code, lang) if code else ""

    lines = [
        f"{word('mon.state.', d['state']):<8} {word('mon.slot.', d['slot']):<8} "
        f"{d['place']:<14} {d['name_masked'] or ''}"
        for d in data["due"]
    ]
    if not data["due"]:
        # Between the windows: who is under monitoring, and when each is next due.
        watched = store.monitoring.upcoming()
        today = _today()
        lines.append(t("mon.cli_idle", lang, n=len(watched)))
        for u in watched:
            if u["slot"] is None:
                when = t("mon.cli_waiting", lang)
            else:
                key = "mon.cli_next" if u["day"] == today else "mon.cli_next_tomorrow"
                when = t(key, lang, slot=word("mon.slot.", u["slot"]), opens=u["opens"])
            end = t("mon.cli_end", lang, end=u["status_end"] or "-")
            lines.append(f"  {when:<14} {u['place']:<14} {u['name_masked'] or '':<6} {end}")
    lines += [
        f"! {word('mon.alert.', a['kind']):<8} {a['day']} {word('mon.slot.', a['slot']):<8} "
        f"{a['place']:<14} {a['name_masked'] or ''}"
        for a in data["alerts"]
    ]
    lines += [
        f"* {t('ledger.status.' + e['health_status'], lang)} -> {e['status_end']} "
        f"{e['place']} {e['name_masked'] or ''}"
        for e in data["ending"]
    ]
    emit(args, data, "\n".join(lines) or "-")
    return EXIT_OK


def register(sub: Any) -> None:
    led = sub.add_parser("ledger", help="household ledger (一户一档): import, export, coverage")
    lsub = led.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)

    p = lsub.add_parser(
        "import",
        help="import an office ledger (.xlsx, .xls, .ods, .xlsb, or .csv in UTF-8/GBK); "
        "exits 1 when some rows were rejected (they are listed)",
    )
    p.add_argument("file")
    _common(p, pin=True)
    p.set_defaults(func=cmd_import)

    p = lsub.add_parser("template", help="write a blank ledger template (.xlsx)")
    p.add_argument("file")
    _common(p)
    p.set_defaults(func=cmd_template)

    for name, func, what in (
        ("export", cmd_export, "the household ledger"),
        ("export-monitoring", cmd_export_monitoring, "the home monitoring ledger"),
    ):
        p = lsub.add_parser(name, help=f"export {what} (.xlsx or .csv), masked by default")
        p.add_argument("file")
        p.add_argument(
            "--full", action="store_true", help="unmasked personal data (supervisor's PIN; audited)"
        )
        p.add_argument("--supervisor", help="supervisor confirming --full (when you are not one)")
        _common(p, pin=True)
        p.set_defaults(func=func)

    p = lsub.add_parser("coverage", help="visited / total households of the current round")
    _common(p, pin=True)
    p.set_defaults(func=cmd_coverage)

    p = lsub.add_parser("monitoring", help="home monitoring: due readings, alerts, ending periods")
    _common(p, pin=True)
    p.set_defaults(func=cmd_monitoring)
