"""Console accounts, sessions and the audit chain.

Passwords: Argon2id (argon2-cffi, memory-hard). Wrong passwords lock the account for a time
that doubles with each further failure (30 s after 5, 60 s after 6 ... at most an hour).
Sessions: a random token in a Secure/HttpOnly/SameSite=Strict cookie; only its SHA-256 is
stored; idle sessions expire. Each session has its own CSRF token that every form carries.
Audit: every unmasking, export and admin action is a row chained to the one before by a
SHA-256 over (previous hash, time, who, what, why), so an edited or deleted row shows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .db import ConsoleDB

ROLES = ("officer", "admin")
LOCK_AFTER = 5
LOCK_BASE_S = 30.0
LOCK_MAX_S = 3600.0
IDLE_S = 30 * 60.0
MIN_PASSWORD = 10

_hasher = PasswordHasher()  # argon2id, 64 MiB, t=3 by default


class AuthError(Exception):
    """A refusal with a message catalogue key and its parameters."""

    def __init__(self, key: str, /, **params: Any) -> None:
        super().__init__(key)
        self.key, self.params = key, params


@dataclass(frozen=True)
class User:
    name: str
    role: str
    disabled: bool
    failed: int
    locked_until: float | None
    created_at: float


@dataclass(frozen=True)
class Session:
    token_hash: str
    user: User
    csrf: str
    lang: str


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, db: ConsoleDB, hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.hasher = hasher or _hasher

    # users -------------------------------------------------------------------------------------
    def get(self, name: str) -> User | None:
        row = self.db.one(
            "SELECT name, role, disabled, failed, locked_until, created_at FROM console_users "
            "WHERE name = ?",
            (name,),
        )
        return User(row[0], row[1], bool(row[2]), row[3], row[4], row[5]) if row else None

    def list(self) -> list[User]:
        rows = self.db.q(
            "SELECT name, role, disabled, failed, locked_until, created_at FROM console_users "
            "ORDER BY name"
        )
        return [User(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def _check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AuthError("console.err.password_short", n=MIN_PASSWORD)

    def add(self, name: str, role: str, password: str, now: float | None = None) -> User:
        name = name.strip()
        if not name or len(name) > 64:
            raise AuthError("console.err.user_name")
        if role not in ROLES:
            raise AuthError("console.err.role", roles=", ".join(ROLES))
        self._check_password(password)
        if self.get(name):
            raise AuthError("console.err.user_exists", name=name)
        now = now or time.time()
        self.db.q(
            "INSERT INTO console_users (name, role, pw_hash, disabled, failed, locked_until, "
            "created_at) VALUES (?, ?, ?, 0, 0, NULL, ?)",
            (name, role, self.hasher.hash(password), now),
        )
        return self.get(name)  # type: ignore[return-value]

    def set_disabled(self, name: str, disabled: bool = True) -> User:
        if not self.get(name):
            raise AuthError("console.err.no_user", name=name)
        self.db.q("UPDATE console_users SET disabled = ? WHERE name = ?", (int(disabled), name))
        if disabled:
            self.db.q("DELETE FROM console_sessions WHERE user_name = ?", (name,))
        return self.get(name)  # type: ignore[return-value]

    def reset_password(self, name: str, password: str) -> User:
        if not self.get(name):
            raise AuthError("console.err.no_user", name=name)
        self._check_password(password)
        self.db.q(
            "UPDATE console_users SET pw_hash = ?, failed = 0, locked_until = NULL WHERE name = ?",
            (self.hasher.hash(password), name),
        )
        self.db.q("DELETE FROM console_sessions WHERE user_name = ?", (name,))
        return self.get(name)  # type: ignore[return-value]

    # log in --------------------------------------------------------------------------------------
    def login(self, name: str, password: str, lang: str, now: float | None = None) -> str:
        """A new session token for the cookie, or AuthError (one message for unknown user and
        wrong password, so names cannot be probed)."""
        now = now or time.time()
        row = self.db.one(
            "SELECT pw_hash, disabled, failed, locked_until FROM console_users WHERE name = ?",
            (name,),
        )
        if row is None:
            self.hasher.hash(password)  # same time as a real check
            raise AuthError("console.err.login")
        pw_hash, disabled, failed, locked_until = row
        if locked_until and locked_until > now:
            raise AuthError("console.err.locked", s=int(locked_until - now) + 1)
        try:
            self.hasher.verify(pw_hash, password)
        except (VerificationError, InvalidHashError):
            failed += 1
            lock = None
            if failed >= LOCK_AFTER:
                lock = now + min(LOCK_MAX_S, LOCK_BASE_S * 2 ** (failed - LOCK_AFTER))
            self.db.q(
                "UPDATE console_users SET failed = ?, locked_until = ? WHERE name = ?",
                (failed, lock, name),
            )
            if lock:
                raise AuthError("console.err.locked", s=int(lock - now) + 1) from None
            raise AuthError("console.err.login") from None
        if disabled:
            raise AuthError("console.err.disabled")
        self.db.q(
            "UPDATE console_users SET failed = 0, locked_until = NULL WHERE name = ?", (name,)
        )
        token = secrets.token_urlsafe(32)
        self.db.q(
            "INSERT INTO console_sessions (token_hash, user_name, csrf, created_at, last_seen, "
            "lang) VALUES (?, ?, ?, ?, ?, ?)",
            (_hash_token(token), name, secrets.token_urlsafe(24), now, now, lang),
        )
        return token

    def session(self, token: str | None, now: float | None = None) -> Session | None:
        """The live session of a cookie (its idle time renewed), or None."""
        if not token:
            return None
        now = now or time.time()
        th = _hash_token(token)
        row = self.db.one(
            "SELECT s.csrf, s.lang, s.last_seen, u.name, u.role, u.disabled, u.failed, "
            "u.locked_until, u.created_at FROM console_sessions s JOIN console_users u "
            "ON u.name = s.user_name WHERE s.token_hash = ?",
            (th,),
        )
        if row is None:
            return None
        csrf, lang, last_seen, *u = row
        if now - last_seen > IDLE_S or u[2]:
            self.db.q("DELETE FROM console_sessions WHERE token_hash = ?", (th,))
            return None
        if now - last_seen > 30:  # one write a minute at most per session, not one per page
            self.db.q("UPDATE console_sessions SET last_seen = ? WHERE token_hash = ?", (now, th))
        return Session(th, User(u[0], u[1], bool(u[2]), u[3], u[4], u[5]), csrf, lang)

    def set_lang(self, session: Session, lang: str) -> None:
        self.db.q(
            "UPDATE console_sessions SET lang = ? WHERE token_hash = ?", (lang, session.token_hash)
        )

    def logout(self, session: Session) -> None:
        self.db.q("DELETE FROM console_sessions WHERE token_hash = ?", (session.token_hash,))


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf, str(sent))


# --- audit chain -----------------------------------------------------------------------------

GENESIS = "0" * 64


def _chain_hash(prev: str, at: float, who: str, action: str, detail: str, reason: str) -> str:
    data = json.dumps([prev, round(at, 6), who, action, detail, reason], ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


class Audit:
    def __init__(self, db: ConsoleDB) -> None:
        self.db = db

    def append(
        self, who: str, action: str, detail: dict[str, Any], reason: str = "", now: float = 0
    ) -> int:
        now = now or time.time()
        text = json.dumps(detail, ensure_ascii=False, sort_keys=True)
        with self.db.tx():
            if self.db.pg:  # one writer at a time, so no two rows share a predecessor
                self.db.q("LOCK TABLE console_audit IN EXCLUSIVE MODE")
            row = self.db.one("SELECT hash FROM console_audit ORDER BY seq DESC LIMIT 1")
            prev = row[0] if row else GENESIS
            h = _chain_hash(prev, now, who, action, text, reason)
            seq = self.db.scalar(
                "INSERT INTO console_audit (at, user_name, action, detail, reason, prev_hash, "
                "hash) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                (now, who, action, text, reason, prev, h),
            )
            if seq is None:  # RETURNING gives the inserted row; none means nothing was written
                raise RuntimeError("console audit entry was not written")
            return int(seq)

    def rows(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = self.db.q(
            "SELECT seq, at, user_name, action, detail, reason FROM console_audit "
            "ORDER BY seq DESC LIMIT ?",
            (limit,),
        )
        keys = ("seq", "at", "user", "action", "detail", "reason")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def verify(self) -> int | None:
        """None when the chain is intact, else the first sequence number that breaks it."""
        prev = GENESIS
        for seq, at, who, action, detail, reason, p, h in self.db.q(
            "SELECT seq, at, user_name, action, detail, reason, prev_hash, hash "
            "FROM console_audit ORDER BY seq"
        ):
            if p != prev or _chain_hash(prev, at, who, action, detail, reason or "") != h:
                return seq
            prev = h
        return None
