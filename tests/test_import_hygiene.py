"""The core never imports textual: only fieldkit/ui/ may (STYLE.md §1)."""

import subprocess
import sys

import pytest

CORE_MODULES = [
    "fieldkit",
    "fieldkit.config",
    "fieldkit.store",
    "fieldkit.gate",
    "fieldkit.rules",
    "fieldkit.cli",
    "fieldkit.i18n",
    "scanners",
    "scanners.idnumber",
    "sync",
]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_does_not_import_textual(module):
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, f"{module} imports textual: {proc.stdout} {proc.stderr}"


def test_every_core_package_module_is_textual_free():
    """Walk every module of the core packages that exists now (new ones are covered too)."""
    code = r"""
import importlib, pkgutil, sys
from pathlib import Path

def walk(path, prefix):
    # Like pkgutil.walk_packages, but without importing fieldkit.ui to look inside it.
    for info in pkgutil.iter_modules([str(path)], prefix):
        if info.name.startswith("fieldkit.ui") or info.name.endswith("__main__"):
            continue
        yield info.name
        if info.ispkg:
            yield from walk(Path(path) / info.name.rsplit(".", 1)[1], info.name + ".")

names = []
for pkg in ("fieldkit", "scanners", "sync"):
    names.append(pkg)
    names.extend(walk(Path(importlib.util.find_spec(pkg).origin).parent, pkg + "."))
for n in names:
    importlib.import_module(n)
bad = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
print(len(names), ",".join(bad[:5]))
sys.exit(1 if bad else 0)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
