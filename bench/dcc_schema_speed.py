#!/usr/bin/env python3
"""DCC schema validation: time per certificate, jsonschema (today) vs the hand-written rules.

Usage: bench/dcc_schema_speed.py [CORPUS_DIR] [--baseline REV]

The baseline is the hand-written validator as it stood at REV (default 4cee0bd, the last commit
that had it), read with ``git show`` and run in the same process on the same certificates (the
``JSON`` of every test case under CORPUS_DIR). Prints how many verdicts agree, ms per
certificate for each (best of 5 passes) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scanners.payloads.dcc_schema import validate_hcert  # noqa: E402


def baseline(rev: str):
    src = subprocess.run(
        ["git", "show", f"{rev}:scanners/payloads/dcc_schema.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mod = types.ModuleType("dcc_schema_hand_rules")
    sys.modules[mod.__name__] = mod
    exec(compile(src, f"{rev}:dcc_schema.py", "exec"), mod.__dict__)
    return mod._validate


def certificates(corpus: Path) -> list[dict]:
    out = []
    for path in sorted(corpus.rglob("*.json")):
        try:
            case = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        cert = case.get("JSON") if isinstance(case, dict) else None
        if isinstance(cert, dict):
            out.append(cert)
    return out


def per_cert_ms(fn, certs, passes=5) -> float:
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for cert in certs:
            fn(cert)
        best = min(best, time.perf_counter() - start)
    return best / len(certs) * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus" / "dcc"))
    ap.add_argument("--baseline", default="4cee0bd")
    args = ap.parse_args(argv)
    hand = baseline(args.baseline)
    certs = certificates(Path(args.corpus))
    same = sum(validate_hcert(c).ok == hand(c).ok for c in certs)
    print(f"{len(certs)} certificates, same verdict: {same}")
    t_hand = per_cert_ms(hand, certs)
    t_js = per_cert_ms(validate_hcert, certs)
    print(
        f"hand rules {t_hand:.3f} ms/cert, jsonschema {t_js:.3f} ms/cert,",
        f"ratio {t_js / t_hand:.1f}x",
    )
    return 0 if same == len(certs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
