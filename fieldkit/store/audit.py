"""Tamper-evident audit trail: an append-only chain, keyed and anchored off the device.

Each entry's link is an HMAC-SHA256, under a key derived from the data key of the epoch it was
written in (``keyed`` = epoch + 1), over the previous entry's link and the entry's canonical
JSON: rewriting an entry and recomputing the chain needs the key, i.e. a PIN. The few entries
written while nobody is logged in (a wrong PIN, a lock-out, a failed recovery) are linked with
plain SHA-256 (``keyed`` = 0); the next keyed entry covers them. Entries from before keyed links
keep their SHA-256 links.

The chain head is kept in ``fieldkit_meta`` (same transaction), so cutting entries off the end
is seen; and every sync sends the head (count + link) to the town, which keeps it and flags a
device whose chain went backwards or changed under it. The anchor the town acknowledged is kept
(``kv`` ``audit.anchor``); :meth:`AuditLog.verify` checks the chain still holds it, so deleting
every entry, cutting the tail and fixing the head, or rewriting and recomputing all fail.
Details never hold personal data in clear: record ids, counts, file names only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..crypto import hkdf
from .db import Guarded

GENESIS = "0" * 64
# What may be written while nobody is logged in (so without the key).
UNKEYED_ACTIONS = frozenset({"login_failed", "lockout", "recovery_failed"})


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def audit_key(data_key: bytes) -> bytes:
    return hkdf(data_key, "fieldkit-audit-v1")


def entry_hash(
    prev: str,
    seq: int,
    ts: str,
    operator: str | None,
    action: str,
    detail: str,
    key: bytes | None = None,
) -> str:
    body = json.dumps(
        [seq, ts, operator, action, detail], ensure_ascii=False, separators=(",", ":")
    )
    message = (prev + "\x1e" + body).encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    message: str  # English, for logs and tests
    code: str | None = None  # catalogue key audit.problem.<code>
    params: tuple[tuple[str, Any], ...] = ()

    def text(self, lang: str | None = None) -> str:
        """The problem in the reader's language (the English message if it has no code)."""
        if self.code is None:
            return self.message
        from ..i18n import t

        return t("audit.problem." + self.code, lang, **dict(self.params))


class AuditLog:
    def __init__(self, g: Guarded) -> None:
        self._g = g
        self._write_key: tuple[int, bytes] | None = None  # (epoch, key) for new entries
        self._keys: dict[int, bytes] = {}  # every epoch's key, to verify

    # -- keys -----------------------------------------------------------------------------
    def use_master(self, master: bytes, older: dict[int, bytes]) -> None:
        """Key new entries from this master secret (current epoch) and verify older epochs'."""
        epoch = max(older) + 1 if older else 0
        self._keys = {e: audit_key(k) for e, k in older.items()}
        self._keys[epoch] = audit_key(master[:32])
        self._write_key = (epoch, self._keys[epoch])

    def forget_keys(self) -> None:
        self._write_key, self._keys = None, {}

    @property
    def keyed(self) -> bool:
        return self._write_key is not None

    # -- writing --------------------------------------------------------------------------
    def append(
        self, action: str, operator: str | None, detail: dict[str, Any] | None = None
    ) -> int:
        """Append one entry; joins the caller's transaction if there is one."""
        detail_json = json.dumps(
            detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
        keyed, key = (self._write_key[0] + 1, self._write_key[1]) if self._write_key else (0, None)
        with self._g.tx() as db:
            row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
            ts = _now()
            plain = entry_hash(prev, seq, ts, operator, action, detail_json)
            digest = (
                plain
                if key is None
                else entry_hash(prev, seq, ts, operator, action, detail_json, key)
            )
            db.execute(
                "INSERT INTO audit(seq, ts, operator, action, detail, prev, hash, keyed, plain)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                [seq, ts, operator, action, detail_json, prev, digest, keyed, plain],
            )
            db.execute(
                "INSERT OR REPLACE INTO fieldkit_meta(key, value) VALUES ('audit_head', ?)",
                [f"{seq}:{digest}"],
            )
        return seq

    # -- reading --------------------------------------------------------------------------
    def entries(self, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE action = ?", [action]) if action else ("", [])
        rows = self._g.query(
            f"SELECT * FROM audit {where} ORDER BY seq DESC LIMIT ?", [*params, limit]
        )
        for r in rows:
            r["detail"] = json.loads(r["detail"])
        return rows

    def head(self) -> dict[str, Any]:
        """What a sync sends the town: the entry count and the last entry's link."""
        row = self._g.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return (
            {"count": row[0]["seq"], "hash": row[0]["hash"]}
            if row
            else {"count": 0, "hash": GENESIS}
        )

    def link_at(self, seq: int) -> str | None:
        return self._g.scalar("SELECT hash FROM audit WHERE seq = ?", [seq])

    def anchor(self) -> dict[str, Any] | None:
        """The last head the town acknowledged ({count, hash, at}), if any."""
        raw = self._g.scalar("SELECT value FROM kv WHERE key = 'audit.anchor'")
        return json.loads(raw) if raw else None

    def set_anchor(self, anchor: dict[str, Any]) -> None:
        with self._g.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO kv(key, value) VALUES ('audit.anchor', ?)",
                [json.dumps(anchor)],
            )

    def verify(self) -> tuple[int, AuditProblem | None]:
        """(entries checked, first problem or None). Links are checked always; keyed links
        only when a PIN opened the store (``self.keyed``), else they are taken as they are."""
        prev, expected_seq, count, keyed_seen = GENESIS, 1, 0, False
        with self._g.lock:
            cur = self._g.db.execute(
                "SELECT seq, ts, operator, action, detail, prev, hash, keyed, plain FROM audit "
                "ORDER BY seq"
            )
            for seq, ts, operator, action, detail, stored_prev, stored_hash, keyed, plain in cur:
                if seq != expected_seq:
                    return count, AuditProblem(
                        expected_seq,
                        f"entry {expected_seq} is missing (next entry found is {seq})",
                        "missing",
                        (("seq", expected_seq), ("next", seq)),
                    )
                if stored_prev != prev:
                    return count, AuditProblem(
                        seq,
                        f"entry {seq} does not link to entry {seq - 1}",
                        "unlinked",
                        (("seq", seq), ("prev", seq - 1)),
                    )
                if keyed:
                    keyed_seen = True
                    key = self._keys.get(keyed - 1)
                    if key is not None:
                        ok = hmac.compare_digest(
                            entry_hash(prev, seq, ts, operator, action, detail, key), stored_hash
                        )
                    else:  # no PIN: the plain link still catches a careless edit
                        ok = plain is None or plain == entry_hash(
                            prev, seq, ts, operator, action, detail
                        )
                    if not ok:
                        return count, AuditProblem(
                            seq,
                            f"entry {seq} ({action}) was altered",
                            "altered",
                            (("seq", seq), ("action", action)),
                        )
                else:
                    if entry_hash(prev, seq, ts, operator, action, detail) != stored_hash:
                        return count, AuditProblem(
                            seq,
                            f"entry {seq} ({action}) was altered",
                            "altered",
                            (("seq", seq), ("action", action)),
                        )
                    if keyed_seen and action not in UNKEYED_ACTIONS:
                        return count, AuditProblem(
                            seq,
                            f"entry {seq} ({action}) was rewritten without the key",
                            "unkeyed",
                            (("seq", seq), ("action", action)),
                        )
                prev, expected_seq, count = stored_hash, seq + 1, count + 1
            head = self._g.scalar("SELECT value FROM fieldkit_meta WHERE key='audit_head'")
            operators = self._g.scalar("SELECT count(*) FROM operators") or 0
        if self._keys and operators and not keyed_seen:
            return count, AuditProblem(
                count + 1,
                "no entry carries the store's key: the trail was replaced",
                "replaced",
            )
        if head:
            head_seq, head_hash = head.split(":", 1)
            if int(head_seq) != count or head_hash != prev:
                return count, AuditProblem(
                    count + 1,
                    f"entries after {count} were removed (the chain head says {head_seq})",
                    "cut",
                    (("count", count), ("head", head_seq)),
                )
        elif operators:
            return count, AuditProblem(count + 1, "the chain head is missing", "no_head")
        anchor = self.anchor()
        if anchor:
            n, link = int(anchor["count"]), anchor["hash"]
            if count < n:
                return count, AuditProblem(
                    count + 1,
                    f"the chain went backwards: the town holds entry {n}, the device has {count}",
                    "backwards",
                    (("town", n), ("count", count)),
                )
            if n and self.link_at(n) != link:
                return count, AuditProblem(
                    n,
                    f"entry {n} differs from the copy the town holds (rewritten)",
                    "town_differs",
                    (("seq", n),),
                )
        return count, None
