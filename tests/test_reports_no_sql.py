"""Reports, screens and the gate service read the store through its facade only (issue 11):
no module of fieldkit/reports, fieldkit/ui or fieldkit/gate.py runs SQL on the store or reaches
for its connection. The SQL lives in fieldkit/store (reports: fieldkit/store/reporting.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "fieldkit"
# The household-ledger figures for reports go through the ledger's own facade.
CHECKED = sorted([*ROOT.joinpath("reports").rglob("*.py"), *ROOT.joinpath("ui").rglob("*.py")])
CHECKED.append(ROOT / "gate.py")

# store.g.query / .scalar / .db and any .execute / .executemany / .conn: SQL or the connection.
FORBIDDEN_CALLS = {"execute", "executemany", "executescript", "executescalar"}
FORBIDDEN_ATTRS = {"conn"}
FORBIDDEN_ON_G = {"query", "scalar", "db"}


def violations(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: .{node.func.attr}(")
        if isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_ATTRS:
                found.append(f"line {node.lineno}: .{node.attr}")
            inner = node.value
            if (
                node.attr in FORBIDDEN_ON_G
                and isinstance(inner, ast.Attribute)
                and inner.attr == "g"
            ):
                found.append(f"line {node.lineno}: .g.{node.attr}")
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute | ast.Name)
            and (node.value.attr if isinstance(node.value, ast.Attribute) else node.value.id)
            == "db"
        ):
            found.append(f"line {node.lineno}: db[...]")
    return found


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_on_the_store_outside_it(path):
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "snippet",
    [
        'store.g.query("SELECT * FROM passages")',
        'store.g.scalar("SELECT count(*) FROM passages")',
        'store.g.db.execute("DELETE FROM passages")',
        'self.app.store.g.db.conn.executemany("x", [])',
        'db["passages"].insert({})',
        'with store.g.tx() as db:\n    db.execute("UPDATE shifts SET summary = 1")',
    ],
)
def test_the_scan_sees_sql(snippet):
    """The scan can fail: each of these is caught."""
    assert violations(snippet)


def test_the_scan_sees_every_checked_module():
    assert (
        ROOT / "reports" / "builders.py" in CHECKED and ROOT / "reports" / "document.py" in CHECKED
    )
    assert ROOT / "gate.py" in CHECKED and any(p.parent.name == "ui" for p in CHECKED)
