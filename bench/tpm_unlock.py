"""What sealing to a TPM 2.0 costs at login: one unlock with the default PIN KDF (Argon2id
64 MiB) on a store sealed to a TPM against the same on a PIN-only store, interleaved in one
run, plus one unseal alone. The TPM is a software TPM (swtpm) on loopback: a real chip is
slower per command (not measured here; there was none).

    .venv/bin/python bench/tpm_unlock.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fieldkit.ledger  # noqa: E402, F401  (plugs the household ledger into every store)
from fieldkit.config import Settings  # noqa: E402
from fieldkit.store import open_store, tpm  # noqa: E402
from tests.swtpm import SoftTpm, why_no_tpm  # noqa: E402

ROUNDS = 9


def _use(tcti: str | None) -> None:
    os.environ.pop("TPM2TOOLS_TCTI", None)
    if tcti:
        os.environ["FIELDKIT_TPM_TCTI"] = tcti
    else:
        os.environ.pop("FIELDKIT_TPM_TCTI", None)


def _store(root: Path, tcti: str | None) -> Settings:
    _use(tcti)
    settings = Settings()
    settings.data_dir = root
    s = open_store(settings, create=True)
    s.setup("王芳", "246813")
    s.close()
    return settings


def main() -> int:
    why = why_no_tpm()
    if why:
        print(f"skipped: {why}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        soft = SoftTpm(Path(tmp) / "tpm").start()
        try:
            stores = {
                "PIN only": (_store(Path(tmp) / "plain", None), None),
                "PIN + TPM": (_store(Path(tmp) / "sealed", soft.tcti), soft.tcti),
            }
            times: dict[str, list[float]] = {k: [] for k in stores}
            for _ in range(ROUNDS):
                for name, (settings, tcti) in stores.items():
                    _use(tcti)
                    s = open_store(settings)
                    t0 = time.perf_counter()
                    s.unlock("王芳", "246813")
                    times[name].append(time.perf_counter() - t0)
                    kdf = s.keyring.protection()["kdf"]
                    s.close()
                    assert ("argon2id+tpm" in kdf) == (tcti is not None), kdf
            _use(soft.tcti)
            secret = os.urandom(32)
            blob = tpm.seal(secret)
            unseal = []
            for _ in range(ROUNDS * 3):
                t0 = time.perf_counter()
                assert tpm.unseal(blob) == secret
                unseal.append(time.perf_counter() - t0)
        finally:
            soft.stop()
    base = statistics.median(times["PIN only"])
    for name, ts in times.items():
        print(f"{name:<10} unlock median {statistics.median(ts):.3f} s over {ROUNDS}")
    print(f"unseal alone (swtpm): median {statistics.median(unseal) * 1000:.1f} ms")
    print(f"ratio PIN + TPM / PIN only: {statistics.median(times['PIN + TPM']) / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
