"""``fieldkit-server keyperson import``, ``mode`` and ``rules``: what the town pushes to
every device at its next sync (the key-person list, the area mode, rule overrides)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from fieldkit.i18n import syntax_position, t

from .cli_base import CliError
from .cli_base import open_town as _open


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


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``keyperson``, ``mode`` and ``rules`` to the ``fieldkit-server`` parser."""
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
