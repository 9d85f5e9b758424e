"""What each device said about itself at each sync: the time and, when it says so, how many
records were still waiting in its outbox.

The device sends ``pending`` (its outbox count after the upload) in the signed audit-anchor
exchange that ends every sync (:mod:`sync.server.anchors`); older devices send no count and are
recorded as a contact without one. The console reads it: the overview shows each device's last
reported count with its time, and the daily report counts a sync with nothing to send as a zero
report (such a sync leaves no batch). One row per sync, in a table of its own made on first use,
through the repository's dialect (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import time
from typing import Any

_ready: set[int] = set()


def _ensure(repo: Any) -> None:
    if id(repo) in _ready:
        return
    d = repo.dialect
    with d.write() as con:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS device_contacts (id {d.serial},"
            f" device_id TEXT NOT NULL, at {d.real} NOT NULL, pending BIGINT)"
        )
        con.execute(
            "CREATE INDEX IF NOT EXISTS device_contacts_at ON device_contacts(device_id, at)"
        )
    _ready.add(id(repo))


def parse_pending(value: str | None) -> int | None:
    """The outbox count from the query; None when absent or out of shape (an older device, or
    nonsense: the sync itself is not refused for it)."""
    if value is None or not value.isdigit() or len(value) > 12:
        return None
    return int(value)


def record(repo: Any, device_id: str, pending: int | None, now: float | None = None) -> None:
    _ensure(repo)
    now = time.time() if now is None else now
    with repo.dialect.write() as con:
        con.execute(
            repo.dialect.sql("INSERT INTO device_contacts(device_id, at, pending) VALUES (?,?,?)"),
            (device_id, now, pending),
        )


def last_reported(repo: Any) -> dict[str, tuple[int, float]]:
    """{device_id: (pending, when)} from each device's latest sync that carried a count."""
    _ensure(repo)
    with repo.dialect.read() as con:
        rows = con.execute(
            "SELECT c.device_id, c.pending, c.at FROM device_contacts c JOIN ("
            "SELECT device_id, max(at) AS at FROM device_contacts WHERE pending IS NOT NULL"
            " GROUP BY device_id) m ON m.device_id = c.device_id AND m.at = c.at"
            " WHERE c.pending IS NOT NULL"
        ).fetchall()
    return {r[0]: (int(r[1]), float(r[2])) for r in rows}


def contacted(repo: Any, start: float, end: float) -> set[str]:
    """Devices that synced (reached the anchor exchange) between ``start`` and ``end``."""
    _ensure(repo)
    with repo.dialect.read() as con:
        rows = con.execute(
            repo.dialect.sql(
                "SELECT DISTINCT device_id FROM device_contacts WHERE at >= ? AND at <= ?"
            ),
            (start, end),
        ).fetchall()
    return {r[0] for r in rows}
