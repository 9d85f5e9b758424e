"""Tables of the household ledger, visits and home monitoring. Append steps; never edit them.

- ``households`` and ``members`` are editable records: ``version`` counts edits on this
  device, ``last_writer`` is ``operator@checkpoint``; each edit is also written as an append-only
  ``ledger_edits`` event (field → new value) which is what syncs to the town server.
- ``visits`` (with ``visit_members``), ``readings`` and ``monitoring_alerts`` are append-only
  events with the sync columns.
- Grid and community stay in clear (areas, not persons). Building, unit and room are sealed in
  ``place_enc`` since m003; lists and coverage filter and group on keyed hashes of the building
  and unit, and ``address_key`` is a keyed hash of the normalised address. Names, ID numbers,
  phones, the free-text address, landlord, notes, medical needs, and (m003) masked names/IDs/
  phones, categories, health status and dates, vaccination, tests, visit members, readings and
  alert details are encrypted (record id + field name as associated data); ID numbers also get
  the store's blind index. :mod:`fieldkit.store.personal` lists every field.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from ..store.schema import SYNC_COLUMNS

migrations = Migrations("fieldkit-ledger")


@migrations()
def m001_ledger(db: Database) -> None:
    db.executescript(
        f"""
        CREATE TABLE rounds (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, started_at TEXT NOT NULL,
            started_by TEXT NOT NULL, closed_at TEXT
        );
        CREATE TABLE households (
            id TEXT PRIMARY KEY, address_key TEXT NOT NULL UNIQUE,
            grid TEXT NOT NULL DEFAULT '', community TEXT NOT NULL DEFAULT '',
            building TEXT NOT NULL, unit TEXT NOT NULL DEFAULT '', room TEXT NOT NULL,
            sort_key TEXT NOT NULL,
            address_enc BLOB, worker TEXT, registered_count INTEGER, resident_count INTEGER,
            tested_count INTEGER, is_rental INTEGER NOT NULL DEFAULT 0,
            landlord_name_enc BLOB, landlord_phone_enc BLOB, notes_enc BLOB,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1, last_writer TEXT NOT NULL
        );
        CREATE INDEX households_place ON households(building, unit, sort_key);
        CREATE INDEX households_grid ON households(grid, building);
        CREATE TABLE members (
            id TEXT PRIMARY KEY, household_id TEXT NOT NULL REFERENCES households(id),
            match_key TEXT NOT NULL UNIQUE, id_hash TEXT, id_kind TEXT,
            name_masked TEXT, id_masked TEXT, phone_masked TEXT,
            name_enc BLOB, id_number_enc BLOB, phone_enc BLOB, notes_enc BLOB,
            relation TEXT, categories TEXT NOT NULL DEFAULT '[]',
            health_status TEXT NOT NULL DEFAULT 'none', status_start TEXT, status_end TEXT,
            found_via TEXT, vaccination TEXT, last_test_date TEXT, last_test_result TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            removed INTEGER NOT NULL DEFAULT 0,
            version INTEGER NOT NULL DEFAULT 1, last_writer TEXT NOT NULL
        );
        CREATE INDEX members_household ON members(household_id);
        CREATE INDEX members_id_hash ON members(id_hash) WHERE id_hash IS NOT NULL;
        CREATE INDEX members_status ON members(health_status) WHERE health_status != 'none';
        CREATE TABLE ledger_edits (
            id TEXT PRIMARY KEY, ts TEXT NOT NULL, day TEXT NOT NULL, checkpoint TEXT NOT NULL,
            entity TEXT NOT NULL, entity_id TEXT NOT NULL, base_version INTEGER NOT NULL,
            version INTEGER NOT NULL, writer TEXT NOT NULL, source TEXT NOT NULL,
            changes_enc BLOB NOT NULL,
            {SYNC_COLUMNS}
        );
        CREATE INDEX ledger_edits_entity ON ledger_edits(entity_id, version);
        CREATE INDEX ledger_edits_pending ON ledger_edits(sync_state) WHERE sync_state != 'synced';
        CREATE TABLE visits (
            id TEXT PRIMARY KEY, ts TEXT NOT NULL, day TEXT NOT NULL, checkpoint TEXT NOT NULL,
            round_id TEXT, household_id TEXT NOT NULL REFERENCES households(id),
            operator TEXT NOT NULL, outcome TEXT NOT NULL, follow_up INTEGER NOT NULL DEFAULT 0,
            supply_need INTEGER NOT NULL DEFAULT 0, medical_need INTEGER NOT NULL DEFAULT 0,
            supply_enc BLOB, medical_enc BLOB, notes_enc BLOB, follow_up_enc BLOB,
            members TEXT NOT NULL DEFAULT '[]',
            {SYNC_COLUMNS}
        );
        CREATE INDEX visits_household ON visits(household_id, ts);
        CREATE INDEX visits_round ON visits(round_id, household_id);
        CREATE INDEX visits_pending ON visits(sync_state) WHERE sync_state != 'synced';
        CREATE TABLE readings (
            id TEXT PRIMARY KEY, ts TEXT NOT NULL, day TEXT NOT NULL, checkpoint TEXT NOT NULL,
            member_id TEXT NOT NULL REFERENCES members(id), slot TEXT NOT NULL,
            temperature REAL, symptoms TEXT NOT NULL DEFAULT '[]', measured_by TEXT NOT NULL,
            abnormal INTEGER NOT NULL DEFAULT 0, operator TEXT NOT NULL, notes_enc BLOB,
            {SYNC_COLUMNS}
        );
        CREATE INDEX readings_member ON readings(member_id, day, slot);
        CREATE INDEX readings_pending ON readings(sync_state) WHERE sync_state != 'synced';
        CREATE TABLE monitoring_alerts (
            id TEXT PRIMARY KEY, ts TEXT NOT NULL, day TEXT NOT NULL, checkpoint TEXT NOT NULL,
            member_id TEXT NOT NULL REFERENCES members(id), kind TEXT NOT NULL,
            slot TEXT, reading_id TEXT, detail TEXT NOT NULL DEFAULT '{{}}',
            acknowledged_by TEXT, acknowledged_at TEXT,
            {SYNC_COLUMNS}
        );
        CREATE UNIQUE INDEX monitoring_alerts_missed ON monitoring_alerts(member_id, day, slot)
            WHERE kind = 'missed';
        CREATE INDEX monitoring_alerts_open ON monitoring_alerts(acknowledged_at, ts);
        CREATE INDEX monitoring_alerts_pending ON monitoring_alerts(sync_state)
            WHERE sync_state != 'synced';
        """
    )


@migrations()
def m002_member_count_index(db: Database) -> None:
    # Coverage counts persons per unit: an index-only scan instead of reading every member row.
    db.execute("CREATE INDEX members_household_removed ON members(household_id, removed)")


@migrations()
def m003_health_and_place_sealed(db: Database) -> None:
    """Issue 14 item 7: address parts, masked names, health fields, visit members, readings and
    alert details get ciphertext columns. Rows written before keep their clear values until the
    first unlocked session seals them (``LedgerBase.seal_plaintext``: needs the data key)."""
    db.executescript(
        """
        ALTER TABLE households ADD COLUMN place_enc BLOB;
        ALTER TABLE households ADD COLUMN building_key TEXT;
        ALTER TABLE households ADD COLUMN unit_key TEXT;
        DROP INDEX households_place;
        DROP INDEX households_grid;
        CREATE INDEX households_place_key ON households(building_key, unit_key);
        CREATE INDEX households_grid_key ON households(grid, building_key, unit_key);
        ALTER TABLE members ADD COLUMN profile_enc BLOB;
        DROP INDEX members_status;
        ALTER TABLE visits ADD COLUMN members_enc BLOB;
        ALTER TABLE readings ADD COLUMN reading_enc BLOB;
        ALTER TABLE monitoring_alerts ADD COLUMN detail_enc BLOB;
        """
    )


@migrations()
def m004_drop_redundant_member_indexes(db: Database) -> None:
    # Two indexes fewer to write per member (a bulk import writes tens of thousands):
    # members_household(household_id) is the prefix of members_household_removed, and a member
    # is found by ID through match_key ("id:" + id_hash, unique), not members_id_hash.
    db.execute("DROP INDEX IF EXISTS members_household")
    db.execute("DROP INDEX IF EXISTS members_id_hash")


@migrations()
def m005_drop_unused_edit_index(db: Database) -> None:
    # No query reads ledger edits by entity (the outbox reads them by sync state): one index
    # fewer to write per household and member edit.
    db.execute("DROP INDEX IF EXISTS ledger_edits_entity")
