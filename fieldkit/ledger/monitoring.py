"""Home monitoring (居家隔离 / 居家健康监测): twice-daily readings, due and overdue lists,
referral alerts for abnormal readings, missed-window alerts, release with a supervisor's PIN.

The windows come from ``[monitoring]`` (``morning_window``, ``evening_window``); the number of
days from ``[rules]`` (``isolation_days``, ``health_monitoring_days``).

One piece (~560 lines) because readings, due lists, alerts and release are one state machine
per person (a reading closes a window, a missed window opens an alert, release ends both); since
the ledger seals health status, place and readings, the filters and orders these lists need run
here after decryption, which added ~100 lines to the same state machine.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import InputError, PermissionDenied
from .base import reading_blob
from .homes import place_order
from .households import _iso, now_local
from .model import HOME_STATUSES, SYMPTOMS

if TYPE_CHECKING:
    from ..store import Store

SLOTS = ("morning", "evening")
MEASURED_BY = ("doctor", "self", "worker")
# How far back missed windows are looked for (covers 14+7 and 21+7 day periods).
MISSED_LOOKBACK_DAYS = 30
# Statuses a supervisor's release (解除) ends; the patrol member form routes 解除 here too.
RELEASABLE = ("central_isolation", *HOME_STATUSES, "daily_monitoring")


def parse_window(text: str) -> tuple[time, time]:
    start, end = text.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


@dataclass(frozen=True)
class DueItem:
    member_id: str
    household_id: str
    place: str  # building-unit-room
    name_masked: str | None
    id_masked: str | None
    status: str
    status_end: str | None
    slot: str
    state: str  # due | overdue | done
    last_temperature: float | None


class Monitoring:
    def __init__(self, store: Store) -> None:
        self._s = store

    # -- windows ------------------------------------------------------------------------------
    def windows(self) -> dict[str, tuple[time, time]]:
        m = self._s.settings.monitoring
        return {
            "morning": parse_window(m.morning_window),
            "evening": parse_window(m.evening_window),
        }

    def slot_for(self, ts: datetime) -> str:
        """The window a reading belongs to: the one it falls in, else the nearer one."""
        w = self.windows()
        t = ts.time()
        for slot, (start, end) in w.items():
            if start <= t <= end:
                return slot
        m_end = datetime.combine(ts.date(), w["morning"][1])
        e_start = datetime.combine(ts.date(), w["evening"][0])
        middle = (m_end + (e_start - m_end) / 2).time()
        return "morning" if t < middle else "evening"

    def _window_dt(self, day: date, slot: str, tz) -> tuple[datetime, datetime]:
        start, end = self.windows()[slot]
        return (datetime.combine(day, start, tzinfo=tz), datetime.combine(day, end, tzinfo=tz))

    # -- who is monitored ---------------------------------------------------------------------
    def _members(self, keep: Any, where: str = "", columns: str = "m.*") -> list[dict[str, Any]]:
        """Members (``columns``) whose decrypted profile ``keep`` accepts, with their
        household's place, in place order. Health status and place are sealed: the filter runs
        here, after decryption (each profile decrypted once per session and ciphertext)."""
        ledger = self._s.ledger
        ledger._c()
        rows = self._s.g.query(
            f"SELECT {columns}, h.grid, h.place_enc AS h_place_enc, h.building, h.unit, h.room "
            f"FROM members m JOIN households h ON h.id = m.household_id {where}"
        )
        out = []
        for r in rows:
            member = ledger.open_member(r)
            if not keep(member):
                continue
            place = ledger.place(
                {"id": r["household_id"], "place_enc": r.pop("h_place_enc")} | _place_cols(r)
            )
            out.append(member | place)
        return sorted(out, key=place_order)

    def monitored(self, today: str | None = None) -> list[dict[str, Any]]:
        """Members under home isolation or monitoring whose period has started."""
        today = today or now_local().date().isoformat()
        keys = (
            "id",
            "household_id",
            "name_masked",
            "id_masked",
            "health_status",
            "status_start",
            "status_end",
            "created_at",
            "building",
            "unit",
            "room",
        )
        return [
            {k: r[k] for k in keys}
            for r in self._members(
                lambda r: (
                    r["health_status"] in HOME_STATUSES
                    and (r["status_start"] is None or r["status_start"] <= today)
                ),
                "WHERE m.removed = 0",
                "m.id, m.household_id, m.profile_enc, m.created_at",
            )
        ]

    @staticmethod
    def _place(r: dict[str, Any]) -> str:
        return "-".join(p for p in (r["building"], r["unit"], r["room"]) if p)

    def due(self, now: datetime | None = None) -> list[DueItem]:
        """Today's windows that have opened: overdue first, then due, then done."""
        now = (now or now_local()).astimezone()
        today = now.date()
        rows = self.monitored(today.isoformat())
        taken = {
            (r["member_id"], r["slot"]): self._reading(r)["temperature"]
            for r in self._s.g.query(
                "SELECT id, member_id, slot, temperature, symptoms, reading_enc FROM readings "
                "WHERE day = ? ORDER BY ts",
                [today.isoformat()],
            )
        }
        device_start = self._device_start()
        since = self.home_since([r["id"] for r in rows])
        out = []
        for r in rows:
            if r["status_end"] and r["status_end"] < today.isoformat():
                continue  # period over: waits for release, not for readings
            known = self.known_since(r, device_start, since.get(r["id"]))
            for slot in SLOTS:
                start, end = self._window_dt(today, slot, now.tzinfo)
                if now < start:
                    continue
                if (r["id"], slot) in taken:
                    state = "done"
                elif now > end and not owed(end, known):
                    continue  # closed before the device knew the person: nobody's window
                else:
                    state = "due" if now <= end else "overdue"
                out.append(
                    DueItem(
                        r["id"],
                        r["household_id"],
                        self._place(r),
                        r["name_masked"],
                        r["id_masked"],
                        r["health_status"],
                        r["status_end"],
                        slot,
                        state,
                        taken.get((r["id"], slot)),
                    )
                )
        order = {"overdue": 0, "due": 1, "done": 2}
        return sorted(out, key=lambda d: (order[d.state], d.place, SLOTS.index(d.slot)))

    def upcoming(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Everyone under home monitoring now (period started, not released), in place order,
        with the next window that opens after ``now`` within their period: ``slot``, ``day``
        and ``opens`` ("HH:MM"); all three None when the period is over (waiting for release).
        Between the windows the due list is empty: this says who is still watched, and when."""
        now = (now or now_local()).astimezone()
        today = now.date()
        out = []
        for r in self.monitored(today.isoformat()):
            last = date.fromisoformat(r["status_end"]) if r["status_end"] else None
            nxt: tuple[date, str, datetime] | None = None
            for day in (today, today + timedelta(days=1)):
                if last is not None and day > last:
                    break
                for slot in SLOTS:
                    start, _ = self._window_dt(day, slot, now.tzinfo)
                    if start > now:
                        nxt = (day, slot, start)
                        break
                if nxt:
                    break
            out.append(
                {
                    "member_id": r["id"],
                    "household_id": r["household_id"],
                    "place": self._place(r),
                    "name_masked": r["name_masked"],
                    "id_masked": r["id_masked"],
                    "status": r["health_status"],
                    "status_end": r["status_end"],
                    "slot": nxt[1] if nxt else None,
                    "day": nxt[0].isoformat() if nxt else None,
                    "opens": nxt[2].strftime("%H:%M") if nxt else None,
                }
            )
        return out

    def ending(self, today: str | None = None) -> list[dict[str, Any]]:
        """Members whose planned end date has come: they wait for a supervisor's release."""
        today = today or now_local().date().isoformat()
        return [
            r | {"place": self._place(r)}
            for r in self.monitored(today)
            if r["status_end"] and r["status_end"] <= today
        ]

    # -- readings -----------------------------------------------------------------------------
    def record_reading(
        self,
        member_id: str,
        temperature: float | None,
        *,
        symptoms: list[str] | tuple[str, ...] = (),
        measured_by: str = "doctor",
        slot: str | None = None,
        notes: str | None = None,
        ts: datetime | None = None,
    ) -> dict[str, Any]:
        """Store one reading; an abnormal one (fever or a symptom) raises a referral alert."""
        s = self._s
        operator = s.require_operator().name
        rules = s.settings.rules
        if temperature is None and not symptoms:
            raise InputError("err.reading_needs_temperature")
        if (
            temperature is not None
            and not rules.temperature_min <= temperature <= rules.temperature_max
        ):
            raise InputError("err.temp_implausible", value=temperature)
        bad = [x for x in symptoms if x not in SYMPTOMS]
        if bad:
            raise InputError("err.symptom", value=bad[0])
        if measured_by not in MEASURED_BY:
            raise InputError("err.measured_by", allowed=", ".join(MEASURED_BY))
        if not s.g.scalar("SELECT 1 FROM members WHERE id = ?", [member_id]):
            raise InputError("err.no_member", id=member_id)
        ts = (ts or now_local()).astimezone()
        slot = slot or self.slot_for(ts)
        if slot not in SLOTS:
            raise InputError("err.slot", value=slot)
        abnormal = (temperature is not None and temperature >= rules.fever_threshold) or bool(
            symptoms
        )
        rid = str(uuid.uuid4())
        row = {
            "id": rid,
            "ts": _iso(ts),
            "day": ts.date().isoformat(),
            "checkpoint": s.settings.checkpoint.code,
            "member_id": member_id,
            "slot": slot,
            "temperature": None,  # sealed with the symptoms: reading_enc
            "symptoms": "[]",
            "measured_by": measured_by,
            "abnormal": int(abnormal),
            "operator": operator,
            "notes_enc": s.ledger._c().encrypt(rid, "notes", notes or None),
            "reading_enc": reading_blob(s.cipher, rid, temperature, list(symptoms)),
        }
        alert_id = None
        with s.g.tx() as db:
            db.execute(
                f"INSERT INTO readings({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
            if abnormal:
                alert_id = self._alert(
                    db,
                    member_id,
                    "referral",
                    ts,
                    slot=slot,
                    reading_id=rid,
                    detail={
                        "temperature": temperature,
                        "symptoms": list(symptoms),
                        "threshold": rules.fever_threshold,
                        "call": rules.emergency_number,
                    },
                )
        return {k: v for k, v in row.items() if not k.endswith("_enc")} | {
            "temperature": temperature,
            "symptoms": list(symptoms),
            "abnormal": abnormal,
            "alert_id": alert_id,
        }

    def readings(self, member_id: str, limit: int = 60) -> list[dict[str, Any]]:
        rows = self._s.g.query(
            "SELECT * FROM readings WHERE member_id = ? ORDER BY ts DESC LIMIT ?",
            [member_id, limit],
        )
        return [
            {k: v for k, v in r.items() if not k.endswith("_enc")} | self._reading(r) for r in rows
        ]

    def _reading(self, r: dict[str, Any]) -> dict[str, Any]:
        """temperature and symptoms (a list) of a reading row (``reading_enc``)."""
        if r.get("reading_enc") is None:
            return {"temperature": r["temperature"], "symptoms": json.loads(r["symptoms"])}
        c = self._s.ledger._c()
        return json.loads(c.decrypt(r["id"], "reading", r["reading_enc"]) or "{}")

    def reading_body(self, r: dict[str, Any]) -> dict[str, Any]:
        """The reading as it goes to the town server. Only what the reading row holds, so its
        content hash never changes (the person is linked by ``member_id``; the member's own
        ``ledger_edit`` events carry the ID number)."""
        body = {
            k: v
            for k, v in r.items()
            if not k.endswith("_enc")
            and k not in ("sync_state", "sync_reason", "synced_at", "batch_id")
        }
        body.update(self._reading(r))
        body["notes"] = self._s.ledger._c().decrypt(r["id"], "notes", r.get("notes_enc"))
        return body

    # -- alerts -------------------------------------------------------------------------------
    def _alert(
        self,
        db,
        member_id: str,
        kind: str,
        ts: datetime,
        *,
        slot: str | None = None,
        reading_id: str | None = None,
        detail: dict[str, Any] | None = None,
        day: str | None = None,
    ) -> str | None:
        aid = str(uuid.uuid4())
        cur = db.execute(
            "INSERT OR IGNORE INTO monitoring_alerts(id, ts, day, checkpoint, member_id, kind, "
            "slot, reading_id, detail, detail_enc) VALUES (?,?,?,?,?,?,?,?,'{}',?)",
            [
                aid,
                _iso(ts),
                day or ts.date().isoformat(),
                self._s.settings.checkpoint.code,
                member_id,
                kind,
                slot,
                reading_id,
                self._s.ledger._c().encrypt(
                    aid, "detail", json.dumps(detail or {}, ensure_ascii=False)
                ),
            ],
        )
        return aid if cur.rowcount else None

    def missed_on(self, day: str) -> int:
        """Reading windows of ``day`` that were missed (the "missed" alerts), for reports."""
        return int(
            self._s.g.scalar(
                "SELECT count(*) FROM monitoring_alerts WHERE kind = 'missed' AND day = ?", [day]
            )
            or 0
        )

    def referrals_on(self, day: str) -> int:
        """Referral alerts (fever or symptoms at a home reading) raised on ``day``, for reports."""
        return int(
            self._s.g.scalar(
                "SELECT count(*) FROM monitoring_alerts WHERE kind = 'referral' AND day = ?", [day]
            )
            or 0
        )

    def check_missed(self, now: datetime | None = None) -> int:
        """Raise one alert per window that closed without a reading; returns how many are new."""
        now = (now or now_local()).astimezone()
        today = now.date()
        s = self._s
        members = self.monitored(today.isoformat())
        if not members:
            return 0
        first = today - timedelta(days=MISSED_LOOKBACK_DAYS)
        taken = {
            (r["member_id"], r["day"], r["slot"])
            for r in s.g.query(
                "SELECT member_id, day, slot FROM readings WHERE day >= ?", [first.isoformat()]
            )
        }
        device_start = self._device_start()
        since = self.home_since([m["id"] for m in members])
        new = 0
        with s.g.tx() as db:
            for m in members:
                start = date.fromisoformat(m["status_start"]) if m["status_start"] else first
                end = date.fromisoformat(m["status_end"]) if m["status_end"] else today
                known = self.known_since(m, device_start, since.get(m["id"]))
                day = max(start, first, known.date() if known else first)
                while day <= min(end, today):
                    for slot in SLOTS:
                        _, closes = self._window_dt(day, slot, now.tzinfo)
                        if not owed(closes, known):
                            continue
                        missed = closes < now and (m["id"], day.isoformat(), slot) not in taken
                        if missed and self._alert(
                            db,
                            m["id"],
                            "missed",
                            now,
                            slot=slot,
                            day=day.isoformat(),
                            detail={"window": slot, "day": day.isoformat()},
                        ):
                            new += 1
                    day += timedelta(days=1)
        return new

    @staticmethod
    def known_since(
        member: dict[str, Any], device_start: datetime | None, home_since: datetime | None = None
    ) -> datetime | None:
        """Since when this device has known that ``member`` is to be monitored: their ledger
        entry here, the edit that last put them under a home status (``home_since``, from
        :meth:`home_since`), at the earliest the device's first set-up. Windows that closed
        before were nobody's to keep."""
        return max(
            filter(None, (_when(member.get("created_at")), device_start, home_since)),
            default=None,
        )

    def home_since(self, member_ids: list[str]) -> dict[str, datetime]:
        """When each member last came under a home status from none (their ledger edits, in
        order): a person on the ledger for days who is put under home monitoring at 15:00 owed
        no morning window that day. A switch between home statuses (isolation → monitoring)
        keeps the first time; a release and a new start count from the new start. Members
        whose edits never name a status (pulled from the town) are not in the result."""
        out: dict[str, datetime] = {}
        home: dict[str, bool] = {}
        decrypt = self._s.ledger._c().decrypt
        for i in range(0, len(member_ids), 500):
            chunk = member_ids[i : i + 500]
            for r in self._s.g.query(
                "SELECT id, ts, entity_id, changes_enc FROM ledger_edits WHERE entity = 'member' "
                f"AND entity_id IN ({', '.join('?' * len(chunk))}) ORDER BY ts, version",
                chunk,
            ):
                changes = json.loads(decrypt(r["id"], "changes", r["changes_enc"]) or "{}")
                if "health_status" not in changes:
                    continue
                mid, now_home = r["entity_id"], changes["health_status"] in HOME_STATUSES
                if now_home and not home.get(mid) and (when := _when(r["ts"])):
                    out[mid] = when
                home[mid] = now_home
        return out

    def _device_start(self) -> datetime | None:
        """When this device was first set up (its first operator)."""
        return _when(self._s.g.scalar("SELECT min(created_at) FROM operators"))

    def alerts(self, *, open_only: bool = True, limit: int = 200) -> list[dict[str, Any]]:
        where = "WHERE a.acknowledged_at IS NULL" if open_only else ""
        ledger = self._s.ledger
        ledger._c()
        rows = []
        # Place and masked names are sealed: the last sort keys (building, unit, room) and the
        # limit apply after decryption.
        for r in self._s.g.query(
            f"SELECT a.*, m.household_id AS m_household_id, m.profile_enc, m.name_masked, "
            f"m.id_masked, m.categories, m.health_status, h.place_enc AS h_place_enc, "
            f"h.building, h.unit, h.room "
            f"FROM monitoring_alerts a JOIN members m ON m.id = a.member_id "
            f"JOIN households h ON h.id = m.household_id {where}"
        ):
            hid = r.pop("h_place_enc")
            place = ledger.place({"id": r.pop("m_household_id"), "place_enc": hid} | _place_cols(r))
            profile = ledger.profile(r, "member_id")
            r.pop("profile_enc")
            for k in ("categories", "health_status"):
                r.pop(k)
            r |= place | {"name_masked": profile["name_masked"], "id_masked": profile["id_masked"]}
            rows.append(r)
        rows.sort(key=place_order)
        rows.sort(
            key=lambda r: (
                r["kind"] == "referral",
                r["day"],
                -1 if r["slot"] is None else r["slot"] == "evening",
                r["ts"],
            ),
            reverse=True,  # stable: equal keys keep the place order
        )
        return [
            {k: v for k, v in r.items() if not k.endswith("_enc")}
            | {"detail": self._detail(r), "place": self._place(r)}
            for r in rows[:limit]
        ]

    def _detail(self, r: dict[str, Any]) -> dict[str, Any]:
        if r.get("detail_enc") is None:
            return json.loads(r["detail"])
        c = self._s.ledger._c()
        return json.loads(c.decrypt(r["id"], "detail", r["detail_enc"]) or "{}")

    def acknowledge(self, alert_id: str, note: str | None = None) -> None:
        s = self._s
        op = s.require_operator().name
        with s.g.tx() as db:
            cur = db.execute(
                "UPDATE monitoring_alerts SET acknowledged_by = ?, acknowledged_at = ? "
                "WHERE id = ? AND acknowledged_at IS NULL",
                [op, _iso(now_local()), alert_id],
            )
            if not cur.rowcount:
                raise InputError("err.no_alert", id=alert_id)
            s.audit.append("alert_ack", op, {"monitoring_alert": alert_id, "note": bool(note)})

    def alert_body(self, r: dict[str, Any]) -> dict[str, Any]:
        """The alert as raised; acknowledging it later is local (and audited), so the content
        hash stays the same."""
        body = {
            k: v
            for k, v in r.items()
            if k
            not in (
                "detail_enc",
                "sync_state",
                "sync_reason",
                "synced_at",
                "batch_id",
                "acknowledged_by",
                "acknowledged_at",
            )
        }
        body["detail"] = self._detail(r)
        return body

    # -- release (期满解除) ---------------------------------------------------------------------
    def release(
        self,
        member_id: str,
        supervisor: str,
        pin: str,
        *,
        early_reason: str | None = None,
        today: str | None = None,
    ) -> None:
        """End home isolation/monitoring (or central isolation, daily monitoring). Needs a
        supervisor's PIN; before the planned end date also a reason. Clears the gate's alert for
        this person; audited."""
        s = self._s
        op = s.require_operator().name
        member = s.ledger.member(member_id)
        if member is None:
            raise InputError("err.no_member", id=member_id)
        if member.health_status not in RELEASABLE:
            raise InputError("err.nothing_to_release")
        confirmer = s.keyring.verify_pin(supervisor, pin)
        if not confirmer.is_supervisor:
            raise PermissionDenied("err.release_needs_supervisor", name=supervisor)
        today = today or now_local().date().isoformat()
        early = bool(member.status_end and today < member.status_end)
        if early and not (early_reason or "").strip():
            raise InputError("err.early_release_reason", end=member.status_end)
        with s.g.tx():
            s.ledger.save_member(
                member.household_id,
                {"health_status": "released", "status_end": today},
                member_id=member_id,
                source="release",
            )
            s.audit.append(
                "monitoring_release",
                op,
                {
                    "member": member_id,
                    "confirmed_by": confirmer.name,
                    "from": member.health_status,
                    "planned_end": member.status_end,
                    "early": early,
                    "reason": (early_reason or "").strip() or None,
                },
            )

    # -- the monitoring ledger (居家监测台账) ----------------------------------------------------
    def ledger_rows(self, since: str | None = None) -> list[dict[str, Any]]:
        """One row per person ever under home isolation/monitoring, readings per day."""
        with_readings = {
            r["member_id"] for r in self._s.g.query("SELECT DISTINCT member_id FROM readings")
        }
        rows = self._members(
            lambda r: (
                r["health_status"] in ("home_isolation", "home_monitoring")
                or r["id"] in with_readings
            )
        )
        readings: dict[Any, Any] = {}
        for r in self._s.g.query(
            "SELECT id, member_id, day, slot, temperature, symptoms, abnormal, reading_enc "
            "FROM readings WHERE day >= ? ORDER BY ts",
            [since or "0000-00-00"],
        ):
            opened = self._reading(r)
            readings.setdefault(r["member_id"], []).append(
                {
                    "member_id": r["member_id"],
                    "day": r["day"],
                    "slot": r["slot"],
                    "temperature": opened["temperature"],
                    "symptoms": opened["symptoms"],
                    "abnormal": r["abnormal"],
                }
            )
        return [r | {"readings": readings.get(r["id"], []), "place": self._place(r)} for r in rows]


def _place_cols(r: dict[str, Any]) -> dict[str, Any]:
    return {"building": r["building"], "unit": r["unit"], "room": r["room"]}


def owed(closes: datetime, known: datetime | None) -> bool:
    """Whether a window closing at ``closes`` was the person's to keep: not when it closed
    before this device knew them (imported already under monitoring, added later in the day,
    or before the device was set up). The one rule for 漏测 alerts and the 超时 state."""
    return known is None or closes > known


def _when(text: str | None) -> datetime | None:
    """A stored timestamp as an aware datetime (None when absent or unreadable)."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.astimezone()
