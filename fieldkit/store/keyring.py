"""Operators, PINs and the keys they unlock.

One random *master secret* (data key ‖ blind-index key) is wrapped once per operator with a key
derived from that operator's PIN by scrypt, and once with the recovery key shown at set-up.
Wrong PINs are counted in the database, so a restart does not reset them: after
``max_pin_failures`` the operator is locked out for ``lockout_seconds``, doubling with every
further wrong PIN (at most a day).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime

from ..config import SecuritySettings
from ..crypto import derive_pin_key, new_key, recovery_kek, unwrap, wrap
from ..errors import AuthError, InputError, LockedError, PermissionDenied
from .audit import AuditLog
from .db import Guarded

ROLES = ("gate", "patrol", "supervisor")
MAX_LOCKOUT = 86_400
_LABEL = "fieldkit-master-v1"


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


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


def check_pin_shape(pin: str) -> None:
    if len(pin) < 4:
        raise InputError("a PIN needs at least 4 characters (digits are easiest with gloves)")
    if len(pin) > 64:
        raise InputError("a PIN can have at most 64 characters")


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 40 or any(c in name for c in "\n\r\t"):
        raise InputError("an operator name needs 1 to 40 characters on one line")
    return name


class Keyring:
    def __init__(self, g: Guarded, audit: AuditLog, security: SecuritySettings) -> None:
        self._g = g
        self._audit = audit
        self._sec = security

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

    # -- wrapping -----------------------------------------------------------------------
    def _wrap_for(self, pin: str, master: bytes) -> tuple[bytes, bytes]:
        salt = os.urandom(16)
        kek = derive_pin_key(pin, salt, self._sec.scrypt_n, self._sec.scrypt_r, self._sec.scrypt_p)
        return salt, wrap(kek, master, _LABEL)

    def _insert(self, db, name: str, role: str, pin: str, master: bytes, by: str | None) -> None:
        salt, wrapped = self._wrap_for(pin, master)
        db.execute(
            "INSERT INTO operators(name, role, salt, wrapped, scrypt_n, scrypt_r, scrypt_p, created_at,"
            " created_by) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET role=excluded.role,"
            " salt=excluded.salt, wrapped=excluded.wrapped, scrypt_n=excluded.scrypt_n,"
            " scrypt_r=excluded.scrypt_r, scrypt_p=excluded.scrypt_p, created_at=excluded.created_at,"
            " created_by=excluded.created_by, failures=0, locked_until=0, removed_at=NULL,"
            " last_login=NULL",
            [
                name,
                role,
                salt,
                wrapped,
                self._sec.scrypt_n,
                self._sec.scrypt_r,
                self._sec.scrypt_p,
                _now(),
                by,
            ],
        )

    def create_first(self, supervisor: str, pin: str) -> tuple[bytes, str]:
        """First set-up: the master secret, the supervisor, the recovery key (returned once)."""
        from ..crypto import new_recovery_key

        supervisor = check_name(supervisor)
        check_pin_shape(pin)
        if self.count():
            raise AuthError("this store already has operators; log in as the supervisor instead")
        master = new_key() + new_key()
        recovery = new_recovery_key()
        rsalt = os.urandom(16)
        with self._g.tx() as db:
            self._insert(db, supervisor, "supervisor", pin, master, None)
            db.execute(
                "INSERT INTO recovery(id, salt, wrapped, created_at) VALUES (1, ?, ?, ?)",
                [rsalt, wrap(recovery_kek(recovery, rsalt), master, _LABEL), _now()],
            )
            self._audit.append("setup", supervisor, {"operator": supervisor})
        return master, recovery

    # -- unlocking ----------------------------------------------------------------------
    def unlock(self, name: str, pin: str) -> tuple[Operator, bytes]:
        row = self._row(name)
        if row is None:
            raise AuthError(f"no operator named {name!r}: check the name or ask the supervisor")
        now = time.time()
        if row["locked_until"] > now:
            wait = int(row["locked_until"] - now) + 1
            raise LockedError(
                f"{name} is locked after too many wrong PINs: try again in {wait} s "
                "or ask the supervisor to reset the PIN",
                row["locked_until"],
            )
        kek = derive_pin_key(pin, row["salt"], row["scrypt_n"], row["scrypt_r"], row["scrypt_p"])
        master = unwrap(kek, row["wrapped"], _LABEL)
        if master is None:
            failures = row["failures"] + 1
            over = failures - self._sec.max_pin_failures
            locked_until = 0.0
            if over >= 0:
                locked_until = now + min(MAX_LOCKOUT, self._sec.lockout_seconds * 2**over)
            with self._g.tx() as db:
                db.execute(
                    "UPDATE operators SET failures=?, locked_until=? WHERE name=?",
                    [failures, locked_until, name],
                )
                self._audit.append("login_failed", name, {"failures": failures})
                if locked_until:
                    self._audit.append("lockout", name, {"seconds": int(locked_until - now)})
            if locked_until:
                raise LockedError(
                    f"wrong PIN {failures} times: {name} is locked for {int(locked_until - now)} s",
                    locked_until,
                )
            left = self._sec.max_pin_failures - failures
            raise AuthError(f"wrong PIN for {name}: {left} tries left before lock-out")
        with self._g.tx() as db:
            db.execute(
                "UPDATE operators SET failures=0, locked_until=0, last_login=? WHERE name=?",
                [_now(), name],
            )
            self._audit.append("login", name, {"role": row["role"]})
        return self._operator({**row, "failures": 0, "locked_until": 0.0}), master

    def verify_pin(self, name: str, pin: str) -> Operator:
        """Check a PIN (e.g. the supervisor confirming a mode change); counts failures too."""
        op, _ = self.unlock(name, pin)
        return op

    # -- supervisor actions -------------------------------------------------------------
    def add(self, actor: Operator, master: bytes, name: str, role: str, pin: str) -> Operator:
        self._need_supervisor(actor)
        name = check_name(name)
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        check_pin_shape(pin)
        if self._row(name):
            raise InputError(f"an operator named {name!r} already exists")
        with self._g.tx() as db:
            self._insert(db, name, role, pin, master, actor.name)
            self._audit.append("operator_add", actor.name, {"operator": name, "role": role})
        return self.get(name)  # type: ignore[return-value]

    def remove(self, actor: Operator, name: str) -> None:
        self._need_supervisor(actor)
        row = self._row(name)
        if row is None:
            raise InputError(f"no operator named {name!r}")
        if (
            row["role"] == "supervisor"
            and self._g.scalar(
                "SELECT count(*) FROM operators WHERE role='supervisor' AND removed_at IS NULL"
            )
            <= 1
        ):
            raise InputError("cannot remove the last supervisor: add another supervisor first")
        with self._g.tx() as db:
            # The wrapped key is destroyed: the removed operator's PIN opens nothing any more.
            db.execute(
                "UPDATE operators SET removed_at=?, wrapped=x'', salt=x'' WHERE name=?",
                [_now(), name],
            )
            self._audit.append("operator_remove", actor.name, {"operator": name})

    def reset_pin(self, actor: Operator, master: bytes, name: str, pin: str) -> None:
        self._need_supervisor(actor)
        row = self._row(name)
        if row is None:
            raise InputError(f"no operator named {name!r}")
        check_pin_shape(pin)
        with self._g.tx() as db:
            self._insert(db, name, row["role"], pin, master, actor.name)
            self._audit.append("operator_reset_pin", actor.name, {"operator": name})

    def change_own_pin(self, actor: Operator, master: bytes, pin: str) -> None:
        check_pin_shape(pin)
        with self._g.tx() as db:
            self._insert(db, actor.name, actor.role, pin, master, actor.name)
            self._audit.append("pin_change", actor.name, {})

    def recover(self, recovery_key: str, supervisor: str, new_pin: str) -> bytes:
        """Rewrap the master secret for a supervisor from the printed recovery key."""
        rows = self._g.query("SELECT salt, wrapped FROM recovery WHERE id = 1")
        if not rows:
            raise AuthError("this store has no recovery key")
        master = unwrap(recovery_kek(recovery_key, rows[0]["salt"]), rows[0]["wrapped"], _LABEL)
        if master is None:
            with self._g.tx():
                self._audit.append("recovery_failed", supervisor, {})
            raise AuthError("the recovery key is wrong: check every group of four characters")
        supervisor = check_name(supervisor)
        check_pin_shape(new_pin)
        with self._g.tx() as db:
            self._insert(db, supervisor, "supervisor", new_pin, master, "recovery-key")
            self._audit.append("recovery", supervisor, {"operator": supervisor})
        return master

    @staticmethod
    def _need_supervisor(actor: Operator) -> None:
        if not actor.is_supervisor:
            raise PermissionDenied(
                f"{actor.name} is not a supervisor: only a supervisor may do this"
            )
