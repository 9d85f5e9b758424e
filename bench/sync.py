"""Sync throughput: device store → town server over HTTP on loopback, against a raw bulk insert.

    python bench/sync.py [--records 50000] [--devices 50] [--backends sqlite,postgresql]

For each backend, in the same run and on the same machine:

1. **raw**: the very rows the device is about to send (its outbox, parsed and encrypted at rest
   the way the server does it, outside the clock) bulk-loaded into a fresh copy of the same
   tables with the same indexes, in transactions of ``--batch`` rows, with the fastest bulk
   path the backend has: ``executemany`` in one transaction on SQLite, binary ``COPY`` on
   PostgreSQL. No HTTP, no crypto, no parsing, no duplicate check: the ceiling. It runs once
   before and once after the end-to-end run; ratios use the mean of the two.
2. **1 device, end to end**: a real device store with N gate events; ``run_sync`` over HTTP to
   ``fieldkit-server serve`` (a separate process): read the outbox, seal, sign, send, verify,
   open, parse, encrypt at rest, ingest idempotently, reply, mark synced on the device.
3. **D devices at once**: D enrolled devices, each in its own thread with its own HTTP
   connection, send their share of N records concurrently. Their batches are sealed and signed
   *before* the clock starts, so the client side costs only the HTTP send: what is measured is
   the server (and its database) under concurrent load.

Beside each rate the bench prints the CPU time per record of each side, read from /proc:
*client* (this process: the device store, or the sender threads), *server* (the
``fieldkit-server`` process and its workers) and *db* (every ``postgres`` process on the
machine; other users of the same PostgreSQL count too). Client, server and database share the
same cores here, so a rate is bounded by their sum; the per-record CPU figures, and the ratio
of server+db CPU per record against the raw insert's db CPU per record, carry over to a machine
where the server has its cores to itself: ``cores / (server + db µs per record)`` is the rate
it can reach.

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync import protocol as p
from sync.server.app import parse_record
from sync.server.cli import main as server_main
from sync.server.repository import open_repository
from sync.server.town import TownKeys
from sync.testing import (
    fake_record,
    free_port,
    new_pg_schema,
    pg_available,
    pg_url,
)

TICK = os.sysconf("SC_CLK_TCK")


# --- CPU accounting from /proc ------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, command name, CPU seconds) of a live process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), name, (int(fields[11]) + int(fields[12])) / TICK


def _all_stats() -> dict[int, tuple[int, str, float]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                out[int(entry)] = st
    return out


def tree_cpu(root: int, stats: dict[int, tuple[int, str, float]]) -> float:
    """CPU seconds of a process and every live descendant (uvicorn workers)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][2]
        todo.extend(children.get(pid, []))
    return total


@dataclass
class CpuMeter:
    """CPU seconds spent by the client (this process), the server tree and PostgreSQL."""

    server_pid: int | None = None
    postgres: bool = True
    start: dict[str, float] = field(default_factory=dict)

    def _sample(self) -> dict[str, float]:
        stats = _all_stats()
        return {
            "client": time.process_time(),
            "server": tree_cpu(self.server_pid, stats) if self.server_pid else 0.0,
            "db": sum(
                cpu for _, name, cpu in stats.values() if self.postgres and name == "postgres"
            ),
            "wall": time.perf_counter(),
        }

    def __enter__(self) -> Self:
        self.start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        self.used = {k: end[k] - self.start[k] for k in end}

    def per_record(self, n: int) -> dict[str, float]:
        """µs of CPU per record, per side."""
        return {k: 1e6 * v / n for k, v in self.used.items() if k != "wall"}


# --- towns and servers ---------------------------------------------------------------------------


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
        [
            sys.executable,
            "-m",
            "sync.server.cli",
            "serve",
            "--data-dir",
            str(town),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    up = 0
    for _ in range(600):
        try:
            # With several workers, wait until each has answered once (they start one by one).
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                up += 1
                if up >= 3 * workers:
                    time.sleep(0.5 * (workers - 1))  # workers start one after the other
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


# --- the three measurements ----------------------------------------------------------------------


def make_device(root: Path, backend: str, n: int, batch: int):
    from fieldkit.config import load_settings
    from fieldkit.domain import Decision, Outcome
    from fieldkit.store import PassageInput, init_store

    settings = load_settings(None, root / f"device-{backend}")
    settings.security.scrypt_n = 2**10
    settings.security.argon2_memory_kib, settings.security.argon2_time_cost = 1024, 1
    settings.security.argon2_parallelism, settings.security.min_pin_length = 1, 4
    settings.sync.batch_size = batch
    settings.sync.timeout_s = 120
    store = init_store(settings)
    store.setup("sup", "123456", checkpoint_name="East gate", checkpoint_code="CP-E")
    start = datetime.now().astimezone() - timedelta(days=1)
    admit = Decision(Outcome.ADMIT, ())
    for k in range(0, n, 5000):
        store.passages.record_many(
            (
                PassageInput(
                    direction="in" if i % 2 else "out",
                    id_kind="resident_id",
                    id_number=f"1101051949123{i % 10000:04d}X"[:18],
                    name="张三",
                    temperature=36.6,
                    code_colour="green",
                    source="scan",
                    ts=start + timedelta(seconds=i),
                ),
                admit,
            )
            for i in range(k, min(n, k + 5000))
        )
    return store


def bench_raw(root: Path, backend: str, lines: list[bytes], batch: int, tag: str) -> dict:
    """Bulk-load the rows the device will send, encrypted at rest as the server does it."""
    town, schema = init_town(root, backend, f"raw-{backend}-{tag}")
    keys = TownKeys.load(town)
    repo = repo_for(town, schema)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher = AESGCM(keys.data_key)
    rows = [parse_record(i, line, cipher, 65536) for i, line in enumerate(lines)]
    n = len(rows)
    repo.raw_insert(rows[:1], "warm-up", "warm-up", time.time())  # connect outside the clock
    with CpuMeter(postgres=backend == "postgresql") as cpu:
        for i in range(1, n, batch):
            repo.raw_insert(rows[i : i + batch], "bench", f"raw-{i}", time.time())
    assert repo.record_count() == n
    cleanup(repo, schema)
    return {"rate": (n - 1) / cpu.used["wall"], "cpu": cpu.per_record(n - 1)}


class SlowLink(httpx.HTTPTransport):
    """A mobile link's round trip on every request (loopback has none)."""

    def __init__(self, rtt_s: float) -> None:
        super().__init__()
        self.rtt_s = rtt_s

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        time.sleep(self.rtt_s)
        return super().handle_request(request)


def bench_link(root: Path, rtt_ms: float, n: int, batch: int) -> dict[int, float]:
    """One device over a link with ``rtt_ms`` of round trip, one and two batches in flight."""
    from sync import client as sc

    rates = {}
    for depth in (1, 2):
        store = make_device(root / f"link-{depth}", "sqlite", n, batch)
        default, sc._Pipeline.DEPTH = sc._Pipeline.DEPTH, depth
        try:
            rates[depth] = bench_one_device(
                root / f"link-{depth}", "sqlite", store, n, transport=SlowLink(rtt_ms / 1000)
            )["rate"]
        finally:
            sc._Pipeline.DEPTH = default
            store.close()
    return rates


def bench_one_device(
    root: Path, backend: str, store, n: int, transport: httpx.BaseTransport | None = None
) -> dict:
    from sync import client as sc

    town, schema = init_town(root, backend, f"e2e-{backend}")
    token = json.loads(
        quiet("device", "add", "gate-1", "--json", "--no-qr", "--data-dir", str(town))
    )["token"]
    port = free_port()
    proc = start_server(town, port)
    try:
        sc.enroll(store, f"http://127.0.0.1:{port}", token)
        with CpuMeter(proc.pid, backend == "postgresql") as cpu:
            report = sc.run_sync(store, store.settings, download=False, transport=transport)
        assert report.ok, report.error
        repo = repo_for(town, schema)
        assert repo.record_count() == n == report.stored
        assert repo.record_hashes() == store.outbox.content_hashes()
        cleanup(repo, schema)
    finally:
        stop(proc)
    return {
        "rate": n / cpu.used["wall"],
        "bytes_per_record": report.bytes_sent / n,
        "batches": report.batches,
        "cpu": cpu.per_record(n),
    }


def bench_many_devices(
    root: Path, backend: str, n: int, devices: int, batch: int, workers: int
) -> dict:
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
            records = [
                fake_record(d * per_device + i, checkpoint=f"CP-{d % 7}") for i in range(per_device)
            ]
            bodies = [
                helper.seal(
                    device_id,
                    key,
                    records[i : i + batch],
                    compression=p.choose_compression(p.COMPRESSIONS),
                )[1]
                for i in range(0, per_device, batch)
            ]
            work.append((device_id, bodies))
        wire = sum(len(b) for _, bodies in work for b in bodies)
        clients = [httpx.Client(base_url=url, timeout=300) for _ in work]
        for http in clients:  # connect outside the clock, as devices that are already online
            http.get("/healthz").raise_for_status()

        def send(k: int) -> None:
            device_id, bodies = work[k]
            for body in bodies:
                r = clients[k].post(
                    p.PATH_BATCHES, content=body, headers={"X-Fieldkit-Device": device_id}
                )
                r.raise_for_status()
                assert r.json()["counts"]["stored"] == body_count(body)

        with (
            CpuMeter(proc.pid, backend == "postgresql") as cpu,
            ThreadPoolExecutor(devices) as pool,
        ):
            list(pool.map(send, range(len(work))))
        for http in clients:
            http.close()
        total = per_device * devices
        assert repo.record_count() == total
    finally:
        stop(proc)
        cleanup(repo, schema)
    return {
        "rate": total / cpu.used["wall"],
        "records": total,
        "bytes_per_record": wire / total,
        "cpu": cpu.per_record(total),
    }


def body_count(body: bytes) -> int:
    return p.read_batch_header(body)[0].count


# --- report --------------------------------------------------------------------------------------


def cpu_text(cpu: dict[str, float], sides=("client", "server", "db")) -> str:
    return "CPU µs/record: " + "  ".join(f"{s} {cpu[s]:5.0f}" for s in sides)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument(
        "--batch",
        type=int,
        default=2000,
        help="records per batch (device default "
        "sync.batch_size is 500; the server takes up to 2000)",
    )
    ap.add_argument("--many-batch", type=int, default=500, help="records per batch, many devices")
    ap.add_argument("--workers", type=int, default=2, help="server processes, many-device run")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument(
        "--rtt-ms",
        type=float,
        default=0,
        help="also: one device (SQLite, "
        "--link-records, the device's default batches of 500) over a link with "
        "this round trip, one and two batches in flight",
    )
    ap.add_argument("--link-records", type=int, default=10_000)
    args = ap.parse_args()
    backends = args.backends.split(",")
    if "postgresql" in backends and pg_available():
        print(f"PostgreSQL unavailable ({pg_available()}): skipped")
        backends.remove("postgresql")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for backend in backends:
            from sync.client import wire_line

            store = make_device(root, backend, args.records, args.batch)
            # The very lines the device will send: with the town's person hash in each body
            # (the device has the town key once enrolled; any key gives the same shape).
            store.secrets.set("town_index_key", os.urandom(32))
            lines = [wire_line(item) for item in store.outbox.pending(args.records)]
            # The raw insert runs before and after the end-to-end run, and the ratio is taken
            # against their mean: the machine's speed drifts over a run (disk write-back after
            # the SQLite part, other users), and a baseline from one moment misjudges it.
            raw_before = bench_raw(root, backend, lines, args.batch, "before")
            one = bench_one_device(root, backend, store, args.records)
            raw_after = bench_raw(root, backend, lines, args.batch, "after")
            raw = {
                "rate": (raw_before["rate"] + raw_after["rate"]) / 2,
                "cpu": {
                    k: (raw_before["cpu"][k] + raw_after["cpu"][k]) / 2 for k in raw_before["cpu"]
                },
            }
            store.close()
            many = bench_many_devices(
                root, backend, args.records, args.devices, args.many_batch, args.workers
            )
            raw_db = raw["cpu"]["client"] + raw["cpu"]["db"]  # SQLite runs in the client
            srv = many["cpu"]["server"] + many["cpu"]["db"]
            print(
                f"[{backend}] {args.records} records, batches of {args.batch} "
                f"({args.many_batch} with many devices)"
            )
            print(
                f"  raw bulk insert        {raw['rate']:8.0f} rec/s   "
                f"{cpu_text(raw['cpu'], ('client', 'db'))}   (before {raw_before['rate']:.0f}, "
                f"after {raw_after['rate']:.0f})"
            )
            print(
                f"  1 device, end to end   {one['rate']:8.0f} rec/s = "
                f"{one['rate'] / raw['rate']:5.1%} of raw (goal ≥ 25%)  "
                f"{one['bytes_per_record']:.0f} B/record on the wire"
            )
            print(f"                                        {cpu_text(one['cpu'])}")
            goal = "  (goal ≥ 10000)" if backend == "postgresql" else ""
            print(
                f"  {args.devices} devices at once   {many['rate']:8.0f} rec/s = "
                f"{many['rate'] / raw['rate']:5.1%} of raw, {args.workers} server "
                f"process(es){goal}  {many['bytes_per_record']:.0f} B/record"
            )
            print(f"                                        {cpu_text(many['cpu'])}")
            print(
                f"  server side CPU (server + db) {srv:.0f} µs/record = "
                f"{srv / raw_db:.1f}x the raw insert's {raw_db:.0f} µs/record; "
                f"with the server alone on {cores} core(s): "
                f"≈ {cores * 1e6 / srv:,.0f} rec/s, per core ≈ {1e6 / srv:,.0f} rec/s"
            )
        if args.rtt_ms:
            rates = bench_link(root, args.rtt_ms, args.link_records, 500)
            print(
                f"[link] one device, {args.link_records} records in batches of 500, "
                f"{args.rtt_ms:.0f} ms round trip: one batch in flight {rates[1]:.0f} rec/s, "
                f"two {rates[2]:.0f} rec/s ({rates[2] / rates[1]:.2f}x)"
            )
    print(
        f"machine: {cores} CPU(s), shared by client, server and database in this run; "
        f"load average {os.getloadavg()[0]:.1f} at the end (other users count too)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
