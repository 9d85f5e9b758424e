"""Soak: many devices upload many batches to a real ``fieldkit-server serve``; does RSS level off?

    .venv/bin/python bench/soak.py                      # 20 devices x 2,000 batches x 5 records
    .venv/bin/python bench/soak.py --devices 4 --batches 200   # a quick look

Starts ``fieldkit-server serve`` on 127.0.0.1 with a fresh town in a temporary directory,
enrolls the devices, and has each upload its batches one after another (all devices at once).
The server's resident memory (VmRSS) is sampled as the batches land; the report prints the curve
and compares the growth over the second half of the run with the first half: a server that
levels off grows far less in the second half (ratio well below 1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync import protocol as p  # noqa: E402
from sync.server.town import ServerSettings, TownKeys  # noqa: E402
from sync.testing import fake_record, free_port  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_cli(*argv: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "sync.server.cli", *argv],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--records", type=int, default=5, help="records per batch")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fieldkit-soak-"))
    town = tmp / "town"
    server_cli("init", "--data-dir", str(town))
    # The device quota is not what is measured here.
    replace(ServerSettings.load(town), rate_per_second=10_000.0, rate_burst=10_000).save(town)
    port = free_port()
    out = (tmp / "serve.out").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync.server.cli",
            "serve",
            "--data-dir",
            str(town),
            "--port",
            str(port),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        town_x = TownKeys.load(town).x25519.public_key()
        devices = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for d in range(args.devices):
                token = json.loads(
                    server_cli(
                        "device", "add", f"soak-{d}", "--json", "--no-qr", "--data-dir", str(town)
                    )
                )["token"]
                key = Ed25519PrivateKey.generate()
                r = http.post(
                    p.PATH_ENROLL,
                    json={
                        "token": token,
                        "public_key": p.b64e(p.raw_public(key.public_key())),
                        "seal_to": p.b64e(p.raw_public(X25519PrivateKey.generate().public_key())),
                    },
                )
                r.raise_for_status()
                devices.append((p.document_payload_unverified(r.json())["device_id"], key))

        done = [0]
        errors: list[str] = []
        lock = threading.Lock()

        def run(device_id: str, key: Ed25519PrivateKey, n: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                for b in range(args.batches):
                    base = (n * args.batches + b) * args.records
                    lines = p.encode_records([fake_record(base + i) for i in range(args.records)])
                    _, body = p.seal_batch(
                        lines,
                        device_id=device_id,
                        device_key=key,
                        town_x25519=town_x,
                        compression="zstd",
                    )
                    r = http.post(
                        p.PATH_BATCHES,
                        content=body,
                        headers={"X-Fieldkit-Device": device_id},
                    )
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text[:120]}")
                        return
                    with lock:
                        done[0] += 1

        started = time.monotonic()
        samples = [(0, 0.0, rss_mb(proc.pid))]
        threads = [
            threading.Thread(target=run, args=(d, k, n), daemon=True)
            for n, (d, k) in enumerate(devices)
        ]
        for t in threads:
            t.start()
        total = args.devices * args.batches
        while any(t.is_alive() for t in threads):
            time.sleep(1.0)
            samples.append((done[0], time.monotonic() - started, rss_mb(proc.pid)))
        samples.append((done[0], time.monotonic() - started, rss_mb(proc.pid)))
        elapsed = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(10)
        out.close()

    print(
        f"{args.devices} devices x {args.batches} batches x {args.records} records: "
        f"{done[0]}/{total} batches in {elapsed:.0f} s ({done[0] / elapsed:.0f}/s)"
    )
    if errors:
        print(f"{len(errors)} devices stopped early; first: {errors[0]}")
    print("batches   seconds   RSS MB")
    step = max(1, len(samples) // 20)
    for b, s, m in samples[::step] + [samples[-1]]:
        print(f"{b:7d}   {s:7.0f}   {m:6.1f}")

    def rss_at(fraction: float) -> float:
        target = fraction * done[0]
        return next(m for b, _, m in samples if b >= target)

    first = rss_at(0.5) - rss_at(0.0)
    second = rss_at(1.0) - rss_at(0.5)
    print(
        f"RSS growth: first half {first:+.1f} MB, second half {second:+.1f} MB "
        f"(ratio second/first {second / first if first else float('nan'):.2f}); "
        f"peak {max(m for _, _, m in samples):.1f} MB"
    )
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
