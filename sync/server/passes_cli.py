"""``fieldkit-server pass issue|revoke``: signed passes (出入证/通行证) and their revocation.

Passes are made by :func:`scanners.payloads.passes.issue_pass` with the town's Ed25519 key, so
every gate can verify them offline with the key it pinned at enrollment; revocations reach the
gates with the next sync.
"""

from __future__ import annotations

import argparse
import time


def cmd_pass_revoke(args: argparse.Namespace) -> int:
    from .cli import _open

    _, _, _, repo = _open(args)
    repo.add_changes("revocation", [{"pass_id": pid, "reason": args.reason or ""}
                                    for pid in args.pass_id], time.time())
    repo.close()
    print(f"{len(args.pass_id)} pass(es) revoked; gates refuse them after their next sync")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    passes = sub.add_parser("pass", help="signed passes").add_subparsers(
        dest="pass_command", required=True)
    p = passes.add_parser("revoke", parents=[common], help="revoke passes by id")
    p.add_argument("pass_id", nargs="+")
    p.add_argument("--reason")
    p.set_defaults(func=cmd_pass_revoke)
