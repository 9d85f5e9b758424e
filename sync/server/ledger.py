"""The household ledger on the town server: current state merged from devices' ``ledger_edit``
events, and the field conflicts the supervisor resolves.

A device uploads every change to a household or member as an append-only ``ledger_edit`` record
(``entity``, ``entity_id``, ``base_version``, ``version``, ``writer``, ``source``, ``changes``:
field → new value). The record itself is stored like any other (fate ``stored`` or
``duplicate``; a field conflict never uses the record-level ``conflict`` fate, which would
quarantine the record on the device). Only records stored for the first time are merged, so a
batch sent again, or a record re-sent in a new batch, changes nothing.

Which entity an edit is about
    Devices make their own ids (UUIDs), so the same household created on two devices has two
    ids. The server files state under a town-wide *entity key* fixed by the first edit it sees
    of an id (``ledger_aliases``): a household by its normalised address (community | building |
    unit | room, :func:`fieldkit.shared.address.address_key`, the same rule the device uses); a
    member by the blind index of the ID number (town index key, the hash gates and ``trace``
    use), or without one by the household's key plus a keyed hash of the name; anything else
    (an edit of an id whose creation the server never saw) by its own id.

The merge rule (per field, edits applied in arrival order)
    The server keeps, per (entity key, field), the value and the edit that last set it (record
    id, device, writer, time, version), and per (entity key, device, field) the value that
    device last sent: that is the device's own view at its ``base_version``. Versions count
    edits *on one device*, so a version from one device says nothing about another's; what a
    device had seen is read from its own edit stream instead. An incoming value for a field:

    1. nobody set the field yet → it is set;
    2. it equals the current value → nothing to decide (equal values are never a conflict);
    3. the current value was set by the same device → its newer edit replaces it;
    4. the device's view (the value it last sent for this field) equals the current value →
       it changed what it had seen, and the edit replaces it;
    5. the value is one the field already had before the current one (``ledger_history``): the
       device is behind (e.g. it registers a person from the same old ledger another device
       has since corrected) and changed nothing; the current value stays, no conflict;
    6. otherwise the edit was made without knowing the value another device set (its
       ``base_version`` is older than that value, as far as that device knows): a conflict.
       The value already there stays (first writer wins) and the other lands in
       ``ledger_conflicts`` with both values, both edits, devices, writers and times.

    ``fieldkit-server ledger-conflicts resolve ID --keep kept|other`` closes a conflict; with
    ``other`` the current state takes the other value (and that edit as its setter).
    Resolution is server-side state: devices are not told (the ledger does not sync down yet).

One piece (~530 lines): the parse of an edit, the merge rule above and the conflict
resolution read and write the same four tables under the same keys; split, each half would need
the other's private helpers.

At rest
    Every value is encrypted with the town data key (AES-256-GCM, field name as associated data)
    and compared through a keyed digest; listings show a masked form only (names 张*, ID numbers
    110105********1234, phones 138****5678, free text ``***``). Address levels (building, unit,
    room) stay in clear as on the device: they are how the household is found.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fieldkit.crypto import blind_index
from fieldkit.i18n import t
from fieldkit.shared.address import address_key
from fieldkit.shared.identity import mask_id, mask_name, mask_phone

KIND = "ledger_edit"
ENTITIES = ("household", "member")
SECRET_FIELDS = frozenset(
    {"name", "id_number", "phone", "notes", "address", "landlord_name", "landlord_phone", "reason"}
)
_NAME_FIELDS = frozenset({"name", "landlord_name"})
_PHONE_FIELDS = frozenset({"phone", "landlord_phone"})
# A member's household id is the device's own id: not comparable across devices, not merged.
_LOCAL_FIELDS = frozenset({"household_id"})
VALUE_PREFIX = b"L1"
KEEP_CHOICES = ("kept", "other")


class LedgerError(Exception):
    """A supervisor action that cannot be done (unknown conflict id ...): one line."""


# --- values -------------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def mask_value(field: str, value: Any) -> str:
    """What a listing shows: personal values masked, the rest as short text."""
    if value is None:
        return "-"
    if field in SECRET_FIELDS:
        text = str(value)
        if field in _NAME_FIELDS:
            return mask_name(text)
        if field == "id_number":
            return mask_id(text)
        if field in _PHONE_FIELDS:
            return mask_phone(text)
        return "***" if text else ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class FieldValue:
    field: str
    value_enc: bytes  # AES-GCM under the data key
    masked: str
    digest: str  # keyed hash of the canonical value: equality without decryption


@dataclass(frozen=True)
class LedgerEdit:
    """One ``ledger_edit`` record, parsed on the server, values already sealed."""

    index: int
    record_id: str
    entity: str
    entity_id: str
    base_version: int
    version: int
    writer: str
    source: str
    ts: str | None
    natural_key: str | None  # household address / member id hash, from a create
    household_id: str | None  # a member's household (device id), for the name key
    name_digest: str | None  # keyed hash of a member's name, for the name key
    changes: tuple[FieldValue, ...]


class LedgerCodec:
    """Seals, digests and masks ledger values with the town keys (used by the app)."""

    def __init__(self, data_key: bytes, index_key: bytes) -> None:
        self._aead = AESGCM(data_key)
        self._digest_key = hashlib.sha256(b"fieldkit/ledger-digest/v1" + data_key).digest()
        self._index_key = index_key

    def seal(self, field: str, value: Any) -> bytes:
        nonce = os.urandom(12)
        return (
            VALUE_PREFIX
            + nonce
            + self._aead.encrypt(nonce, canonical(value), b"ledger:" + field.encode())
        )

    def open(self, field: str, blob: bytes) -> Any:
        blob = bytes(blob)
        return json.loads(self._aead.decrypt(blob[2:14], blob[14:], b"ledger:" + field.encode()))

    def digest(self, field: str, value: Any) -> str:
        return hmac.new(
            self._digest_key, field.encode() + b"\0" + canonical(value), hashlib.sha256
        ).hexdigest()

    def parse(self, index: int, record_id: str, body: dict[str, Any]) -> LedgerEdit:
        """A ledger_edit body → a :class:`LedgerEdit`; ValueError says what is wrong."""
        entity = body.get("entity")
        if entity not in ENTITIES:
            raise ValueError(f"ledger edit entity must be household or member, not {entity!r}")
        entity_id = body.get("entity_id")
        if not isinstance(entity_id, str) or not 0 < len(entity_id) <= 64:
            raise ValueError("ledger edit entity_id is missing")
        changes = body.get("changes")
        if not isinstance(changes, dict):
            raise ValueError("ledger edit changes must be an object")  # noqa: TRY004
        try:
            base, version = int(body["base_version"]), int(body["version"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("ledger edit base_version and version must be integers") from None
        writer = str(body.get("writer") or "?")[:128]
        natural = household = name_digest = None
        if entity == "household":
            if base == 0 and changes.get("building") and changes.get("room"):
                natural = "household:" + address_key(
                    str(changes.get("community") or ""),
                    str(changes["building"]),
                    str(changes.get("unit") or ""),
                    str(changes["room"]),
                )
        else:
            household = changes.get("household_id")
            household = household if isinstance(household, str) else None
            if base == 0:
                idn = changes.get("id_number") or body.get("id_number")
                if isinstance(idn, str) and idn:
                    natural = "member:id:" + blind_index(self._index_key, idn)
                elif isinstance(changes.get("name"), str) and changes["name"]:
                    name_digest = hmac.new(
                        self._index_key, b"member-name\0" + changes["name"].encode(), hashlib.sha256
                    ).hexdigest()
        fields = tuple(
            FieldValue(
                str(f)[:64], self.seal(str(f), v), mask_value(str(f), v), self.digest(str(f), v)
            )
            for f, v in sorted(changes.items())
            if f not in _LOCAL_FIELDS
        )
        return LedgerEdit(
            index,
            record_id,
            entity,
            entity_id,
            base,
            version,
            writer,
            str(body.get("source") or "")[:32],
            body.get("ts"),
            natural,
            household,
            name_digest,
            fields,
        )


# --- the merge, on one open transaction of either backend ------------------------------------

CONFLICT_COLUMNS = (
    "conflict_id, entity, entity_key, field, kept_masked, kept_record, kept_device, "
    "kept_writer, kept_ts, other_masked, other_record, other_device, other_writer, other_ts, "
    "other_entity_id, created_at, resolved_at, resolved_by, resolution"
)
CONFLICT_KEYS = tuple(c.strip() for c in CONFLICT_COLUMNS.split(","))


class LedgerTx:
    """The ledger tables through one DB-API connection inside the caller's transaction.

    ``ph`` is the parameter placeholder of the driver (``?`` for sqlite3, ``%s`` for psycopg).
    """

    def __init__(self, con: Any, ph: str) -> None:
        self.con, self.ph = con, ph

    def _q(self, sql: str, params: tuple = ()) -> Any:
        return self.con.execute(sql.replace("?", self.ph), params)

    # entity keys
    def entity_key(self, edit: LedgerEdit) -> str:
        row = self._q(
            "SELECT entity_key FROM ledger_aliases WHERE entity = ? AND entity_id = ?",
            (edit.entity, edit.entity_id),
        ).fetchone()
        if row:
            return row[0]
        key = edit.natural_key
        if key is None and edit.name_digest and edit.household_id:
            house = self._q(
                "SELECT entity_key FROM ledger_aliases WHERE entity = 'household' "
                "AND entity_id = ?",
                (edit.household_id,),
            ).fetchone()
            if house:
                key = f"member:name:{house[0]}/{edit.name_digest[:32]}"
        key = key or f"{edit.entity}:{edit.entity_id}"
        self._q(
            "INSERT INTO ledger_aliases (entity, entity_id, entity_key) VALUES (?, ?, ?)",
            (edit.entity, edit.entity_id, key),
        )
        return key

    def apply(self, edit: LedgerEdit, device_id: str, now: float) -> int:
        """Merge one edit (see the module docstring); returns the number of new conflicts."""
        key = self.entity_key(edit)
        conflicts = 0
        for fv in edit.changes:
            cur = self._q(
                "SELECT digest, set_device, set_record, set_writer, set_ts, masked, value_enc "
                "FROM ledger_fields WHERE entity_key = ? AND field = ?",
                (key, fv.field),
            ).fetchone()
            view = self._q(
                "SELECT digest FROM ledger_views WHERE entity_key = ? AND "
                "device_id = ? AND field = ?",
                (key, device_id, fv.field),
            ).fetchone()
            if cur is None:
                self._q(
                    "INSERT INTO ledger_fields (entity, entity_key, field, value_enc, masked, "
                    "digest, set_record, set_device, set_writer, set_ts, set_version, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        edit.entity,
                        key,
                        fv.field,
                        fv.value_enc,
                        fv.masked,
                        fv.digest,
                        edit.record_id,
                        device_id,
                        edit.writer,
                        edit.ts,
                        edit.version,
                        now,
                    ),
                )
                self._remember(key, fv.field, fv.digest)
            elif cur[0] == fv.digest:
                pass
            elif cur[1] == device_id or (view is not None and view[0] == cur[0]):
                self._set_field(
                    key,
                    fv.field,
                    fv.value_enc,
                    fv.masked,
                    fv.digest,
                    edit.record_id,
                    device_id,
                    edit.writer,
                    edit.ts,
                    edit.version,
                    now,
                )
            elif self._q(
                "SELECT 1 FROM ledger_history WHERE entity_key = ? AND field = ? AND digest = ?",
                (key, fv.field, fv.digest),
            ).fetchone():
                pass  # an older value of this field: the device is behind, not in conflict
            else:
                conflicts += self._add_conflict(edit, key, fv, cur, device_id, now)
            if view is None:
                self._q(
                    "INSERT INTO ledger_views (entity_key, device_id, field, digest, "
                    "version) VALUES (?, ?, ?, ?, ?)",
                    (key, device_id, fv.field, fv.digest, edit.version),
                )
            else:
                self._q(
                    "UPDATE ledger_views SET digest = ?, version = ? WHERE entity_key = ? "
                    "AND device_id = ? AND field = ?",
                    (fv.digest, edit.version, key, device_id, fv.field),
                )
        return conflicts

    def _set_field(
        self,
        key: str,
        field: str,
        value_enc: bytes,
        masked: str,
        digest: str,
        record: str,
        device: str,
        writer: str,
        ts: str | None,
        version: int | None,
        now: float,
    ) -> None:
        self._q(
            "UPDATE ledger_fields SET value_enc = ?, masked = ?, digest = ?, set_record = ?, "
            "set_device = ?, set_writer = ?, set_ts = ?, set_version = ?, updated_at = ? "
            "WHERE entity_key = ? AND field = ?",
            (value_enc, masked, digest, record, device, writer, ts, version, now, key, field),
        )
        self._remember(key, field, digest)

    def _remember(self, key: str, field: str, digest: str) -> None:
        if not self._q(
            "SELECT 1 FROM ledger_history WHERE entity_key = ? AND field = ? AND digest = ?",
            (key, field, digest),
        ).fetchone():
            self._q(
                "INSERT INTO ledger_history (entity_key, field, digest) VALUES (?, ?, ?)",
                (key, field, digest),
            )

    def _add_conflict(
        self, edit: LedgerEdit, key: str, fv: FieldValue, cur: Any, device_id: str, now: float
    ) -> int:
        if self._q(
            "SELECT 1 FROM ledger_conflicts WHERE other_record = ? AND field = ?",
            (edit.record_id, fv.field),
        ).fetchone():
            return 0
        self._q(
            "INSERT INTO ledger_conflicts (entity, entity_key, field, kept_value_enc, "
            "kept_masked, kept_record, kept_device, kept_writer, kept_ts, other_value_enc, "
            "other_masked, other_record, other_device, other_writer, other_ts, other_version, "
            "other_digest, other_entity_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                edit.entity,
                key,
                fv.field,
                cur[6],
                cur[5],
                cur[2],
                cur[1],
                cur[3],
                cur[4],
                fv.value_enc,
                fv.masked,
                edit.record_id,
                device_id,
                edit.writer,
                edit.ts,
                edit.version,
                fv.digest,
                edit.entity_id,
                now,
            ),
        )
        return 1

    # supervisor ------------------------------------------------------------------------------
    def conflicts(self, include_resolved: bool) -> list[dict[str, Any]]:
        where = "" if include_resolved else "WHERE c.resolved_at IS NULL "
        cols = ", ".join(f"c.{c}" for c in CONFLICT_KEYS)
        rows = self._q(
            f"SELECT {cols}, COALESCE(dvk.name, c.kept_device), COALESCE(dvo.name, c.other_device)"
            " FROM ledger_conflicts c LEFT JOIN devices dvk ON dvk.device_id = c.kept_device "
            f"LEFT JOIN devices dvo ON dvo.device_id = c.other_device {where}"
            "ORDER BY c.conflict_id"
        ).fetchall()
        out = []
        for r in rows:
            d = dict(zip(CONFLICT_KEYS, r[: len(CONFLICT_KEYS)], strict=True))
            d["kept_device_name"], d["other_device_name"] = r[-2], r[-1]
            out.append(d)
        return out

    def open_count(self) -> int:
        return self._q(
            "SELECT count(*) FROM ledger_conflicts WHERE resolved_at IS NULL"
        ).fetchone()[0]

    def resolve(self, conflict_id: int, keep: str, by: str, now: float) -> dict[str, Any]:
        """Close one conflict; ``keep='other'`` puts the other value into the current state.

        Resolving again with the same choice changes nothing (``already`` is true); another
        choice for a resolved conflict is refused.
        """
        if keep not in KEEP_CHOICES:
            raise LedgerError(t("server.err.keep", value=keep))
        row = self._q(
            "SELECT entity_key, field, resolved_at, resolution, other_value_enc, other_masked, "
            "other_record, other_device, other_writer, other_ts, other_version, other_digest "
            "FROM ledger_conflicts WHERE conflict_id = ?",
            (conflict_id,),
        ).fetchone()
        if row is None:
            raise LedgerError(t("server.err.no_conflict", id=conflict_id))
        if row[2] is not None:
            if row[3] != keep:
                raise LedgerError(t("server.err.conflict_resolved", id=conflict_id, kept=row[3]))
            return {"conflict_id": conflict_id, "resolution": keep, "already": True}
        if keep == "other":
            self._set_field(
                row[0],
                row[1],
                bytes(row[4]),
                row[5],
                row[11],
                row[6],
                row[7],
                row[8],
                row[9],
                row[10],
                now,
            )
        self._q(
            "UPDATE ledger_conflicts SET resolved_at = ?, resolved_by = ?, resolution = ? "
            "WHERE conflict_id = ?",
            (now, by, keep, conflict_id),
        )
        return {"conflict_id": conflict_id, "resolution": keep, "already": False}

    def state(self, entity_key: str | None = None) -> list[dict[str, Any]]:
        """Current fields (masked), for listings and tests."""
        sql = (
            "SELECT entity, entity_key, field, masked, set_record, set_device, set_writer, "
            "set_ts, value_enc FROM ledger_fields "
        )
        params: tuple = ()
        if entity_key:
            sql += "WHERE entity_key = ? "
            params = (entity_key,)
        rows = self._q(sql + "ORDER BY entity_key, field", params).fetchall()
        keys = (
            "entity",
            "entity_key",
            "field",
            "masked",
            "set_record",
            "set_device",
            "set_writer",
            "set_ts",
            "value_enc",
        )
        return [dict(zip(keys, (*r[:8], bytes(r[8])), strict=True)) for r in rows]

    def alias(self, entity: str, entity_id: str) -> str | None:
        row = self._q(
            "SELECT entity_key FROM ledger_aliases WHERE entity = ? AND entity_id = ?",
            (entity, entity_id),
        ).fetchone()
        return row[0] if row else None


def schema(blob: str, serial: str, real: str) -> str:
    """The ledger tables in a backend's types."""
    return f"""
CREATE TABLE IF NOT EXISTS ledger_aliases (
    entity TEXT NOT NULL, entity_id TEXT NOT NULL, entity_key TEXT NOT NULL,
    PRIMARY KEY (entity, entity_id));
CREATE TABLE IF NOT EXISTS ledger_fields (
    entity TEXT NOT NULL, entity_key TEXT NOT NULL, field TEXT NOT NULL, value_enc {blob} NOT NULL,
    masked TEXT, digest TEXT NOT NULL, set_record TEXT NOT NULL, set_device TEXT NOT NULL,
    set_writer TEXT, set_ts TEXT, set_version INTEGER, updated_at {real} NOT NULL,
    PRIMARY KEY (entity_key, field));
CREATE TABLE IF NOT EXISTS ledger_views (
    entity_key TEXT NOT NULL, device_id TEXT NOT NULL, field TEXT NOT NULL, digest TEXT NOT NULL,
    version INTEGER, PRIMARY KEY (entity_key, device_id, field));
CREATE TABLE IF NOT EXISTS ledger_history (
    entity_key TEXT NOT NULL, field TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (entity_key, field, digest));
CREATE TABLE IF NOT EXISTS ledger_conflicts (
    conflict_id {serial}, entity TEXT NOT NULL, entity_key TEXT NOT NULL, field TEXT NOT NULL,
    kept_value_enc {blob} NOT NULL, kept_masked TEXT, kept_record TEXT, kept_device TEXT,
    kept_writer TEXT, kept_ts TEXT,
    other_value_enc {blob} NOT NULL, other_masked TEXT, other_record TEXT NOT NULL,
    other_device TEXT, other_writer TEXT, other_ts TEXT, other_version INTEGER,
    other_digest TEXT NOT NULL, other_entity_id TEXT, created_at {real} NOT NULL,
    resolved_at {real}, resolved_by TEXT, resolution TEXT, UNIQUE (other_record, field));
CREATE INDEX IF NOT EXISTS ledger_conflicts_open ON ledger_conflicts (resolved_at, conflict_id);
"""
