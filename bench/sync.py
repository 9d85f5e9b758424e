"""Sync throughput: device store → town server over HTTP on loopback, against a raw bulk insert.

    python bench/sync.py [--records 50000] [--devices 50] [--backends sqlite,postgresql]

For each backend, in the same run:

1. raw: the same rows (already parsed and encrypted) bulk-inserted into the same tables, no
   HTTP, no crypto — the ceiling;
2. one device, end to end: a real device store with N gate events, ``run_sync`` over HTTP to
   ``fieldkit-server serve`` (a separate process): read the outbox, seal, sign, send, verify,
   open, ingest, mark synced; records/s and request bytes per record on the wire;
3. many devices at once: D enrolled devices each send their share of N records concurrently
   (batches sealed before the clock starts: device CPU is not the server's); server records/s.

Goals (issue 5): end to end ≥ 25 % of raw; ≥ 10k records/s on PostgreSQL with 50 devices.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync import protocol as p
from sync.server.app import TownServer, parse_record
from sync.server.cli import main as server_main
from sync.server.repository import open_repository
from sync.server.town import ServerSettings, TownKeys
from sync.testing import (
    fake_record,
    free_port,
    new_pg_schema,
    pg_available,
    pg_url,
)


def quiet(*argv: str) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = server_main(list(argv))
    if code:
        raise SystemExit(f"fieldkit-server {' '.join(argv)} failed")
    return buf.getvalue()


def init_town(root: Path, backend: str, name: str) -> tuple[Path, str | None]:
    town = root / name
    args = ["init", "--data-dir", str(town)]
    schema = None
    if backend == "postgresql":
        schema = new_pg_schema()
        args += ["--database-url", pg_url(), "--db-schema", schema]
    quiet(*args)
    # The bench sends as fast as it can: lift the per-device rate limit.
    settings_file = town / "server.toml"
    text = settings_file.read_text()
    text = text.replace("rate_per_second = 20.0", "rate_per_second = 100000.0")
    text = text.replace("rate_burst = 60", "rate_burst = 100000")
    settings_file.write_text(text)
    return town, schema


def repo_for(town: Path, schema: str | None):
    return open_repository(pg_url() if schema else None, str(town), schema)


def start_server(town: Path, port: int, workers: int = 1) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync.server.cli", "serve", "--data-dir", str(town), "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def cleanup(repo, schema: str | None) -> None:
    if schema:
        repo.drop_schema()
    repo.close()


def bench_raw(root: Path, backend: str, n: int) -> float:
    town, schema = init_town(root, backend, f"raw-{backend}")
    keys = TownKeys.load(town)
    repo = repo_for(town, schema)
    server = TownServer(keys, repo, ServerSettings())
    lines = p.encode_records([fake_record(i) for i in range(n)])
    rows = [parse_record(i, line, server.cipher, 65536) for i, line in enumerate(lines)]
    t0 = time.perf_counter()
    for i in range(0, n, 2000):
        repo.raw_insert(rows[i : i + 2000], "bench", f"raw-{i}", time.time())
    elapsed = time.perf_counter() - t0
    assert repo.record_count() == n
    cleanup(repo, schema)
    return n / elapsed


def bench_one_device(root: Path, backend: str, n: int, batch: int) -> dict:
    from fieldkit.config import load_settings
    from fieldkit.domain import Decision, Outcome
    from fieldkit.store import PassageInput, init_store
    from sync import client as sc

    town, schema = init_town(root, backend, f"e2e-{backend}")
    token = json.loads(quiet("device", "add", "gate-1", "--json", "--no-qr", "--data-dir",
                             str(town)))["token"]
    settings = load_settings(None, root / f"device-{backend}")
    settings.security.scrypt_n = 2**10
    settings.sync.batch_size = batch
    settings.sync.timeout_s = 120
    store = init_store(settings)
    store.setup("sup", "1234", checkpoint_name="East gate", checkpoint_code="CP-E")
    port = free_port()
    proc = start_server(town, port)
    try:
        sc.enroll(store, f"http://127.0.0.1:{port}", token)
        start = datetime.now().astimezone() - timedelta(days=1)
        admit = Decision(Outcome.ADMIT, ())
        for k in range(0, n, 5000):
            store.passages.record_many(
                (PassageInput(direction="in" if i % 2 else "out", id_kind="resident_id",
                              id_number="11010519491231002X", name="张三", temperature=36.6,
                              code_colour="green", source="scan",
                              ts=start + timedelta(seconds=i)), admit)
                for i in range(k, min(n, k + 5000)))
        t0 = time.perf_counter()
        report = sc.run_sync(store, store.settings, download=False)
        elapsed = time.perf_counter() - t0
        assert report.ok, report.error
        repo = repo_for(town, schema)
        assert repo.record_count() == n == report.stored
        cleanup(repo, schema)
    finally:
        stop(proc)
        store.close()
    return {"rate": n / elapsed, "bytes_per_record": report.bytes_sent / n,
            "batches": report.batches}


def bench_many_devices(root: Path, backend: str, n: int, devices: int, batch: int,
                       workers: int) -> dict:
    from sync.testing import TestTown

    town, schema = init_town(root, backend, f"many-{backend}")
    keys = TownKeys.load(town)
    repo = repo_for(town, schema)
    helper = TestTown.__new__(TestTown)  # only its token/enroll helpers, on this town's keys
    helper.keys, helper.repo = keys, repo
    port = free_port()
    proc = start_server(town, port, workers)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            enrolled = [helper.enroll_raw(http, f"gate-{d}") for d in range(devices)]
        per_device = n // devices
        work = []
        for d, (device_id, key) in enumerate(enrolled):
            records = [fake_record(d * per_device + i, checkpoint=f"CP-{d % 7}")
                       for i in range(per_device)]
            bodies = [helper.seal(device_id, key, records[i : i + batch])[1]
                      for i in range(0, per_device, batch)]
            work.append((device_id, bodies))
        wire = sum(len(b) for _, bodies in work for b in bodies)

        def send(item):
            device_id, bodies = item
            with httpx.Client(base_url=url, timeout=300) as http:
                for body in bodies:
                    r = http.post(p.PATH_BATCHES, content=body,
                                  headers={"X-Fieldkit-Device": device_id})
                    r.raise_for_status()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(devices) as pool:
            list(pool.map(send, work))
        elapsed = time.perf_counter() - t0
        total = per_device * devices
        assert repo.record_count() == total
    finally:
        stop(proc)
        cleanup(repo, schema)
    return {"rate": total / elapsed, "records": total, "bytes_per_record": wire / total}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2, help="server processes, many-device run")
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    backends = args.backends.split(",")
    if "postgresql" in backends and pg_available():
        print(f"PostgreSQL unavailable ({pg_available()}): skipped")
        backends.remove("postgresql")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for backend in backends:
            raw = bench_raw(root, backend, args.records)
            one = bench_one_device(root, backend, args.records, args.batch)
            workers = args.workers if backend == "postgresql" else 1
            many = bench_many_devices(root, backend, args.records, args.devices,
                                      min(args.batch, 500), workers)
            results[backend] = {"raw": raw, "one": one, "many": many}
            print(f"[{backend}] {args.records} records")
            print(f"  raw bulk insert          {raw:10.0f} records/s")
            print(f"  1 device, end to end     {one['rate']:10.0f} records/s  "
                  f"= {one['rate'] / raw:5.1%} of raw (goal ≥ 25%)  "
                  f"{one['bytes_per_record']:.0f} B/record on the wire")
            print(f"  {args.devices} devices at once     {many['rate']:10.0f} records/s  "
                  f"({many['records']} records, {workers} server process(es), "
                  f"{many['bytes_per_record']:.0f} B/record)"
                  + ("  goal ≥ 10000" if backend == "postgresql" else ""))
    print(f"machine: {os.cpu_count()} CPU(s); client and server share them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
