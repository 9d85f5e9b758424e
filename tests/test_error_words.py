"""Every FieldKit error raised on the device is raised with a catalogue key, never with an
English sentence: ``str(err)`` is what the CLI and the screens print, in the run's language.
Trial of stop 21: ``fieldkit export --full`` by a gate operator answered in English in a
Chinese run, from an f-string in fieldkit/reports/document.py (and purge.py alike)."""

import ast
from pathlib import Path

import pytest

from fieldkit.errors import looks_like_key

ROOT = Path(__file__).resolve().parent.parent
# The device's errors that print their first argument (FieldkitError and its subclasses).
ERRORS = {
    "FieldkitError",
    "ConfigError",
    "StoreError",
    "NotInitialisedError",
    "AuthError",
    "LockedError",
    "PermissionDenied",
    "InputError",
    "SyncError",
    "SessionLocked",
    "StoreBusyError",
    "ExportError",
    "SheetError",
    "ImportFileError",
}


def _prose_raises(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
            continue
        func = node.exc.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name not in ERRORS or not node.exc.args:
            continue
        first = node.exc.args[0]
        if isinstance(first, ast.JoinedStr) or (
            isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and not looks_like_key(first.value)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_device_errors_are_raised_with_catalogue_keys():
    prose = [
        hit for path in sorted((ROOT / "fieldkit").rglob("*.py")) for hit in _prose_raises(path)
    ]
    assert prose == []


@pytest.mark.parametrize("key", ["err.full_export_needs_supervisor", "err.purge_needs_supervisor"])
def test_supervisor_refusals_have_words_in_both_languages(key):
    from fieldkit.errors import PermissionDenied

    err = PermissionDenied(key, name="李强")
    assert err.render("zh").startswith("李强 不是负责人") and "supervisor" not in err.render("zh")
    assert err.render("en").startswith("李强 is not a supervisor")


def test_a_gate_operators_full_export_is_refused_in_chinese(store, tmp_path):
    from fieldkit.errors import PermissionDenied
    from fieldkit.reports import export

    store.keyring.add(store.operator, store.master, "李强", "gate", "1357")
    store.lock()
    store.unlock("李强", "1357")
    with pytest.raises(PermissionDenied) as err:
        export(store, "passages", tmp_path / "full.xlsx", full=True, reason="疾控流调")
    assert err.value.render("zh") == "李强 不是负责人：完整（不脱敏）导出需要负责人 PIN"
