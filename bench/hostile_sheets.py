"""Hostile spreadsheets against the import's bounds: seconds and peak memory to refuse each.

Each file is read in a fresh child process (``read_rows``, the reader every import uses), so
its peak RSS is its own; the same child first reports the RSS of the bare interpreter with the
reader imported, as the baseline. Goal: every file refused within 5 s and 300 MB.

    .venv/bin/python bench/hostile_sheets.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import sheets_support as hostile  # noqa: E402

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from fieldkit.sheets.reader import read_rows
from fieldkit.sheets.guard import SheetError
def hwm():  # this process's own peak RSS (ru_maxrss would carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
base = hwm()
t0 = time.perf_counter()
try:
    read_rows({path!r})
    code = "read"
except SheetError as err:
    code = err.code
seconds = time.perf_counter() - t0
peak = hwm()
print(json.dumps({{"code": code, "seconds": seconds, "peak_mb": peak, "base_mb": base}}))
"""

CASES = [
    ("cell at A300000000", hostile.far_cell),
    ("merged range over the whole sheet", hostile.whole_sheet_merge),
    ("a column of 250,000 values", hostile.huge_column),
    ("a cell in column XFD", hostile.wide_row),
    ("zip bomb (210 MB of XML)", hostile.zip_bomb),
    ("80 MB of shared strings", hostile.huge_shared_strings),
    ("billion laughs", hostile.billion_laughs),
    (".xls with cells at A1 and IV65536", hostile.far_cells_xls),
]


def main() -> int:
    worst_s = worst_mb = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for label, build in CASES:
            suffix = ".xls" if build is hostile.far_cells_xls else ".xlsx"
            path = build(Path(tmp) / f"h{suffix}")
            size = path.stat().st_size
            out = subprocess.run(
                [sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout)
            worst_s, worst_mb = max(worst_s, r["seconds"]), max(worst_mb, r["peak_mb"])
            print(
                f"{label:<36} {size / 1024:8.1f} KB  {r['code']:<32} {r['seconds']:6.2f} s  "
                f"peak {r['peak_mb']:6.1f} MB (interpreter + reader {r['base_mb']:.1f} MB)"
            )
    ok = worst_s <= 5 and worst_mb <= 300
    verdict = "OK" if ok else "MISSED"
    print(f"worst: {worst_s:.2f} s, {worst_mb:.1f} MB; goal <= 5 s and 300 MB: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
