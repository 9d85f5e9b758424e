"""What one offline PIN guess costs a thief who copied the store file: seconds and memory per
guess for the default PIN KDF (Argon2id) against the scrypt baseline it replaced, measured in
the same run, and the core-time to try every PIN of 4 and 6 digits.

Pi 4 estimate: ``cryptsetup benchmark`` on a Raspberry Pi 4 (Cortex-A72, 4 cores) tunes
Argon2id to 4 passes over 239,062 KiB with 4 threads for 2,000 ms (unixabg/cryptmypi issue 53):
about 467 MiB·pass/s on 4 cores. The default (2 passes over 64 MiB, 4 lanes) is 128 MiB·pass,
so ≈ 0.27 s per PIN on a Pi 4. This machine's figure is measured below; the ratio printed is
this machine's single-core MiB·pass/s over the Pi 4's per-core figure.

    .venv/bin/python bench/pin_kdf.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fieldkit.config import SecuritySettings  # noqa: E402
from fieldkit.crypto import derive_pin_key, derive_pin_key_argon2id  # noqa: E402

PI4_MIB_PASS_PER_S = 4 * 239_062 / 1024 / 2.0  # all 4 cores
YEAR = 365.25 * 86400


def best_of(fn, n: int = 5) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_rss_mib(call: str) -> float:
    """Growth of the peak RSS of a fresh process over one call (imports done before)."""
    # VmHWM, not ru_maxrss: the latter is inherited from this (bigger) process across fork.
    hwm = "int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"
    code = (
        "from fieldkit.crypto import derive_pin_key, derive_pin_key_argon2id\n"
        f"before = {hwm}\n"
        f"{call}\n"
        f"print({hwm} - before)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    s = SecuritySettings()
    salt = os.urandom(16)
    scrypt_s = best_of(lambda: derive_pin_key("135790", salt, 2**15, 8, 1))
    argon_s = best_of(
        lambda: derive_pin_key_argon2id(
            "135790", salt, s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism
        )
    )
    # What an attacker pays per guess on ONE core (lanes run one after another).
    argon_1core = best_of(
        lambda: derive_pin_key_argon2id("135790", salt, s.argon2_time_cost, s.argon2_memory_kib, 1)
    )
    base = peak_rss_mib("import fieldkit.crypto")
    rss_scrypt = (
        peak_rss_mib(
            "from fieldkit.crypto import derive_pin_key;derive_pin_key('1',b'0'*16,2**15,8,1)"
        )
        - base
    )
    rss_argon = (
        peak_rss_mib(
            "from fieldkit.crypto import derive_pin_key_argon2id;"
            f"derive_pin_key_argon2id('1',b'0'*16,{s.argon2_time_cost},{s.argon2_memory_kib},"
            f"{s.argon2_parallelism})"
        )
        - base
    )
    work = s.argon2_time_cost * s.argon2_memory_kib / 1024  # MiB·pass per guess
    here_per_core = work / argon_1core
    pi4_s = work / PI4_MIB_PASS_PER_S
    print(f"scrypt N=2^15 r=8 (baseline):  {scrypt_s * 1000:7.1f} ms/guess, +{rss_scrypt:.0f} MiB")
    print(
        f"Argon2id t={s.argon2_time_cost} m={s.argon2_memory_kib // 1024} MiB "
        f"p={s.argon2_parallelism}: {argon_s * 1000:7.1f} ms at login here, "
        f"{argon_1core * 1000:.1f} ms per guess on one core, +{rss_argon:.0f} MiB"
    )
    print(f"ratio Argon2id/scrypt per guess on one core: {argon_1core / scrypt_s:.2f}x")
    print(
        f"this machine {here_per_core:.0f} MiB·pass/s per core vs Pi 4 "
        f"{PI4_MIB_PASS_PER_S / 4:.0f}: ratio {here_per_core / (PI4_MIB_PASS_PER_S / 4):.1f}x; "
        f"estimated login on a Pi 4 (4 lanes on 4 cores): {pi4_s:.2f} s"
    )
    for digits in (4, 6):
        total = 10**digits * argon_1core
        print(
            f"every {digits}-digit PIN on one core here: {total / 3600:.1f} h "
            f"({total / YEAR * 1e3:.2f} core-milliyears); "
            f"scrypt: {10**digits * scrypt_s / 3600:.1f} h"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(peak RSS of this run {peak:.0f} MiB)")


if __name__ == "__main__":
    main()
