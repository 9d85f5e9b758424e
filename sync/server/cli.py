"""``fieldkit-server``: set up and run a town server, enroll devices, push lists, ask questions.

Only parses arguments and prints; the work is in the repository and the app. One module
(~800 lines) because it is a list of small commands over one parser; command groups that grow
go to their own module (``passes_cli``, ``users_cli``) and share ``cli_base``, never this one.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import secrets
import sys
import time
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

from fieldkit.clirun import run_guarded, translate_help
from fieldkit.i18n import LANGUAGES, env_language, set_language, syntax_position, t

from .cli_base import LANG_CHOSEN as _LANG_CHOSEN
from .cli_base import CliError, default_data_dir
from .cli_base import open_town as _open
from .keypersons import KeypersonFileError
from .repository import Passage, RepositoryError, open_repository
from .town import ServerSettings, TownKeys, TownSetupError

DEFAULT_PORT = 8470


def _emit(args: argparse.Namespace, data: Any, text_lines: list[str]) -> None:
    """``--json``: stable English keys; a dict result also gets ``message`` (the human text)."""
    if getattr(args, "json", False):
        if isinstance(data, dict) and "message" not in data and text_lines:
            data = {**data, "message": "\n".join(text_lines)}
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print("\n".join(text_lines))


def _iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def parse_time(text: str) -> float:
    """ISO 8601 date or date-time; without an offset it is the server's local time."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(t("server.err.time", value=text)) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.timestamp()


# --- commands -----------------------------------------------------------------------------------


LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")  # plain HTTP there never leaves this machine


def _print_town_cert(cert: Path, fingerprint: str, names: list[str] | None = None) -> None:
    from fieldkit.i18n import t

    print(t("server_security.serve.town_cert", path=cert, fingerprint=fingerprint))
    if names:
        print(t("server_security.serve.tls_host", names=", ".join(names)))


def cmd_init(args: argparse.Namespace) -> int:
    from .tls import cert_paths, make_self_signed

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if (data_dir / "town-keys.json").exists():
        if args.tls_self_signed and not cert_paths(data_dir)[0].exists():
            # An existing town gains its own certificate; its keys stay as they are.
            _print_town_cert(*make_self_signed(data_dir, args.tls_host or []))
            return 0
        raise CliError(t("server.err.keys_exist", path=str(data_dir)))
    settings = ServerSettings(database_url=args.database_url or "", db_schema=args.db_schema or "")
    repo = open_repository(settings.database_url or None, str(data_dir), settings.db_schema or None)
    try:
        repo.create_schema()
    finally:
        repo.close()
    keys = TownKeys.generate()
    keys.save(data_dir)
    settings.save(data_dir)
    print(t("server.init.done", path=str(data_dir)))
    storage = repo.backend + (f" ({args.database_url})" if args.database_url else "")
    print(t("server.init.storage", storage=storage))
    print(t("server.init.fingerprint", fingerprint=keys.fingerprint))
    if args.tls_self_signed:
        _print_town_cert(*make_self_signed(data_dir, args.tls_host or []))
    print(t("server.init.keep_secret", path=str(data_dir / "town-keys.json")))
    print(t("server.init.next", path=str(data_dir)))
    return 0


def _tls_files(args: argparse.Namespace, data_dir: Path) -> tuple[str | None, str | None]:
    """The certificate and key to serve with: given ones, else the town's own, else none."""
    from fieldkit.i18n import t

    from .tls import cert_paths

    if bool(args.tls_cert) != bool(args.tls_key):
        raise CliError(t("server_security.serve.tls_pair"))
    if not args.tls_cert:
        cert, key = cert_paths(data_dir)
        if not (cert.exists() and key.exists()):
            return None, None
        args.tls_cert, args.tls_key = str(cert), str(key)
    for path in (args.tls_cert, args.tls_key):
        try:
            Path(path).read_bytes()
        except OSError as err:
            raise CliError(
                t("server_security.serve.tls_missing", path=path, reason=err.strerror or err)
            ) from None
    return args.tls_cert, args.tls_key


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fieldkit.i18n import t

    from .app import create_app
    from .device_scope import DeviceScopes

    data_dir, settings, keys, repo = _open(args)
    tls_cert, tls_key = _tls_files(args, data_dir)
    insecure = not tls_cert and args.host not in LOCAL_HOSTS
    if insecure and not args.insecure_http:
        repo.close()
        raise CliError(t("server_security.serve.plain_http_refused", host=args.host))
    repo.create_schema()  # idempotent; upgrades a database made by an older version
    handlers: list[logging.Handler] = [
        logging.StreamHandler(),
        logging.FileHandler(data_dir / "server.log"),
    ]
    logging.basicConfig(
        level=logging.INFO,
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if insecure:
        logging.getLogger("fieldkit.server").warning(
            t("server_security.serve.insecure_warning", host=args.host)
        )
    app = create_app(keys, repo, settings, scopes=DeviceScopes(data_dir), insecure_http=insecure)
    scheme = "https" if tls_cert else "http"
    print(
        t(
            "server.serve.listening",
            url=f"{scheme}://{args.host}:{args.port}",
            backend=repo.backend,
            fingerprint=keys.fingerprint,
        ),
        flush=True,
    )
    options = {
        "host": args.host,
        "port": args.port,
        "ssl_certfile": tls_cert,
        "ssl_keyfile": tls_key,
        "log_level": "warning",
        "access_log": False,
        "timeout_keep_alive": 30,
    }
    try:
        if args.workers > 1:
            # Each worker process builds its own app (and storage connections).
            os.environ["FIELDKIT_SERVER_DIR"] = str(data_dir)
            os.environ["FIELDKIT_INSECURE_HTTP"] = "1" if insecure else "0"
            uvicorn.run(
                "sync.server.app:create_app_from_env", factory=True, workers=args.workers, **options
            )
        else:
            uvicorn.run(app, **options)
    finally:
        repo.close()
    return 0


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
            until=_iso(now + settings.token_ttl_s),
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
        f"{_iso(d.last_seen)}"
        for d in devices
    ]
    _emit(args, rows, lines if devices else [t("server.device.none")])
    return 0


def cmd_device_revoke(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    device = repo.revoke_device(args.device, time.time())
    repo.close()
    if device is None:
        raise CliError(t("server.err.no_device", device=args.device))
    print(t("server.device.revoked", name=device.name, id=device.device_id))
    return 0


def cmd_keyperson_import(args: argparse.Namespace) -> int:
    from .keypersons import read_keyperson_file

    _, _, keys, repo = _open(args)
    entries, problems = read_keyperson_file(
        Path(args.file), keys.index_key, args.category, args.end_date
    )
    for problem in problems[:20]:
        print("  " + t("server.keyperson.skipped", problem=problem), file=sys.stderr)
    if len(problems) > 20:
        print("  " + t("server.keyperson.more_skipped", n=len(problems) - 20), file=sys.stderr)
    now = time.time()
    removed: list[dict[str, str]] = []
    if args.replace:
        keep = {e["id_hash"] for e in entries}
        removed = [{"id_hash": h} for h in sorted(repo.keyperson_hashes() - keep)]
    if entries:
        repo.add_changes("keyperson", entries, now)
    if removed:
        repo.add_changes("keyperson_removed", removed, now)
    repo.close()
    print(
        t(
            "server.keyperson.done",
            imported=len(entries),
            removed=len(removed),
            skipped=len(problems),
        )
    )
    print(t("server.next_sync"))
    return 0 if entries or not problems else 2


def cmd_mode_set(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    repo.add_changes("mode", [{"mode": args.mode, "note": args.note or ""}], time.time())
    repo.close()
    print(t("server.mode_sent", mode=t("mode." + args.mode)))
    return 0


def read_rules_file(path: Path) -> dict[str, Any]:
    """The town's rule overrides from a JSON object of ``[rules]`` keys (or ``{"rules": {…}}``)
    or a TOML file with a ``[rules]`` table, each value checked as a device checks its config
    file. ``{}`` is allowed: every device goes back to its own config."""
    from fieldkit.errors import ConfigError
    from fieldkit.shared.rulecheck import validate_rules

    toml = path.suffix.lower() == ".toml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or err
        raise CliError(t("server.err.rules_unreadable", path=str(path), why=why)) from None
    try:
        data = tomllib.loads(text) if toml else json.loads(text)
    except ValueError as err:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        where = syntax_position(err)
        raise CliError(
            t("server.err.rules_syntax", path=str(path), kind="TOML" if toml else "JSON", why=where)
        ) from None
    if toml:
        if "rules" not in data or set(data) != {"rules"}:
            others = ", ".join(f"[{k}]" for k in data if k != "rules") or t("server.rules.no_table")
            raise CliError(t("server.err.rules_only", path=str(path), found=others))
        data = data["rules"]
    elif isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    try:
        return validate_rules(data, str(path))
    except ConfigError as err:
        raise CliError(str(err)) from None


def _rule_value(value: Any) -> str:
    return (", ".join(value) or t("server.rules.none")) if isinstance(value, list) else str(value)


def rules_diff(
    before: dict[str, Any], after: dict[str, Any], words: str = "server.rules"
) -> list[str]:
    """One line per rule the push sets or gives back to the devices' own config (``words``:
    the section saying what a rule had before, for one checkpoint the town-wide rules)."""
    lines = []
    for key, value in after.items():
        if key not in before:
            was = t(f"{words}.was_config")
        elif before[key] == value:
            was = t("server.rules.unchanged")
        else:
            was = t("server.rules.was", value=_rule_value(before[key]))
        lines.append(f"  {key} = {_rule_value(value)}  ({was})")
    lines += [
        "  " + t(f"{words}.back", key=key, value=_rule_value(value))
        for key, value in before.items()
        if key not in after
    ]
    return lines


def cmd_rules_push(args: argparse.Namespace) -> int:
    path = Path(args.file)
    rules = read_rules_file(path)
    _, _, _, repo = _open(args)
    code = (getattr(args, "checkpoint", None) or "").strip()
    try:
        if code:  # this checkpoint's own overrides, over the town-wide ones
            from . import scoped

            before = scoped.current(repo, code, "rules") or {}
            scoped.push(repo, code, "rules", rules, time.time())
        else:
            last = repo.latest_change("rules")
            before = last.data if last and isinstance(last.data, dict) else {}
            repo.add_changes("rules", [rules], time.time())
    finally:
        repo.close()
    if code:
        print(t("console3.cli.only", code=code))
    lines = rules_diff(before, rules, "console3.cli" if code else "server.rules")
    if rules:
        print(t("server.rules.from", path=str(path)))
    elif code:
        print(t("console3.cli.empty", path=str(path), code=code))
    else:
        print(t("server.rules.empty", path=str(path)))
    print("\n".join(lines) if lines else "  " + t("server.rules.nothing"))
    print(t("server.rules.sent"))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    repo.create_schema()  # idempotent: adds the ledger tables to a database from before them
    rows = repo.stats()
    open_conflicts = repo.ledger_open_conflicts()
    repo.close()
    total = sum(r["records"] for r in rows)
    lines = [t("server.stats.head")]
    lines += [
        f"{r['day'] or '-':10}  {r['checkpoint'] or '-':20}  {r['device']:20}  {r['records']:>7}"
        for r in rows
    ]
    lines.append(f"{t('server.stats.total'):10}  {'':20}  {'':20}  {total:>7}")
    lines.append(
        t("server.stats.conflicts", n=open_conflicts)
        + (" (fieldkit-server ledger-conflicts)" if open_conflicts else "")
    )
    _emit(args, {"rows": rows, "total": total, "ledger_conflicts_open": open_conflicts}, lines)
    return 0


def _passage_dict(pa: Passage) -> dict[str, Any]:
    return {
        "record_id": pa.record_id,
        "kind": pa.kind,
        "device": pa.device,
        "checkpoint": pa.checkpoint,
        "time": _iso(pa.occurred_at),
        "direction": pa.direction,
        "name": pa.name_masked,
        "id_number": pa.id_masked,
    }


def cmd_trace(args: argparse.Namespace) -> int:
    _, _, keys, repo = _open(args)
    if args.id_number:
        from fieldkit.crypto import blind_index
        from fieldkit.shared.identity import parse_identity

        number = parse_identity(args.id_number).number
        if not number:
            raise CliError(t("server.err.id_empty"))
        passages = repo.trace_person(blind_index(keys.index_key, number))
        title = t("server.trace.person", who=f"{number[:6]}…{number[-4:]}", n=len(passages))
    elif args.checkpoint:
        if not (args.start and args.end):
            raise CliError(t("server.err.trace_window"))
        start, end = parse_time(args.start), parse_time(args.end)
        passages = repo.trace_checkpoint(args.checkpoint, start, end)
        title = t(
            "server.trace.checkpoint",
            checkpoint=args.checkpoint,
            start=_iso(start),
            end=_iso(end),
            n=len(passages),
        )
    else:
        raise CliError(t("server.err.trace_how"))
    repo.close()
    rows = [_passage_dict(pa) for pa in passages]
    lines = [title] + [
        f"{r['time']}  {r['checkpoint'] or '-':16}  {r['direction'] or '-':4}  "
        f"{r['name'] or '-':8}  {r['id_number'] or '-':20}  {r['device']}"
        for r in rows
    ]
    _emit(args, rows, lines)
    return 0


def cmd_conflicts(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    rows = repo.conflicts()
    repo.close()
    lines = [
        t(
            "server.conflict_line",
            record=r["record_id"],
            kind=r["kind"],
            device=r["device_id"],
            at=_iso(r["received_at"]),
        )
        for r in rows
    ] or [t("server.no_conflicts")]
    _emit(args, rows, lines)
    return 0


def _conflict_dict(c: dict[str, Any]) -> dict[str, Any]:
    """A ledger conflict as listed: masked values only, never the sealed ones."""
    return {
        "id": c["conflict_id"],
        "entity": c["entity"],
        "entity_key": c["entity_key"],
        "field": c["field"],
        "kept": {
            "value": c["kept_masked"],
            "record_id": c["kept_record"],
            "device": c["kept_device_name"],
            "writer": c["kept_writer"],
            "ts": c["kept_ts"],
        },
        "other": {
            "value": c["other_masked"],
            "record_id": c["other_record"],
            "device": c["other_device_name"],
            "writer": c["other_writer"],
            "ts": c["other_ts"],
            "entity_id": c["other_entity_id"],
        },
        "created_at": _iso(c["created_at"]),
        "resolved_at": _iso(c["resolved_at"]) if c["resolved_at"] is not None else None,
        "resolved_by": c["resolved_by"],
        "resolution": c["resolution"],
    }


def _entity_label(key: str) -> str:
    if key.startswith("household:"):
        parts = key.removeprefix("household:").split("|")
        return t("server.ledger.household", address="/".join(p for p in parts if p))
    if key.startswith("member:id:"):
        return t("server.ledger.member", id=key.removeprefix("member:id:")[:8])
    if key.startswith("member:name:"):
        house = key.removeprefix("member:name:").rsplit("/", 1)[0]
        return t("server.ledger.member_no_id", household=_entity_label(house))
    return key


def cmd_ledger_conflicts(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    try:
        repo.create_schema()
        rows = [_conflict_dict(c) for c in repo.ledger_conflicts(include_resolved=args.all)]
    finally:
        repo.close()
    lines = []
    for r in rows:
        k, o = r["kept"], r["other"]
        state = (
            t("server.ledger.resolved", how=r["resolution"], by=r["resolved_by"])
            if r["resolved_at"]
            else t("server.ledger.open")
        )
        lines.append(f"#{r['id']}  {_entity_label(r['entity_key'])}  {r['field']}  [{state}]")
        for side, v in (("kept", k), ("other", o)):
            lines.append(
                "    "
                + t(
                    "server.ledger." + side,
                    value=v["value"],
                    writer=v["writer"],
                    device=v["device"],
                    ts=v["ts"],
                )
            )
    if not rows:
        lines = [t("server.ledger.none_open" if not args.all else "server.ledger.none")]
    elif not args.all:
        lines.append(t("server.ledger.how_resolve", n=len(rows)))
    _emit(args, rows, lines)
    return 0


def cmd_ledger_resolve(args: argparse.Namespace) -> int:
    from .ledger import LedgerError

    _, _, _, repo = _open(args)
    by = args.by or os.environ.get("USER") or "supervisor"
    try:
        repo.create_schema()
        result = repo.resolve_ledger_conflict(args.conflict_id, args.keep, by, time.time())
    except LedgerError as err:
        raise CliError(str(err)) from None
    finally:
        repo.close()
    if result["already"]:
        text = t("server.ledger.already", id=args.conflict_id, keep=args.keep)
    elif args.keep == "other":
        text = t("server.ledger.resolved_other", id=args.conflict_id, by=by)
    else:
        text = t("server.ledger.resolved_kept", id=args.conflict_id, by=by)
    _emit(args, result, [text])
    return 0


# --- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=argparse.SUPPRESS,
        help="language of this run's messages (default: FIELDKIT_LANG, the town's setting, zh)",
    )
    common.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="town data directory (keys, settings, SQLite file; env FIELDKIT_SERVER_DIR)",
    )
    parser = argparse.ArgumentParser(
        prog="fieldkit-server",
        description="FieldKit town server: receives checkpoint "
        "records, sends key-person lists to gates",
    )
    parser.add_argument("--lang", choices=LANGUAGES, help="language of this run's messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", parents=[common], help="create the town's keys and database")
    p.add_argument("--database-url", help="postgresql://… (default: SQLite in the data dir)")
    p.add_argument("--db-schema", help="PostgreSQL schema for the tables (default public)")
    p.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="also make the town's own TLS certificate (serve uses it; device tokens pin it); "
        "on an existing town: add one",
    )
    p.add_argument(
        "--tls-host",
        action="append",
        help="name or address devices reach the server by (repeatable; localhost, "
        "127.0.0.1 and this host's name are always in)",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", parents=[common], help="run the HTTP server")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs TLS or --insecure-http)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key of the certificate")
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP on a non-local address (warned at start and every enrollment)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes (PostgreSQL; SQLite gains little)"
    )
    p.set_defaults(func=cmd_serve)

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

    kp = sub.add_parser("keyperson", help="key-person list").add_subparsers(
        dest="keyperson_command", required=True
    )
    p = kp.add_parser(
        "import",
        parents=[common],
        help="import IDs from .xlsx or .csv (hashed at once, never stored)",
    )
    p.add_argument("file")
    p.add_argument("--category", help="category for rows without one (e.g. 密接)")
    p.add_argument("--end-date", help="end date for rows without one (YYYY-MM-DD)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="the file is the whole list: remove everyone not in it",
    )
    p.set_defaults(func=cmd_keyperson_import)

    p = sub.add_parser("mode", parents=[common], help="set the area mode on every device")
    p.add_argument("mode", choices=["normal", "low", "medium", "high", "sealed"])
    p.add_argument("--note")
    p.set_defaults(func=cmd_mode_set)
    p = sub.add_parser(
        "rules",
        parents=[common],
        help="push rule overrides to devices (the complete set: a rule left out "
        "goes back to each device's config)",
    )
    p.add_argument("file", help="JSON object of [rules] keys, or TOML with a [rules] table")
    p.add_argument(
        "--checkpoint",
        metavar="CODE",
        help="for this checkpoint only (wins over the town-wide rules there)",
    )
    p.set_defaults(func=cmd_rules_push)

    from .passes_cli import register as register_passes

    register_passes(sub, common)
    from .users_cli import register as register_users

    register_users(sub, common)

    p = sub.add_parser("stats", parents=[common], help="records per day, checkpoint, device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "trace",
        parents=[common],
        help="passages of one person, or everyone through a gate in a window",
    )
    p.add_argument("--id-number")
    p.add_argument("--checkpoint")
    p.add_argument("--from", dest="start")
    p.add_argument("--to", dest="end")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser(
        "conflicts",
        parents=[common],
        help="records sent twice with different content, kept for review",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_conflicts)

    p = sub.add_parser(
        "ledger-conflicts",
        parents=[common],
        help="household/member fields two devices edited differently",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p.set_defaults(func=cmd_ledger_conflicts)
    # The sub-command's own options must not reset what was given before it.
    late = argparse.ArgumentParser(add_help=False)
    late.add_argument("--data-dir", default=argparse.SUPPRESS)
    late.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    lc = p.add_subparsers(dest="ledger_command")
    r = lc.add_parser("resolve", parents=[late], help="close one conflict")
    r.add_argument("conflict_id", type=int)
    r.add_argument(
        "--keep",
        required=True,
        choices=["kept", "other"],
        help="kept: the value already there stays; other: the other value wins",
    )
    r.add_argument("--by", help="who decided (default: $USER)")
    r.set_defaults(func=cmd_ledger_resolve)
    translate_help(parser, "server")  # --help in the run's language
    return parser


def _early_language(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--lang" and i + 1 < len(argv):
            return argv[i + 1] if argv[i + 1] in LANGUAGES else None
        if a.startswith("--lang="):
            value = a.split("=", 1)[1]
            return value if value in LANGUAGES else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Every outcome is a line in the server's language and an exit code, never a traceback.
    Language: --lang, else FIELDKIT_LANG, else ``language`` in the town's settings, else zh."""
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = _early_language(argv) or env_language()
    _LANG_CHOSEN[0] = bool(chosen)
    set_language(chosen)
    holder: dict[str, Any] = {}

    def run() -> int:
        args = holder["args"] = build_parser().parse_args(argv)
        return int(args.func(args) or 0)

    user_errors = (CliError, TownSetupError, RepositoryError, KeypersonFileError)
    return run_guarded(
        "fieldkit-server",
        run,
        lambda: getattr(holder.get("args"), "json", False),
        user_errors=user_errors,
    )


if __name__ == "__main__":
    sys.exit(main())
