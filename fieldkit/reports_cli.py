"""``fieldkit report | export | purge | shift``: the supervisor's commands.

Reports print counts only and need no PIN; exports need an operator's PIN (and a supervisor's
for ``--full``); purging and opening or closing a shift need the supervisor's PIN.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

from .cliparts import EXIT_OK, emit, login, open_cli_store
from .cliparts import common_options as _common
from .errors import InputError
from .i18n import t


def _lang(store: Any) -> str:
    return store.settings.ui.language


def _day(text: str | None) -> str:
    if not text:
        return date.today().isoformat()
    from .gate import parse_day

    return parse_day(text).isoformat()


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


# -- report ------------------------------------------------------------------------------------


def cmd_report_daily(args: argparse.Namespace) -> int:
    from .reports import daily_report
    from .reports.text import daily_text

    store = open_cli_store(args)
    day = _day(args.date)
    login(store, args)  # the health values counted are encrypted: the data key is needed
    report = daily_report(store, day)
    emit(args, report.to_dict(), daily_text(report, _lang(store)))
    return EXIT_OK


def cmd_report_shift(args: argparse.Namespace) -> int:
    from .reports import shift_summary
    from .reports.text import shift_text

    store = open_cli_store(args)
    login(store, args)
    summary = shift_summary(store, args.shift)
    emit(args, summary.to_dict(), shift_text(summary, _lang(store)))
    return EXIT_OK


def cmd_report_totals(args: argparse.Namespace) -> int:
    from .reports import category_totals
    from .reports.text import totals_text

    store = open_cli_store(args)
    as_of = _day(args.as_of)
    login(store, args)
    totals = category_totals(store, as_of)
    emit(args, totals.to_dict(), totals_text(totals, _lang(store)))
    return EXIT_OK


# -- export ------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from .reports import export

    reason = (args.reason or "").strip()
    if args.full and not reason:  # a full-data access has a reason, and the reason is audited
        raise InputError("cli_words.full_needs_reason")
    store = open_cli_store(args)
    login(store, args)
    if args.date and args.shift:
        raise InputError("cli.date_or_shift")
    result = export(
        store,
        args.kind,
        args.out,
        fmt=args.format,
        day=args.date,
        shift_id=args.shift,
        full=args.full,
        reason=reason if args.full else None,
    )
    lang = _lang(store)
    text = t(
        "export.done.written", lang, rows=result.rows, path=result.path, size=_size(result.size)
    )
    if result.full:
        text += "\n" + t("export.done.full_note", lang)
    emit(
        args,
        {
            "path": str(result.path),
            "kind": result.kind,
            "format": result.format,
            "full": result.full,
            "rows": result.rows,
            "bytes": result.size,
        },
        text,
    )
    return EXIT_OK


# -- purge -------------------------------------------------------------------------------------


def cmd_purge(args: argparse.Namespace) -> int:
    from .reports import plan_purge, purge
    from .reports.text import purge_text

    store = open_cli_store(args)
    lang = _lang(store)
    plan = plan_purge(store)
    if args.dry_run or plan.total == 0:
        text = (
            purge_text(plan, lang) if plan.total or plan.kept_unsynced else t("purge.nothing", lang)
        )
        emit(args, plan.to_dict(), text)
        return EXIT_OK
    if not args.yes:
        if not sys.stdin.isatty() or args.pin_stdin:
            raise InputError(t("purge.needs_yes", lang))
        print(purge_text(plan, lang))
        if input(t("purge.confirm", lang)).strip().lower() not in ("yes", "y", "是"):
            emit(args, {"cancelled": True}, t("purge.cancelled", lang))
            return 1
    login(store, args)
    done = purge(store)
    emit(args, done.to_dict(), purge_text(done, lang))
    return EXIT_OK


# -- shift -------------------------------------------------------------------------------------


def cmd_shift_open(args: argparse.Namespace) -> int:
    from .reports import open_shift
    from .reports.text import handover_text

    store = open_cli_store(args)
    login(store, args)
    opened = open_shift(store, args.note)
    lang = _lang(store)
    emit(
        args,
        {"shift_id": opened.shift_id, "handover": opened.handover},
        t("report.shift_opened", lang, id=opened.shift_id)
        + "\n"
        + handover_text(opened.handover, lang),
    )
    return EXIT_OK


def cmd_shift_close(args: argparse.Namespace) -> int:
    from .reports import close_shift
    from .reports.text import shift_text

    store = open_cli_store(args)
    login(store, args)
    summary = close_shift(store, args.note or "")
    lang = _lang(store)
    emit(
        args,
        summary.to_dict(),
        t("report.shift_closed_ok", lang, id=summary.shift_id) + "\n" + shift_text(summary, lang),
    )
    return EXIT_OK


def register(sub: Any) -> None:
    rep = sub.add_parser("report", help="daily report (and zero report), shift summary, totals")
    rsub = rep.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    p = rsub.add_parser("daily", help="the daily report for a date (a zero report when calm)")
    p.add_argument("--date", help="YYYY-MM-DD (default: today)")
    _common(p, pin=True)
    p.set_defaults(func=cmd_report_daily)
    p = rsub.add_parser("shift", help="summary of a shift: counts, reconciliation, open alerts")
    p.add_argument(
        "--shift",
        help="shift id or its first characters (default: the open one, else the last closed one)",
    )
    _common(p, pin=True)
    p.set_defaults(func=cmd_report_shift)
    p = rsub.add_parser("totals", help="category totals as of a date (截止到X日)")
    p.add_argument("--as-of", help="YYYY-MM-DD (default: today)")
    _common(p, pin=True)
    p.set_defaults(func=cmd_report_totals)

    p = sub.add_parser("export", help="shift log, daily report or passages to XLSX or CSV")
    p.add_argument("kind", choices=("shift-log", "daily", "passages"))
    p.add_argument(
        "--format", choices=("xlsx", "csv"), help="file format (default: from the file name)"
    )
    p.add_argument("--out", required=True, help="file to write (e.g. on a USB stick)")
    p.add_argument("--date", help="YYYY-MM-DD: a day's records")
    p.add_argument("--shift", help="shift id: that shift's records")
    p.add_argument(
        "--full",
        action="store_true",
        help="unmasked names and ID numbers: needs the supervisor's PIN and --reason, audited",
    )
    p.add_argument("--reason", help="why full personal data is exported (required with --full)")
    _common(p, pin=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("purge", help="delete synced records older than privacy.retention_days")
    p.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _common(p, pin=True)
    p.set_defaults(func=cmd_purge)

    sh = sub.add_parser("shift", help="open or close a shift (supervisor PIN)")
    ssub = sh.add_subparsers(dest="shift_command", metavar="ACTION", required=True)
    p = ssub.add_parser("open", help="open a shift; shows the previous shift's handover")
    p.add_argument("--note", help="note at opening (e.g. who is on duty)")
    _common(p, pin=True)
    p.set_defaults(func=cmd_shift_open)
    p = ssub.add_parser("close", help="close the shift with a handover note and reconciliation")
    p.add_argument("--note", help="handover note for the next shift")
    _common(p, pin=True)
    p.set_defaults(func=cmd_shift_close)
