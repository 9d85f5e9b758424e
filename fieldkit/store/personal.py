"""The one list of every personal or health field the device stores, and how it is protected.

``SEALED_AT_LOGIN``: a former clear column, now empty (its value is in an ``ENCRYPTED``
column); rows from before the upgrade are sealed at the first login.
``ENCRYPTED``: AES-256-GCM under the data key of the record's epoch, record id + field name as
associated data (a ``<field>_enc`` column). ``BLIND_INDEX``: HMAC-SHA256 of the normalised ID
number under the index key (look-ups, exit matching). ``MASKED``: a masked copy in clear for
lists and reports (张*, 110105********1234). ``CLEAR``: still in clear — an open gap, named so
nobody mistakes it for protected (issue 14 item 7 asks for these to be encrypted too; it needs
the screens, reports and SQL filters that read them to decrypt instead, which is not done yet).

A test (tests/test_device_attacks_plaintext.py) writes a distinctive value into every
``ENCRYPTED`` field through the store's own API and scans the database, WAL and journal files
for it; and checks that every ``*_enc`` column of the schema is listed here.
"""

from __future__ import annotations

ENCRYPTED, BLIND_INDEX, MASKED, CLEAR = "encrypted", "blind index", "masked in clear", "CLEAR"
# A column that held the value in clear before its table was encrypted: new rows leave it
# empty, and the first login after the upgrade seals what older rows still hold there.
SEALED_AT_LOGIN = "empty; older rows sealed at first login"

# table -> {column: protection} for the columns that hold personal or health data.
PERSONAL_FIELDS: dict[str, dict[str, str]] = {
    "passages": {
        "name_enc": ENCRYPTED,
        "id_number_enc": ENCRYPTED,
        "phone_enc": ENCRYPTED,
        "raw_scan_enc": ENCRYPTED,
        "notes_enc": ENCRYPTED,
        "escort_enc": ENCRYPTED,
        "trip_reason_enc": ENCRYPTED,
        # One ciphertext for the masked copies, health values, category and reasons (JSON):
        # name_masked, id_masked, temperature, temperature_skipped, code_colour, test_date,
        # test_result, category, reasons, pass_id (their own columns hold NULL, '' or '[]').
        "sealed_enc": ENCRYPTED,
        "id_hash": BLIND_INDEX,
        # Columns emptied by the seal: only rows from before m003/m005 until the first login.
        "name_masked": SEALED_AT_LOGIN,
        "id_masked": SEALED_AT_LOGIN,
        "trip_reason": SEALED_AT_LOGIN,
        "temperature": SEALED_AT_LOGIN,
        "temperature_skipped": SEALED_AT_LOGIN,
        "code_colour": SEALED_AT_LOGIN,
        "test_date": SEALED_AT_LOGIN,
        "test_result": SEALED_AT_LOGIN,
        "category": SEALED_AT_LOGIN,
        "reasons": SEALED_AT_LOGIN,
        "pass_id": SEALED_AT_LOGIN,
        # Who acknowledged which alerts (local only): the value itself is a ciphertext. The
        # audit entry of the acknowledgement names the record and how many alerts, not which.
        "alerts_ack": ENCRYPTED,
    },
    "vehicle_passages": {
        "sealed_enc": ENCRYPTED,  # plate, pass_no, reasons (JSON)
        "plate": SEALED_AT_LOGIN,
        "pass_no": SEALED_AT_LOGIN,
        "reasons": SEALED_AT_LOGIN,
    },
    "households": {
        "address_enc": ENCRYPTED,
        "landlord_name_enc": ENCRYPTED,
        "landlord_phone_enc": ENCRYPTED,
        "notes_enc": ENCRYPTED,
        "place_enc": ENCRYPTED,  # building, unit, room (JSON; clear columns blank since m003)
        "building_key": BLIND_INDEX,  # keyed hash of the building: lists and coverage group on it
        "unit_key": BLIND_INDEX,
        "address_key": BLIND_INDEX,  # keyed hash of the normalised address (one household each)
    },
    "members": {
        "name_enc": ENCRYPTED,
        "id_number_enc": ENCRYPTED,
        "phone_enc": ENCRYPTED,
        "notes_enc": ENCRYPTED,
        # masked name/ID/phone, categories, health status and its dates, found via, vaccination,
        # last test date and result (JSON; the clear columns blank since the ledger's m003)
        "profile_enc": ENCRYPTED,
        "id_hash": BLIND_INDEX,
        "match_key": BLIND_INDEX,
    },
    "ledger_edits": {"changes_enc": ENCRYPTED},
    "visits": {
        "supply_enc": ENCRYPTED,
        "medical_enc": ENCRYPTED,
        "notes_enc": ENCRYPTED,
        "follow_up_enc": ENCRYPTED,
        "members_enc": ENCRYPTED,  # member ids with temperatures and symptoms
    },
    "readings": {
        "notes_enc": ENCRYPTED,
        "reading_enc": ENCRYPTED,  # temperature and symptoms
        # abnormal (0/1) stays clear: a referral alert (kind, clear) says as much already
    },
    "monitoring_alerts": {"detail_enc": ENCRYPTED},
    "shifts": {
        "handover_note_enc": ENCRYPTED,
        "summary_enc": ENCRYPTED,
        "handover_note": SEALED_AT_LOGIN,
        "summary": SEALED_AT_LOGIN,
    },
    "audit": {"detail": CLEAR},  # by rule: record ids, counts, file names only
    # The column itself holds the ciphertext (a BLOB; row key = id_hash). A key-person list
    # downloaded while no operator is logged in keeps its categories in clear (TEXT) only until
    # the next login seals them (Store._seal_sync_tables); so do statuses from before this.
    "keypersons": {"id_hash": BLIND_INDEX, "category": ENCRYPTED},
    "isolation_index": {"id_hash": BLIND_INDEX, "status": ENCRYPTED},
    "secrets": {"blob": ENCRYPTED},
}


def fields(protection: str) -> list[tuple[str, str]]:
    """(table, column) of every field with this protection."""
    return [
        (t, c) for t, cols in PERSONAL_FIELDS.items() for c, p in cols.items() if p == protection
    ]


def gaps() -> list[tuple[str, str]]:
    """Personal or health fields still stored in clear."""
    return fields(CLEAR)
