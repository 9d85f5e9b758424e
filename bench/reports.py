"""Reports and exports on a busy store: daily report, shift summary, passages to XLSX and CSV.

Prints seconds and a ratio against a baseline measured in the same run (reading the same rows
from SQLite and writing them with the csv module, no masking, no workbook), so the figures
compare across machines. Usage: ``python bench/reports.py [N]`` (default 10000 passages).
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fieldkit.ledger  # noqa: F401  (plugs the household ledger into every store)
from fieldkit.config import Settings
from fieldkit.domain import Decision, Outcome, Reason
from fieldkit.reports import daily_report, export, shift_summary
from fieldkit.store import PassageInput, open_store


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings()
        settings.data_dir = Path(tmp) / "data"
        settings.security.scrypt_n = 1024
        store = open_store(settings, create=True)
        store.setup("王芳", "2468", checkpoint_name="东门卡口", checkpoint_code="CP-0101")
        store.shifts.open("王芳")
        ok = Decision(Outcome.ADMIT, (Reason("ok", Outcome.ADMIT),))
        start = datetime.now().astimezone().replace(hour=0, minute=0, second=0)
        step = timedelta(seconds=max(1, 86000 // n))
        store.passages.record_many(
            (
                PassageInput(
                    direction="in" if i % 2 else "out",
                    id_number=None,
                    name=f"张{i}",
                    temperature=36.0 + (i % 15) / 10,
                    code_colour="green",
                    ts=start + step * i,
                ),
                ok,
            )
            for i in range(n)
        )
        day = start.date().isoformat()
        out = Path(tmp)

        def baseline() -> None:
            rows = store.g.query("SELECT * FROM passages WHERE day = ? ORDER BY ts", [day])
            buf = io.StringIO()
            writer = csv.writer(buf)
            for r in rows:
                writer.writerow(
                    [
                        r["ts"],
                        r["direction"],
                        r["name_masked"],
                        r["temperature"],
                        r["decision"],
                        r["operator"],
                    ]
                )
            (out / "baseline.csv").write_text(buf.getvalue(), encoding="utf-8-sig")

        base = min(timed(baseline) for _ in range(3))
        results = {
            "daily report": timed(lambda: daily_report(store, day)),
            "shift summary": timed(lambda: shift_summary(store)),
            "passages → CSV": timed(lambda: export(store, "passages", out / "p.csv", day=day)),
            "passages → XLSX": timed(lambda: export(store, "passages", out / "p.xlsx", day=day)),
            "shift log → XLSX": timed(lambda: export(store, "shift-log", out / "s.xlsx")),
        }
        print(f"{n} passages; baseline (read + plain csv.writer): {base:.3f} s")
        for name, seconds in results.items():
            print(f"  {name:<18} {seconds:7.3f} s   {seconds / base:6.1f}× baseline")
        store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
