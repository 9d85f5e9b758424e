"""Device-side sync state: the outbox over every event table, settings, secrets, and the lists
the town pushes down (key persons, pass revocations).

One piece (~450 lines): the small tables the sync reads and writes share the store's session
(the data key that seals key-person categories and isolation statuses, the secrets that hold
the town's index key) and one sealing helper; split, each part would reach back into the others."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from ..crypto import blind_index, keyperson_hash
from ..errors import TamperedError
from ..shared.canonical import canonical_json

if TYPE_CHECKING:
    from . import Store


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class OutboxItem(NamedTuple):
    """One record on its way out (a tuple: thousands are made per batch)."""

    record_id: str
    kind: str
    body: dict[str, Any]
    content_hash: str  # SHA-256 of ``canonical``
    canonical: bytes = b""  # the body as canonical JSON, so the wire needs no second encoding
    rowid: int = 0  # its row, for a ranged mark_synced; 0 when it must be marked by id


@dataclass(frozen=True)
class EventKind:
    """An append-only event table that syncs: its name on the wire and how to build a body."""

    kind: str
    table: str
    body: Callable[[dict[str, Any]], dict[str, Any]]
    # Columns the body never uses (local bookkeeping): not even read from the table.
    local: tuple[str, ...] = ()


# ``sync_state != 'synced'`` is the partial index's own condition: SQLite uses the index only
# when the query repeats it (it cannot tell that 'pending' is not 'synced').
_PENDING = "sync_state != 'synced' AND sync_state = 'pending'"


class _NotTheBatch(Exception):
    pass


class Outbox:
    """Every event table's rows with ``sync_state`` pending → synced | quarantined."""

    def __init__(self, store: Store) -> None:
        self._s = store
        self.kinds: dict[str, EventKind] = {}

    def register(self, kind: EventKind) -> None:
        self.kinds[kind.kind] = kind

    def _walk(self, where: str, page: int) -> Iterator[list[OutboxItem]]:
        """Rows matching ``where`` in every event table, in insertion order, as items in lists
        of at most ``page``. A keyset walk (``rowid``): what was read is never read again, even
        while it is still pending (a batch in flight), and rows added meanwhile are reached."""
        g = self._s.g
        town_key = self._s.secrets.get("town_index_key")
        town_hashes: dict[str, str] = {}  # one person passes many times: hash each ID once
        out: list[OutboxItem] = []
        for ek in self.kinds.values():
            wanted = "*"
            if ek.local:
                wanted = ", ".join(c for c in self._columns(ek.table) if c not in ek.local)
            sql = (
                f"SELECT {wanted}, CASE WHEN sync_reason IS NULL THEN rowid ELSE 0 END, "
                f"rowid FROM {ek.table} WHERE {where} AND rowid > ? "
                f"ORDER BY rowid LIMIT {int(page)}"
            )
            last = 0
            while True:
                with g.lock:
                    cur = g.db.execute(sql, [last])
                    columns = [c[0] for c in cur.description][:-2]
                    rows = cur.fetchall()
                if not rows:
                    break
                last = rows[-1][-1]
                for row in rows:
                    item = self._item(
                        ek, dict(zip(columns, row, strict=False)), row[-2], town_key, town_hashes
                    )
                    if item is not None:
                        out.append(item)
                while len(out) >= page:
                    yield out[:page]
                    out = out[page:]
                if len(rows) < page:
                    break
        if out:
            yield out

    def _columns(self, table: str) -> list[str]:
        return [r["name"] for r in self._s.g.query(f"PRAGMA table_info({table})")]

    def _item(
        self,
        ek: EventKind,
        row: dict[str, Any],
        rowid: int,
        town_key: bytes | None,
        town_hashes: dict[str, str],
    ) -> OutboxItem | None:
        try:
            body = ek.body(row)
        except TamperedError as exc:
            # A record that cannot be read must not block the queue.
            self.mark_quarantined(row["id"], f"local: {exc}", kind=ek.kind)
            return None
        id_number = body.get("id_number")
        if town_key and id_number:
            town_hash = town_hashes.get(id_number)
            if town_hash is None:
                town_hash = town_hashes[id_number] = blind_index(town_key, id_number)
            body["id_hash_town"] = town_hash
        canonical = canonical_json(body)
        return OutboxItem(
            row["id"], ek.kind, body, hashlib.sha256(canonical).hexdigest(), canonical, rowid
        )

    def batches(self, size: int) -> Iterator[list[OutboxItem]]:
        """Every record not yet on the server, oldest first, in lists of at most ``size``, each
        read once: the next list can be read while the one before is on its way."""
        return self._walk(_PENDING, max(1, size))

    def pending(self, limit: int) -> list[OutboxItem]:
        """The oldest records not yet on the server, with their bodies and content hashes."""
        return next(self.batches(limit), [])

    def content_hashes(self) -> dict[str, str]:
        """Content hash of every readable record, whatever its sync state (for reconciliation)."""
        return {i.record_id: i.content_hash for items in self._walk("1", 5000) for i in items}

    def _table_of(self, record_id: str, kind: str | None) -> list[str]:
        if kind:
            return [self.kinds[kind].table]
        return [k.table for k in self.kinds.values()]

    def mark_synced(
        self,
        record_ids: list[str],
        batch_id: str,
        kind: str | None = None,
        rowids: list[int] | None = None,
    ) -> None:
        """Mark records as on the server. With ``kind`` and the items' ``rowid`` s (a batch
        from :meth:`batches`), one ranged update does it: every row of the batch's rowid range
        still pending and never requeued is one of the batch (the walk read them all, in
        order). The count of rows changed proves it; if it differs, the update is undone and
        the rows are marked one by one."""
        now = _now()
        if kind and rowids and all(rowids) and len(rowids) == len(record_ids):
            table = self.kinds[kind].table
            try:
                with self._s.g.tx() as db:
                    changed = db.execute(
                        f"UPDATE {table} SET sync_state='synced', synced_at=?, batch_id=? "
                        f"WHERE rowid BETWEEN ? AND ? AND {_PENDING} AND sync_reason IS NULL",
                        [now, batch_id, min(rowids), max(rowids)],
                    ).rowcount
                    if changed != len(rowids):
                        raise _NotTheBatch
                return
            except _NotTheBatch:
                pass
        with self._s.g.tx() as db:
            for table in self._table_of("", kind):
                db.conn.executemany(
                    f"UPDATE {table} SET sync_state='synced', sync_reason=NULL, synced_at=?, "
                    f"batch_id=? WHERE id=?",
                    [(now, batch_id, rid) for rid in record_ids],
                )

    def mark_quarantined(self, record_id: str, reason: str, kind: str | None = None) -> None:
        with self._s.g.tx() as db:
            for table in self._table_of(record_id, kind):
                db.execute(
                    f"UPDATE {table} SET sync_state='quarantined', sync_reason=? WHERE id=?",
                    [reason[:500], record_id],
                )

    def requeue(self, record_id: str) -> None:
        """Put a quarantined record back in the queue (after the supervisor fixed the cause).
        It keeps a reason ("requeued: …"), which keeps it out of a ranged
        :meth:`mark_synced` of a batch it was never in."""
        with self._s.g.tx() as db:
            for table in self._table_of(record_id, None):
                db.execute(
                    f"UPDATE {table} SET sync_state='pending', "
                    f"sync_reason='requeued: ' || coalesce(sync_reason, '') "
                    f"WHERE id=? AND sync_state='quarantined'",
                    [record_id],
                )

    def counts(self) -> dict[str, int]:
        c = {"pending": 0, "synced": 0, "quarantined": 0}
        for ek in self.kinds.values():
            for row in self._s.g.query(
                f"SELECT sync_state, count(*) AS n FROM {ek.table} GROUP BY sync_state"
            ):
                c[row["sync_state"]] = c.get(row["sync_state"], 0) + row["n"]
        return c

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        out = []
        for ek in self.kinds.values():
            for row in self._s.g.query(
                f"SELECT id, ts, sync_reason FROM {ek.table} "
                f"WHERE sync_state='quarantined' ORDER BY ts LIMIT ?",
                [limit],
            ):
                out.append({"kind": ek.kind, **row})
        return out


class KV:
    """Plaintext device settings (JSON values): device id, server URL, pinned keys, cursor."""

    def __init__(self, store: Store) -> None:
        self._s = store

    def get(self, key: str, default: Any = None) -> Any:
        v = self._s.g.scalar("SELECT value FROM kv WHERE key = ?", [key])
        return default if v is None else json.loads(v)

    def set(self, key: str, value: Any) -> None:
        with self._s.g.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)",
                [key, json.dumps(value, ensure_ascii=False)],
            )


class Secrets:
    """Small secrets encrypted under the data key (device signing key, town index key)."""

    def __init__(self, store: Store) -> None:
        self._s = store

    def get(self, name: str) -> bytes | None:
        blob = self._s.g.scalar("SELECT blob FROM secrets WHERE name = ?", [name])
        if blob is None:
            return None
        return bytes.fromhex(self._s.cipher.decrypt("secret", name, blob) or "")

    def set(self, name: str, value: bytes) -> None:
        blob = self._s.cipher.encrypt("secret", name, value.hex())
        with self._s.g.tx() as db:
            db.execute("INSERT OR REPLACE INTO secrets(name, blob) VALUES (?, ?)", [name, blob])


class KeyPersons:
    """The town's key-person list: blind-index hashes only (never plaintext IDs)."""

    def __init__(self, store: Store) -> None:
        self._s = store

    def apply(
        self, entries: list[dict[str, Any]], removed: list[str] | tuple[str, ...] = ()
    ) -> None:
        now = _now()
        # The category is sealed under the data key (row key + field as associated data); a
        # download while no operator is logged in keeps it in clear until the next login
        # seals it (:meth:`seal_plaintext`, from the store's session opening).
        cipher = self._s.cipher if self._s.is_unlocked else None
        with self._s.g.tx() as db:
            db.conn.executemany(
                "INSERT OR REPLACE INTO keypersons(id_hash, category, end_date, updated_at) "
                "VALUES (?,?,?,?)",
                [
                    (
                        e["id_hash"],
                        e["category"]
                        if cipher is None
                        else cipher.encrypt(e["id_hash"], KEYPERSON_FIELD, e["category"]),
                        e.get("end_date"),
                        now,
                    )
                    for e in entries
                ],
            )
            db.conn.executemany("DELETE FROM keypersons WHERE id_hash = ?", [(h,) for h in removed])
            db.execute(
                "INSERT OR REPLACE INTO kv(key, value) VALUES ('keypersons_updated_at', ?)",
                [json.dumps(now)],
            )

    def lookup_id(
        self,
        id_number: str | None,
        today: str | None = None,
        hasher: Callable[[bytes, str], str] = keyperson_hash,
    ) -> str | None:
        """The category when this ID number is on the list: one slow, town-salted hash
        (:func:`fieldkit.crypto.keyperson_hash`, or ``hasher``: the gate's, which computes it
        once per person, ahead of the record) per scan; a list still in the older HMAC
        form (a town server not yet updated) is looked up by the blind index too."""
        if not id_number:
            return None
        key = self._s.secrets.get("town_index_key")
        if key is None:
            return None
        found = self.lookup(hasher(key, id_number), today)
        if found is None and self._s.g.scalar(
            "SELECT 1 FROM keypersons WHERE id_hash NOT LIKE 'k1:%' LIMIT 1"
        ):
            found = self.lookup(blind_index(key, id_number), today)
        return found

    def lookup(self, town_hash: str | None, today: str | None = None) -> str | None:
        """The category when this hash is on the list (and not past its end date)."""
        if not town_hash:
            return None
        rows = self._s.g.query(
            "SELECT category, end_date FROM keypersons WHERE id_hash = ?", [town_hash]
        )
        if not rows:
            return None
        end = rows[0]["end_date"]
        today = today or datetime.now().date().isoformat()
        if end and end < today:
            return None
        return _open(self._s, town_hash, KEYPERSON_FIELD, rows[0]["category"])

    def seal_plaintext(self) -> int:
        """Encrypt the categories still in clear (written while locked, or before the
        upgrade); the caller checkpoints the log. Returns how many rows were sealed."""
        return _seal_column(self._s, "keypersons", "category", KEYPERSON_FIELD)

    def count(self) -> int:
        return self._s.g.scalar("SELECT count(*) FROM keypersons") or 0

    def updated_at(self) -> str | None:
        """When the list was last brought up to date (ISO text): the town's last update
        received by sync when enrolled (even one that changed nothing), else the list's own
        last change."""
        issued = self._s.kv.get("sync.updates_at")
        if issued:
            try:
                return (
                    datetime.fromtimestamp(float(issued)).astimezone().isoformat(timespec="seconds")
                )
            except (TypeError, ValueError, OverflowError):
                pass
        return self._s.kv.get("keypersons_updated_at")


class Revocations:
    def __init__(self, store: Store) -> None:
        self._s = store

    def apply(self, pass_ids: list[str]) -> None:
        now = _now()
        with self._s.g.tx() as db:
            db.conn.executemany(
                "INSERT OR IGNORE INTO revocations(pass_id, revoked_at) VALUES (?,?)",
                [(p, now) for p in pass_ids],
            )

    def all(self) -> set[str]:
        return {r["pass_id"] for r in self._s.g.query("SELECT pass_id FROM revocations")}

    def is_revoked(self, pass_id: str) -> bool:
        return bool(self._s.g.scalar("SELECT 1 FROM revocations WHERE pass_id = ?", [pass_id]))


class IsolationIndex:
    """Who is under home isolation/monitoring, by local blind index (from the ledger)."""

    def __init__(self, store: Store) -> None:
        self._s = store

    def set(self, id_hash: str, status: str | None, end_date: str | None = None) -> None:
        with self._s.g.tx() as db:
            if status:
                db.execute(
                    "INSERT OR REPLACE INTO isolation_index(id_hash, status, end_date) "
                    "VALUES (?,?,?)",
                    [id_hash, self._s.cipher.encrypt(id_hash, ISOLATION_FIELD, status), end_date],
                )
            else:
                db.execute("DELETE FROM isolation_index WHERE id_hash = ?", [id_hash])

    def status(self, id_hash: str | None, today: str | None = None) -> str | None:
        if not id_hash:
            return None
        rows = self._s.g.query(
            "SELECT status, end_date FROM isolation_index WHERE id_hash = ?", [id_hash]
        )
        if not rows:
            return None
        today = today or datetime.now().date().isoformat()
        end = rows[0]["end_date"]
        if end and end < today:
            return None
        return _open(self._s, id_hash, ISOLATION_FIELD, rows[0]["status"])

    def counts_on(self, day: str) -> dict[str, int]:
        """People per status whose isolation or monitoring still runs on ``day`` (each status
        decrypted here: the column holds ciphertexts, so SQL cannot group on it)."""
        counts: dict[str, int] = {}
        for r in self._s.g.query(
            "SELECT id_hash, status FROM isolation_index WHERE end_date IS NULL OR end_date >= ?",
            [day],
        ):
            status = _open(self._s, r["id_hash"], ISOLATION_FIELD, r["status"]) or ""
            counts[status] = counts.get(status, 0) + 1
        return dict(sorted(counts.items()))

    def seal_plaintext(self) -> int:
        """Encrypt the statuses of rows from before the upgrade (still in clear)."""
        return _seal_column(self._s, "isolation_index", "status", ISOLATION_FIELD)


# Field names bound into the associated data of the two sync-table ciphertexts (with the row's
# hash as the record key), so a value moved to another row or column fails to open.
KEYPERSON_FIELD = "keyperson_category"
ISOLATION_FIELD = "isolation_status"


def _open(store: Store, key: str, field: str, value: Any) -> str | None:
    """A sealed value opened (a ciphertext is a BLOB); a str is a row not yet sealed."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return store.cipher.decrypt(key, field, bytes(value))
    return value


def _seal_column(store: Store, table: str, column: str, field: str) -> int:
    """Replace the clear values of ``table.column`` (TEXT values; ciphertexts are BLOBs) by
    their ciphertexts under the data key, keyed by the row's ``id_hash``."""
    cipher = store.cipher
    clear = f"SELECT id_hash, {column} FROM {table} WHERE typeof({column}) = 'text'"
    if store.g.scalar(f"SELECT count(*) FROM ({clear})") == 0:
        return 0  # the usual case: no write transaction at login
    with store.g.tx() as db:  # read inside: a download racing the seal is not overwritten
        rows = db.conn.execute(clear).fetchall()
        db.conn.executemany(
            f"UPDATE {table} SET {column} = ? WHERE id_hash = ?",
            [(cipher.encrypt(h, field, v), h) for h, v in rows],
        )
    return len(rows)


def town_pass_keys(store: Store) -> tuple[Any, ...]:
    """The town's Ed25519 keys for passes, as sync stored them (standard base64); one that
    cannot be read is left out. The gate screen and ``fieldkit decode`` check passes with them."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    encoded = store.kv.get("sync.town_ed25519")
    if not encoded:
        return ()
    try:
        return (Ed25519PublicKey.from_public_bytes(base64.b64decode(encoded)),)
    except (ValueError, TypeError):
        return ()
