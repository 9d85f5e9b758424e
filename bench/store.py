"""Store benchmark: durable single-event commits and bulk inserts through the encrypted store,
beside raw sqlite3 inserting the same rows in plaintext, measured in the same run.

Goals (issue 2): bulk ≥ 0.5× raw; single durable event p50 ≤ 5 ms including crypto and audit.
Usage: python bench/store.py [--rows N] [--single N]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fieldkit.config import Settings  # noqa: E402
from fieldkit.domain import Decision, Outcome, Reason  # noqa: E402
from fieldkit.gate import GateEntry, GateService  # noqa: E402
from fieldkit.store import PassageInput, open_store  # noqa: E402
from fieldkit.store.schema import m001_core  # noqa: E402
from scanners.idnumber import resident_check_char  # noqa: E402

ADMIT = Decision(Outcome.ADMIT, (Reason("ok", Outcome.ADMIT),))


def person(i: int) -> tuple[str, str, str]:
    first17 = f"110105{1950 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    return f"张{i}", first17 + resident_check_char(first17), f"138{i:08d}"


def inputs(n: int) -> list[PassageInput]:
    out = []
    for i in range(n):
        name, idn, phone = person(i)
        out.append(
            PassageInput(
                direction="in" if i % 2 else "out",
                id_kind="resident_id",
                id_number=idn,
                name=name,
                phone=phone,
                raw_scan=idn,
                notes=None,
                temperature=36.0 + (i % 10) / 10,
                code_colour="green",
                category="resident",
                source="scan",
            )
        )
    return out


def new_store(root: Path):
    s = Settings()
    s.data_dir = root
    s.security.scrypt_n = 1024
    s.security.argon2_memory_kib, s.security.argon2_time_cost = 1024, 1
    s.security.argon2_parallelism, s.security.min_pin_length = 1, 4
    store = open_store(s, create=True)
    store.setup("bench", "1234")
    return store


def raw_bulk(root: Path, rows: list[PassageInput], store) -> float:
    """Same table, same indexes, same rows, plaintext, one executemany in one transaction."""
    conn = sqlite3.connect(root / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    from sqlite_utils import Database

    m001_core(Database(conn))
    cols = store.passages._COLUMNS
    from fieldkit.crypto import new_record_id  # the same id generator as the store

    t0 = time.perf_counter()
    params = []
    for p in rows:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S")
        values = {c: None for c in cols}
        values.update(
            id=new_record_id(),
            ts=ts,
            day=ts[:10],
            checkpoint="CP",
            direction=p.direction,
            id_kind=p.id_kind,
            id_hash=p.id_number,
            id_check_ok=1,
            name_masked=p.name,
            id_masked=p.id_number,
            name_enc=p.name,
            id_number_enc=p.id_number,
            phone_enc=p.phone,
            raw_scan_enc=p.raw_scan,
            temperature=p.temperature,
            code_colour=p.code_colour,
            category=p.category,
            source=p.source,
            decision="admit",
            reasons='[{"code":"ok"}]',
            operator="bench",
        )
        params.append([values[c] for c in cols])
    conn.execute("BEGIN")
    conn.executemany(store.passages._INSERT, params)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(rows) / elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--single", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = new_store(root / "enc")
        rows = inputs(args.rows)
        raw_rate = raw_bulk(root, rows, store)
        t0 = time.perf_counter()
        store.passages.record_many((p, ADMIT) for p in rows)
        enc_rate = args.rows / (time.perf_counter() - t0)

        single = new_store(root / "single")
        gate = GateService(single)
        times, corr = [], []
        for i in range(args.single):
            name, idn, _ = person(i)
            e = GateEntry(
                direction="in",
                id_number=idn,
                name=name,
                temperature=36.5,
                code_colour="green",
                source="scan",
            )
            t = time.perf_counter()
            _, row = gate.commit(e)
            times.append((time.perf_counter() - t) * 1000)
            if i % 10 == 0:  # a correction: passage + audit entry in one durable transaction
                t = time.perf_counter()
                gate.correct(row.id, e)
                corr.append((time.perf_counter() - t) * 1000)

        # Baseline for the single path: raw sqlite3 durable single-row commits, same machine.
        conn = sqlite3.connect(root / "raw-single.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c REAL)")
        raw_single = []
        for i in range(args.single):
            t = time.perf_counter()
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t(a, b, c) VALUES (?,?,?)", (f"张{i}", "x" * 18, 36.5))
            conn.execute("COMMIT")
            raw_single.append((time.perf_counter() - t) * 1000)

    def pct(xs, q):
        return statistics.quantiles(xs, n=100)[q - 1]

    p50 = statistics.median(times)
    print(f"bulk insert ({args.rows} rows, one transaction)")
    print(f"  raw sqlite3, plaintext   {raw_rate:>10,.0f} rows/s")
    print(f"  encrypted store          {enc_rate:>10,.0f} rows/s")
    print(f"  ratio                    {enc_rate / raw_rate:>10.2f}x   (goal >= 0.50)")
    print(f"single durable event via GateService.commit ({args.single} commits, synchronous=FULL)")
    print(
        f"  encrypted store          p50 {p50:6.2f} ms   p95 {pct(times, 95):6.2f} ms   "
        "(goal p50 <= 5 ms)"
    )
    print(
        f"  with audit (correction)  p50 {statistics.median(corr):6.2f} ms   "
        f"p95 {pct(corr, 95):6.2f} ms"
    )
    print(
        f"  raw sqlite3 1-row commit p50 {statistics.median(raw_single):6.2f} ms   "
        f"p95 {pct(raw_single, 95):6.2f} ms"
    )
    print(f"  ratio p50 store/raw      {p50 / statistics.median(raw_single):6.2f}x")
    ok = enc_rate / raw_rate >= 0.5 and p50 <= 5.0
    print("goals met" if ok else "goals NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
