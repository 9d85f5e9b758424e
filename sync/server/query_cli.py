"""``fieldkit-server stats``, ``trace``, ``conflicts`` and ``ledger-conflicts [resolve]``:
questions asked of what the devices sent (masked values only)."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from fieldkit.i18n import t

from .cli_base import CliError, emit, iso, parse_time
from .cli_base import open_town as _open
from .repository import Passage


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
    emit(args, {"rows": rows, "total": total, "ledger_conflicts_open": open_conflicts}, lines)
    return 0


def _passage_dict(pa: Passage) -> dict[str, Any]:
    return {
        "record_id": pa.record_id,
        "kind": pa.kind,
        "device": pa.device,
        "checkpoint": pa.checkpoint,
        "time": iso(pa.occurred_at),
        "direction": pa.direction,
        "name": pa.name_masked,
        "id_number": pa.id_masked,
    }


def _gate_only(records: list[Passage]) -> list[Passage]:
    """Gate passages only: household-ledger edits (imports, member edits, visits, readings) are
    records a device sent too, indexed by its checkpoint and the member's ID, but nobody passed
    the gate."""
    return [pa for pa in records if pa.kind == "passage"]


def cmd_trace(args: argparse.Namespace) -> int:
    _, _, keys, repo = _open(args)
    if args.id_number:
        from fieldkit.crypto import blind_index
        from fieldkit.shared.identity import parse_identity

        number = parse_identity(args.id_number).number
        if not number:
            raise CliError(t("server.err.id_empty"))
        passages = _gate_only(repo.trace_person(blind_index(keys.index_key, number)))
        title = t("server.trace.person", who=f"{number[:6]}…{number[-4:]}", n=len(passages))
    elif args.checkpoint:
        if not (args.start and args.end):
            raise CliError(t("server.err.trace_window"))
        start, end = parse_time(args.start), parse_time(args.end)
        passages = _gate_only(repo.trace_checkpoint(args.checkpoint, start, end))
        title = t(
            "server.trace.checkpoint",
            checkpoint=args.checkpoint,
            start=iso(start),
            end=iso(end),
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
    emit(args, rows, lines)
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
            at=iso(r["received_at"]),
        )
        for r in rows
    ] or [t("server.no_conflicts")]
    emit(args, rows, lines)
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
        "created_at": iso(c["created_at"]),
        "resolved_at": iso(c["resolved_at"]) if c["resolved_at"] is not None else None,
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
    emit(args, rows, lines)
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
    emit(args, result, [text])
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``stats``, ``trace``, ``conflicts`` and ``ledger-conflicts`` to the parser."""
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
