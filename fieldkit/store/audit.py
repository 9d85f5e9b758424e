"""Tamper-evident audit trail: an append-only hash chain.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON, so
changing, removing or reordering any entry breaks every link after it. The chain head is also kept
in ``fieldkit_meta`` (written in the same transaction) so that cutting entries off the end is seen
too. Details never hold personal data in clear: record ids, counts, file names only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .db import Guarded

GENESIS = "0" * 64


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def entry_hash(prev: str, seq: int, ts: str, operator: str | None, action: str, detail: str) -> str:
    body = json.dumps(
        [seq, ts, operator, action, detail], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256((prev + "\x1e" + body).encode()).hexdigest()


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    message: str


class AuditLog:
    def __init__(self, g: Guarded) -> None:
        self._g = g

    def append(
        self, action: str, operator: str | None, detail: dict[str, Any] | None = None
    ) -> int:
        """Append one entry; joins the caller's transaction if there is one."""
        detail_json = json.dumps(
            detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
        with self._g.tx() as db:
            row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
            ts = _now()
            digest = entry_hash(prev, seq, ts, operator, action, detail_json)
            db.execute(
                "INSERT INTO audit(seq, ts, operator, action, detail, prev, hash) VALUES (?,?,?,?,?,?,?)",
                [seq, ts, operator, action, detail_json, prev, digest],
            )
            db.execute(
                "INSERT OR REPLACE INTO fieldkit_meta(key, value) VALUES ('audit_head', ?)",
                [f"{seq}:{digest}"],
            )
        return seq

    def entries(self, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE action = ?", [action]) if action else ("", [])
        rows = self._g.query(
            f"SELECT * FROM audit {where} ORDER BY seq DESC LIMIT ?", [*params, limit]
        )
        for r in rows:
            r["detail"] = json.loads(r["detail"])
        return rows

    def verify(self) -> tuple[int, AuditProblem | None]:
        """(entries checked, first problem or None)."""
        prev, expected_seq, count = GENESIS, 1, 0
        with self._g.lock:
            cur = self._g.db.execute(
                "SELECT seq, ts, operator, action, detail, prev, hash FROM audit ORDER BY seq"
            )
            for seq, ts, operator, action, detail, stored_prev, stored_hash in cur:
                if seq != expected_seq:
                    return count, AuditProblem(
                        expected_seq, f"entry {expected_seq} is missing (next entry found is {seq})"
                    )
                if stored_prev != prev:
                    return count, AuditProblem(seq, f"entry {seq} does not link to entry {seq - 1}")
                if entry_hash(prev, seq, ts, operator, action, detail) != stored_hash:
                    return count, AuditProblem(seq, f"entry {seq} ({action}) was altered")
                prev, expected_seq, count = stored_hash, seq + 1, count + 1
            head = self._g.scalar("SELECT value FROM fieldkit_meta WHERE key='audit_head'")
        if head:
            head_seq, head_hash = head.split(":", 1)
            if int(head_seq) != count or head_hash != prev:
                return count, AuditProblem(
                    count + 1,
                    f"entries after {count} were removed (the chain head says {head_seq})",
                )
        return count, None
