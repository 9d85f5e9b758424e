"""``fieldkit-server``: set up and run a town server, enroll devices, push lists, ask questions.

Only parses arguments and prints; the work is in the repository and the app.
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

from .keypersons import KeypersonFileError
from .repository import Passage, Repository, RepositoryError, open_repository
from .town import ServerSettings, TownKeys, TownSetupError

DEFAULT_PORT = 8470


class CliError(Exception):
    """A user mistake: printed as one line, exit code 2."""


def default_data_dir() -> str:
    env = os.environ.get("FIELDKIT_SERVER_DIR")
    if env:
        return env
    import platformdirs

    return str(platformdirs.user_data_path("fieldkit-server"))


# --- helpers ------------------------------------------------------------------------------------


def _open(args: argparse.Namespace) -> tuple[Path, ServerSettings, TownKeys, Repository]:
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise TownSetupError(
            f"{data_dir} does not exist: run `fieldkit-server init --data-dir {data_dir}`"
        )
    settings = ServerSettings.load(data_dir)
    keys = TownKeys.load(data_dir)
    repo = open_repository(settings.database_url or None, str(data_dir), settings.db_schema or None)
    return data_dir, settings, keys, repo


def _emit(args: argparse.Namespace, data: Any, text_lines: list[str]) -> None:
    if getattr(args, "json", False):
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
        raise CliError(
            f"time {text!r} is not ISO 8601 (e.g. 2022-04-01T08:00 or 2022-04-01T08:00+08:00)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.timestamp()


# --- commands -----------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if (data_dir / "town-keys.json").exists():
        raise CliError(
            f"{data_dir} already holds town keys: refusing to replace them (devices "
            "have pinned them). Use another --data-dir for a new town."
        )
    settings = ServerSettings(database_url=args.database_url or "", db_schema=args.db_schema or "")
    repo = open_repository(settings.database_url or None, str(data_dir), settings.db_schema or None)
    try:
        repo.create_schema()
    finally:
        repo.close()
    keys = TownKeys.generate()
    keys.save(data_dir)
    settings.save(data_dir)
    print(f"Town server initialised in {data_dir}")
    print(f"  storage: {repo.backend}" + (f" ({args.database_url})" if args.database_url else ""))
    print(f"  town key fingerprint: {keys.fingerprint}")
    print(f"  keep {data_dir / 'town-keys.json'} secret and backed up: it cannot be recreated")
    print(
        f"Next: fieldkit-server device add NAME --data-dir {data_dir}, then "
        f"fieldkit-server serve --data-dir {data_dir}"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    data_dir, settings, keys, repo = _open(args)
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
    if bool(args.tls_cert) != bool(args.tls_key):
        raise CliError("TLS needs both --tls-cert and --tls-key")
    app = create_app(keys, repo, settings)
    scheme = "https" if args.tls_cert else "http"
    print(
        f"FieldKit town server on {scheme}://{args.host}:{args.port} ({repo.backend}, "
        f"key {keys.fingerprint})",
        flush=True,
    )
    options = {
        "host": args.host,
        "port": args.port,
        "ssl_certfile": args.tls_cert,
        "ssl_keyfile": args.tls_key,
        "log_level": "warning",
        "access_log": False,
        "timeout_keep_alive": 30,
    }
    try:
        if args.workers > 1:
            # Each worker process builds its own app (and storage connections).
            os.environ["FIELDKIT_SERVER_DIR"] = str(data_dir)
            uvicorn.run(
                "sync.server.app:create_app_from_env", factory=True, workers=args.workers, **options
            )
        else:
            uvicorn.run(app, **options)
    finally:
        repo.close()
    return 0


def cmd_device_add(args: argparse.Namespace) -> int:
    from .app import token_hash

    _, settings, keys, repo = _open(args)
    secret = base64.b32encode(secrets.token_bytes(15)).decode()
    token = f"{secret}.{keys.fingerprint}"
    now = time.time()
    device = repo.add_device(args.name, token_hash(token), now + settings.token_ttl_s, now)
    repo.close()
    enroll_text = f"fieldkit enroll {args.url} {token}" if args.url else token
    if args.json:
        print(
            json.dumps(
                {
                    "device_id": device.device_id,
                    "name": device.name,
                    "token": token,
                    "expires_at": now + settings.token_ttl_s,
                    "enroll": enroll_text,
                }
            )
        )
        return 0
    print(
        f"Device {device.name!r} ({device.device_id}) created. One-time enrollment token, "
        f"valid until {_iso(now + settings.token_ttl_s)}:"
    )
    print(f"\n  {token}\n")
    if args.url:
        print(f"On the device: fieldkit enroll {args.url} {token}\n")
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
    lines = [f"{'ID':16}  {'NAME':20}  {'STATUS':8}  LAST SEEN"]
    lines += [f"{d.device_id:16}  {d.name:20}  {d.status:8}  {_iso(d.last_seen)}" for d in devices]
    _emit(args, rows, lines if devices else ["No devices yet: fieldkit-server device add NAME"])
    return 0


def cmd_device_revoke(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    device = repo.revoke_device(args.device, time.time())
    repo.close()
    if device is None:
        raise CliError(
            f"no active or pending device {args.device!r}: see fieldkit-server device list"
        )
    print(
        f"Device {device.name!r} ({device.device_id}) revoked: its uploads are refused from now on"
    )
    return 0


def cmd_keyperson_import(args: argparse.Namespace) -> int:
    from .keypersons import read_keyperson_file

    _, _, keys, repo = _open(args)
    entries, problems = read_keyperson_file(
        Path(args.file), keys.index_key, args.category, args.end_date
    )
    for problem in problems[:20]:
        print(f"  skipped: {problem}", file=sys.stderr)
    if len(problems) > 20:
        print(f"  … and {len(problems) - 20} more skipped rows", file=sys.stderr)
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
        f"Key-person list: {len(entries)} imported, {len(removed)} removed, "
        f"{len(problems)} rows skipped. ID numbers were hashed at once; none were stored."
    )
    print("Devices receive the change at their next sync.")
    return 0 if entries or not problems else 2


def cmd_mode_set(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    repo.add_changes("mode", [{"mode": args.mode, "note": args.note or ""}], time.time())
    repo.close()
    print(f"Mode {args.mode!r} sent to devices (applied at their next sync)")
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
        raise CliError(
            f"cannot read rules from {path}: {getattr(err, 'strerror', None) or err}"
        ) from None
    try:
        data = tomllib.loads(text) if toml else json.loads(text)
    except ValueError as err:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise CliError(f"{path}: not valid {'TOML' if toml else 'JSON'} ({err})") from None
    if toml:
        if "rules" not in data or set(data) != {"rules"}:
            others = ", ".join(f"[{k}]" for k in data if k != "rules") or "no [rules] table"
            raise CliError(
                f"{path}: expected only a [rules] table (the other settings stay "
                f"each device's own), found {others}"
            )
        data = data["rules"]
    elif isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    try:
        return validate_rules(data, str(path))
    except ConfigError as err:
        raise CliError(str(err)) from None


def _rule_value(value: Any) -> str:
    return (", ".join(value) or "(none)") if isinstance(value, list) else str(value)


def rules_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One line per rule the push sets or gives back to the devices' own config."""
    lines = []
    for key, value in after.items():
        if key not in before:
            was = "until now each device's config"
        elif before[key] == value:
            was = "unchanged"
        else:
            was = f"was {_rule_value(before[key])}"
        lines.append(f"  {key} = {_rule_value(value)}  ({was})")
    lines += [
        f"  {key}: back to each device's config  (was {_rule_value(value)})"
        for key, value in before.items()
        if key not in after
    ]
    return lines


def cmd_rules_push(args: argparse.Namespace) -> int:
    path = Path(args.file)
    rules = read_rules_file(path)
    _, _, _, repo = _open(args)
    try:
        last = repo.latest_change("rules")
        before = last.data if last and isinstance(last.data, dict) else {}
        repo.add_changes("rules", [rules], time.time())
    finally:
        repo.close()
    lines = rules_diff(before, rules)
    if rules:
        print(f"Town rules from {path} (every other rule is each device's own config):")
    else:
        print(f"No town rules in {path}: every device goes back to its own config.")
    print("\n".join(lines) if lines else "  nothing changes")
    print("Sent to devices (applied at their next sync).")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    _, _, _, repo = _open(args)
    repo.create_schema()  # idempotent: adds the ledger tables to a database from before them
    rows = repo.stats()
    open_conflicts = repo.ledger_open_conflicts()
    repo.close()
    total = sum(r["records"] for r in rows)
    lines = [f"{'DAY':10}  {'CHECKPOINT':20}  {'DEVICE':20}  RECORDS"]
    lines += [
        f"{r['day'] or '-':10}  {r['checkpoint'] or '-':20}  {r['device']:20}  {r['records']:>7}"
        for r in rows
    ]
    lines.append(f"{'total':10}  {'':20}  {'':20}  {total:>7}")
    lines.append(
        f"Open ledger conflicts: {open_conflicts}"
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
            raise CliError("--id-number is empty")
        passages = repo.trace_person(blind_index(keys.index_key, number))
        title = f"Passages of {number[:6]}…{number[-4:]}: {len(passages)}"
    elif args.checkpoint:
        if not (args.start and args.end):
            raise CliError("trace --checkpoint needs --from and --to")
        start, end = parse_time(args.start), parse_time(args.end)
        passages = repo.trace_checkpoint(args.checkpoint, start, end)
        title = f"Through {args.checkpoint} from {_iso(start)} to {_iso(end)}: {len(passages)}"
    else:
        raise CliError("trace needs --id-number X, or --checkpoint C --from T --to T")
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
        f"{r['record_id']}  {r['kind']}  device {r['device_id']}  {_iso(r['received_at'])}"
        for r in rows
    ] or ["No conflicts."]
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
        return "household " + "/".join(p for p in parts if p)
    if key.startswith("member:id:"):
        return f"member #{key.removeprefix('member:id:')[:8]}"
    if key.startswith("member:name:"):
        house = key.removeprefix("member:name:").rsplit("/", 1)[0]
        return "member (no ID) of " + _entity_label(house)
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
            f"resolved ({r['resolution']}) by {r['resolved_by']}" if r["resolved_at"] else "open"
        )
        lines.append(f"#{r['id']}  {_entity_label(r['entity_key'])}  {r['field']}  [{state}]")
        lines.append(f"    kept : {k['value']}  by {k['writer']} on {k['device']} at {k['ts']}")
        lines.append(f"    other: {o['value']}  by {o['writer']} on {o['device']} at {o['ts']}")
    if not rows:
        lines = ["No open ledger conflicts." if not args.all else "No ledger conflicts."]
    elif not args.all:
        lines.append(
            f"{len(rows)} open. Resolve one: fieldkit-server ledger-conflicts resolve "
            "ID --keep kept|other"
        )
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
        text = f"Ledger conflict #{args.conflict_id} was already resolved ({args.keep}): nothing changed"
    elif args.keep == "other":
        text = (
            f"Ledger conflict #{args.conflict_id} resolved by {by}: the other value is now "
            "the current one"
        )
    else:
        text = f"Ledger conflict #{args.conflict_id} resolved by {by}: the kept value stays"
    _emit(args, result, [text])
    return 0


# --- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
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
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", parents=[common], help="create the town's keys and database")
    p.add_argument("--database-url", help="postgresql://… (default: SQLite in the data dir)")
    p.add_argument("--db-schema", help="PostgreSQL schema for the tables (default public)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", parents=[common], help="run the HTTP server")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key of the certificate")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes (PostgreSQL; SQLite gains little)"
    )
    p.set_defaults(func=cmd_serve)

    dev = sub.add_parser("device", help="enroll, list and revoke devices").add_subparsers(
        dest="device_command", required=True
    )
    p = dev.add_parser("add", parents=[common], help="create a one-time enrollment token")
    p.add_argument("name")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, TownSetupError, RepositoryError, KeypersonFileError) as err:
        print(f"fieldkit-server: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
