"""Ledger exports: template layout, masking, full export by a supervisor (audited), atomic
writes that leave nothing half-written on a full disk or a read-only folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from openpyxl import load_workbook

from fieldkit.errors import PermissionDenied
from fieldkit.ledger.exporter import (
    HOUSEHOLD_COLUMNS,
    ExportError,
    export_households,
    export_monitoring,
    write_template,
)
from fieldkit.ledger.importer import import_file
from fieldkit.store import open_store
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN, make_settings
from tests.ledger_support import make_id

A, B = make_id(21), make_id(22)


@pytest.fixture
def filled(store):
    ledger = store.ledger
    hid, _ = ledger.save_household(
        {
            "grid": "网格1",
            "building": "3栋",
            "unit": "2单元",
            "room": "501",
            "address": "幸福路1号",
            "worker": "李干部",
            "is_rental": True,
            "landlord_name": "周房东",
        }
    )
    ledger.save_member(
        hid,
        {
            "name": "张三",
            "id_number": A,
            "phone": "13800138000",
            "categories": ["close_contact", "elderly_alone"],
            "health_status": "home_isolation",
            "status_start": "2022-04-01",
            "notes": "糖尿病",
            "found_via": "big_data",
        },
    )
    ledger.save_member(hid, {"name": "李四", "id_number": B, "relation": "妻子"})
    ledger.save_household({"building": "3栋", "unit": "2单元", "room": "502"})
    return store


def cells(path: Path) -> list[list]:
    ws = load_workbook(path).active
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_masked_export_in_the_template_layout(filled, tmp_path):
    out = export_households(filled, tmp_path / "ledger.xlsx")
    assert out["rows"] == 3 and not out["full"]
    rows = cells(tmp_path / "ledger.xlsx")
    assert rows[0][0] == "一户一档台账"
    assert rows[1] == [h for _, h in HOUSEHOLD_COLUMNS]
    text = repr(rows)
    for secret in (A, B, "张三", "13800138000", "幸福路1号", "糖尿病", "周房东"):
        assert secret not in text
    col = {k: i for i, (k, _) in enumerate(HOUSEHOLD_COLUMNS)}
    zhang = next(r for r in rows[2:] if r[col["name"]] == "张*")
    assert zhang[col["id_number"]] == A[:6] + "********" + A[-4:]
    assert zhang[col["categories"]] == "密接、独居老人"
    assert zhang[col["health_status"]] == "居家隔离医学观察"
    assert zhang[col["landlord_name"]] == "周**" and zhang[col["is_rental"]] == "是"
    empty = next(r for r in rows[2:] if r[col["room"]] == "502")
    assert empty[col["name"]] is None  # a household without members still has its row
    entry = filled.audit.entries(1, "export")[0]
    assert entry["detail"]["rows"] == 3 and entry["detail"]["file"] == "ledger.xlsx"


def test_full_export_needs_a_supervisor_and_is_audited(filled, tmp_path):
    filled.keyring.add(filled.operator, filled.master, "小李", "patrol", "1357")
    patrol = filled.keyring.get("小李")
    with pytest.raises(PermissionDenied):
        export_households(filled, tmp_path / "x.xlsx", full=True, supervisor=patrol)
    with pytest.raises(PermissionDenied):
        export_households(filled, tmp_path / "x.xlsx", full=True)
    assert not (tmp_path / "x.xlsx").exists()
    export_households(filled, tmp_path / "full.xlsx", full=True, supervisor=filled.operator)
    text = repr(cells(tmp_path / "full.xlsx"))
    for secret in (A, B, "张三", "13800138000", "幸福路1号", "糖尿病", "周房东"):
        assert secret in text
    entry = filled.audit.entries(1, "export_full")[0]
    assert entry["detail"]["confirmed_by"] == SUPERVISOR and A not in repr(entry)


def test_full_export_imports_back_unchanged(filled, tmp_path, settings):
    export_households(filled, tmp_path / "full.xlsx", full=True, supervisor=filled.operator)
    # Importing it into the same store changes nothing.
    s = import_file(filled, tmp_path / "full.xlsx")
    assert (s.imported, s.updated, s.unchanged, s.rejected) == (0, 0, 3, [])
    # And into a new store it gives the same ledger.
    other = open_store(make_settings(tmp_path / "other"), create=True)
    other.setup(SUPERVISOR, SUPERVISOR_PIN)
    s = import_file(other, tmp_path / "full.xlsx")
    assert (s.imported, s.rejected) == (3, [])
    m = other.ledger.find_member(A)
    assert m.categories == ("close_contact", "elderly_alone")
    assert (m.health_status, m.status_start, m.found_via) == (
        "home_isolation",
        "2022-04-01",
        "big_data",
    )
    full = other.ledger.member_full(m.id, purpose="test")
    assert full["notes"] == "糖尿病" and full["phone"] == "13800138000"
    other.close()


def test_template_is_importable(store, tmp_path):
    write_template(tmp_path / "t.xlsx")
    rows = cells(tmp_path / "t.xlsx")
    assert rows[1] == [h for _, h in HOUSEHOLD_COLUMNS] and len(rows) == 2
    s = import_file(store, tmp_path / "t.xlsx")
    assert (s.rows, s.rejected, s.ignored_columns) == (0, [], [])


def test_csv_export_has_a_bom(filled, tmp_path):
    export_households(filled, tmp_path / "l.csv")
    data = (tmp_path / "l.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and "张*".encode() in data


def test_monitoring_ledger_rows_per_day(filled, tmp_path):
    m = filled.ledger.find_member(A)
    from datetime import datetime

    tz = datetime.now().astimezone().tzinfo
    filled.monitoring.record_reading(m.id, 36.6, ts=datetime(2022, 4, 1, 8, 0, tzinfo=tz))
    filled.monitoring.record_reading(m.id, 37.8, ts=datetime(2022, 4, 1, 19, 0, tzinfo=tz))
    out = export_monitoring(filled, tmp_path / "mon.xlsx")
    rows = cells(tmp_path / "mon.xlsx")
    assert out["rows"] == 15  # 2022-04-01 .. the planned end 2022-04-15
    first = rows[2]
    assert first[1] == "张*" and first[8] == "2022-04-01" and first[9:11] == [36.6, 37.8]
    assert first[12] == "是"  # abnormal evening reading
    assert rows[3][9] == "未测"


def test_read_only_folder_gives_a_clear_error_and_no_file(filled, tmp_path, english):
    target = Path("/sys/fieldkit-export-test.xlsx")
    if os.access("/sys", os.W_OK) and not _really_read_only(Path("/sys")):
        pytest.skip("/sys is writable here")
    with pytest.raises(ExportError, match="was not written"):
        export_households(filled, target)
    assert not target.exists()
    assert not filled.audit.entries(5, "export")


def test_missing_folder_gives_a_clear_error(filled, tmp_path, english):
    target = tmp_path / "no" / "such" / "x.xlsx"
    with pytest.raises(ExportError) as err:
        export_households(filled, target)
    assert str(err.value) == (
        f"the folder {target.parent} does not exist (is the USB stick mounted?): "
        f"{target} was not written"
    )
    assert not filled.audit.entries(5, "export")


def test_full_disk_leaves_no_half_written_file(filled, tmp_path, settings):
    """The export runs in a child process whose file-size limit (RLIMIT_FSIZE) is far below
    the workbook size: the write fails exactly like a full disk (EFBIG instead of ENOSPC)."""
    ledger = filled.ledger
    for i in range(300):
        hid, _ = ledger.save_household(
            {"building": "8栋", "room": str(100 + i), "address": "很长的地址" * 20}
        )
        ledger.save_member(
            hid, {"name": f"居民{i}", "id_number": make_id(i, "19700101"), "notes": "备注" * 50}
        )
    target = tmp_path / "out" / "ledger.xlsx"
    target.parent.mkdir()
    target.write_bytes(b"the previous export")
    filled.g.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from fieldkit.store import open_store
        from fieldkit.ledger.exporter import export_households, ExportError
        from tests.conftest import make_settings
        store = open_store(make_settings(Path({str(settings.data_dir)!r})))
        store.unlock({SUPERVISOR!r}, {SUPERVISOR_PIN!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
        try:
            export_households(store, Path({str(target)!r}), full=True, supervisor=store.operator)
        except ExportError as exc:
            print(exc)
            sys.exit(7)
        sys.exit(0)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
        env={**os.environ, "FIELDKIT_LANG": "en"},
    )
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert proc.stdout.startswith("the disk is full:") and "no partial file was left" in proc.stdout
    assert target.read_bytes() == b"the previous export"  # the old file is intact
    assert [p.name for p in target.parent.iterdir()] == ["ledger.xlsx"]  # no temp file left


def _really_read_only(folder: Path) -> bool:
    try:
        (folder / ".fk-probe").write_bytes(b"")
    except OSError:
        return True
    (folder / ".fk-probe").unlink()
    return False
