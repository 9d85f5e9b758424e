"""A full (unmasked) export is readable by its owner only; a masked one stays readable by
others (a stick written by root, read on the office PC). The trial of stop 21 found full
exports written 0644, readable by every user of the device."""

import stat

from fieldkit.ledger.exporter import export_households
from fieldkit.reports import export
from tests.reports_support import busy_day


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_full_exports_are_the_owners_alone_masked_ones_are_not(store, tmp_path):
    busy_day(store)
    export(store, "passages", tmp_path / "full.xlsx", full=True, reason="疾控流调")
    export(store, "passages", tmp_path / "full.csv", full=True, reason="疾控流调")
    export(store, "passages", tmp_path / "masked.xlsx")
    assert _mode(tmp_path / "full.xlsx") == 0o600 and _mode(tmp_path / "full.csv") == 0o600
    assert _mode(tmp_path / "masked.xlsx") == 0o644


def test_a_full_ledger_export_is_the_owners_alone(store, tmp_path):
    store.ledger.save_household({"building": "3栋", "unit": "1", "room": "101"})
    export_households(store, tmp_path / "full.xlsx", full=True, supervisor=store.operator)
    export_households(store, tmp_path / "masked.xlsx")
    assert _mode(tmp_path / "full.xlsx") == 0o600 and _mode(tmp_path / "masked.xlsx") == 0o644
