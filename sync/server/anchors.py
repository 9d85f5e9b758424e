"""Audit anchors: the town keeps each device's audit-chain head, off the device.

At every sync the device sends its chain head (entry count + last link) and its own link at the
count the town last acknowledged, in a signed GET (``/v1/audit-anchor``, the query is covered by
the device's signature). The town

* moves the anchor forward when the chain grew and still holds the anchored entry;
* **flags** the device, and keeps the old anchor, when the chain went backwards (fewer entries
  than the town has seen) or changed under the anchor (another link at the anchored count);
* tells a device the town ordered wiped (:func:`order_wipe`: lost or stolen) ``"wipe": true``;
  the device has uploaded what was pending by then, acknowledges with ``event=wipe`` (the order
  is marked done, the device revoked) and crypto-erases itself;
* answers ``{"need": n}`` when the device did not say what it holds at the town's count (it lost
  or never had the anchor), and the device asks again with that link.

The reply carries the anchor the town holds; the device keeps it, and ``fieldkit audit verify``
checks the chain against it. Storage: two tables of its own, made on first use, through the
repository's dialect (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import JSONResponse

from . import contacts
from .refusal import Refusal, _client

PATH_ANCHOR = "/v1/audit-anchor"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _schema(dialect: Any) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS audit_anchors (device_id TEXT PRIMARY KEY,"
        f" entries BIGINT NOT NULL, head TEXT NOT NULL, received_at {dialect.real} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS audit_anchor_flags (id {dialect.serial},"
        " device_id TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,"
        f" flagged_at {dialect.real} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS wipe_orders (device_id TEXT PRIMARY KEY,"
        f" ordered_at {dialect.real} NOT NULL, done_at {dialect.real})",
    ]


_ready: set[int] = set()


def _ensure(repo: Any) -> None:
    if id(repo) in _ready:
        return
    with repo.dialect.write() as con:
        for stmt in _schema(repo.dialect):
            con.execute(stmt)
    _ready.add(id(repo))


def held(repo: Any, device_id: str) -> dict[str, Any] | None:
    _ensure(repo)
    with repo.dialect.read() as con:
        row = con.execute(
            repo.dialect.sql(
                "SELECT entries, head, received_at FROM audit_anchors WHERE device_id = ?"
            ),
            (device_id,),
        ).fetchone()
    return {"count": int(row[0]), "hash": row[1], "at": float(row[2])} if row else None


def order_wipe(repo: Any, device_id: str, now: float | None = None) -> None:
    """The town orders a (lost, stolen) device to erase itself at its next sync."""
    _ensure(repo)
    now = time.time() if now is None else now
    with repo.dialect.write() as con:
        con.execute(repo.dialect.sql("DELETE FROM wipe_orders WHERE device_id = ?"), (device_id,))
        con.execute(
            repo.dialect.sql("INSERT INTO wipe_orders(device_id, ordered_at) VALUES (?, ?)"),
            (device_id, now),
        )


def withdraw_wipe(repo: Any, device_id: str) -> None:
    """Take back a wipe order the device has not carried out (one that could not be audited)."""
    _ensure(repo)
    with repo.dialect.write() as con:
        con.execute(
            repo.dialect.sql("DELETE FROM wipe_orders WHERE device_id = ? AND done_at IS NULL"),
            (device_id,),
        )


def wipe_order(repo: Any, device_id: str) -> dict[str, Any] | None:
    _ensure(repo)
    with repo.dialect.read() as con:
        row = con.execute(
            repo.dialect.sql("SELECT ordered_at, done_at FROM wipe_orders WHERE device_id = ?"),
            (device_id,),
        ).fetchone()
    return {"ordered_at": row[0], "done_at": row[1]} if row else None


def wipe_orders(repo: Any) -> dict[str, dict[str, Any]]:
    """Every wipe order, by device id: ``{"ordered_at", "done_at"}`` (``done_at`` None: pending)."""
    _ensure(repo)
    with repo.dialect.read() as con:
        rows = con.execute("SELECT device_id, ordered_at, done_at FROM wipe_orders").fetchall()
    return {r[0]: {"ordered_at": r[1], "done_at": r[2]} for r in rows}


# What a flag says, in English (kept in ``detail``' place for the reply to the device); the town's
# own pages and commands say it from the catalogue (``wipe_orders.flag.<kind>``) with ``params``.
FLAG_TEXT = {
    "backwards": "the chain has {count} entries; the town holds entry {held}",
    "rewritten": "entry {held} is not the one the town holds",
    "wiped": "the device wiped itself at audit entry {count}",
}


def _flag_params(detail: str) -> dict[str, Any]:
    """A flag's parameters, stored as a JSON object; a flag stored before they were (an English
    sentence) has none."""
    try:
        params = json.loads(detail)
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def flags(repo: Any, device_id: str | None = None) -> list[dict[str, Any]]:
    """Devices whose chain went backwards or changed under the anchor, newest first.
    Each: ``device_id``, ``kind``, ``params`` (numbers the words need), ``detail`` (English)."""
    _ensure(repo)
    where, params = ("WHERE device_id = ?", (device_id,)) if device_id else ("", ())
    with repo.dialect.read() as con:
        rows = con.execute(
            repo.dialect.sql(
                "SELECT device_id, kind, detail, flagged_at FROM audit_anchor_flags "
                f"{where} ORDER BY id DESC"
            ),
            params,
        ).fetchall()
    out = []
    for r in rows:
        values = _flag_params(r[2])
        text = FLAG_TEXT.get(r[1], r[1]).format(**values) if values else r[2]
        out.append(
            {"device_id": r[0], "kind": r[1], "params": values, "detail": text, "at": float(r[3])}
        )
    return out


def _add_flag(
    con: Any, sql: Any, device_id: str, kind: str, params: dict[str, Any], now: float
) -> None:
    con.execute(
        sql("INSERT INTO audit_anchor_flags(device_id, kind, detail, flagged_at) VALUES (?,?,?,?)"),
        (device_id, kind, json.dumps(params, sort_keys=True), now),
    )


def record_head(
    repo: Any,
    device_id: str,
    count: int,
    head: str,
    at_count: int | None,
    at_link: str | None,
    now: float | None = None,
    event: str | None = None,
) -> dict[str, Any]:
    """Check a device's chain head against the anchor held, move it or flag the device.
    ``event`` ``wipe``: the device says it is about to crypto-erase itself (kept as a flag)."""
    _ensure(repo)
    now = time.time() if now is None else now
    sql = repo.dialect.sql
    order = wipe_order(repo, device_id)
    if event == "wipe":
        with repo.dialect.write() as con:
            _add_flag(con, sql, device_id, "wiped", {"count": count}, now)
            if order is not None:
                con.execute(
                    sql("UPDATE wipe_orders SET done_at = ? WHERE device_id = ?"),
                    (now, device_id),
                )
        if order is not None:
            repo.revoke_device(device_id, now)
    reply = _record(repo, device_id, count, head, at_count, at_link, now)
    if order is not None and order["done_at"] is None and event != "wipe":
        reply["wipe"] = True
    return reply


def _record(
    repo: Any,
    device_id: str,
    count: int,
    head: str,
    at_count: int | None,
    at_link: str | None,
    now: float,
) -> dict[str, Any]:
    sql = repo.dialect.sql
    with repo.dialect.write() as con:
        repo.dialect.lock(con, "audit_anchors")
        row = con.execute(
            sql("SELECT entries, head, received_at FROM audit_anchors WHERE device_id = ?"),
            (device_id,),
        ).fetchone()
        old = {"count": int(row[0]), "hash": row[1], "at": float(row[2])} if row else None
        flag: tuple[str, dict[str, Any]] | None = None
        if old is not None:
            if count < old["count"]:
                flag = ("backwards", {"count": count, "held": old["count"]})
            elif at_count != old["count"]:
                return {"need": old["count"], "anchor": old}
            elif (at_link if old["count"] < count else head) != old["hash"]:
                flag = ("rewritten", {"held": old["count"]})
        if flag is not None:
            kind, values = flag
            _add_flag(con, sql, device_id, kind, values, now)
            return {"flag": kind, "message": FLAG_TEXT[kind].format(**values), "anchor": old}
        if old is None:
            con.execute(
                sql(
                    "INSERT INTO audit_anchors(device_id, entries, head, received_at)"
                    " VALUES (?,?,?,?)"
                ),
                (device_id, count, head, now),
            )
        else:
            con.execute(
                sql("UPDATE audit_anchors SET entries=?, head=?, received_at=? WHERE device_id=?"),
                (count, head, now, device_id),
            )
    return {"anchor": {"count": count, "hash": head, "at": now}}


def parse_query(query: str) -> tuple[int, str, int | None, str | None, str | None]:
    """(count, head, at_count, at_link, event) from the signed query, or ValueError."""
    q = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    count = int(q["count"])
    head = q["head"]
    at_count = int(q["at_count"]) if q.get("at_count") else None
    at_link = q.get("at_link") or None
    if not 0 <= count < 2**62 or not _HEX64.match(head):
        raise ValueError("count or head out of shape")
    if at_count is not None and not 0 <= at_count <= count:
        raise ValueError("at_count out of range")
    if at_link is not None and not _HEX64.match(at_link):
        raise ValueError("at_link out of shape")
    event = q.get("event") or None
    if event not in (None, "wipe"):
        raise ValueError("unknown event")
    return count, head, at_count, at_link, event


def mount_anchors(app: Any, town: Any) -> None:
    """``GET /v1/audit-anchor?count=&head=&at_count=&at_link=`` for enrolled devices."""
    import anyio

    @app.get(PATH_ANCHOR)
    async def audit_anchor(request: Request) -> JSONResponse:
        address = _client(request)
        town.gate_address(address)
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = request.url.query
        try:
            device, _ = await anyio.to_thread.run_sync(
                town.authenticate_request, headers, request.url.path, query
            )
        except Refusal:
            town.charge_address(address)
            raise
        town.charge_device(device.device_id)
        try:
            count, head, at_count, at_link, event = parse_query(query)
        except (KeyError, ValueError):
            raise Refusal(400, "bad_request", "audit anchor: count and head needed") from None
        pending = contacts.parse_pending(parse_qs(query).get("pending", [None])[0])

        def run() -> dict[str, Any]:
            contacts.record(town.repo, device.device_id, pending)  # for the console
            return record_head(
                town.repo, device.device_id, count, head, at_count, at_link, event=event
            )

        reply = await anyio.to_thread.run_sync(run)
        return JSONResponse(reply)
