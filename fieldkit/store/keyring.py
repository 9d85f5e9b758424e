"""Operators, PINs and the keys they unlock.

One random *master secret* (data key of the current epoch ‖ blind-index key) opens the store.
Every operator has an X25519 key pair: the private half is wrapped with a key derived from the
PIN (Argon2id by default, parameters in ``[security]``; rows made with scrypt still open and are
rewrapped with the configured KDF at the next successful login), the master secret is sealed to
the public half. So a supervisor can hand a *new* master secret to every remaining operator
without knowing their PINs: removing an operator starts a new data-key epoch (new records are
sealed under a key the removed PIN never saw; older epochs' keys are kept wrapped under the new
one), and the removed operator's wrap is destroyed.

Where the machine has a TPM 2.0, a device secret sealed to it (:mod:`.tpm`; the sealed blob is
kept in ``fieldkit_meta``) is mixed into every PIN key, so the file alone is useless.

Wrong PINs are counted in the database, atomically (one ``BEGIN IMMEDIATE`` transaction per
wrong PIN, so parallel guesses each count): after
``max_pin_failures`` the operator is locked out for ``lockout_seconds``, doubling with every
further wrong PIN (at most a day).

One piece (~570 lines): operators, wraps, key epochs and lock-out are one security boundary,
read and reviewed together.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import SecuritySettings
from ..crypto import (
    derive_pin_key,
    derive_pin_key_argon2id,
    hkdf,
    new_key,
    new_keypair,
    open_sealed,
    recovery_kek,
    seal,
    unwrap,
    wrap,
)
from ..errors import AuthError, InputError, LockedError, PermissionDenied, TamperedError
from . import tpm
from .audit import AuditLog
from .db import Guarded

ROLES = ("gate", "patrol", "supervisor")
MAX_LOCKOUT = 86_400
_LABEL = "fieldkit-master-v1"  # legacy: the master wrapped directly under the PIN key
_KEY_LABEL = "fieldkit-operator-key-v1"  # an operator's X25519 private key under the PIN key
_SEAL_LABEL = "fieldkit-master-seal-v1"  # the master secret sealed to an operator's public key


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _epoch_label(epoch: int) -> str:
    return f"fieldkit-epoch-{epoch}"


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    created_at: str
    last_login: str | None
    failures: int
    locked_until: float

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


def _tpm_id(row: dict) -> str | None:
    """The TPM seal an operator's wrap mixes in (``kdf_params["tpm"]``), if any."""
    return json.loads(row["kdf_params"]).get("tpm") if row["kdf_params"] else None


def check_pin_shape(pin: str, min_length: int = 6) -> None:
    """A new PIN: digits only, ``min_length`` to 64 of them. The login screen sends a letter
    typed into an empty PIN field to the operator's name (a supervisor typing her name there
    had it counted as the previous operator's wrong PIN), so a PIN must be typable as digits."""
    if pin and not (pin.isdigit() and pin.isascii()):
        raise InputError("security.err.pin_digits")
    if len(pin) < min_length:
        raise InputError("security.err.pin_short", min=min_length)
    if len(pin) > 64:
        raise InputError("err.pin_long", max=64)


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 40 or any(c in name for c in "\n\r\t"):
        raise InputError("err.operator_name")
    return name


class Keyring:
    def __init__(self, g: Guarded, audit: AuditLog, security: SecuritySettings) -> None:
        self._g = g
        self._audit = audit
        self._sec = security
        # Set by the store: the session's master secret, and what to do when it changes.
        self.session_master: Callable[[], bytes | None] = lambda: None
        self.on_rekey: Callable[[bytes], None] = lambda master: None

    def _check_pin(self, pin: str) -> None:
        check_pin_shape(pin, self._sec.min_pin_length)

    # -- reading ------------------------------------------------------------------------
    def _row(self, name: str) -> dict | None:
        rows = self._g.query(
            "SELECT * FROM operators WHERE name = ? AND removed_at IS NULL", [name]
        )
        return rows[0] if rows else None

    @staticmethod
    def _operator(row: dict) -> Operator:
        return Operator(
            row["name"],
            row["role"],
            row["created_at"],
            row["last_login"],
            row["failures"],
            row["locked_until"],
        )

    def get(self, name: str) -> Operator | None:
        row = self._row(name)
        return self._operator(row) if row else None

    def list(self) -> list[Operator]:
        return [
            self._operator(r)
            for r in self._g.query(
                "SELECT * FROM operators WHERE removed_at IS NULL ORDER BY role DESC, name"
            )
        ]

    def count(self) -> int:
        return self._g.scalar("SELECT count(*) FROM operators WHERE removed_at IS NULL") or 0

    def protection(self) -> dict[str, Any]:
        """What protects the keys at rest: KDF of each live wrap (``+tpm`` when the TPM's
        device secret is mixed in), the TPM state (:meth:`tpm_state`) and the key epoch."""
        kdfs: dict[str, int] = {}
        for r in self._g.query(
            "SELECT kdf, pubkey IS NOT NULL AS pubkey, kdf_params FROM operators"
            " WHERE removed_at IS NULL AND length(wrapped) > 0"
        ):
            label = r["kdf"] + ("+tpm" if _tpm_id(r) else "")
            label += "" if r["pubkey"] else " (legacy)"
            kdfs[label] = kdfs.get(label, 0) + 1
        return {
            "kdf": kdfs,
            "epoch": self.current_epoch(),
            "tpm": self.tpm_state(),
            "min_pin_length": self._sec.min_pin_length,
        }

    # -- TPM ------------------------------------------------------------------------------
    def _tpm_seal(self) -> dict[str, str] | None:
        raw = self._g.scalar("SELECT value FROM fieldkit_meta WHERE key = 'tpm_seal'")
        return json.loads(raw) if raw else None

    def tpm_state(self) -> str:
        """``active`` (this store's device secret is sealed to this machine's TPM and opens),
        ``foreign`` (sealed to another TPM, or this one was cleared: no PIN opens this copy),
        ``ready`` (a TPM here; the store is sealed to it at the next login), ``none``,
        ``off`` or ``unavailable: reason``."""
        seal = self._tpm_seal()
        if seal is None:
            state = tpm.machine_state()
            if state != "present":
                return state
            why = tpm.probe()
            return f"unavailable: {why}" if why else "ready"
        try:
            tpm.unseal(base64.b64decode(seal["blob"]))
        except AuthError as exc:
            if exc.code == "tpm.err.foreign":
                return "foreign"
            return f"unavailable: {exc.params.get('why', exc.code)}"
        return "active"

    def _tpm_secret(self, seal_id: str) -> bytes:
        seal = self._tpm_seal()
        if seal is None or seal["id"] != seal_id:  # sealed again after a recovery
            raise AuthError("tpm.err.resealed")
        return tpm.unseal(base64.b64decode(seal["blob"]))

    def _seal_to_tpm(self, db) -> None:
        """Seal a new device secret to this machine's TPM; wraps made from now on mix it in.
        No TPM, FIELDKIT_TPM=off, or a TPM that refuses (status: ``unavailable``): the store
        is not sealed and keeps working on the PIN alone."""
        db.execute("DELETE FROM fieldkit_meta WHERE key = 'tpm_seal'")
        if tpm.machine_state() != "present":
            return
        try:
            blob = tpm.seal(new_key())
        except AuthError:
            return
        db.execute(
            "INSERT INTO fieldkit_meta(key, value) VALUES ('tpm_seal', ?)",
            [json.dumps({"id": os.urandom(8).hex(), "blob": base64.b64encode(blob).decode()})],
        )

    def _tpm_opens(self) -> bool:
        seal = self._tpm_seal()
        if seal is None:
            return False
        try:
            self._tpm_secret(seal["id"])
        except AuthError:
            return False
        return True

    # -- epochs ---------------------------------------------------------------------------
    def current_epoch(self) -> int:
        top = self._g.scalar("SELECT max(epoch) FROM key_epochs")
        return 0 if top is None else top + 1

    def epoch_keys(self, master: bytes) -> tuple[int, dict[int, bytes]]:
        """(current epoch, {older epoch: its data key}) for this master secret."""
        older: dict[int, bytes] = {}
        for row in self._g.query("SELECT epoch, wrapped FROM key_epochs ORDER BY epoch"):
            key = unwrap(master[:32], row["wrapped"], _epoch_label(row["epoch"]))
            if key is None:
                raise TamperedError("security.err.epoch_damaged", epoch=row["epoch"])
            older[row["epoch"]] = key
        return self.current_epoch(), older

    # -- wrapping -----------------------------------------------------------------------
    def _kek(self, pin: str, salt: bytes, kdf: str, params: dict[str, Any]) -> bytes:
        if kdf == "argon2id":
            kek = derive_pin_key_argon2id(pin, salt, params["t"], params["m"], params["p"])
        else:
            kek = derive_pin_key(pin, salt, params["n"], params["r"], params["p"])
        if params.get("tpm"):
            kek = hkdf(kek + self._tpm_secret(str(params["tpm"])), "fieldkit-pin-tpm-v1")
        return kek

    def _configured_kdf(self) -> tuple[str, dict[str, Any]]:
        s = self._sec
        if s.kdf == "argon2id":
            params: dict[str, Any] = {
                "t": s.argon2_time_cost,
                "m": s.argon2_memory_kib,
                "p": s.argon2_parallelism,
            }
        else:
            params = {"n": s.scrypt_n, "r": s.scrypt_r, "p": s.scrypt_p}
        seal = self._tpm_seal()
        if seal is not None:
            params["tpm"] = seal["id"]
        return s.kdf, params

    def _wrap_for(self, pin: str, master: bytes) -> dict[str, Any]:
        """The columns of one operator's wrap: PIN KDF, wrapped private key, sealed master."""
        kdf, params = self._configured_kdf()
        salt = os.urandom(16)
        private, public = new_keypair()
        return {
            "salt": salt,
            "kdf": kdf,
            "kdf_params": json.dumps(params, sort_keys=True),
            "wrapped": wrap(self._kek(pin, salt, kdf, params), private, _KEY_LABEL),
            "pubkey": public,
            "sealed": seal(public, master, _SEAL_LABEL),
        }

    def _insert(self, db, name: str, role: str, pin: str, master: bytes, by: str | None) -> None:
        w = self._wrap_for(pin, master)
        db.execute(
            "INSERT INTO operators(name, role, salt, wrapped, scrypt_n, scrypt_r, scrypt_p,"
            " kdf, kdf_params, pubkey, sealed, created_at, created_by)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET"
            " role=excluded.role, salt=excluded.salt, wrapped=excluded.wrapped,"
            " scrypt_n=excluded.scrypt_n, scrypt_r=excluded.scrypt_r, scrypt_p=excluded.scrypt_p,"
            " kdf=excluded.kdf, kdf_params=excluded.kdf_params, pubkey=excluded.pubkey,"
            " sealed=excluded.sealed, created_at=excluded.created_at,"
            " created_by=excluded.created_by, failures=0, locked_until=0, removed_at=NULL,"
            " last_login=NULL",
            [
                name,
                role,
                w["salt"],
                w["wrapped"],
                self._sec.scrypt_n,
                self._sec.scrypt_r,
                self._sec.scrypt_p,
                w["kdf"],
                w["kdf_params"],
                w["pubkey"],
                w["sealed"],
                _now(),
                by,
            ],
        )

    def _open(self, row: dict, pin: str) -> bytes | None:
        """The master secret this row's wrap holds for ``pin``, or None when the PIN is wrong."""
        if row["kdf_params"]:
            params = json.loads(row["kdf_params"])
        else:  # a row from before Argon2id: scrypt with the row's own parameters
            params = {"n": row["scrypt_n"], "r": row["scrypt_r"], "p": row["scrypt_p"]}
        kek = self._kek(pin, row["salt"], row["kdf"], params)
        if row["pubkey"] is None:
            return unwrap(kek, row["wrapped"], _LABEL)
        private = unwrap(kek, row["wrapped"], _KEY_LABEL)
        if private is None:
            return None
        master = open_sealed(private, row["sealed"] or b"", _SEAL_LABEL)
        if master is None:
            raise TamperedError("security.err.seal_damaged", name=row["name"])
        return master

    def _needs_rewrap(self, row: dict) -> bool:
        kdf, params = self._configured_kdf()
        if row["pubkey"] is None or row["kdf"] != kdf or not row["kdf_params"]:
            return True
        return json.loads(row["kdf_params"]) != params

    def create_first(self, supervisor: str, pin: str) -> tuple[bytes, str]:
        """First set-up: the master secret, the supervisor, the recovery key (returned once)."""
        from ..crypto import new_recovery_key

        supervisor = check_name(supervisor)
        self._check_pin(pin)
        if self.count():
            raise AuthError("err.already_has_operators")
        master = new_key() + new_key()
        recovery = new_recovery_key()
        rsalt = os.urandom(16)
        private, public = new_keypair()
        with self._g.tx() as db:
            self._seal_to_tpm(db)
            self._insert(db, supervisor, "supervisor", pin, master, None)
            # Setting up is the supervisor's first log-in: the operators list said 上次登录
            # 从未 for the supervisor using it (trial of stop 21).
            db.execute("UPDATE operators SET last_login=? WHERE name=?", [_now(), supervisor])
            db.execute(
                "INSERT INTO recovery(id, salt, wrapped, pubkey, sealed, created_at)"
                " VALUES (1, ?, ?, ?, ?, ?)",
                [
                    rsalt,
                    wrap(recovery_kek(recovery, rsalt), private, _KEY_LABEL),
                    public,
                    seal(public, master, _SEAL_LABEL),
                    _now(),
                ],
            )
            self._audit.use_master(master, {})
            self._audit.append("setup", supervisor, {"operator": supervisor})
        return master, recovery

    # -- unlocking ----------------------------------------------------------------------
    def _refuse_if_locked(self, name: str, locked_until: float, now: float) -> None:
        if locked_until > now:
            wait = int(locked_until - now) + 1
            raise LockedError("err.locked", locked_until, name=name, seconds=wait)

    def _count_failure(self, name: str, now: float) -> None:
        """One wrong PIN, counted in one ``BEGIN IMMEDIATE`` transaction: parallel wrong PINs
        each add one (a read-then-write would let them overwrite each other's count)."""
        with self._g.tx() as db:
            failures = db.execute(
                "UPDATE operators SET failures = failures + 1 WHERE name = ? RETURNING failures",
                [name],
            ).fetchone()[0]
            over = failures - self._sec.max_pin_failures
            locked_until = 0.0
            if over >= 0:
                locked_until = now + min(MAX_LOCKOUT, self._sec.lockout_seconds * 2**over)
                db.execute(
                    "UPDATE operators SET locked_until = max(locked_until, ?) WHERE name = ?",
                    [locked_until, name],
                )
            self._audit.append("login_failed", name, {"failures": failures})
            if locked_until:
                self._audit.append("lockout", name, {"seconds": int(locked_until - now)})
        if locked_until:
            raise LockedError(
                "err.locked_now",
                locked_until,
                name=name,
                failures=failures,
                seconds=int(locked_until - now),
            )
        left = self._sec.max_pin_failures - failures
        raise AuthError("err.wrong_pin", name=name, left=left)

    def unlock(self, name: str, pin: str) -> tuple[Operator, bytes]:
        row = self._row(name)
        if row is None:
            raise AuthError("err.unknown_operator", name=name)
        now = time.time()
        self._refuse_if_locked(name, row["locked_until"], now)
        if not row["wrapped"]:
            raise AuthError("security.err.needs_reset", name=name)
        master = self._open(row, pin)
        if master is None:
            self._count_failure(name, now)
        assert master is not None
        with self._g.tx() as db:
            # A flood of wrong PINs in parallel may have locked the operator meanwhile.
            current = db.execute(
                "SELECT locked_until FROM operators WHERE name = ?", [name]
            ).fetchone()
            self._refuse_if_locked(name, current[0] if current else 0.0, time.time())
            db.execute(
                "UPDATE operators SET failures=0, locked_until=0, last_login=? WHERE name=?",
                [_now(), name],
            )
            self._audit.use_master(master, self.epoch_keys(master)[1])
            if self._tpm_seal() is None and tpm.machine_state() == "present":
                self._seal_to_tpm(db)  # a store made before this machine's TPM was used
            if self._needs_rewrap(row):
                self._rewrap(db, row, pin, master)
            self._audit.append("login", name, {"role": row["role"]})
        return self._operator({**row, "failures": 0, "locked_until": 0.0}), master

    def _rewrap(self, db, row: dict, pin: str, master: bytes) -> None:
        """A wrap made with another KDF (scrypt before Argon2id) or other parameters is made
        again with the configured ones, now that the PIN is known to be right."""
        w = self._wrap_for(pin, master)
        db.execute(
            "UPDATE operators SET salt=?, wrapped=?, kdf=?, kdf_params=?, pubkey=?, sealed=?"
            " WHERE name=?",
            [
                w["salt"],
                w["wrapped"],
                w["kdf"],
                w["kdf_params"],
                w["pubkey"],
                w["sealed"],
                row["name"],
            ],
        )
        tpm_from, tpm_to = ("+tpm" if _tpm_id(r) else "" for r in (row, w))
        self._audit.append(
            "pin_rewrap", row["name"], {"from": row["kdf"] + tpm_from, "to": w["kdf"] + tpm_to}
        )

    def verify_pin(self, name: str, pin: str) -> Operator:
        """Check a PIN (e.g. the supervisor confirming a mode change); counts failures too."""
        op, _ = self.unlock(name, pin)
        return op

    # -- supervisor actions -------------------------------------------------------------
    def add(self, actor: Operator, master: bytes, name: str, role: str, pin: str) -> Operator:
        self._need_supervisor(actor)
        name = check_name(name)
        if role not in ROLES:
            raise InputError("err.role", value=role, allowed=", ".join(ROLES))
        self._check_pin(pin)
        if self._row(name):
            raise InputError("err.operator_exists", name=name)
        with self._g.tx() as db:
            self._insert(db, name, role, pin, master, actor.name)
            self._audit.append("operator_add", actor.name, {"operator": name, "role": role})
        return self.get(name)  # type: ignore[return-value]

    def remove(self, actor: Operator, name: str, master: bytes | None = None) -> None:
        """Remove an operator and rotate the data key: new records go under a new epoch,
        older epochs' keys are rewrapped under it, the master secret is sealed again to every
        remaining operator (and the recovery key); the removed operator's wrap is destroyed."""
        self._need_supervisor(actor)
        row = self._row(name)
        if row is None:
            raise InputError("err.no_operator", name=name)
        if (
            row["role"] == "supervisor"
            and self._g.scalar(
                "SELECT count(*) FROM operators WHERE role='supervisor' AND removed_at IS NULL"
            )
            <= 1
        ):
            raise InputError("err.last_supervisor")
        master = master or self.session_master()
        if master is None:
            raise AuthError("err.session_locked")
        new_master = new_key() + master[32:]
        with self._g.tx() as db:
            epoch, older = self.epoch_keys(master)
            older[epoch] = master[:32]
            db.execute("DELETE FROM key_epochs")
            db.conn.executemany(
                "INSERT INTO key_epochs(epoch, wrapped, created_at) VALUES (?,?,?)",
                [(e, wrap(new_master[:32], k, _epoch_label(e)), _now()) for e, k in older.items()],
            )
            # The wrapped key is destroyed: the removed operator's PIN opens nothing any more.
            db.execute(
                "UPDATE operators SET removed_at=?, wrapped=x'', salt=x'', pubkey=NULL,"
                " sealed=NULL WHERE name=?",
                [_now(), name],
            )
            stale = []
            for other in db.execute(
                "SELECT name, pubkey FROM operators WHERE removed_at IS NULL"
                " AND length(wrapped) > 0"
            ).fetchall():
                if other[1] is None:  # a wrap from before key pairs: it cannot take the new key
                    stale.append(other[0])
                    db.execute(
                        "UPDATE operators SET wrapped=x'', salt=x'' WHERE name=?", [other[0]]
                    )
                else:
                    db.execute(
                        "UPDATE operators SET sealed=? WHERE name=?",
                        [seal(other[1], new_master, _SEAL_LABEL), other[0]],
                    )
            rec = db.execute("SELECT pubkey FROM recovery WHERE id = 1").fetchone()
            if rec and rec[0] is not None:
                db.execute(
                    "UPDATE recovery SET sealed=? WHERE id = 1",
                    [seal(rec[0], new_master, _SEAL_LABEL)],
                )
            self._audit.use_master(new_master, {**older})
            self._audit.append(
                "operator_remove",
                actor.name,
                {"operator": name, "key_epoch": epoch + 1, "needs_pin_reset": stale},
            )
        self.on_rekey(new_master)

    def reset_pin(self, actor: Operator, master: bytes, name: str, pin: str) -> None:
        self._need_supervisor(actor)
        row = self._row(name)
        if row is None:
            raise InputError("err.no_operator", name=name)
        self._check_pin(pin)
        with self._g.tx() as db:
            self._insert(db, name, row["role"], pin, master, actor.name)
            self._audit.append("operator_reset_pin", actor.name, {"operator": name})

    def change_own_pin(self, actor: Operator, master: bytes, pin: str) -> None:
        self._check_pin(pin)
        with self._g.tx() as db:
            self._insert(db, actor.name, actor.role, pin, master, actor.name)
            self._audit.append("pin_change", actor.name, {})

    def recover(self, recovery_key: str, supervisor: str, new_pin: str) -> bytes:
        """Rewrap the master secret for a supervisor from the printed recovery key."""
        rows = self._g.query("SELECT salt, wrapped, pubkey, sealed FROM recovery WHERE id = 1")
        if not rows:
            raise AuthError("err.no_recovery_key")
        r = rows[0]
        kek = recovery_kek(recovery_key, r["salt"])
        if r["pubkey"] is None:  # a recovery wrap from before key pairs
            if self.current_epoch() > 0:
                raise AuthError("security.err.recovery_stale")
            master = unwrap(kek, r["wrapped"], _LABEL)
        else:
            private = unwrap(kek, r["wrapped"], _KEY_LABEL)
            master = open_sealed(private, r["sealed"] or b"", _SEAL_LABEL) if private else None
        if master is None:
            with self._g.tx():
                self._audit.append("recovery_failed", supervisor, {})
            raise AuthError("err.recovery_wrong")
        supervisor = check_name(supervisor)
        self._check_pin(new_pin)
        with self._g.tx() as db:
            self._audit.use_master(master, self.epoch_keys(master)[1])
            if not self._tpm_opens():  # moved to a new machine, or its TPM was cleared
                self._seal_to_tpm(db)
            self._insert(db, supervisor, "supervisor", new_pin, master, "recovery-key")
            tpm_sealed = self._tpm_seal() is not None
            self._audit.append("recovery", supervisor, {"operator": supervisor, "tpm": tpm_sealed})
        return master

    @staticmethod
    def _need_supervisor(actor: Operator) -> None:
        if not actor.is_supervisor:
            raise PermissionDenied("err.not_supervisor", name=actor.name)
