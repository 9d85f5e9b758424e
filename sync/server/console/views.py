"""What each console page shows, as plain data (the routes render it; the bench times it)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import contacts
from ..repository import Passage
from .db import ConsoleDB
from .sealed import decrypt_body

OVERVIEW_SQL = (
    "SELECT checkpoint, "
    "SUM(CASE WHEN direction = 'in' AND decision = 'admit' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN direction = 'out' AND decision = 'admit' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN decision = 'turn_back' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN decision = 'deny' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN decision = 'refer' THEN 1 ELSE 0 END), "
    "SUM(fever), SUM(keyperson), count(*) "
    "FROM console_facts WHERE day = ? GROUP BY checkpoint ORDER BY checkpoint"
)
HOURLY_SQL = (
    "SELECT checkpoint, hour, count(*) FROM console_facts WHERE day = ? GROUP BY checkpoint, hour"
)
ALERTS_SQL = (
    "SELECT f.record_id, f.checkpoint, f.occurred_at, f.decision, f.fever, f.keyperson, "
    "f.leaving, f.kp_category, r.name_masked, r.id_masked FROM console_facts f "
    "JOIN records r ON r.record_id = f.record_id "
    "WHERE (f.decision = 'refer' OR f.keyperson = 1 OR f.leaving = 1) AND f.occurred_at >= ? "
    "AND NOT EXISTS (SELECT 1 FROM console_acks a WHERE a.record_id = f.record_id) "
    "ORDER BY f.occurred_at DESC LIMIT 100"
)


def today() -> str:
    return datetime.now().astimezone().date().isoformat()


@dataclass
class CheckpointRow:
    checkpoint: str
    inn: int = 0
    out: int = 0
    turned_back: int = 0
    denied: int = 0  # 禁止通行: counted apart from 劝返, as the gate's own counters do
    referred: int = 0
    fever: int = 0
    keyperson: int = 0
    total: int = 0
    devices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def inside(self) -> int:
        return max(0, self.inn - self.out)


def overview(db: ConsoleDB, repo: Any, day: str, late_s: float, now: float | None = None):
    """(checkpoint rows, hourly counts {checkpoint: [24]}, open alerts, unplaced devices)."""
    now = now or time.time()
    rows: dict[str, CheckpointRow] = {}
    for cp, *n in db.q(OVERVIEW_SQL, (day,)):
        inn, out, back, denied, referred, fever, keyperson, total = (int(x or 0) for x in n)
        rows[cp or "-"] = CheckpointRow(
            cp or "-", inn, out, back, denied, referred, fever, keyperson, total
        )
    hourly: dict[str, list[int]] = {}
    for cp, hour, n in db.q(HOURLY_SQL, (day,)):
        if hour is not None and 0 <= hour < 24:
            hourly.setdefault(cp or "-", [0] * 24)[hour] += n
    places = dict((d, cp) for d, cp in db.q("SELECT device_id, checkpoint FROM console_device_cp"))
    loose = []
    waiting = contacts.last_reported(repo)  # the outbox count each device sent at its last sync
    for d in repo.list_devices():
        if d.status == "revoked":
            continue
        info = {
            "id": d.device_id,
            "name": d.name,
            "status": d.status,
            "last_seen": d.last_seen,
            "age_s": (now - d.last_seen) if d.last_seen else None,
            "late": d.status == "active" and (d.last_seen is None or now - d.last_seen > late_s),
            "waiting": waiting.get(d.device_id),
        }
        cp = places.get(d.device_id)
        if cp:
            rows.setdefault(cp, CheckpointRow(cp)).devices.append(info)
        else:
            loose.append(info)
    alerts = [
        dict(
            zip(
                (
                    "record_id",
                    "checkpoint",
                    "at",
                    "decision",
                    "fever",
                    "keyperson",
                    "leaving",
                    "kp_category",
                    "name",
                    "id",
                ),
                r,
                strict=True,
            )
        )
        for r in db.q(ALERTS_SQL, (now - 3 * 86400,))
    ]
    return sorted(rows.values(), key=lambda r: r.checkpoint), hourly, alerts, loose


def acknowledge(db: ConsoleDB, record_id: str, user: str, now: float | None = None) -> None:
    db.insert_ignore(
        "console_acks", "record_id, user_name, at", [(record_id, user, now or time.time())]
    )


# --- tracing ----------------------------------------------------------------------------------


@dataclass
class TraceResult:
    passages: list[Passage]
    decisions: dict[str, str]
    copresent: list[tuple[Passage, Passage, float]]  # (theirs, the person's, minutes apart)
    ledger: list[dict[str, Any]]


def decisions_of(db: ConsoleDB, record_ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(0, len(record_ids), 500):
        chunk = record_ids[i : i + 500]
        out.update(
            db.q(
                "SELECT record_id, decision FROM console_facts WHERE record_id IN "
                f"({', '.join('?' * len(chunk))})",
                chunk,
            )
        )
    return out


# Tracing reads the console's passage facts (one row per passage, masked fields only) through
# two covering indexes: the person's passages, then every passage at the same checkpoint
# within the window of each, in one query.
_COLS = (
    "{a}.record_id, 'passage', COALESCE(d.name, {a}.device_id), {a}.checkpoint, "
    "{a}.occurred_at, {a}.direction, {a}.name_masked, {a}.id_masked, {a}.id_hash, {a}.decision"
)
PERSON_SQL = (
    f"SELECT {_COLS.format(a='f')} FROM console_facts f "
    "LEFT JOIN devices d ON d.device_id = f.device_id "
    "WHERE f.id_hash = ? ORDER BY f.occurred_at DESC LIMIT ?"
)
COPRESENT_SQL = (
    f"SELECT m.record_id, {_COLS.format(a='o')} FROM "
    "(SELECT record_id, checkpoint, occurred_at FROM console_facts WHERE id_hash = ? "
    "AND checkpoint IS NOT NULL AND occurred_at IS NOT NULL ORDER BY occurred_at DESC LIMIT ?) m "
    "JOIN console_facts o ON o.checkpoint = m.checkpoint AND o.occurred_at >= m.occurred_at - ? "
    "AND o.occurred_at <= m.occurred_at + ? "
    "LEFT JOIN devices d ON d.device_id = o.device_id "
    "WHERE o.record_id <> m.record_id AND (o.id_hash IS NULL OR o.id_hash <> ?) "
    "ORDER BY m.occurred_at, m.record_id, o.occurred_at, o.record_id"
)


def trace_person(
    db: ConsoleDB, repo: Any, id_hash: str, minutes: int, limit: int = 200
) -> TraceResult:
    """The person's latest ``limit`` passages (oldest first), every passage within
    ±``minutes`` of each at the same checkpoint (one row per companion passage, in the order of
    the person's own passages: a companion who passed twice is listed twice, each time with the
    passage it was near), and the person's household-ledger fields (masked)."""
    decisions: dict[str, str] = {}
    passages = []
    for *row, decision in db.q(PERSON_SQL, (id_hash, limit))[::-1]:
        passages.append(Passage(*row))
        decisions[row[0]] = decision
    by_id = {p.record_id: p for p in passages}
    window = minutes * 60.0
    co: list[tuple[Passage, Passage, float]] = []
    for mine_id, *row, decision in db.q(COPRESENT_SQL, (id_hash, limit, window, window, id_hash)):
        other, mine = Passage(*row), by_id[mine_id]
        decisions[other.record_id] = decision
        co.append((other, mine, ((other.occurred_at or 0) - (mine.occurred_at or 0)) / 60))
    ledger = repo.ledger_state("member:id:" + id_hash)
    return TraceResult(passages, decisions, co, ledger)


def companions(result: TraceResult) -> int:
    """How many people the companion passages are (a passage without an ID hash counts as one
    person of its own)."""
    return len({o.id_hash or o.record_id for o, _, _ in result.copresent})


# --- who passed one checkpoint in a time window ------------------------------------------------

CHECKPOINT_SQL = (
    f"SELECT {_COLS.format(a='f')} FROM console_facts f "
    "LEFT JOIN devices d ON d.device_id = f.device_id "
    "WHERE f.checkpoint = ? AND f.occurred_at >= ? AND f.occurred_at < ? "
    "ORDER BY f.occurred_at"
)


def checkpoint_code(db: ConsoleDB, typed: str) -> str:
    """The checkpoint code as the gates send it, for a code typed in any case (``cp-0207`` finds
    ``CP-0207``); the typed text when no gate has sent that code."""
    typed = typed.strip()
    for variant in dict.fromkeys((typed, typed.upper(), typed.lower())):
        if db.one("SELECT 1 FROM console_facts WHERE checkpoint = ? LIMIT 1", (variant,)):
            return variant
    folded = typed.casefold()
    for (cp,) in db.q("SELECT DISTINCT checkpoint FROM console_device_cp"):
        if cp and cp.casefold() == folded:
            return str(cp)
    return typed


def trace_checkpoint(
    db: ConsoleDB, checkpoint: str, start: float, end: float
) -> tuple[list[Passage], dict[str, str]]:
    """The gate passages at ``checkpoint`` in [start, end), oldest first, with each decision.
    Read from the passage facts: household-ledger edits a device at that checkpoint sent (imports,
    member edits, visits, readings) are records too, but nobody passed the gate."""
    passages, decisions = [], {}
    for *row, decision in db.q(CHECKPOINT_SQL, (checkpoint, start, end)):
        passages.append(Passage(*row))
        decisions[row[0]] = decision
    return passages, decisions


# --- the person's household, from the ledger ---------------------------------------------------

ADDRESS_FIELDS = ("community", "building", "unit", "room", "address")


def household_of(db: ConsoleDB, repo: Any, data_key: bytes, member: list[dict[str, Any]]):
    """The ledger fields of the household a member belongs to (address levels in clear, as the
    ledger keeps them), found through the member's own edits: the device that created or moved
    the member named its household, which the ledger files under its address. [] when unknown."""
    record_ids = sorted({r["set_record"] for r in member if r.get("set_record")})
    if not record_ids:
        return []
    cipher = AESGCM(data_key)
    best: tuple[str, str] | None = None
    marks = ", ".join("?" * len(record_ids))
    for rid, blob in db.q(
        "SELECT record_id, body FROM records WHERE kind = 'ledger_edit' AND record_id IN "
        f"({marks})",
        record_ids,
    ):
        try:
            body = orjson.loads(decrypt_body(cipher, rid, blob)).get("body") or {}
        except Exception:  # noqa: BLE001 - a body this key cannot open tells nothing
            continue
        hid = (body.get("changes") or {}).get("household_id")
        if body.get("entity") == "member" and isinstance(hid, str):
            ts = str(body.get("ts") or "")
            if best is None or ts > best[0]:
                best = (ts, hid)
    key = repo.ledger_alias("household", best[1]) if best else None
    return repo.ledger_state(key) if key else []


def day_bounds(day: str) -> tuple[float, float]:
    d = date.fromisoformat(day)
    start = datetime(d.year, d.month, d.day).astimezone()
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


# --- daily report ----------------------------------------------------------------------------


def daily_report(db: ConsoleDB, repo: Any, day: str, deadline: str) -> dict[str, Any]:
    """Totals per checkpoint for ``day``; which checkpoints reported by the deadline (the next
    day at ``deadline``, HH:MM local), which sent a zero report, which nothing."""
    start, end = day_bounds(day)
    hh, mm = (int(x) for x in deadline.split(":"))
    due = end + hh * 3600 + mm * 60
    rows = {r.checkpoint: r for r in overview(db, repo, day, 1e12)[0]}
    places = dict(db.q("SELECT device_id, checkpoint FROM console_device_cp"))
    contact: dict[str, float] = {}
    for device_id, first in db.q(
        "SELECT device_id, max(received_at) FROM batches WHERE received_at >= ? AND "
        "received_at <= ? GROUP BY device_id",
        (start, due),
    ):
        contact[device_id] = first
    synced = contacts.contacted(repo, start, due)  # syncs with nothing to send leave no batch
    late_cp: set[str] = set()
    for (cp,) in db.q(
        "SELECT DISTINCT checkpoint FROM console_facts WHERE day = ? AND received_at > ?",
        (day, due),
    ):
        late_cp.add(cp or "-")
    status = {}
    for cp in sorted(set(rows) | set(places.values())):
        cp = cp or "-"
        devices = [d for d, c in places.items() if c == cp]
        on_time = any(d in contact for d in devices)
        total = rows[cp].total if cp in rows else 0
        if (on_time or any(d in synced for d in devices)) and total == 0:
            status[cp] = "zero"
        elif on_time and cp not in late_cp:
            status[cp] = "on_time"
        elif total:
            status[cp] = "late"
        else:
            status[cp] = "missing"
    categories = dict(
        db.q(
            "SELECT COALESCE(category, '-'), count(*) FROM console_facts WHERE day = ? "
            "GROUP BY category ORDER BY 2 DESC",
            (day,),
        )
    )
    kp = dict(
        db.q(
            "SELECT COALESCE(kp_category, '-'), count(*) FROM console_facts WHERE day = ? "
            "AND keyperson = 1 GROUP BY kp_category",
            (day,),
        )
    )
    health: dict[str, int] = {}
    for r in repo.ledger_state():
        if (
            r["entity"] == "member"
            and r["field"] == "health_status"
            and ((r.get("set_ts") or "")[:10] <= day)
        ):
            health[r["masked"]] = health.get(r["masked"], 0) + 1
    return {
        "day": day,
        "deadline": deadline,
        "rows": [rows.get(cp) or _empty(cp) for cp in status],
        "status": status,
        "categories": categories,
        "keypersons": kp,
        "health": health,
    }


def _empty(cp: str):
    return CheckpointRow(cp)
