"""Schema migrations (sqlite-utils ``Migrations``). Append new steps; never edit applied ones."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("fieldkit")
SCHEMA_MARKER = "fieldkit-store"

# Other parts of FieldKit keep their own migration sets (``Migrations("fieldkit-ledger")`` …)
# and register them with :func:`register_migrations` when imported (fieldkit/ledger/__init__.py).
_EXTENSION_SETS: list[Migrations] = []


def register_migrations(extra: Migrations) -> None:
    """Apply ``extra`` too, after the store's own, whenever a store is opened from now on."""
    if all(m is not extra for m in _EXTENSION_SETS):
        _EXTENSION_SETS.append(extra)


def all_migration_sets() -> list[Migrations]:
    return [migrations, *_EXTENSION_SETS]


SYNC_COLUMNS = """
    sync_state TEXT NOT NULL DEFAULT 'pending',  -- pending | synced | quarantined
    sync_reason TEXT,
    synced_at TEXT,
    batch_id TEXT
"""


@migrations()
def m001_core(db: Database) -> None:
    db.executescript(
        f"""
        CREATE TABLE fieldkit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE operators (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, salt BLOB NOT NULL, wrapped BLOB NOT NULL,
            scrypt_n INTEGER NOT NULL, scrypt_r INTEGER NOT NULL, scrypt_p INTEGER NOT NULL,
            created_at TEXT NOT NULL, created_by TEXT, last_login TEXT,
            failures INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0,
            removed_at TEXT
        );
        CREATE TABLE recovery (id INTEGER PRIMARY KEY CHECK (id = 1), salt BLOB NOT NULL,
                               wrapped BLOB NOT NULL, created_at TEXT NOT NULL);
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, operator TEXT, action TEXT NOT NULL,
            detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL
        );
        CREATE TABLE shifts (
            id TEXT PRIMARY KEY, opened_at TEXT NOT NULL, opened_by TEXT NOT NULL,
            closed_at TEXT, closed_by TEXT, handover_note TEXT, summary TEXT
        );
        CREATE TABLE passages (
            id TEXT PRIMARY KEY, ts TEXT NOT NULL, day TEXT NOT NULL, shift_id TEXT,
            checkpoint TEXT NOT NULL, direction TEXT NOT NULL,
            id_kind TEXT NOT NULL, id_hash TEXT, id_check_ok INTEGER NOT NULL DEFAULT 1,
            name_masked TEXT, id_masked TEXT,
            name_enc BLOB, id_number_enc BLOB, phone_enc BLOB, raw_scan_enc BLOB, notes_enc BLOB,
            escort_enc BLOB,
            temperature REAL, temperature_skipped TEXT, code_colour TEXT, test_date TEXT,
            test_result TEXT, category TEXT NOT NULL, trip_reason TEXT, approval_ref TEXT,
            pass_id TEXT, vehicle_id TEXT, source TEXT NOT NULL,
            decision TEXT NOT NULL, reasons TEXT NOT NULL, alerts_ack TEXT,
            operator TEXT NOT NULL, confirmed_by TEXT, entry_id TEXT,
            supersedes TEXT, superseded INTEGER NOT NULL DEFAULT 0,
            {SYNC_COLUMNS}
        );
        CREATE INDEX passages_ts ON passages(ts);
        CREATE INDEX passages_day ON passages(day, direction);
        CREATE INDEX passages_person ON passages(id_hash, direction, ts);
        CREATE INDEX passages_entry ON passages(entry_id) WHERE entry_id IS NOT NULL;
        CREATE INDEX passages_pending ON passages(sync_state) WHERE sync_state != 'synced';
        CREATE TABLE vehicle_passages (
            id TEXT PRIMARY KEY, ts TEXT NOT NULL, day TEXT NOT NULL, shift_id TEXT,
            checkpoint TEXT NOT NULL, direction TEXT NOT NULL, plate TEXT NOT NULL,
            pass_no TEXT, kind TEXT NOT NULL, disinfected INTEGER NOT NULL DEFAULT 0,
            occupants INTEGER NOT NULL, decision TEXT NOT NULL, reasons TEXT NOT NULL,
            operator TEXT NOT NULL,
            {SYNC_COLUMNS}
        );
        CREATE INDEX vehicle_passages_day ON vehicle_passages(day);
        CREATE INDEX vehicle_passages_pending ON vehicle_passages(sync_state)
            WHERE sync_state != 'synced';
        CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE secrets (name TEXT PRIMARY KEY, blob BLOB NOT NULL);
        CREATE TABLE keypersons (id_hash TEXT PRIMARY KEY, category TEXT NOT NULL,
                                 end_date TEXT, updated_at TEXT NOT NULL);
        CREATE TABLE revocations (pass_id TEXT PRIMARY KEY, revoked_at TEXT NOT NULL);
        -- Who is under home isolation or monitoring, by blind index (maintained by the
        -- household ledger; the gate raises an alert when such a person tries to leave).
        CREATE TABLE isolation_index (id_hash TEXT PRIMARY KEY, status TEXT NOT NULL,
                                      end_date TEXT);
        """
    )


@migrations()
def m002_device_security(db: Database) -> None:
    """Operator key pairs and the PIN KDF per wrap (Argon2id; scrypt rows still open), data-key
    epochs, keyed audit entries (``keyed`` = data-key epoch + 1; 0 = plain SHA-256 link)."""
    db.executescript(
        """
        ALTER TABLE operators ADD COLUMN kdf TEXT NOT NULL DEFAULT 'scrypt';
        ALTER TABLE operators ADD COLUMN kdf_params TEXT;
        ALTER TABLE operators ADD COLUMN pubkey BLOB;
        ALTER TABLE operators ADD COLUMN sealed BLOB;
        ALTER TABLE recovery ADD COLUMN pubkey BLOB;
        ALTER TABLE recovery ADD COLUMN sealed BLOB;
        CREATE TABLE key_epochs (epoch INTEGER PRIMARY KEY, wrapped BLOB NOT NULL,
                                 created_at TEXT NOT NULL);
        ALTER TABLE audit ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0;
        """
    )


@migrations()
def m003_trip_reason_encrypted(db: Database) -> None:
    """The free-text trip reason is personal: encrypted like the other personal fields (rows
    written before keep it in ``trip_reason`` until the first login seals them)."""
    db.execute("ALTER TABLE passages ADD COLUMN trip_reason_enc BLOB")


@migrations()
def m004_audit_plain_link(db: Database) -> None:
    """Beside each keyed link, a plain SHA-256 link over the same bytes: a careless edit is seen
    without a PIN too (recomputing it is caught by the keyed link, with a PIN)."""
    db.execute("ALTER TABLE audit ADD COLUMN plain TEXT")


@migrations()
def m005_passages_sealed(db: Database) -> None:
    """Masked copies, health values, category and reasons of a passage; plate, pass number and
    reasons of a vehicle; a shift's handover note and summary: encrypted (issue 14 item 7).
    Rows written before keep them in their columns until the first login seals them."""
    db.executescript(
        """
        ALTER TABLE passages ADD COLUMN sealed_enc BLOB;
        ALTER TABLE vehicle_passages ADD COLUMN sealed_enc BLOB;
        ALTER TABLE shifts ADD COLUMN handover_note_enc BLOB;
        ALTER TABLE shifts ADD COLUMN summary_enc BLOB;
        """
    )
