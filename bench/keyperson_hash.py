"""Cost of reversing the key-person list: the slow, town-salted lookup hash (Argon2id, 16 MiB)
against the HMAC blind index it replaced, measured in the same run, and the core-years to try
every plausible resident ID number (~1.1e11: region × birth date × sequence).

    .venv/bin/python bench/keyperson_hash.py
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fieldkit.crypto import blind_index, keyperson_hash  # noqa: E402

ID_SPACE = 1.1e11
YEAR = 365.25 * 86400


def per_call(fn, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(n):
            fn(f"1101051949123{i:04d}X")
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def main() -> None:
    key = os.urandom(32)
    hmac_s = per_call(lambda i: blind_index(key, i), 20000)
    slow_s = per_call(lambda i: keyperson_hash(key, i), 20)
    print(f"HMAC blind index (before): {hmac_s * 1e6:.2f} µs/ID, {1 / hmac_s / 1e6:.2f} M/s")
    print(f"keyperson_hash (Argon2id 16 MiB): {slow_s * 1000:.1f} ms/ID at the gate (one per scan)")
    print(f"ratio: {slow_s / hmac_s:,.0f}x")
    print(
        f"reversing the list over {ID_SPACE:.1e} IDs on one core: before "
        f"{ID_SPACE * hmac_s / 86400:.1f} core-days, now {ID_SPACE * slow_s / YEAR:,.0f} core-years"
    )


if __name__ == "__main__":
    main()
