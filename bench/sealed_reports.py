"""What sealing the passages' health values costs the reports (issue 14 item 7).

Every report now opens each passage's sealed values (AES-GCM + JSON) instead of letting SQLite
group clear columns. Prints seconds for the daily report, shift summary, category totals and a
masked passages document at N passages (default 10000), on a cold session (just unlocked:
every record opened) and warm (opened values kept for the session), each with its ratio to a
baseline measured in the same run: reading the day's rows from SQLite (``SELECT *``).
Run it on the code before and after to compare: ``python bench/sealed_reports.py [N]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fieldkit.config import Settings  # noqa: E402
from fieldkit.domain import Decision, Outcome, Reason  # noqa: E402
from fieldkit.reports import category_totals, daily_report, shift_summary  # noqa: E402
from fieldkit.reports.document import build_document  # noqa: E402
from fieldkit.store import PassageInput, open_store  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings()
        settings.data_dir = Path(tmp) / "data"
        for attr, value in (
            ("scrypt_n", 1024),
            ("min_pin_length", 4),
            ("argon2_memory_kib", 1024),
            ("argon2_time_cost", 1),
            ("argon2_parallelism", 1),
        ):
            if hasattr(settings.security, attr):
                setattr(settings.security, attr, value)
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
                    temperature=36.0 + (i % 25) / 10,
                    code_colour=("green", "yellow", "red")[i % 3],
                    ts=start + step * i,
                ),
                ok,
            )
            for i in range(n)
        )
        day = start.date().isoformat()
        base = min(
            timed(lambda: store.g.query("SELECT * FROM passages WHERE day = ?", [day]))
            for _ in range(3)
        )
        jobs = {
            "daily report": lambda: daily_report(store, day),
            "shift summary": lambda: shift_summary(store),
            "category totals": lambda: category_totals(store, day),
            "passages document": lambda: build_document(store, "passages", day=day),
        }
        print(f"{n} passages; baseline (SELECT * of the day): {base:.3f} s")
        for name, job in jobs.items():
            store.lock("bench")
            store.unlock("王芳", "2468")  # a new session: nothing opened yet
            cold = timed(job)
            warm = min(timed(job) for _ in range(2))
            print(
                f"  {name:<18} cold {cold:6.3f} s {cold / base:5.1f}×   "
                f"warm {warm:6.3f} s {warm / base:5.1f}×"
            )
        store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
