"""Screens and widgets reach the app through fieldkit/ui/typed.py, never Textual's untyped
``self.app.<attribute>`` (which mypy cannot check); mypy checks fieldkit.ui (no override)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI = ROOT / "fieldkit" / "ui"
UNTYPED = re.compile(r"\bself\.app\.[A-Za-z_]")


def test_no_screen_or_widget_reads_self_app_untyped():
    offenders = []
    for path in sorted(UI.rglob("*.py")):
        if path.name == "typed.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if UNTYPED.search(code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "use fieldkit_app(self) / store_of(self):\n" + "\n".join(offenders)


def test_mypy_checks_the_screens():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    skipped = [
        module
        for override in config.get("overrides", [])
        if override.get("ignore_errors")
        for module in override.get("module", [])
    ]
    assert not [m for m in skipped if m == "fieldkit.ui" or m.startswith("fieldkit.ui.")]
