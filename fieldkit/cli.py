"""``fieldkit`` command line: argument parsing only; the work is in the core modules.

PINs never go on the command line (they would sit in shell history and ``ps``): they come from
``FIELDKIT_PIN`` (and ``FIELDKIT_NEW_PIN`` for a PIN being set), from ``--pin-stdin`` (one per
line, in that order), or from a prompt when a terminal is attached.

One piece (~550 lines): the argument tree of every command (argparse wants one tree); the work is
in the modules each command calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .cliparts import (  # the helpers every command module uses; names kept here too
    EXIT_OK,
    PinSource,
    emit,
    login,
    open_cli_store,
)
from .cliparts import common_options as _common
from .cliparts import settings_from_args as _settings
from .config import AREA_MODES
from .errors import InputError
from .i18n import Msg, env_language, set_language, t

# -- commands -----------------------------------------------------------------------------


def cmd_app(args: argparse.Namespace) -> int:
    from .ui.app import run_app  # textual is imported only here

    return run_app(_settings(args), camera=args.camera, images=args.images, video=args.video)


def cmd_init(args: argparse.Namespace) -> int:
    store = open_cli_store(args, create=True)
    if store.initialised:
        raise InputError("cli.already_set_up", path=str(store.path))
    pins = PinSource(args)
    pin = pins.get("FIELDKIT_PIN", Msg("cli.what.supervisor_pin", who=args.supervisor))
    recovery = store.setup(
        args.supervisor,
        pin,
        checkpoint_name=args.checkpoint_name,
        checkpoint_code=args.checkpoint_code,
    )
    cp = store.settings.checkpoint
    tpm = store.keyring.tpm_state()  # "none" on most machines: nothing more is said
    text = t(
        "cli.init_done",
        path=str(store.path),
        name=cp.name,
        code=cp.code,
        supervisor=args.supervisor,
        recovery=recovery,
    )
    if tpm == "active":
        text += "\n" + t("tpm.init_sealed")
    elif tpm.startswith("unavailable"):
        text += "\n" + t("tpm.init_unavailable", why=tpm.partition(": ")[2])
    emit(
        args,
        {
            "store": str(store.path),
            "checkpoint": {"name": cp.name, "code": cp.code},
            "supervisor": args.supervisor,
            "recovery_key": recovery,
            "tpm": tpm,
        },
        text,
    )
    return EXIT_OK


def cmd_operator_add(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    pins = login(store, args)
    op = store.keyring.add(store.operator, store.master, args.name, args.role, pins.new(args.name))
    emit(
        args,
        {"name": op.name, "role": op.role},
        t("cli.operator_added", name=op.name, role=t("role." + op.role)),
    )
    return EXIT_OK


def cmd_operator_list(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    ops = store.keyring.list()
    rows = [
        {
            "name": o.name,
            "role": o.role,
            "created_at": o.created_at,
            "last_login": o.last_login,
            "failures": o.failures,
            "locked": o.locked_until > time.time(),
        }
        for o in ops
    ]
    from .cliwords import local_time, pad

    text = "\n".join(
        f"{pad(r['name'], 16)} {pad(t('role.' + r['role']), 10)} "
        + t("cli.last_login", when=local_time(r["last_login"]) if r["last_login"] else "-")
        + (f"  {t('cli.locked')}" if r["locked"] else "")
        for r in rows
    )
    emit(args, rows, text or t("cli.no_operators"))
    return EXIT_OK


def cmd_operator_remove(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    login(store, args)
    store.keyring.remove(store.operator, args.name)
    emit(args, {"removed": args.name}, t("cli.operator_removed", name=args.name))
    return EXIT_OK


def cmd_operator_reset_pin(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    pins = login(store, args)
    store.keyring.reset_pin(store.operator, store.master, args.name, pins.new(args.name))
    emit(args, {"reset": args.name}, t("cli.pin_reset", name=args.name))
    return EXIT_OK


def cmd_recover(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    pins = PinSource(args)
    key = pins.get("FIELDKIT_RECOVERY_KEY", Msg("cli.what.recovery_key"))
    store.recover(key, args.supervisor, pins.new(args.supervisor))
    emit(
        args,
        {"recovered": args.supervisor},
        t("cli.recovered", name=args.supervisor),
    )
    return EXIT_OK


def cmd_record(args: argparse.Namespace) -> int:
    from .gate import GateEntry, GateService, parse_day, parse_temperature
    from .i18n import outcome_text, reason_text

    store = open_cli_store(args)
    login(store, args)
    entry = GateEntry(
        direction=args.direction,
        id_number=args.id_number,
        id_kind=args.id_kind,
        name=args.name,
        phone=args.phone,
        temperature=parse_temperature(args.temperature) if args.temperature else None,
        temperature_skipped=args.not_measured,
        code_colour=args.code_colour,
        test_date=parse_day(args.test_date, "test date") if args.test_date else None,
        test_result=args.test_result,
        category=args.category,
        trip_reason=args.reason,
        escort=args.escort,
        approval_ref=args.approval,
        notes=args.notes,
        source="cli",
        check_digit_confirmed=args.confirm_check_digit,
    )
    try:
        ev, row = GateService(store).commit(entry)
    except InputError as err:
        if err.code == "err.id_check_digit":  # the command line's way to confirm it
            raise InputError("cli_words.id_check_digit", **err.params) from None
        raise
    lang = store.settings.ui.language
    reasons = [
        {
            "code": r.code,
            "alert": r.alert,
            "params": r.params,
            "text": reason_text(r.code, r.params, lang),
        }
        for r in ev.decision.reasons
    ]
    head = t("cli.record_line", outcome=outcome_text(ev.decision.outcome.value, lang), id=row.id)
    text = head + "\n" + "\n".join(f"  {'!' if r['alert'] else '-'} {r['text']}" for r in reasons)
    emit(
        args,
        {
            "record_id": row.id,
            "decision": ev.decision.outcome.value,
            "reasons": reasons,
            "entry_id": row.entry_id,
            "id_masked": row.id_masked,
            "name_masked": row.name_masked,
        },
        text,
    )
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    import time

    from .i18n import t

    store = open_cli_store(args)
    cp = store.settings.checkpoint
    counts = store.outbox.counts()
    total = store.g.scalar("SELECT count(*) FROM passages") or 0
    checked, problem = store.audit.verify()
    shift = store.shifts.current()
    town_rules = store.town_rules()
    data = {
        "store": str(store.path),
        "initialised": store.initialised,
        "checkpoint": {"name": cp.name, "code": cp.code, "level": cp.level, "mode": cp.area_mode},
        "operators": len(store.keyring.list()),
        "passages": total,
        "inside_now": store.passages.inside_now(),
        "sync": counts,
        "shift": shift["id"] if shift else None,
        "keypersons": store.keypersons.count(),
        "keypersons_updated_at": store.keypersons.updated_at(),
        "town_rules": town_rules,
        "audit": {
            "entries": checked,
            "ok": problem is None,
            "problem": problem.message if problem else None,
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    lang = store.settings.ui.language
    text = t(
        "cli.status",
        lang,
        name=cp.name,
        code=cp.code,
        mode=t("mode." + cp.area_mode, lang),
        path=str(store.path),
        operators=data["operators"],
        passages=total,
        inside=data["inside_now"],
        pending=counts["pending"],
        synced=counts["synced"],
        quarantined=counts["quarantined"],
        shift=data["shift"] or t("cli.none_open", lang),
        keypersons=data["keypersons"],
        updated=data["keypersons_updated_at"] or t("cli.never", lang),
        rules=_town_rules_text(town_rules, store.settings.config_rules),
        entries=checked,
        audit=t("cli.chain_intact", lang) if problem is None else problem.text(lang),
    )
    from .store.protection import describe  # keys, TPM, audit anchor

    data["protection"], protection = describe(store, lang)
    text += "\n" + protection
    emit(args, data, text)
    return EXIT_OK


def _town_rules_text(town_rules: dict[str, Any], config_rules: Any) -> str:
    def shown(value: Any) -> str:
        return ",".join(value) if isinstance(value, list) else str(value)

    overrides = [
        t("cli.town_rule", key=key, value=shown(value), config=shown(getattr(config_rules, key)))
        for key, value in town_rules.items()
    ]
    return ", ".join(overrides) or t("cli.no_town_rules")


def cmd_audit_verify(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    if args.pin_stdin or os.environ.get("FIELDKIT_PIN"):
        login(store, args)  # with a PIN the keyed links are checked too
    checked, problem = store.audit.verify()
    if problem:
        emit(
            args,
            {
                "ok": False,
                "checked": checked,
                "first_broken": problem.seq,
                "problem": problem.message,
            },
            t("cli.audit_broken", seq=problem.seq, problem=problem.text(), checked=checked),
        )
        return 1
    emit(
        args,
        {"ok": True, "checked": checked, "keys_checked": store.audit.keyed},
        t("cli.audit_intact", checked=checked),
    )
    return EXIT_OK


def cmd_audit_list(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    from .cliwords import audit_lines

    rows = store.audit.entries(args.limit, args.action)
    emit(args, rows, audit_lines(rows))
    return EXIT_OK


def cmd_mode(args: argparse.Namespace) -> int:
    store = open_cli_store(args)
    login(store, args)
    store.set_area_mode(args.mode, store.operator)
    emit(args, {"mode": args.mode}, t("cli.mode_set", mode=t("mode." + args.mode)))
    return EXIT_OK


# -- parser -------------------------------------------------------------------------------


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``argv``, extension modules whose commands are not asked for are
    left out, so that starting the app does not import the scanning engines, openpyxl …"""
    parser = argparse.ArgumentParser(
        prog="fieldkit",
        description=(
            "FieldKit: checkpoint (卡口) and door-to-door epidemic field work. "
            "Without a command, starts the terminal app."
        ),
    )
    parser.add_argument("--config", help="config file (default: FIELDKIT_CONFIG)")
    parser.add_argument("--data-dir", help="data directory (default: FIELDKIT_HOME)")
    parser.add_argument("--lang", choices=("zh", "en"), help="language for this run")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--camera", help="camera index or device path")
    src.add_argument("--images", metavar="DIR", help="use a folder of images as the camera")
    src.add_argument("--video", metavar="FILE", help="use a video file as the camera")
    parser.set_defaults(func=cmd_app)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("init", help="set up a new store: checkpoint and supervisor")
    p.add_argument("--checkpoint-name", required=True)
    p.add_argument("--checkpoint-code", required=True)
    p.add_argument("--supervisor", required=True)
    _common(p, pin=True)
    p.set_defaults(func=cmd_init)

    op = sub.add_parser("operator", help="add, list, remove operators, reset PINs")
    osub = op.add_subparsers(dest="operator_command", metavar="ACTION", required=True)
    p = osub.add_parser("add", help="add an operator (supervisor)")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=("gate", "patrol", "supervisor"))
    _common(p, pin=True)
    p.set_defaults(func=cmd_operator_add)
    p = osub.add_parser("list", help="list operators")
    _common(p)
    p.set_defaults(func=cmd_operator_list)
    p = osub.add_parser("remove", help="remove an operator (supervisor)")
    p.add_argument("name")
    _common(p, pin=True)
    p.set_defaults(func=cmd_operator_remove)
    p = osub.add_parser("reset-pin", help="set a new PIN for an operator (supervisor)")
    p.add_argument("name")
    _common(p, pin=True)
    p.set_defaults(func=cmd_operator_reset_pin)

    p = sub.add_parser("recover", help="regain access with the recovery key")
    p.add_argument("--supervisor", required=True, help="supervisor to (re)create with a new PIN")
    _common(p, pin=True)
    p.set_defaults(func=cmd_recover)

    p = sub.add_parser("record", help="record one gate passage and print the decision")
    p.add_argument("--direction", required=True, choices=("in", "out"), help="direction")
    p.add_argument("--id-number", help="ID number")
    p.add_argument(
        "--id-kind",
        choices=("resident_id", "passport", "hk_macau_permit", "taiwan_permit", "other"),
        help="kind of document",
    )
    p.add_argument(
        "--confirm-check-digit",
        action="store_true",
        help="record an ID whose check digit is wrong (the card was checked)",
    )
    p.add_argument("--name", help="name")
    p.add_argument("--phone", help="phone")
    p.add_argument("--temperature", help="°C, e.g. 36.5")
    p.add_argument("--not-measured", metavar="REASON", help="no thermometer: say why")
    p.add_argument("--code-colour", choices=("green", "yellow", "red"), help="health code colour")
    p.add_argument("--test-date", help="YYYY-MM-DD of the last nucleic-acid test")
    p.add_argument(
        "--test-result",
        choices=("negative", "positive", "pending"),
        help="result of the last nucleic-acid test",
    )
    p.add_argument(
        "--category",
        default="resident",
        choices=("resident", "outsider", "worker", "delivery", "repair", "visitor"),
        help="kind of person",
    )
    p.add_argument("--reason", help="reason for the trip")
    p.add_argument("--escort", help="who escorts the visitor")
    p.add_argument("--approval", help="approval reference (repair crews)")
    p.add_argument("--notes", help="notes")
    _common(p, pin=True)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("status", help="checkpoint, store, sync and audit status")
    _common(p)
    p.set_defaults(func=cmd_status)

    au = sub.add_parser("audit", help="the tamper-evident audit trail")
    asub = au.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    p = asub.add_parser("verify", help="check the hash chain; exits 1 at the first broken entry")
    _common(p, pin=True)
    p.set_defaults(func=cmd_audit_verify)
    p = asub.add_parser("list", help="latest audit entries")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--action")
    _common(p)
    p.set_defaults(func=cmd_audit_list)

    p = sub.add_parser("mode", help="change the area mode (supervisor PIN)")
    p.add_argument("mode", choices=AREA_MODES)
    _common(p, pin=True)
    p.set_defaults(func=cmd_mode)

    for register, commands in EXTENSIONS.items():
        if argv is None or _asks_for(argv, commands):
            register(sub)
    from .clirun import translate_help
    from .cliwords import name_choices

    translate_help(parser, "fieldkit")  # --help in the run's language
    name_choices(parser)  # and each option value's word beside it (``in 进``)
    return parser


# Modules that add their own subcommands (``register(subparsers)``): each is imported, with a
# plain import, only when one of its commands is used (starting the app imports none of them).
def _scanner_commands(sub: Any) -> None:
    from scanners.cli import register

    register(sub)
    for name in ("decode", "scan"):
        parser = sub.choices[name]
        parser.set_defaults(func=_with_device_passes(parser.get_default("func")))


def _with_device_passes(run: Any) -> Any:
    """``decode``/``scan`` on a set-up device check passes as the gate does: with the town's
    keys and the revocations this device holds (no PIN needed: neither is secret). Without a
    store they decode as before and say the pass could not be checked."""

    def with_passes(args: argparse.Namespace) -> int:
        from .errors import FieldkitError
        from .store.synctables import town_pass_keys

        try:
            store = open_cli_store(args)
        except (FieldkitError, OSError):
            store = None
        if store is not None:
            try:
                if store.initialised:
                    args.device_pass_keys = town_pass_keys(store)
                    args.device_revoked = store.revocations.all()
            finally:
                store.close()
        return int(run(args))

    return with_passes


def _sync_commands(sub: Any) -> None:
    from sync.device_cli import register

    register(sub)


def _ledger_commands(sub: Any) -> None:
    from .ledger_cli import register

    register(sub)


def _report_commands(sub: Any) -> None:
    from .reports_cli import register

    register(sub)


def _wipe_commands(sub: Any) -> None:
    from .wipe import register

    register(sub)


EXTENSIONS: dict[Callable[[Any], None], tuple[str, ...]] = {
    _scanner_commands: ("decode", "scan"),
    _sync_commands: ("enroll", "sync"),
    _ledger_commands: ("ledger",),
    _report_commands: ("report", "export", "purge", "shift"),
    _wipe_commands: ("wipe",),
}
_BUILT_IN = {"init", "operator", "recover", "record", "status", "audit", "mode"}


def _asks_for(argv: list[str], commands: tuple[str, ...]) -> bool:
    words = [a for a in argv if not a.startswith("-")]
    if any(a in ("-h", "--help") for a in argv) and not (set(words) & _BUILT_IN):
        return True  # the overview lists every command
    if set(words) & set(commands):
        return True
    # An unknown word that is not an option's value: let argparse see every command and
    # print its usual "invalid choice" list.
    values_of = {"--config", "--data-dir", "--lang", "--camera", "--images", "--video"}
    for i, a in enumerate(argv):
        if a.startswith("-") or (i and argv[i - 1] in values_of):
            continue
        all_commands = _BUILT_IN.union(*EXTENSIONS.values())
        return a not in all_commands
    return False


def _early_language(argv: list[str]) -> str | None:
    """``--lang`` as given on the line (before argparse, so its own errors are translated)."""
    for i, a in enumerate(argv):
        if a == "--lang" and i + 1 < len(argv):
            return argv[i + 1] if argv[i + 1] in ("zh", "en") else None
        if a.startswith("--lang="):
            value = a.split("=", 1)[1]
            return value if value in ("zh", "en") else None
    return None


def _config_language(argv: list[str]) -> str | None:
    """``ui.language`` of the config file the run will read (so ``--help`` and argparse's own
    words follow it too); None when unset or unreadable (the command itself reports that)."""
    from . import paths
    from .config import read_config_file

    chosen = None
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            chosen = argv[i + 1]
        elif a.startswith("--config="):
            chosen = a.split("=", 1)[1]
    try:
        path = paths.config_file(chosen)
        ui = read_config_file(path).get("ui") if path is not None else None
    except Exception:  # noqa: BLE001 - a broken file is said by the command that reads it
        return None
    lang = ui.get("language") if isinstance(ui, dict) else None
    return lang if lang in ("zh", "en") else None


def main(argv: list[str] | None = None) -> int:
    """Every outcome is a line in the user's language and an exit code, never a traceback."""
    from .clirun import run_guarded

    argv = sys.argv[1:] if argv is None else argv
    set_language(_early_language(argv) or env_language() or _config_language(argv))
    holder: dict[str, Any] = {}

    def run() -> int:
        parser = build_parser(argv)
        args = holder["args"] = parser.parse_args(argv)
        return int(args.func(args) or 0)

    return run_guarded("fieldkit", run, lambda: getattr(holder.get("args"), "json", False))


if __name__ == "__main__":
    sys.exit(main())
