"""What every part of the ledger facade shares: the edit event (versioned, encrypted
``ledger_edits`` rows), bulk-import batching, the blind index cache, the clock, and the sealing
of the ledger's own fields (place, profile: decrypted once per ciphertext; rows written in clear
before are sealed by the first unlocked session). Field lists and small helpers: :mod:`.fields`.

The facade (``store.ledger``, :class:`fieldkit.ledger.households.Ledger`) is assembled from
:mod:`.homes` (households), :mod:`.members` and :mod:`.visits` (rounds, visits, coverage), each a
class over :class:`LedgerBase`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..crypto import FieldCipher
from .fields import (  # noqa: F401  (the parts import them from here too)
    HOUSEHOLD_FIELDS,
    HOUSEHOLD_SECRET,
    MEMBER_FIELDS,
    MEMBER_SECRET,
    PLACE,
    PLACE_CLEAR,
    PROFILE,
    PROFILE_CLEAR,
    UNKNOWN,
    _iso,
    _place_of,
    _profile_of,
    end_date_for,
    new_id,
    normalise_id,
    profile_json,
    reading_blob,
    sort_key,
    to_json,
    to_json_sorted,
)
from .model import address_key

if TYPE_CHECKING:
    from ..store import Store


class LedgerBase:
    def __init__(self, store: Store) -> None:
        self._s = store
        self._batch: dict[str, list[Any]] | None = None
        self._index_cache: dict[str, str] = {}
        self._batch_writer = ""
        self._batch_cipher: FieldCipher | None = None
        self._sealed = False
        self._cache_owner: Any = None
        self._open_cache: dict[tuple[str, str], tuple[Any, Any]] = {}

    # -- encryption of the ledger's own fields (issue 14 item 7) ------------------------------
    def _c(self) -> FieldCipher:
        """The session's cipher; the first call of a session also seals rows written in clear
        before the ledger encrypted them (:meth:`seal_plaintext`)."""
        if self._batch_cipher is not None:  # inside a bulk import: checked when it began
            return self._batch_cipher
        c = self._s.cipher
        if self._cache_owner is not c:  # a new session: forget what the last one decrypted
            self._cache_owner, self._open_cache = c, {}
        if not self._sealed:
            self._sealed = True
            if not self._s.kv.get("sealed.ledger"):
                self.seal_plaintext()
                self._s.kv.set("sealed.ledger", True)
        return c

    def _opened(self, record_id: str, field: str, blob: Any, shape: Any = None) -> Any:
        """JSON sealed in ``<field>_enc`` of one record (made into a dict by ``shape``),
        decrypted once per ciphertext. Callers read the value; they never change it."""
        cache = self._open_cache
        hit = cache.get((record_id, field))
        if hit is not None and hit[0] == blob:
            return hit[1]
        value = orjson.loads(self._c().decrypt(record_id, field, blob) or "null")
        if shape is not None:
            value = shape(value)
        cache[(record_id, field)] = (blob, value)
        return value

    def _key(self, kind: str, text: str) -> str:
        """Keyed look-up hash of an address part (SQL groups and filters on it, not the text)."""
        cache = self._index_cache
        k = f"{kind}|{text}"
        if k not in cache:
            self._c()
            # 128 bits tell addresses apart; 64 the buildings and units of one town.
            cache[k] = self._s.index(k)[: 32 if kind == "address" else 16]
        return cache[k]

    def address_index(self, akey: str) -> str:
        """The stored ``address_key``: keyed hash of :func:`address_key` (the address itself)."""
        return self._key("address", akey)

    def place(self, row: dict[str, Any], id_col: str = "id") -> dict[str, str]:
        """building / unit / room of a household row (``place_enc``; clear columns on a row not
        yet sealed)."""
        blob = row.get("place_enc")
        if blob is None:
            return {k: row.get(k) or "" for k in PLACE}
        return self._opened(row[id_col], "place", blob, _place_of)

    def open_household(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with building / unit / room decrypted and its ``sort_key``."""
        place = self.place(row)
        return row | place | {"sort_key": sort_key(place["room"])}

    def profile(self, row: dict[str, Any], id_col: str = "id") -> dict[str, Any]:
        """Masked name/ID/phone and the health fields of a member row (``profile_enc``;
        ``categories`` a list)."""
        blob = row.get("profile_enc")
        if blob is None:
            out = {k: row.get(k) for k in PROFILE}
            out["categories"] = json.loads(out["categories"] or "[]")
            out["health_status"] = out["health_status"] or "none"
            return out
        return self._opened(row[id_col], "profile", blob, _profile_of)

    def open_member(self, row: dict[str, Any]) -> dict[str, Any]:
        return row | self.profile(row)

    def _place_values(self, hid: str, f: dict[str, Any]) -> dict[str, Any]:
        place = [f.get(k) or "" for k in PLACE]
        return {
            "building_key": self._key("building", place[0]),
            "unit_key": self._key("unit", place[1]),
            "place_enc": self._c().encrypt(hid, "place", to_json(place)),
            **PLACE_CLEAR,
        }

    def seal_plaintext(self) -> dict[str, int]:
        """Encrypt what ledger rows written before m003 hold in clear (address parts, masked
        names/IDs/phones, health fields, visit members, readings, alert details) and blank the
        clear columns; synced bodies stay the same. Returns rows sealed per table."""
        s, c = self._s, self._s.cipher
        done: dict[str, int] = {}
        conn = s.g.db.conn
        outer = conn.in_transaction
        # Overwritten cells are zeroed, and (outside a caller's transaction) the write-ahead log
        # is checkpointed into the file and truncated: the old pages held the clear values.
        self._seal_rows(c, done)  # the connection zeroes freed space (store/db.py)
        if sum(done.values()) and not outer:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return done

    def _seal_rows(self, c: FieldCipher, done: dict[str, int]) -> None:
        s = self._s
        with s.g.tx() as db:
            rows = s.g.query("SELECT * FROM households WHERE place_enc IS NULL")
            for r in rows:
                v = self._place_values(r["id"], r)
                akey = address_key(r["community"] or "", r["building"], r["unit"], r["room"])
                db.execute(
                    "UPDATE households SET "
                    + ", ".join(f"{k} = ?" for k in v)
                    + ", address_key = ? WHERE id = ?",
                    [*v.values(), self.address_index(akey), r["id"]],
                )
            done["households"] = len(rows)
            rows = s.g.query("SELECT * FROM members WHERE profile_enc IS NULL")
            for r in rows:
                blob = c.encrypt(r["id"], "profile", profile_json(self.profile(r)))
                db.execute(
                    "UPDATE members SET "
                    + ", ".join(f"{k} = ?" for k in PROFILE_CLEAR)
                    + ", profile_enc = ? WHERE id = ?",
                    [*PROFILE_CLEAR.values(), blob, r["id"]],
                )
            done["members"] = len(rows)
            for table, field, clear in (
                ("visits", "members", {"members": "[]"}),
                ("monitoring_alerts", "detail", {"detail": "{}"}),
            ):
                rows = s.g.query(f"SELECT id, {field} FROM {table} WHERE {field}_enc IS NULL")
                db.conn.executemany(
                    f"UPDATE {table} SET {field}_enc = ?, {field} = ? WHERE id = ?",
                    [(c.encrypt(r["id"], field, r[field]), clear[field], r["id"]) for r in rows],
                )
                done[table] = len(rows)
            rows = s.g.query(
                "SELECT id, temperature, symptoms FROM readings WHERE reading_enc IS NULL"
            )
            db.conn.executemany(
                "UPDATE readings SET reading_enc = ?, temperature = NULL, symptoms = '[]' "
                "WHERE id = ?",
                [
                    (reading_blob(c, r["id"], r["temperature"], json.loads(r["symptoms"])), r["id"])
                    for r in rows
                ],
            )
            done["readings"] = len(rows)

    def _now(self) -> datetime:
        """The clock (the assembled facade reads ``households.now_local``, which tests set)."""
        return datetime.now().astimezone()

    # -- helpers ----------------------------------------------------------------------------
    def _insert(self, sql: str, params: Any) -> None:
        """INSERT now, or (inside :meth:`batched`) collect for one ``executemany``."""
        if self._batch is None:
            self._s.g.db.conn.execute(sql, params)
        else:
            self._batch.setdefault(sql, []).append(params)

    def _index(self, value: str) -> str:
        """The blind index; remembered during a bulk import (each ID is needed 2-3 times)."""
        if self._batch is None:
            return self._s.index(value)
        cache = self._index_cache
        if value not in cache:
            cache[value] = self._s.index(value)
        return cache[value]

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Bulk import: new rows are inserted with executemany when the block ends (households
        before members: statements run in the order first seen). Caller holds the transaction."""
        self._batch_writer = ""
        self._batch_writer = self.writer
        self._batch_cipher = None
        self._batch_cipher = self._c()
        self._batch = {}
        self._index_cache = {}
        try:
            yield
            for sql, rows in self._batch.items():
                self._s.g.db.conn.executemany(sql, rows)
        finally:
            self._batch = None
            self._batch_writer = ""  # the next edit outside a batch asks who is logged in
            self._batch_cipher = None
            self._index_cache = {}

    @property
    def writer(self) -> str:
        if self._batch is not None and self._batch_writer:
            return self._batch_writer
        op = self._s.require_operator()
        return f"{op.name}@{self._s.settings.checkpoint.code}"

    def _edit_row(
        self,
        entity: str,
        entity_id: str,
        base: int,
        version: int,
        changes: dict[str, Any],
        source: str,
        ts: datetime,
    ) -> tuple:
        rid = new_id()
        blob = self._c().encrypt(rid, "changes", to_json_sorted(changes))
        when = _iso(ts)
        return (
            rid,
            when,
            when[:10],
            self._s.settings.checkpoint.code,
            entity,
            entity_id,
            base,
            version,
            self._batch_writer or self.writer,
            source,
            blob,
        )

    _EDIT_INSERT = (
        "INSERT INTO ledger_edits(id, ts, day, checkpoint, entity, entity_id, "
        "base_version, version, writer, source, changes_enc) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    )

    def edit_body(self, r: dict[str, Any]) -> dict[str, Any]:
        """A ledger edit as it goes to the town server."""
        changes = json.loads(self._c().decrypt(r["id"], "changes", r["changes_enc"]) or "{}")
        body = {
            k: r[k]
            for k in (
                "id",
                "ts",
                "day",
                "checkpoint",
                "entity",
                "entity_id",
                "base_version",
                "version",
                "writer",
                "source",
            )
        }
        body["changes"] = changes
        if changes.get("id_number"):
            body["id_number"] = changes["id_number"]
        return body

    # -- rounds and visits ------------------------------------------------------------------
    def current_round_id(self) -> str | None:
        return self._s.g.scalar(
            "SELECT id FROM rounds WHERE closed_at IS NULL ORDER BY started_at DESC LIMIT 1"
        )

    def current_round(self) -> dict[str, Any] | None:
        rows = self._s.g.query(
            "SELECT * FROM rounds WHERE closed_at IS NULL ORDER BY started_at DESC LIMIT 1"
        )
        return rows[0] if rows else None
