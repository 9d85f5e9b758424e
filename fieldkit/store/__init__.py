"""The encrypted local store: the one facade screens, CLI and sync use (never raw tables)."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings, validate_rules
from ..crypto import FieldCipher, blind_index
from ..errors import AuthError, ConfigError
from .audit import AuditLog
from .db import Guarded, connect
from .keyring import Keyring, Operator
from .passages import LOCAL_ONLY, PassageInput, PassageRow, Passages, VehiclePassages
from .reporting import Reporting
from .shifts import Shifts
from .synctables import (
    KV,
    EventKind,
    IsolationIndex,
    KeyPersons,
    Outbox,
    OutboxItem,
    Revocations,
    Secrets,
)

# Facades and event kinds other packages add to every store opened after they are imported:
# ``attach(store)``, registered with :func:`register_extension` (the household ledger does it in
# ``fieldkit/ledger/__init__.py``; the entry points import it). The store never imports them.
_EXTENSIONS: list[Callable[[Store], None]] = []


def register_extension(attach: Callable[[Store], None]) -> None:
    """Call ``attach(store)`` on every store opened from now on (once per function)."""
    if attach not in _EXTENSIONS:
        _EXTENSIONS.append(attach)


__all__ = [
    "EventKind",
    "Operator",
    "OutboxItem",
    "PassageInput",
    "PassageRow",
    "Store",
    "init_store",
    "open_store",
]


class SessionLocked(AuthError):
    pass


class Store:
    # Facades plug-ins add (fieldkit.ledger.attach): typed where they are made, Any here, since
    # the store never imports the layers above it.
    ledger: Any
    monitoring: Any

    def __init__(self, settings: Settings, path: Path, *, create: bool = False) -> None:
        self.settings = settings
        if settings.config_rules is None:  # once: a reopen must not take town values for config
            settings.config_rules = copy.deepcopy(settings.rules)
        self.path = path
        self.g = Guarded(connect(path, create=create))
        self.audit = AuditLog(self.g)
        self.keyring = Keyring(self.g, self.audit, settings.security)
        self.keyring.session_master = lambda: self._master
        self.keyring.on_rekey = self._rekey
        self.passages = Passages(self)
        self.vehicles = VehiclePassages(self)
        self.shifts = Shifts(self)
        self.outbox = Outbox(self)
        self.kv = KV(self)
        self.secrets = Secrets(self)
        self.keypersons = KeyPersons(self)
        self.revocations = Revocations(self)
        self.isolation = IsolationIndex(self)
        self.reporting = Reporting(self)
        self.outbox.register(EventKind("passage", "passages", self._passage_body, local=LOCAL_ONLY))
        self.outbox.register(EventKind("vehicle", "vehicle_passages", self.vehicles.body))
        self._cipher: FieldCipher | None = None
        self._index_key: bytes | None = None
        self._master: bytes | None = None
        self.operator: Operator | None = None
        self.unlocked_at: float | None = None
        for attach in _EXTENSIONS:
            attach(self)

    def _passage_body(self, row):
        return self.passages.body(row)

    # -- session ------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return self.keyring.count() > 0

    @property
    def is_unlocked(self) -> bool:
        return self._cipher is not None

    def _open_session(self, operator: Operator, master: bytes) -> None:
        epoch, older = self.keyring.epoch_keys(master)
        self._master = master
        self._cipher = FieldCipher(master[:32], epoch, older)
        self._index_key = master[32:]
        self.audit.use_master(master, older)
        if self.kv.get("sealed.trip_reason") is None or self.kv.get("sealed.m005") is None:
            self._seal_older_rows()
        self._seal_sync_tables()
        self.operator = operator
        self.unlocked_at = time.time()

    def _seal_older_rows(self) -> None:
        """Encrypt what rows from before their fields were encrypted still hold in clear (m003
        trip reason, m005 the rest). The clear values are overwritten where they were
        (``secure_delete``) and the log checkpointed, so no copy is left in the files."""
        with self.g.lock:
            sealed = (  # the connection zeroes freed space (secure_delete, store/db.py)
                self.passages.seal_plaintext()
                + self.vehicles.seal_plaintext()
                + self.shifts.seal_plaintext()
            )
            if sealed:
                self.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.kv.set("sealed.trip_reason", True)
        self.kv.set("sealed.m005", True)

    def _seal_sync_tables(self) -> None:
        """Encrypt the key-person categories written while no one was logged in (a sync
        download) and isolation statuses from before they were encrypted; the clear values
        are overwritten in place (``secure_delete``) and the log checkpointed."""
        with self.g.lock:
            if self.keypersons.seal_plaintext() + self.isolation.seal_plaintext():
                self.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def setup(
        self,
        supervisor: str,
        pin: str,
        *,
        checkpoint_name: str | None = None,
        checkpoint_code: str | None = None,
    ) -> str:
        """First run: create the supervisor and keys; returns the recovery key (show it once)."""
        master, recovery = self.keyring.create_first(supervisor, pin)
        if checkpoint_name:
            self.kv.set("checkpoint_name", checkpoint_name)
        if checkpoint_code:
            self.kv.set("checkpoint_code", checkpoint_code)
        self.apply_kv_overrides()
        op = self.keyring.get(supervisor.strip())
        assert op is not None
        self._open_session(op, master)
        return recovery

    def days_unsynced(self) -> float | None:
        """Days since the last successful sync of an enrolled device (None: not enrolled,
        or never synced)."""
        if not self.kv.get("sync.device_id"):
            return None
        last = self.kv.get("sync.last_sync")
        return None if last is None else max(0.0, (time.time() - float(last)) / 86400)

    def _refuse_if_unsynced(self, name: str) -> None:
        """A device not synced for ``security.lock_unsynced_days`` opens for supervisors only
        (a lost device stops working for whoever found it with a gate PIN)."""
        limit = self.settings.security.lock_unsynced_days
        days = self.days_unsynced() if limit > 0 else None
        if days is None or days <= limit:
            return
        op = self.keyring.get(name)
        if op is not None and not op.is_supervisor:
            raise AuthError("security.err.unsynced_lock", days=int(days), limit=f"{limit:g}")

    def unlock(self, name: str, pin: str) -> Operator:
        self._refuse_if_unsynced(name)
        operator, master = self.keyring.unlock(name, pin)
        self._open_session(operator, master)
        return operator

    def recover(self, recovery_key: str, supervisor: str, new_pin: str) -> Operator:
        master = self.keyring.recover(recovery_key, supervisor, new_pin)
        op = self.keyring.get(supervisor.strip())
        assert op is not None
        self._open_session(op, master)
        return op

    def _rekey(self, master: bytes) -> None:
        """The data key was rotated (an operator removed): new records use the new epoch."""
        if self.operator is not None:
            self._open_session(self.operator, master)

    def lock(self, reason: str = "manual") -> None:
        if self.operator is not None:
            self.audit.append("lock", self.operator.name, {"reason": reason})
        self.audit.forget_keys()
        self.passages.forget()
        self._cipher = self._index_key = self._master = None
        self.operator = None
        self.unlocked_at = None

    def require_operator(self) -> Operator:
        if self.operator is None or self._cipher is None:
            raise SessionLocked("err.session_locked")
        return self.operator

    @property
    def cipher(self) -> FieldCipher:
        if self._cipher is None:
            raise SessionLocked("err.session_locked")
        return self._cipher

    @property
    def master(self) -> bytes:
        if self._master is None:
            raise SessionLocked("err.session_locked")
        return self._master

    def index(self, id_number: str) -> str:
        if self._index_key is None:
            raise SessionLocked("err.session_locked")
        return blind_index(self._index_key, id_number)

    def data_version(self) -> int:
        """SQLite's ``data_version``: changes when another connection commits to the file
        (screens poll it to refresh when a sync or a second terminal wrote)."""
        return int(self.g.scalar("PRAGMA data_version") or 0)

    def read_full(self, table: str, record_id: str, *, entity: str, purpose: str) -> dict | None:
        """One row whose personal fields the caller is about to decrypt, with the audit entry
        of a full-data view written first (None, and nothing audited, when there is no row)."""
        operator = self.require_operator().name
        rows = self.g.query(f"SELECT * FROM {table} WHERE id = ?", [record_id])
        if not rows:
            return None
        with self.g.tx():
            self.audit.append("view_full", operator, {entity: record_id, "purpose": purpose})
        return rows[0]

    # -- settings kept in the store ------------------------------------------------------
    def apply_kv_overrides(self) -> dict[str, tuple[Any, Any]]:
        """Checkpoint identity and area mode set in the app, and the town's rule overrides,
        win over the config file. Returns the rules whose value changed: {key: (from, to)}."""
        cp = self.settings.checkpoint
        cp.name = self.kv.get("checkpoint_name", cp.name)
        cp.code = self.kv.get("checkpoint_code", cp.code)
        cp.area_mode = self.kv.get("area_mode", cp.area_mode)
        changes = self._rule_changes(self.town_rules())
        self._apply_rules(changes)
        return changes

    def town_rules(self) -> dict[str, Any]:
        """The town's rule overrides in force ({} when the config file's rules apply)."""
        try:  # checked again: a version before town rules were applied stored them unchecked
            return validate_rules(
                self.kv.get("town_rules") or {},
                "town rules",
                self.settings.config_rules,
                problems=[],
            )
        except ConfigError:
            return {}

    def set_town_rules(self, rules: Any) -> tuple[dict[str, tuple[Any, Any]], list[str]]:
        """The town's complete set of rule overrides (from a sync): a key it leaves out goes
        back to the config file's value. Keys that fail this device's checks are skipped (the
        server may be older or wrong), the rest stored, audited and applied at once. Returns
        (the rules whose value changed {key: (from, to)}, one line per skipped key); raises
        ``ConfigError`` when ``rules`` is not a table at all (then nothing changes)."""
        skipped: list[str] = []
        checked = validate_rules(rules, "town server", self.settings.config_rules, problems=skipped)
        changes = self._rule_changes(checked)
        with self.g.tx():
            previous = self.kv.get("town_rules")
            self.kv.set("town_rules", checked)
            if changes or skipped or previous != checked:
                self.audit.append(
                    "setting_change",
                    "town",
                    {
                        "key": "rules",
                        "by": "town server",
                        "town_rules": checked,
                        "changes": {
                            k: {"from": old, "to": new} for k, (old, new) in changes.items()
                        },
                        "skipped": skipped,
                    },
                )
        self._apply_rules(changes)
        return changes, skipped

    def _rule_changes(self, town: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """{key: (now, wanted)} for each rule not yet at the town's value, else the file's."""
        rules, config = self.settings.rules, self.settings.config_rules
        changes = {}
        for f in dataclasses.fields(rules):
            wanted = town.get(f.name, getattr(config, f.name))
            if getattr(rules, f.name) != wanted:
                changes[f.name] = (getattr(rules, f.name), wanted)
        return changes

    def _apply_rules(self, changes: dict[str, tuple[Any, Any]]) -> None:
        # In place: screens and services hold this RuleSettings object.
        for key, (_, wanted) in changes.items():
            setattr(self.settings.rules, key, copy.deepcopy(wanted))

    def set_area_mode(self, mode: str, supervisor: Operator) -> None:
        from ..config import AREA_MODES
        from ..errors import InputError, PermissionDenied

        if mode not in AREA_MODES:
            raise InputError("err.area_mode", value=mode, allowed=", ".join(AREA_MODES))
        if not supervisor.is_supervisor:
            raise PermissionDenied("err.mode_needs_supervisor")
        old = self.settings.checkpoint.area_mode
        with self.g.tx():
            self.kv.set("area_mode", mode)
            self.audit.append(
                "setting_change",
                supervisor.name,
                {"key": "checkpoint.area_mode", "from": old, "to": mode},
            )
        self.settings.checkpoint.area_mode = mode

    def close(self) -> None:
        self.audit.forget_keys()
        self.passages.forget()
        self._cipher = self._index_key = self._master = None
        with self.g.lock:
            self.g.db.conn.close()


def open_store(settings: Settings, *, create: bool = False) -> Store:
    store = Store(settings, settings.store_path, create=create)
    store.apply_kv_overrides()
    return store


def init_store(settings: Settings) -> Store:
    return open_store(settings, create=True)
