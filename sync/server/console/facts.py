"""Passage facts: what each sealed passage body says about the gate's decision, read once.

The server indexes a record's time, checkpoint, direction and hashes in clear; the decision,
temperature and reasons stay in the body, encrypted at rest. The overview needs them for every
passage of the day, so each new passage body is opened once, here, and its few facts kept in
``console_facts`` (no names, no numbers). :func:`catch_up` runs before each overview and
report: it reads records received since the last run (a minute of overlap, since concurrent
batches may commit out of order; rows already known are skipped).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .db import ConsoleDB
from .sealed import decrypt_body

OVERLAP_S = 60.0
FEVER_DEFAULT = 37.3
ALERT_CODES = {"keyperson_hit", "home_isolation_leaving", "fever"}
FACT_COLUMNS = (
    "record_id, device_id, checkpoint, day, hour, occurred_at, direction, decision, fever, "
    "keyperson, leaving, kp_category, category, received_at, id_hash, name_masked, id_masked"
)
_lock = threading.Lock()
_settled: dict[int, float] = {}  # per ConsoleDB: newest record known fully read


def facts_of(body: dict[str, Any], fever_threshold: float = FEVER_DEFAULT) -> tuple:
    """(decision, fever, keyperson, leaving, key-person category, person category)."""
    codes = set()
    category = None
    for r in body.get("reasons") or ():
        if isinstance(r, dict):
            codes.add(r.get("code"))
            if r.get("code") == "keyperson_hit":
                category = (r.get("params") or {}).get("category")
    temp = body.get("temperature")
    fever = "fever" in codes or (isinstance(temp, int | float) and temp >= fever_threshold)
    return (
        str(body.get("decision") or ""),
        int(fever),
        int("keyperson_hit" in codes),
        int("home_isolation_leaving" in codes),
        category,
        body.get("category"),
    )


def fact_row(record_id: str, device_id: str, line: bytes, received_at: float) -> tuple | None:
    try:
        rec = orjson.loads(line)
        body = rec["body"]
    except (ValueError, KeyError, TypeError):
        return None
    if rec.get("kind") != "passage" or not isinstance(body, dict):
        return None
    from datetime import datetime

    ts = body.get("ts")
    day: str | None = None
    hour: int | None = None
    occurred: float | None = None
    if isinstance(ts, str):
        try:
            at = datetime.fromisoformat(ts)
            day, hour = at.date().isoformat(), at.hour  # the gate's local day and hour
            occurred = at.timestamp()
        except ValueError:
            day, hour, occurred = None, None, None
    return (
        record_id,
        device_id,
        body.get("checkpoint"),
        day,
        hour,
        occurred,
        body.get("direction"),
        *facts_of(body),
        received_at,
        body.get("id_hash_town"),
        body.get("name_masked"),
        body.get("id_masked"),
    )


def catch_up(db: ConsoleDB, data_key: bytes, page: int = 20000) -> int:
    """Read the facts of passages received since the last run; returns how many were added."""
    cipher = AESGCM(data_key)
    added = 0
    with _lock:  # one catch-up at a time in this process; others see its result
        # Fast path (an index probe): nothing received since the last run, and that run came
        # long enough after its newest record that no batch received before it can still be
        # committing (transactions take seconds, not a minute).
        newest = db.scalar("SELECT max(received_at) FROM records")
        mark = float(db.meta("facts_mark", "0") or 0)
        if newest is None or (newest <= mark and _settled.get(id(db), -1.0) >= newest):
            return 0
        while True:
            mark = float(db.meta("facts_mark", "0") or 0)
            rows = db.q(
                "SELECT r.record_id, r.device_id, r.body, r.received_at FROM records r "
                "WHERE r.received_at > ? AND r.kind = 'passage' AND NOT EXISTS "
                "(SELECT 1 FROM console_facts f WHERE f.record_id = r.record_id) "
                "ORDER BY r.received_at LIMIT ?",
                (mark - OVERLAP_S, page),
            )
            if not rows:
                break
            facts: list[tuple] = []
            places: dict[str, tuple[str, float]] = {}
            for record_id, device_id, blob, received_at in rows:
                try:
                    line = decrypt_body(cipher, record_id, blob)
                except Exception:  # noqa: BLE001 - a body this key cannot open is skipped
                    continue
                row = fact_row(record_id, device_id, line, received_at)
                if row:
                    facts.append(row)
                    if row[2] and (row[5] or 0) >= places.get(device_id, (None, 0))[1]:
                        places[device_id] = (row[2], row[5] or 0)
            page_newest = max(r[3] for r in rows)
            with db.tx():
                db.insert_ignore("console_facts", FACT_COLUMNS, facts)
                db.many(
                    "INSERT INTO console_device_cp (device_id, checkpoint, last_record) "
                    "VALUES (?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
                    "checkpoint = excluded.checkpoint, last_record = excluded.last_record "
                    "WHERE excluded.last_record >= console_device_cp.last_record",
                    [(d, cp, at) for d, (cp, at) in places.items()],
                )
                db.set_meta("facts_mark", repr(max(page_newest, mark)))
            added += len(facts)
            if len(rows) < page or not facts:
                break
        if time.time() - newest > OVERLAP_S:
            _settled[id(db)] = newest
    return added
