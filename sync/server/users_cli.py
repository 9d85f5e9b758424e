"""``fieldkit-server user add|list|disable|enable|reset-password``: console accounts.

The password is read from ``FIELDKIT_CONSOLE_PASSWORD`` when set (scripts, tests), else asked
twice without echo. Only its Argon2id hash is stored.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from typing import Any


def _password(args: argparse.Namespace) -> str:
    env = os.environ.get("FIELDKIT_CONSOLE_PASSWORD")
    if env:
        return env
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        from .cli import CliError

        raise CliError("the two passwords differ: nothing changed")
    return first


def _run(args: argparse.Namespace, action: Any) -> int:
    from fieldkit.i18n import t

    from .cli import CliError, _open
    from .console.auth import Accounts, Audit, AuthError
    from .console.db import ConsoleDB

    _, _, _, repo = _open(args)
    repo.create_schema()
    db = ConsoleDB(repo)
    try:
        db.create_schema()
        try:
            return action(Accounts(db), Audit(db))
        except AuthError as err:
            raise CliError(t(err.key, "en", **err.params)) from None
    finally:
        db.close()
        repo.close()


def cmd_add(args: argparse.Namespace) -> int:
    def act(acc: Any, audit: Any) -> int:
        user = acc.add(args.name, args.role, _password(args))
        audit.append("cli", "user_add", {"name": user.name, "role": user.role})
        print(f"Console account {user.name!r} ({user.role}) created.")
        return 0

    return _run(args, act)


def cmd_list(args: argparse.Namespace) -> int:
    def act(acc: Any, audit: Any) -> int:
        users = acc.list()
        if args.json:
            print(json.dumps([u.__dict__ for u in users], ensure_ascii=False, indent=2))
        elif not users:
            print("No console accounts yet: fieldkit-server user add NAME --role admin")
        for u in users:
            state = "disabled" if u.disabled else "active"
            print(f"{u.name:20}  {u.role:8}  {state}")
        return 0

    return _run(args, act)


def cmd_disable(args: argparse.Namespace, disabled: bool = True) -> int:
    def act(acc: Any, audit: Any) -> int:
        acc.set_disabled(args.name, disabled)
        audit.append("cli", "user_disable" if disabled else "user_enable", {"name": args.name})
        print(f"Console account {args.name!r} {'disabled' if disabled else 'enabled'}.")
        return 0

    return _run(args, act)


def cmd_reset(args: argparse.Namespace) -> int:
    def act(acc: Any, audit: Any) -> int:
        acc.reset_password(args.name, _password(args))
        audit.append("cli", "user_reset", {"name": args.name})
        print(f"Password of {args.name!r} reset; its sessions were ended and lock-out cleared.")
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
