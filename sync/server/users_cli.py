"""``fieldkit-server user add|list|disable|enable|reset-password``: console accounts.

The password is read from ``FIELDKIT_CONSOLE_PASSWORD`` when set (scripts, tests), else asked
twice without echo. Only its Argon2id hash is stored.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from pathlib import Path
from typing import Any

from fieldkit.errors import FieldkitError
from fieldkit.i18n import t


class UserCliError(FieldkitError):
    """A refusal of the user command: one line in the run's language, exit code 2."""

    exit_code = 2


def _password(args: argparse.Namespace) -> str:
    env = os.environ.get("FIELDKIT_CONSOLE_PASSWORD")
    if env:
        return env
    first = getpass.getpass(t("console.cli.password"))
    if first != getpass.getpass(t("console.cli.again")):
        raise UserCliError("console.cli.differ")
    return first


def _run(args: argparse.Namespace, action: Any) -> int:
    from .console.auth import Accounts, Audit, AuthError
    from .console.db import ConsoleDB
    from .repository import open_repository
    from .town import ServerSettings, TownSetupError

    data_dir = Path(args.data_dir)
    if not (data_dir / "server.toml").exists() and not (data_dir / "town-keys.json").exists():
        raise TownSetupError(
            f"{data_dir} does not exist: run `fieldkit-server init --data-dir {data_dir}`"
        )
    settings = ServerSettings.load(data_dir)
    repo = open_repository(settings.database_url or None, str(data_dir), settings.db_schema or None)
    try:
        repo.create_schema()
        db = ConsoleDB(repo)
        try:
            db.create_schema()
            return action(Accounts(db), Audit(db))
        except AuthError as err:
            raise UserCliError(err.key, **err.params) from None
        finally:
            db.close()
    finally:
        repo.close()


def cmd_add(args: argparse.Namespace) -> int:
    def act(acc: Any, audit: Any) -> int:
        user = acc.add(args.name, args.role, _password(args))
        audit.append("cli", "user_add", {"name": user.name, "role": user.role})
        print(t("console.cli.added", name=user.name, role=t(f"console.role.{user.role}")))
        return 0

    return _run(args, act)


def cmd_list(args: argparse.Namespace) -> int:
    def act(acc: Any, audit: Any) -> int:
        users = acc.list()
        if args.json:
            print(json.dumps([u.__dict__ for u in users], ensure_ascii=False, indent=2))
            return 0
        if not users:
            print(t("console.cli.none"))
        for u in users:
            state = t("console.users.disabled" if u.disabled else "console.users.active")
            print(f"{u.name:20}  {t(f'console.role.{u.role}'):8}  {state}")
        return 0

    return _run(args, act)


def cmd_disable(args: argparse.Namespace, disabled: bool = True) -> int:
    def act(acc: Any, audit: Any) -> int:
        acc.set_disabled(args.name, disabled)
        audit.append("cli", "user_disable" if disabled else "user_enable", {"name": args.name})
        print(t("console.cli.disabled" if disabled else "console.cli.enabled", name=args.name))
        return 0

    return _run(args, act)


def cmd_reset(args: argparse.Namespace) -> int:
    def act(acc: Any, audit: Any) -> int:
        acc.reset_password(args.name, _password(args))
        audit.append("cli", "user_reset", {"name": args.name})
        print(t("console.cli.reset", name=args.name))
        return 0

    return _run(args, act)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    users = sub.add_parser("user", help="town office console accounts").add_subparsers(
        dest="user_command", required=True
    )
    p = users.add_parser("add", parents=[common], help="create an account (asks the password)")
    p.add_argument("name")
    p.add_argument("--role", choices=["officer", "admin"], default="officer")
    p.set_defaults(func=cmd_add)
    p = users.add_parser("list", parents=[common])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = users.add_parser("disable", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=cmd_disable)
    p = users.add_parser("enable", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=lambda a: cmd_disable(a, False))
    p = users.add_parser("reset-password", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=cmd_reset)
