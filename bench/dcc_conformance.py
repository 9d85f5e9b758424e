#!/usr/bin/env python3
"""EU DCC conformance: run the public test-data cases against scanners.payloads.dcc.

Usage: bench/dcc_conformance.py DIR... [--verbose]

Walks every ``*.json`` test case under each DIR (layout of the eu-digital-green-certificates
dgc-testdata repository) and compares each ``EXPECTED*`` flag with what our implementation does:

  EXPECTEDPICTUREDECODE     the 2DCODE PNG read by our pipeline gives the PREFIX text
  EXPECTEDUNPREFIX          PREFIX starts with "HC1:" (and the rest equals BASE45 when given)
  EXPECTEDB45DECODE         base45 of PREFIX decodes (and equals COMPRESSED when given)
  EXPECTEDCOMPRESSION       zlib inflate (size-guarded) works (and equals COSE when given)
  EXPECTEDDECODE            COSE → CWT → health certificate decodes
  EXPECTEDVERIFY            signature verifies with TESTCTX.CERTIFICATE (kid must match)
  EXPECTEDEXPIRATIONCHECK   iat <= VALIDATIONCLOCK <= exp
  EXPECTEDVALIDJSON         the decoded certificate is a valid JSON object
  EXPECTEDKEYUSAGE          the signer's extended key usage allows this certificate type

Flags we do not implement (schema validation, encoding, …) are counted as "not checked", never
as passed. Ends with ``N passed, N failed``; exits 1 if any check disagrees.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanners.engines import all_engines
from scanners.payloads.base45 import b45decode
from scanners.payloads.dcc import TrustList, decode_cose, inflate_guarded
from scanners.pipeline import Pipeline

CHECKED = ("EXPECTEDPICTUREDECODE", "EXPECTEDUNPREFIX", "EXPECTEDB45DECODE", "EXPECTEDCOMPRESSION",
           "EXPECTEDDECODE", "EXPECTEDVERIFY", "EXPECTEDEXPIRATIONCHECK", "EXPECTEDVALIDJSON",
           "EXPECTEDKEYUSAGE")


def parse_clock(text: str) -> datetime:
    text = text.strip().replace("Z", "+00:00")
    if "." in text:  # Python wants at most 6 fractional digits
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        text = f"{head}.{digits[:6]}{tail[len(digits):]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _hex(case: dict, key: str) -> bytes | None:
    value = case.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _valid_json(certificate) -> bool:
    """The decoded certificate is a JSON object that survives a JSON round trip."""
    try:
        return isinstance(certificate, dict) and json.loads(json.dumps(certificate)) == certificate
    except (TypeError, ValueError):
        return False


class Checker:
    def __init__(self) -> None:
        self.pipeline = Pipeline(all_engines(), budget_ms=2000, dedupe_seconds=0)

    def actual(self, case: dict) -> dict[str, bool]:
        """Our outcome for every flag we implement (a flag absent here is not applicable)."""
        out: dict[str, bool] = {}
        prefix = case.get("PREFIX") if isinstance(case.get("PREFIX"), str) else None
        picture = case.get("2DCODE") or case.get("_2DCODE")  # LV cases use "_2DCODE"
        if isinstance(picture, str) and picture:
            out["EXPECTEDPICTUREDECODE"] = self.picture_decodes(picture, prefix)

        compressed = None
        if prefix is not None:
            out["EXPECTEDUNPREFIX"] = prefix.startswith("HC1:") and (
                not isinstance(case.get("BASE45"), str) or prefix[4:] == case["BASE45"])
            body = prefix[4:] if prefix.startswith("HC1:") else case.get("BASE45", "")
            try:
                compressed = b45decode(body)
                want = _hex(case, "COMPRESSED")
                out["EXPECTEDB45DECODE"] = want is None or compressed == want
            except ValueError:
                out["EXPECTEDB45DECODE"] = False
        if compressed is None:
            compressed = _hex(case, "COMPRESSED")

        cose = None
        if compressed is not None:
            try:
                cose = inflate_guarded(compressed)
                want = _hex(case, "COSE")
                out["EXPECTEDCOMPRESSION"] = want is None or cose == want
            except ValueError:
                out["EXPECTEDCOMPRESSION"] = False
        if cose is None:
            cose = _hex(case, "COSE")
        if cose is None:
            return out

        ctx = case.get("TESTCTX") or {}
        trust = None
        if ctx.get("CERTIFICATE"):
            trust = TrustList.from_der_base64(ctx["CERTIFICATE"])
        clock = parse_clock(ctx["VALIDATIONCLOCK"]) if ctx.get("VALIDATIONCLOCK") else None
        res = decode_cose(cose, trust, clock)
        out["EXPECTEDDECODE"] = res.steps.get("cbor", False)
        if trust is not None:
            out["EXPECTEDVERIFY"] = res.steps.get("verify", False)
            if res.steps.get("verify"):
                out["EXPECTEDKEYUSAGE"] = res.steps.get("key_usage", False)
        if clock is not None and res.steps.get("cbor"):
            out["EXPECTEDEXPIRATIONCHECK"] = res.steps.get("expiry", False)
        if res.steps.get("cbor"):
            out["EXPECTEDVALIDJSON"] = _valid_json(res.certificate)
        return out

    def picture_decodes(self, picture_b64: str, prefix: str | None) -> bool:
        try:
            data = np.frombuffer(base64.b64decode(picture_b64), np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
        except Exception:  # noqa: BLE001
            return False
        if image is None:
            return False
        texts = [c.text for c, _ in self.pipeline.decode(image).codes]
        return any(t == prefix for t in texts) if prefix else bool(texts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--verbose", "-v", action="store_true", help="list every disagreement")
    args = parser.parse_args(argv)

    checker = Checker()
    table: dict[str, Counter] = defaultdict(Counter)
    failures: list[str] = []
    files = sorted(p for d in args.dirs for p in d.rglob("*.json"))
    if not files:
        print("no test cases found", file=sys.stderr)
        return 2
    for path in files:
        try:
            case = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            failures.append(f"{path}: unreadable test case ({exc})")
            table["(case file)"]["failed"] += 1
            continue
        expected = case.get("EXPECTEDRESULTS") or {}
        actual = checker.actual(case)
        for flag, want in expected.items():
            if flag not in CHECKED:
                table[flag]["not checked"] += 1
                continue
            if flag not in actual:
                table[flag]["not applicable"] += 1
                continue
            if actual[flag] == want:
                table[flag]["passed"] += 1
            else:
                table[flag]["failed"] += 1
                failures.append(f"{path}: {flag} expected {want}, got {actual[flag]}")

    print(f"{'flag':28} {'passed':>7} {'failed':>7} {'n/a':>5} {'not checked':>12}")
    for flag in sorted(table):
        c = table[flag]
        print(f"{flag:28} {c['passed']:7} {c['failed']:7} {c['not applicable']:5} {c['not checked']:12}")
    if failures and args.verbose:
        print()
        print("\n".join(failures))
    elif failures:
        print(f"\n{len(failures)} disagreements (run with -v to list them); first: {failures[0]}")
    passed = sum(c["passed"] for c in table.values())
    failed = sum(c["failed"] for c in table.values())
    print(f"{len(files)} cases")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
