#!/usr/bin/env python3
"""EU DCC conformance: run the public test-data cases against scanners.payloads.dcc.

Usage: bench/dcc_conformance.py DIR... [--verbose]

Walks every ``*.json`` test case under each DIR (layout of the eu-digital-green-certificates
dgc-testdata repository) and compares EVERY ``EXPECTED*`` flag of every case, in both
directions, with what our implementation does; ``FLAGS`` below says what each check is (the
test-data README defines the flags). A flag this script does not know, or a flag whose input
the case lacks, is reported as NOT CHECKED with the reason, in the table and the summary.

Known defects of the public test data (cases whose flag contradicts the schema and other cases
of the same data set) are listed with a reason and a reference in ``bench/dcc_errata.csv``:
such a disagreement is printed as a "known issue", never counted as passed, and an erratum that
no longer matches a disagreement fails the run. Our rules never look at file names.

Prints a table by flag and ends with ``N passed, N failed``; exits 1 on any disagreement.
"""

from __future__ import annotations

import argparse
import base64
import csv
import fnmatch
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cbor2
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scanners.engines import all_engines
from scanners.payloads.dcc import (
    TrustList,
    b45decode,
    decode_cose,
    inflate_guarded,
    key_usage_problem,
    to_jsonable,
)
from scanners.payloads.dcc_schema import validate_hcert
from scanners.pipeline import Pipeline

FLAGS = {
    "EXPECTEDPICTUREDECODE": "the 2DCODE PNG (or, when a case has none, PREFIX rendered as a QR "
    "with segno) read by our pipeline gives the PREFIX text",
    "EXPECTEDUNPREFIX": 'PREFIX starts with "HC1:" (and the rest equals BASE45 when given)',
    "EXPECTEDB45DECODE": "base45 of PREFIX/BASE45 decodes (and equals COMPRESSED when given)",
    "EXPECTEDCOMPRESSION": "zlib inflate (size-guarded) works (and equals COSE when given)",
    "EXPECTEDDECODE": "COSE -> CWT -> health certificate decodes (and equals CBOR when given)",
    "EXPECTEDVERIFY": "signature verifies with TESTCTX.CERTIFICATE (kid must match)",
    "EXPECTEDEXPIRATIONCHECK": "iat <= VALIDATIONCLOCK <= exp",
    "EXPTECTEDEXPIRED": "misspelt EXPECTEDEXPIRATIONCHECK in the BG cases (true = valid at "
    "VALIDATIONCLOCK; all four certificates are unexpired then); same check",
    "EXPECTEDVALIDJSON": "the decoded certificate is a JSON object that survives a JSON round trip",
    "EXPECTEDKEYUSAGE": "the signer's extended key usage allows this certificate type",
    "EXPECTEDSCHEMAVALIDATION": "the signed certificate (from COSE, else the PREFIX chain, CBOR or "
    "JSON) passes scanners.payloads.dcc_schema for its own ver",
    "EXPECTEDVALIDOBJECT": "the JSON is a certificate object (ver, nam, dob, one group) and the "
    "COSE payload is a CWT claims map with iss (1), exp (4), iat (6) and "
    "hcert (-260) holding the certificate under key 1",
    "EXPECTEDENCODE": "JSON encoded to CBOR by us decodes to the same certificate as the case's "
    "CBOR (both decoded with one decoder, as the test-data README says)",
}
ERRATA = Path(__file__).with_name("dcc_errata.csv")


def parse_clock(text: str) -> datetime:
    text = text.strip().replace("Z", "+00:00")
    if "." in text:  # Python wants at most 6 fractional digits
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
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


def _loads(data: bytes):
    try:
        return cbor2.loads(data)
    except Exception:  # noqa: BLE001 - cbor2 raises many types on junk
        return None


def _hcert_level(obj):
    """A CBOR value that may be a whole CWT payload (claims map) or the certificate itself."""
    if isinstance(obj, dict) and isinstance(obj.get(-260), dict) and 1 in obj[-260]:
        return obj[-260][1]
    return obj


def _valid_object(case: dict, cose: bytes | None) -> bool:
    cert = case.get("JSON")
    if not (
        isinstance(cert, dict)
        and {"ver", "nam", "dob"} <= cert.keys()
        and sum(1 for k in ("v", "t", "r") if cert.get(k)) == 1
    ):
        return False
    if cose is None:
        return True
    try:
        message = cbor2.loads(cose)
        while isinstance(message, cbor2.CBORTag):
            message = message.value
        claims = cbor2.loads(message[2])
    except Exception:  # noqa: BLE001
        return False
    return (
        isinstance(claims, dict)
        and isinstance(claims.get(1), str)
        and all(_numeric_date(claims.get(k)) for k in (4, 6))
        and isinstance(claims.get(-260), dict)
        and isinstance(claims[-260].get(1), dict)
    )


def _numeric_date(value) -> bool:
    """A CWT NumericDate (RFC 8392): an integer or floating-point number of seconds."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _encodes(case: dict) -> bool:
    cert, cbor_bytes = case.get("JSON"), _hex(case, "CBOR")
    if not isinstance(cert, dict) or cbor_bytes is None:
        return False
    ours, theirs = _loads(cbor2.dumps(cert)), _loads(cbor_bytes)
    return theirs is not None and to_jsonable(ours) == to_jsonable(_hcert_level(theirs))


class Checker:
    def __init__(self) -> None:
        self.pipeline = Pipeline(all_engines(), budget_ms=2000, dedupe_seconds=0)

    def actual(self, case: dict) -> dict[str, bool]:
        """Our outcome for every flag this case's data lets us run (absent: no input for it)."""
        out: dict[str, bool] = {}
        prefix = case.get("PREFIX") if isinstance(case.get("PREFIX"), str) else None
        picture = case.get("2DCODE") or case.get("_2DCODE")  # LV cases use "_2DCODE"
        if isinstance(picture, str) and picture:
            out["EXPECTEDPICTUREDECODE"] = self.picture_decodes(picture, prefix)
        elif prefix:
            out["EXPECTEDPICTUREDECODE"] = self.rendered_decodes(prefix)

        compressed = None
        if prefix is not None:
            out["EXPECTEDUNPREFIX"] = prefix.startswith("HC1:") and (
                not isinstance(case.get("BASE45"), str) or prefix[4:] == case["BASE45"]
            )
        body = prefix[4:] if prefix and prefix.startswith("HC1:") else case.get("BASE45")
        if isinstance(body, str):
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
        if _hex(case, "COSE") is not None:
            cose = _hex(case, "COSE")

        if isinstance(case.get("JSON"), dict):
            out["EXPECTEDVALIDOBJECT"] = _valid_object(case, cose)
        if _hex(case, "CBOR") is not None:
            out["EXPECTEDENCODE"] = _encodes(case)

        certificate = None
        if cose is not None:
            ctx = case.get("TESTCTX") or {}
            trust = signer = None
            if ctx.get("CERTIFICATE"):
                trust = TrustList.from_der_base64(ctx["CERTIFICATE"])
                signer = next(iter(trust.by_kid.values()))
            clock = parse_clock(ctx["VALIDATIONCLOCK"]) if ctx.get("VALIDATIONCLOCK") else None
            res = decode_cose(cose, trust, clock)
            decoded = res.steps.get("cbor", False)
            want_cbor = _loads(_hex(case, "CBOR")) if _hex(case, "CBOR") is not None else None
            if decoded and want_cbor is not None:
                decoded = to_jsonable(_hcert_level(want_cbor)) == res.certificate
            out["EXPECTEDDECODE"] = decoded
            if trust is not None:
                out["EXPECTEDVERIFY"] = res.steps.get("verify", False)
                out["EXPECTEDKEYUSAGE"] = (
                    res.steps.get("cbor", False)
                    and key_usage_problem(signer, res.cert_type) is None
                )
            if clock is not None:
                out["EXPECTEDEXPIRATIONCHECK"] = res.steps.get("expiry", False)
                out["EXPTECTEDEXPIRED"] = out["EXPECTEDEXPIRATIONCHECK"]
            if res.steps.get("cbor"):
                out["EXPECTEDVALIDJSON"] = _valid_json(res.certificate)
                certificate = res.certificate
            else:
                out["EXPECTEDVALIDJSON"] = False
        if certificate is None and _hex(case, "CBOR") is not None:
            certificate = to_jsonable(_hcert_level(_loads(_hex(case, "CBOR"))))
        if certificate is None and isinstance(case.get("JSON"), dict):
            certificate = case["JSON"]
        if certificate is not None:
            out["EXPECTEDSCHEMAVALIDATION"] = validate_hcert(certificate).ok
        return out

    def picture_decodes(self, picture_b64: str, prefix: str | None) -> bool:
        try:
            data = np.frombuffer(base64.b64decode(picture_b64), np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
        except Exception:  # noqa: BLE001
            return False
        if image is None:
            return False
        return self._reads(image, prefix)

    def rendered_decodes(self, prefix: str) -> bool:
        import io

        import segno

        buffer = io.BytesIO()
        segno.make_qr(prefix, error="q").save(buffer, kind="png", scale=4, border=4)
        image = cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
        return self._reads(image, prefix)

    def _reads(self, image: np.ndarray, prefix: str | None) -> bool:
        texts = [c.text for c, _ in self.pipeline.decode(image).codes]
        return any(t == prefix for t in texts) if prefix else bool(texts)


@dataclass
class Erratum:
    flag: str
    pattern: str  # glob on the case path relative to the corpus root
    reference: str
    reason: str
    used: int = 0


def load_errata(path: Path = ERRATA) -> list[Erratum]:
    """Known defects of the public test data: disagreements there are shown, not hidden."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    return [Erratum(r["flag"], r["cases"], r["reference"], r["reason"]) for r in rows]


def _erratum_for(errata: list[Erratum], flag: str, rel: str) -> Erratum | None:
    return next((e for e in errata if e.flag == flag and fnmatch.fnmatch(rel, e.pattern)), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="list every disagreement, known data issues included",
    )
    parser.add_argument(
        "--errata",
        type=Path,
        default=ERRATA,
        help="CSV of known test-data defects (default: bench/dcc_errata.csv)",
    )
    args = parser.parse_args(argv)

    checker = Checker()
    errata = load_errata(args.errata)
    table: dict[str, Counter] = defaultdict(Counter)
    failures: list[str] = []
    known: list[str] = []
    unchecked: dict[str, str] = {}
    files = sorted((d, p) for d in args.dirs for p in d.rglob("*.json"))
    if not files:
        print("no test cases found", file=sys.stderr)
        return 2
    for root, path in files:
        rel = path.relative_to(root).as_posix()
        try:
            case = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            failures.append(f"{path}: unreadable test case ({exc})")
            table["(case file)"]["failed"] += 1
            continue
        expected = case.get("EXPECTEDRESULTS") or {}
        actual = checker.actual(case)
        for flag, want in expected.items():
            if flag not in FLAGS:
                table[flag]["not checked"] += 1
                unchecked[flag] = "flag unknown to this script"
                continue
            if flag not in actual:
                table[flag]["not checked"] += 1
                unchecked[flag] = "some cases lack the input this step needs"
                failures.append(f"{rel}: {flag} set but the case has no input for it")
                continue
            if actual[flag] == want:
                table[flag]["passed"] += 1
                continue
            line = f"{rel}: {flag} expected {want}, got {actual[flag]}"
            erratum = _erratum_for(errata, flag, rel)
            if erratum is not None:
                erratum.used += 1
                table[flag]["known issue"] += 1
                known.append(f"{line} [{erratum.reference}]")
            else:
                table[flag]["failed"] += 1
                failures.append(line)
    for erratum in errata:
        if erratum.used == 0:
            failures.append(
                f"erratum {erratum.flag} {erratum.pattern} matches no disagreement: "
                "remove it from the errata"
            )
            table["(errata)"]["failed"] += 1

    print(f"{'flag':28} {'passed':>7} {'failed':>7} {'known issue':>12} {'not checked':>12}")
    for flag in sorted(table):
        c = table[flag]
        print(
            f"{flag:28} {c['passed']:7} {c['failed']:7} {c['known issue']:12} {c['not checked']:12}"
        )
    if args.verbose and (failures or known):
        print()
        print("\n".join(failures + known))
    elif failures:
        print(f"\n{len(failures)} disagreements (run with -v to list them); first: {failures[0]}")
    print(
        f"\n{len(files)} cases; every EXPECTED* flag present is checked"
        if not unchecked
        else f"\n{len(files)} cases"
    )
    for flag, why in sorted(unchecked.items()):
        print(f"NOT CHECKED: {flag} ({table[flag]['not checked']} cases): {why}")
    if known:
        print(
            f"{len(known)} disagreements on known defects of the test data "
            f"(not counted as passed; {args.errata.name}, -v lists them):"
        )
        for erratum in errata:
            if erratum.used:
                print(
                    f"  {erratum.flag} {erratum.pattern}: {erratum.used} — {erratum.reason} "
                    f"[{erratum.reference}]"
                )
    passed = sum(c["passed"] for c in table.values())
    failed = sum(c["failed"] for c in table.values())
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
