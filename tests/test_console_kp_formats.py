"""The console's key-person upload takes what the command line takes (.xlsx, .xls, .ods, .csv)
and says so: it told a clerk "only .xlsx or .csv (save an .xls as .xlsx first)" while it read
.xls and .ods (trial of stop 21)."""

from pathlib import Path

import pytest

from fieldkit.i18n import t
from sync.server.console.kpfile import UploadError, read_upload
from tests.ledger_support import make_id
from tests.sheets_support import write_ods, write_xls

ROOT = Path(__file__).resolve().parent.parent
KEY = b"k" * 32
ROWS = [["姓名", "身份证号"], ["张三", make_id(11)], ["李四", make_id(12)]]


@pytest.mark.parametrize("write, suffix", [(write_xls, ".xls"), (write_ods, ".ods")])
def test_xls_and_ods_key_person_lists_are_read(tmp_path, write, suffix):
    path = write(tmp_path / f"名单{suffix}", ROWS, [])
    preview = read_upload(path.read_bytes(), path.name, KEY)
    assert len(preview.entries) == 2


def test_a_file_of_another_kind_is_refused_naming_every_kind_taken():
    with pytest.raises(UploadError) as err:
        read_upload(b"\x89PNG....", "photo.png", KEY)
    said = t(err.value.key, "zh")
    assert all(s in said for s in (".xlsx", ".xls", ".ods", ".csv")) and "另存" not in said
    page = (ROOT / "sync/server/console/templates/keypersons.html").read_text(encoding="utf-8")
    assert 'accept=".xlsx,.xlsm,.xls,.ods,.csv,.txt"' in page
