"""Issue 11: a module over ~400 lines says in its docstring why it is one piece ("One piece …"),
so a big file is a decision someone wrote down, not an accident that grows."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 400


def test_every_big_module_says_why_it_is_one_piece():
    missing = []
    for package in ("fieldkit", "scanners", "sync"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") <= LIMIT:
                continue
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "one piece" not in doc.lower():
                missing.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert missing == [], "modules over 400 lines without a 'One piece' reason:\n" + "\n".join(
        missing
    )
