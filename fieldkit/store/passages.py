"""Gate passages and vehicle passages: append-only events with encrypted personal fields.

One piece (~620 lines): the gate's two tables, their sealing and their reads, which change
together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import orjson

from scanners.idnumber import mask_id, mask_name

from ..crypto import new_record_id
from ..domain import Decision, Outcome
from ..shared.canonical import loads

if TYPE_CHECKING:
    from . import Store

PERSONAL = ("name", "id_number", "phone", "raw_scan", "notes", "escort", "trip_reason")
# Fields that had a plaintext column before they were encrypted: a row written then keeps its
# value there (``None`` in ``<field>_enc``) until :meth:`Passages.seal_plaintext` moves it.
_WAS_PLAINTEXT = frozenset({"trip_reason"})
_PERSONAL_COLUMNS = tuple((f, f"{f}_enc") for f in PERSONAL)
_ENCRYPTED_COLUMNS = frozenset({*(c for _, c in _PERSONAL_COLUMNS), "sealed_enc"})
# The masked copies, health values, category and reasons of a passage: sealed together in one
# ciphertext (``sealed_enc``, field "sealed": JSON of these keys). Their own columns hold
# NULL (category '' and reasons '[]', being NOT NULL) once a row is sealed; a row from
# before schema m005 keeps them in clear until :meth:`Passages.seal_plaintext` runs at login.
SEALED = (
    "name_masked",
    "id_masked",
    "temperature",
    "temperature_skipped",
    "code_colour",
    "test_date",
    "test_result",
    "category",
    "reasons",
    "pass_id",
)
_SEALED_BLANK: dict[str, Any] = {k: None for k in SEALED} | {"category": "", "reasons": "[]"}
VEHICLE_SEALED = ("plate", "pass_no", "reasons")
_VEHICLE_BLANK: dict[str, Any] = {"plate": "", "pass_no": None, "reasons": "[]"}
_CACHE_MAX = 50_000  # records whose opened values a session keeps (about 42 MB at most)


def seal_json(values: dict[str, Any]) -> str:
    """The sealed values as compact JSON (orjson: this runs once per record written)."""
    return orjson.dumps(values).decode()


def unseal(cipher: Any, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its ``sealed_enc`` (popped) opened into the sealed keys, in place; a row
    not yet sealed is returned as it is (its values still in their columns)."""
    blob = row.pop("sealed_enc", None)
    if blob is not None:
        row.update(orjson.loads(cipher.decrypt(row["id"], "sealed", blob) or "{}"))
    return row


# Local bookkeeping that never goes to the town server (and the local blind index).
LOCAL_ONLY = (
    "id_hash",
    "superseded",
    "sync_state",
    "sync_reason",
    "synced_at",
    "batch_id",
    "alerts_ack",
)


@dataclass(kw_only=True)
class Capture:
    """What the gate captures about one person: shared by the gate's input (``GateEntry``) and
    what the store records (``PassageInput``)."""

    direction: str = "in"
    id_number: str | None = None
    name: str | None = None
    phone: str | None = None
    raw_scan: str | None = None
    notes: str | None = None
    escort: str | None = None
    temperature: float | None = None
    temperature_skipped: str | None = None
    code_colour: str | None = None
    test_date: date | None = None
    test_result: str | None = None
    category: str = "resident"
    trip_reason: str | None = None
    approval_ref: str | None = None
    pass_id: str | None = None
    pass_problem: str | None = None
    source: str = "manual"  # scan | wedge | manual | cli | import


@dataclass(kw_only=True)
class PassageInput(Capture):
    """A validated capture as the store records it (ID number normalised by the gate service)."""

    id_kind: str = "other"
    id_check_ok: bool = True
    vehicle_id: str | None = None
    confirmed_by: str | None = None
    supersedes: str | None = None
    ts: datetime | None = None


@dataclass(frozen=True)
class PassageRow:
    """A stored passage as screens and reports see it (personal fields masked)."""

    id: str
    ts: str
    direction: str
    name_masked: str | None
    id_masked: str | None
    temperature: float | None
    code_colour: str | None
    category: str
    decision: str
    reasons: list[dict[str, Any]]
    operator: str
    entry_id: str | None
    superseded: bool
    sync_state: str
    vehicle_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now().astimezone()


def _stamp(ts: datetime) -> tuple[str, str]:
    return ts.isoformat(timespec="milliseconds"), ts.date().isoformat()


def reasons_json(decision: Decision) -> str:
    return json.dumps(
        [
            {"code": r.code, "outcome": r.outcome.value, "alert": r.alert, "params": r.params}
            for r in decision.reasons
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


class Passages:
    def __init__(self, store: Store) -> None:
        self._s = store
        # Each record's opened values as the dict orjson gives (never handed out: callers get
        # them copied into their row). A dict, not item tuples: 42 against 58 MB for 50,000
        # records, and 0.32 against 0.45 s to open 100,000 in turn (bench: export-once report).
        self._cache: dict[tuple[str, bytes], dict[str, Any]] = {}

    # -- writing ------------------------------------------------------------------------
    def _row(
        self,
        p: PassageInput,
        decision: Decision,
        operator: str,
        shift_id: str | None,
        entry_id: str | None,
        now: tuple[str, str] | None = None,
        reasons: str | None = None,
    ) -> dict[str, Any]:
        """``now``: (ts, day) strings shared by a bulk batch, for rows without their own time."""
        s = self._s
        rid = new_record_id()
        ts_text, day = _stamp(p.ts.astimezone()) if p.ts else (now or _stamp(_now()))
        sealed = {
            "name_masked": mask_name(p.name) if p.name else None,
            "id_masked": mask_id(p.id_number) if p.id_number else None,
            # A float, as the REAL column always gave it (37 and 37.0 differ on the wire).
            "temperature": None if p.temperature is None else float(p.temperature),
            "temperature_skipped": p.temperature_skipped,
            "code_colour": p.code_colour,
            "test_date": p.test_date.isoformat() if p.test_date else None,
            "test_result": p.test_result,
            "category": p.category,
            "reasons": reasons or reasons_json(decision),
            "pass_id": p.pass_id,
        }
        enc = s.cipher.encrypt_fields(
            rid,
            {
                "name": p.name,
                "id_number": p.id_number,
                "phone": p.phone,
                "raw_scan": p.raw_scan,
                "notes": p.notes,
                "escort": p.escort,
                "trip_reason": p.trip_reason,
                "sealed": seal_json(sealed),
            },
        )
        return {
            "id": rid,
            "ts": ts_text,
            "day": day,
            "shift_id": shift_id,
            "checkpoint": s.settings.checkpoint.code,
            "direction": p.direction,
            "id_kind": p.id_kind,
            "id_hash": s.index(p.id_number) if p.id_number else None,
            "id_check_ok": int(p.id_check_ok),
            **_SEALED_BLANK,
            "name_enc": enc["name"],
            "id_number_enc": enc["id_number"],
            "phone_enc": enc["phone"],
            "raw_scan_enc": enc["raw_scan"],
            "notes_enc": enc["notes"],
            "escort_enc": enc["escort"],
            "trip_reason_enc": enc["trip_reason"],
            "sealed_enc": enc["sealed"],
            "trip_reason": None,  # encrypted: trip_reason_enc (free text, personal)
            "approval_ref": p.approval_ref,  # an office's approval number, not personal
            "vehicle_id": p.vehicle_id,
            "source": p.source,
            "decision": decision.outcome.value,
            "operator": operator,
            "confirmed_by": p.confirmed_by,
            "entry_id": entry_id,
            "supersedes": p.supersedes,
        }

    _COLUMNS = (
        "id ts day shift_id checkpoint direction id_kind id_hash id_check_ok name_masked "
        "id_masked name_enc id_number_enc phone_enc raw_scan_enc notes_enc escort_enc "
        "temperature temperature_skipped code_colour test_date test_result category "
        "trip_reason approval_ref pass_id vehicle_id source decision reasons operator "
        "confirmed_by entry_id supersedes trip_reason_enc sealed_enc"
    ).split()
    _INSERT = (
        f"INSERT INTO passages({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    )

    def open_entry_for(
        self, id_hash: str, before: str | None = None, corrected: str | None = None
    ) -> str | None:
        """The latest admitted entry of this person that no exit has matched yet (at or
        before ``before``, an exit's own time, when given: a corrected exit keeps its time, and
        of passages stamped in that same millisecond only those written before ``corrected``,
        the exit being corrected). Ties on the time go by insertion order."""
        window = ""
        params: list[Any] = [id_hash]
        if before:
            window = "AND (p.ts < ? OR (p.ts = ? AND p.rowid < coalesce((SELECT rowid FROM "
            window += "passages WHERE id = ?), p.rowid + 1))) "
            params += [before, before, corrected]
        return self._s.g.scalar(
            "SELECT p.id FROM passages p WHERE p.id_hash = ? AND p.direction = 'in' "
            "AND p.decision = 'admit' AND p.superseded = 0 AND NOT EXISTS "
            "(SELECT 1 FROM passages x WHERE x.entry_id = p.id AND x.superseded = 0) "
            + window
            + "ORDER BY p.ts DESC, p.rowid DESC LIMIT 1",
            params,
        )

    def record(self, p: PassageInput, decision: Decision) -> PassageRow:
        """Commit one passage durably (one transaction, fsync'd) and return it."""
        s = self._s
        operator = s.require_operator().name
        with s.g.tx() as db:
            if p.supersedes:  # first, so the exit being corrected no longer holds its entry
                old = db.execute(
                    "SELECT superseded FROM passages WHERE id = ?", [p.supersedes]
                ).fetchone()
                if old is None:
                    raise ValueError(f"no passage {p.supersedes} to correct")
                db.execute("UPDATE passages SET superseded = 1 WHERE id = ?", [p.supersedes])
            entry_id = None
            if p.direction == "out" and p.id_number:
                before = p.ts.astimezone().isoformat(timespec="milliseconds") if p.ts else None
                entry_id = self.open_entry_for(s.index(p.id_number), before, p.supersedes)
            row = self._row(p, decision, operator, s.shifts.current_id(), entry_id)
            db.execute(self._INSERT, [row[c] for c in self._COLUMNS])
            if p.supersedes:
                s.audit.append("correction", operator, {"record": p.supersedes, "by": row["id"]})
        return self._to_row(self.unseal(dict(row)))

    def record_many(self, items: Iterable[tuple[PassageInput, Decision]]) -> int:
        """Bulk path (imports, benchmarks): one transaction, no exit matching."""
        s = self._s
        operator = s.require_operator().name
        shift = s.shifts.current_id()
        now = _stamp(_now())
        reasons: dict[int, tuple[Decision, str]] = {}  # decisions repeat: serialise each once

        def reasons_of(d: Decision) -> str:
            hit = reasons.get(id(d))
            if hit is None or hit[0] is not d:
                hit = reasons[id(d)] = (d, reasons_json(d))
            return hit[1]

        rows = [self._row(p, d, operator, shift, None, now, reasons_of(d)) for p, d in items]
        with s.g.tx() as db:
            db.conn.executemany(self._INSERT, [[r[c] for c in self._COLUMNS] for r in rows])
        return len(rows)

    def acknowledge(self, passage_id: str, alerts: list[str]) -> None:
        """Alerts that needed acknowledgement: who acknowledged which, logged."""
        s = self._s
        operator = s.require_operator().name
        with s.g.tx() as db:
            # Encrypted (which alerts a person raised is health data); read back by unseal().
            ack = json.dumps({"by": operator, "alerts": alerts}, ensure_ascii=False)
            db.execute(
                "UPDATE passages SET alerts_ack = ? WHERE id = ?",
                [s.cipher.encrypt(passage_id, "alerts_ack", ack), passage_id],
            )
            # The audit (clear: ids, counts, file names) says how many, not which alerts.
            s.audit.append("alert_ack", operator, {"record": passage_id, "alerts": len(alerts)})

    # -- reading ------------------------------------------------------------------------
    def unseal(self, r: dict[str, Any]) -> dict[str, Any]:
        """The row with its sealed values (masked copies, health, category, reasons) back
        under their own keys, in place (raises TamperedError on a bad ciphertext)."""
        blob = r.pop("sealed_enc", None)
        if blob is not None:
            r.update(self._sealed(r["id"], blob))
        ack = r.get("alerts_ack")
        if isinstance(ack, bytes):
            r["alerts_ack"] = self._s.cipher.decrypt(r["id"], "alerts_ack", ack)
        return r

    def _sealed(self, rid: str, blob: bytes) -> dict[str, Any]:
        """The sealed values of one record, opened once per session: a record's sealed values
        never change, and the gate screen and reports count a day's records again and again.
        Read-only: callers copy them (``dict.update``)."""
        key = (rid, bytes(blob[-16:]))  # the GCM tag: a record sealed again is a new entry
        hit = self._cache.get(key)
        if hit is None:
            hit = orjson.loads(self._s.cipher.decrypt(rid, "sealed", blob) or "{}")
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def forget(self) -> None:
        """Drop the opened values (the session ends)."""
        self._cache.clear()

    def rows(self) -> list[dict[str, Any]]:
        """Every passage, unsealed (personal fields still encrypted), in insertion order."""
        return [self.unseal(r) for r in self._s.g.query("SELECT * FROM passages ORDER BY rowid")]

    @staticmethod
    def _to_row(r: dict[str, Any]) -> PassageRow:
        reasons = r["reasons"]
        return PassageRow(
            id=r["id"],
            ts=r["ts"],
            direction=r["direction"],
            name_masked=r["name_masked"],
            id_masked=r["id_masked"],
            temperature=r["temperature"],
            code_colour=r["code_colour"],
            category=r["category"],
            decision=r["decision"],
            reasons=json.loads(reasons) if isinstance(reasons, str) else reasons,
            operator=r["operator"],
            entry_id=r["entry_id"],
            superseded=bool(r.get("superseded", 0)),
            sync_state=r.get("sync_state", "pending"),
            vehicle_id=r.get("vehicle_id"),
        )

    def recent(self, limit: int = 20) -> list[PassageRow]:
        return [
            self._to_row(self.unseal(r))
            for r in self._s.g.query(
                "SELECT * FROM passages WHERE superseded = 0 ORDER BY ts DESC LIMIT ?", [limit]
            )
        ]

    def get(self, passage_id: str) -> PassageRow | None:
        rows = self._s.g.query("SELECT * FROM passages WHERE id = ?", [passage_id])
        return self._to_row(self.unseal(rows[0])) if rows else None

    def last_by(self, operator: str) -> PassageRow | None:
        rows = self._s.g.query(
            "SELECT * FROM passages WHERE operator = ? AND superseded = 0 ORDER BY ts DESC LIMIT 1",
            [operator],
        )
        return self._to_row(self.unseal(rows[0])) if rows else None

    def full(self, passage_id: str, *, purpose: str) -> dict[str, Any]:
        """Decrypted personal fields of one passage: audited as a full-data view."""
        row = self._s.read_full("passages", passage_id, entity="record", purpose=purpose)
        if row is None:
            raise KeyError(passage_id)
        return self.decrypt_row(row)

    def decrypt_row(self, r: dict[str, Any]) -> dict[str, Any]:
        """Row with personal fields decrypted (raises TamperedError on a bad ciphertext)."""
        out = {k: v for k, v in r.items() if k not in _ENCRYPTED_COLUMNS}
        decrypt, rid = self._s.cipher.decrypt, r["id"]
        if r.get("sealed_enc") is not None:
            out.update(self._sealed(rid, r["sealed_enc"]))
        if isinstance(out.get("alerts_ack"), bytes):
            out["alerts_ack"] = decrypt(rid, "alerts_ack", out["alerts_ack"])
        for f, column in _PERSONAL_COLUMNS:
            blob = r.get(column)
            if blob is not None or f not in _WAS_PLAINTEXT:
                out[f] = decrypt(rid, f, blob)
        reasons = out["reasons"]
        out["reasons"] = json.loads(reasons) if isinstance(reasons, str) else reasons
        return out

    def seal_plaintext(self) -> int:
        """Encrypt what rows written before a field was encrypted still hold in clear (the
        trip reason before m003; masked copies, health values, category and reasons before
        m005); the record's synced body is unchanged. Returns the rows sealed."""
        s = self._s
        cipher = s.cipher
        rows = s.g.query(
            f"SELECT id, trip_reason, sealed_enc IS NULL AS unsealed, {', '.join(SEALED)} "
            "FROM passages WHERE trip_reason IS NOT NULL OR sealed_enc IS NULL"
        )
        acks = s.g.query("SELECT id, alerts_ack FROM passages WHERE typeof(alerts_ack) = 'text'")
        updates = []
        for r in rows:
            trip = r["trip_reason"]
            trip_enc = cipher.encrypt(r["id"], "trip_reason", trip) if trip is not None else None
            sealed = None
            if r["unsealed"]:
                sealed = cipher.encrypt(r["id"], "sealed", seal_json({k: r[k] for k in SEALED}))
            updates.append((trip is not None, trip_enc, sealed, r["id"]))
        if updates:
            blank = ", ".join(f"{k} = ?" for k in SEALED)
            with s.g.tx() as db:
                db.conn.executemany(
                    "UPDATE passages SET trip_reason_enc = CASE WHEN ? THEN ? "
                    "ELSE trip_reason_enc END, trip_reason = NULL WHERE id = ?",
                    [(u[0], u[1], u[3]) for u in updates if u[0]],
                )
                db.conn.executemany(
                    f"UPDATE passages SET sealed_enc = ?, {blank} WHERE id = ?",
                    [
                        (u[2], *(_SEALED_BLANK[k] for k in SEALED), u[3])
                        for u in updates
                        if u[2] is not None
                    ],
                )
        if acks:
            with s.g.tx() as db:
                db.conn.executemany(
                    "UPDATE passages SET alerts_ack = ? WHERE id = ?",
                    [
                        (cipher.encrypt(a["id"], "alerts_ack", a["alerts_ack"]), a["id"])
                        for a in acks
                    ],
                )
        return len(updates) + len(acks)

    def inside_now(self) -> int:
        return (
            self._s.g.scalar(
                "SELECT count(*) FROM passages p WHERE p.direction='in' AND p.decision='admit' AND "
                "p.superseded=0 AND NOT EXISTS (SELECT 1 FROM passages x WHERE x.entry_id = p.id "
                "AND x.superseded = 0)"
            )
            or 0
        )

    def counters(self, day: str) -> dict[str, int]:
        """Today's counters for the gate screen and the daily report."""
        rows = [
            self.unseal(r)
            for r in self._s.g.query(
                "SELECT id, direction, decision, code_colour, temperature, sealed_enc "
                "FROM passages WHERE day = ? AND superseded = 0",
                [day],
            )
        ]
        c = {
            "in": 0,
            "out": 0,
            "turned_back": 0,
            "denied": 0,
            "referred": 0,
            "fever": 0,
            "green": 0,
            "yellow": 0,
            "red": 0,
            "total": len(rows),
        }
        threshold = self._s.settings.rules.fever_threshold
        for r in rows:
            if r["decision"] == Outcome.ADMIT:
                c[r["direction"]] += 1
            elif r["decision"] == Outcome.TURN_BACK:
                c["turned_back"] += 1
            elif r["decision"] == Outcome.DENY:
                c["denied"] += 1
            else:
                c["referred"] += 1
            if r["temperature"] is not None and r["temperature"] >= threshold:
                c["fever"] += 1
            if r["code_colour"] in ("green", "yellow", "red"):
                c[r["code_colour"]] += 1
        c["inside"] = self.inside_now()
        return c

    def body(self, r: dict[str, Any]) -> dict[str, Any]:
        """The record as it goes to the town server (decrypted; sealed in transit), made from
        the row in place: this runs once per record on every sync, and the row is the outbox's
        own copy."""
        decrypt, rid, pop = self._s.cipher.decrypt, r["id"], r.pop
        sealed = pop("sealed_enc", None)
        if sealed is not None:
            r.update(loads(decrypt(rid, "sealed", sealed) or "{}"))
        for f, column in _PERSONAL_COLUMNS:
            blob = pop(column, None)
            if blob is not None:
                r[f] = decrypt(rid, f, blob)
            elif f not in _WAS_PLAINTEXT:
                r[f] = None
        for k in LOCAL_ONLY:
            pop(k, None)
        reasons = r["reasons"]
        if isinstance(reasons, str):
            r["reasons"] = loads(reasons)
        return r


class VehiclePassages:
    _COLUMNS = (
        "id ts day shift_id checkpoint direction plate pass_no kind disinfected occupants "
        "decision reasons operator sealed_enc"
    ).split()

    def __init__(self, store: Store) -> None:
        self._s = store

    def record(
        self,
        *,
        direction: str,
        plate: str,
        pass_no: str | None,
        kind: str,
        disinfected: bool,
        occupants: list[tuple[PassageInput, Decision]],
        decision: Decision,
    ) -> tuple[str, list[PassageRow]]:
        """The vehicle and every occupant in one transaction: all or nothing."""
        s = self._s
        operator = s.require_operator().name
        ts = _now()
        vid = new_record_id()
        sealed = {
            "plate": plate.replace(" ", "").upper(),
            "pass_no": pass_no,
            "reasons": reasons_json(decision),
        }
        row = {
            "id": vid,
            "ts": ts.isoformat(timespec="milliseconds"),
            "day": ts.date().isoformat(),
            "shift_id": s.shifts.current_id(),
            "checkpoint": s.settings.checkpoint.code,
            "direction": direction,
            **_VEHICLE_BLANK,  # sealed: plate, pass number and reasons (the plate is in them)
            "kind": kind,
            "disinfected": int(disinfected),
            "occupants": len(occupants),
            "decision": decision.outcome.value,
            "operator": operator,
            "sealed_enc": s.cipher.encrypt(vid, "sealed", seal_json(sealed)),
        }
        stored = []
        with s.g.tx() as db:
            db.execute(
                f"INSERT INTO vehicle_passages({', '.join(self._COLUMNS)}) VALUES "
                f"({', '.join('?' * len(self._COLUMNS))})",
                [row[c] for c in self._COLUMNS],
            )
            for p, d in occupants:
                p.vehicle_id = vid
                # Each occupant's own decision (GateService.evaluate_vehicle gives them the
                # vehicle's own reasons): another occupant's fever is not theirs.
                stored.append(s.passages.record(p, d))
        return vid, stored

    def unseal(self, r: dict[str, Any]) -> dict[str, Any]:
        """The row with its plate, pass number and reasons opened, in place."""
        return unseal(self._s.cipher, r)

    def rows(self) -> list[dict[str, Any]]:
        """Every vehicle passage, unsealed, in insertion order."""
        return [
            self.unseal(r) for r in self._s.g.query("SELECT * FROM vehicle_passages ORDER BY rowid")
        ]

    def seal_plaintext(self) -> int:
        """Seal the plate, pass number and reasons of rows from before schema m005."""
        s = self._s
        rows = s.g.query(
            "SELECT id, plate, pass_no, reasons FROM vehicle_passages WHERE sealed_enc IS NULL"
        )
        if rows:
            with s.g.tx() as db:
                db.conn.executemany(
                    "UPDATE vehicle_passages SET sealed_enc = ?, plate = ?, pass_no = ?, "
                    "reasons = ? WHERE id = ?",
                    [
                        (
                            s.cipher.encrypt(
                                r["id"], "sealed", seal_json({k: r[k] for k in VEHICLE_SEALED})
                            ),
                            *(_VEHICLE_BLANK[k] for k in VEHICLE_SEALED),
                            r["id"],
                        )
                        for r in rows
                    ],
                )
        return len(rows)

    def body(self, r: dict[str, Any]) -> dict[str, Any]:
        out = self.unseal(dict(r))
        out["reasons"] = json.loads(out["reasons"])
        for k in ("sync_state", "sync_reason", "synced_at", "batch_id"):
            out.pop(k, None)
        return out

    def count_day(self, day: str) -> int:
        return self._s.g.scalar("SELECT count(*) FROM vehicle_passages WHERE day = ?", [day]) or 0
