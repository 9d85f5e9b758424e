"""DCC schema validation (jsonschema against the published file of each generation) and the
conformance run."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from bench.dcc_conformance import main as conformance_main
from scanners.payloads.dcc_schema import validate_hcert

DCC = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dcc"
needs_dcc = pytest.mark.skipif(not DCC.is_dir(), reason="shared corpus absent")

VACC = {
    "ver": "1.3.0",
    "nam": {
        "fn": "Musterfrau-Gößinger",
        "fnt": "MUSTERFRAU<GOESSINGER",
        "gn": "Gabriele",
        "gnt": "GABRIELE",
    },
    "dob": "1998-02-26",
    "v": [
        {
            "tg": "840539006",
            "vp": "1119349007",
            "mp": "EU/1/20/1528",
            "ma": "ORG-100030215",
            "dn": 1,
            "sd": 2,
            "dt": "2021-02-18",
            "co": "AT",
            "is": "Ministry of Health, Austria",
            "ci": "URN:UVCI:01:AT:10807843F94AEE0EE5093FBC254BD813#B",
        }
    ],
}
TEST = {
    "tg": "840539006",
    "tt": "LP6464-4",
    "nm": "Roche LightCycler qPCR",
    "sc": "2021-02-20T12:34:56Z",
    "tr": "260415000",
    "tc": "Testing center Vienna 1",
    "co": "AT",
    "is": "Ministry of Health, Austria",
    "ci": "URN:UVCI:01:AT:B5921A35D6A0D6964#I",
}
RECOVERY = {
    "tg": "840539006",
    "fr": "2021-02-20",
    "co": "AT",
    "is": "Ministry of Health, Austria",
    "df": "2021-04-04",
    "du": "2021-10-04",
    "ci": "URN:UVCI:01:AT:858CC18CFCF5965EF#K",
}


def cert(ver: str = "1.3.0", **changes) -> dict:
    out = copy.deepcopy(VACC)
    out["ver"] = ver
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def problems(hcert) -> list[str]:
    result = validate_hcert(hcert)
    assert result.ok == (not result.problems)
    return result.problems


def test_valid_certificates_of_every_kind_and_version():
    for ver in ("1.0.0", "1.0.1", "1.1.0", "1.2.1", "1.3.0"):
        assert problems(cert(ver)) == []
        assert problems(cert(ver, v=..., t=[dict(TEST)])) == []
        assert problems(cert(ver, v=..., r=[dict(RECOVERY)])) == []
    # additional properties are not forbidden by the schema; an absent group written as null
    assert problems(cert(meta={"url": "https://verify.example"}, t=None, r=None)) == []


def test_top_level_rules():
    assert any("ver" in p for p in problems(cert(ver="1.3")))
    assert any("nam is required" in p for p in problems(cert(nam=...)))
    assert any("dob is required" in p for p in problems(cert(dob=...)))
    assert any("exactly one" in p for p in problems(cert(t=[dict(TEST)])))
    assert any("exactly one" in p for p in problems(cert(v=...)))
    assert any("at least one" in p for p in problems(cert(v=[])))
    assert any("array" in p for p in problems(cert(v={"tg": "840539006"})))
    assert problems([VACC]) == ["the certificate is not an object"]
    assert not validate_hcert(None).ok


def test_names():
    assert any("fnt" in p for p in problems(cert(nam={"fn": "Muster"})))
    assert any("does not match" in p for p in problems(cert(nam={"fnt": "Muster"})))
    assert any(
        "does not match" in p for p in problems(cert(nam={"fnt": "MUSTER", "gnt": "GABI E"}))
    )
    assert problems(cert(nam={"fnt": "D<ERVENKOVA", "gnt": ""})) == []
    long_name = {"fnt": "A" * 60}
    assert problems(cert("1.3.0", nam=long_name)) == []
    assert any("longer than 50" in p for p in problems(cert("1.0.0", nam=long_name)))
    # the published 1.1.0 and 1.2.1 files still say 50; 80 came with 1.3.0
    assert problems(cert("1.2.1", nam=long_name)) == ["nam.fnt is longer than 50 characters"]
    assert problems(cert("1.1.0", nam=long_name)) == ["nam.fnt is longer than 50 characters"]
    assert any("longer than 80" in p for p in problems(cert("1.3.0", nam={"fnt": "A" * 81})))
    assert any("string" in p for p in problems(cert(nam={"fnt": 7})))


def test_date_of_birth_by_version():
    for dob in ("1979", "1979-04", "1979-04-14", ""):
        assert problems(cert("1.3.0", dob=dob)) == [], dob
    for dob in ("1979", "1979-04", "1979-04-14"):
        assert problems(cert("1.2.1", dob=dob)) == [], dob
        assert problems(cert("1.1.0", dob=dob)) == [], dob
    # the empty form came with 1.3.0: the published 1.1.0 and 1.2.1 patterns refuse it
    assert problems(cert("1.2.1", dob="")) == [
        "dob '' does not match ^(19|20)\\d\\d(-\\d\\d){0,2}$"
    ]
    assert problems(cert("1.1.0", dob=""))
    for dob in ("1899-12-31", "1979-4-14", "14.04.1979", "2100-01-01", "1979-04-14T00:00:00"):
        assert problems(cert("1.3.0", dob=dob)), dob
    # 1.0.x: full date required, pattern unanchored (a date-time form passes)
    assert problems(cert("1.0.0", dob="1979-04-14T00:00:00")) == []
    for dob in ("1979", "1979-04", "1815-08-24"):
        assert problems(cert("1.0.0", dob=dob)), dob


def test_entry_fields():
    def with_v(ver="1.3.0", **fields):
        entry = dict(VACC["v"][0])
        for key, value in fields.items():
            if value is ...:
                entry.pop(key)
            else:
                entry[key] = value
        return cert(ver, v=[entry])

    assert any("lacks required field(s) ci" in p for p in problems(with_v(ci=...)))
    assert any("out of range" in p for p in problems(with_v(dn=0)))
    assert any("integer" in p for p in problems(with_v(dn="1")))
    assert any("integer" in p for p in problems(with_v(sd=True)))
    assert problems(with_v("1.3.0", dn=10, sd=10)) == []  # no upper bound from 1.3.0 on
    assert problems(with_v("1.2.1", dn=10)) == ["v[0].dn = 10 is out of range (1–9)"]
    assert problems(with_v(dn=0)) == ["v[0].dn = 0 is out of range (1 or more)"]
    # exactly one group and the country value set: in the 1.3.0 file, applied to every generation
    for ver in ("1.0.0", "1.1.0", "1.2.1", "1.3.0"):
        assert problems(with_v(ver, co="XY")) == [
            "v[0].co 'XY' is not an ISO 3166-1 alpha-2 country code"
        ]
        assert any("exactly one" in p for p in problems(cert(ver, t=[dict(TEST)])))
        assert any("exactly one" in p for p in problems(cert(ver, v=...)))
    assert any("does not match" in p for p in problems(with_v(co="")))
    assert any("longer than 80" in p for p in problems(with_v(ci="U" * 81)))
    assert any("longer than 50" in p for p in problems(with_v("1.0.0", **{"is": "I" * 51})))
    assert any("disease" in p for p in problems(with_v(tg="12345")))
    assert any("at most 1" in p for p in problems(cert("1.3.0", v=[VACC["v"][0]] * 2)))
    assert problems(cert("1.2.1", v=[VACC["v"][0]] * 2)) == []
    bad_test = dict(TEST, tt="a test", tr="")
    for ver in ("1.0.0", "1.0.1", "1.1.0", "1.2.1", "1.3.0"):
        got = problems(cert(ver, v=..., t=[bad_test]))
        assert any("test type" in p for p in got) and any("test result" in p for p in got), ver
    assert any(
        "lacks required field(s) du" in p
        for p in problems(cert(v=..., r=[{k: v for k, v in RECOVERY.items() if k != "du"}]))
    )


@needs_dcc
def test_dcc_conformance_checks_every_flag(capsys):
    code = conformance_main([str(DCC)])
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[-1].endswith(", 0 failed"), out
    assert code == 0
    assert "NOT CHECKED" not in out and "every EXPECTED* flag present is checked" in out
    rows = {
        ln.split()[0]: [int(x) for x in ln.split()[1:]] for ln in lines[1:] if ln.startswith("EXP")
    }
    for flag in (
        "EXPECTEDSCHEMAVALIDATION",
        "EXPECTEDENCODE",
        "EXPECTEDVALIDOBJECT",
        "EXPTECTEDEXPIRED",
        "EXPECTEDVERIFY",
        "EXPECTEDPICTUREDECODE",
    ):
        passed, failed, _known, unchecked = rows[flag]
        assert passed > 0 and failed == 0 and unchecked == 0, (flag, rows[flag])
    # known test-data defects are only schema flags, and shown, not counted as passed
    assert all(r[2] == 0 for f, r in rows.items() if f != "EXPECTEDSCHEMAVALIDATION")
    assert 0 < rows["EXPECTEDSCHEMAVALIDATION"][2] < 200


@needs_dcc
def test_conformance_fails_on_a_wrong_flag_and_on_a_stale_erratum(tmp_path, capsys):
    src = DCC / "common" / "2DCode" / "raw" / "DGC2.json"  # two groups: schema-invalid
    case = json.loads(src.read_text(encoding="utf-8"))
    assert case["EXPECTEDRESULTS"]["EXPECTEDSCHEMAVALIDATION"] is False
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(src, corpus / "good.json")
    case["EXPECTEDRESULTS"]["EXPECTEDSCHEMAVALIDATION"] = True
    case["EXPECTEDRESULTS"]["EXPECTEDSOMETHINGNEW"] = True
    (corpus / "flipped.json").write_text(json.dumps(case), encoding="utf-8")
    errata = tmp_path / "errata.csv"
    errata.write_text(
        "flag,cases,reference,reason\nEXPECTEDVERIFY,nothing/*.json,none,stale entry\n",
        encoding="utf-8",
    )

    code = conformance_main([str(corpus), "--errata", str(errata), "-v"])
    out = capsys.readouterr().out
    assert code == 1
    assert "flipped.json: EXPECTEDSCHEMAVALIDATION expected True, got False" in out
    assert "NOT CHECKED: EXPECTEDSOMETHINGNEW" in out
    assert "matches no disagreement" in out
    assert out.strip().splitlines()[-1] == "1 passed, 2 failed"

    errata.write_text(
        "flag,cases,reference,reason\n"
        "EXPECTEDSCHEMAVALIDATION,flipped.json,test,flipped on purpose\n",
        encoding="utf-8",
    )
    code = conformance_main([str(corpus), "--errata", str(errata)])
    out = capsys.readouterr().out
    assert code == 0 and "1 disagreements on known defects" in out
    assert out.strip().splitlines()[-1] == "1 passed, 0 failed"


@needs_dcc
def test_decode_reports_schema_step_without_failing_the_read():
    from scanners.payloads.dcc import decode_dcc

    good = json.loads((DCC / "AT" / "2DCode" / "raw" / "1.json").read_text(encoding="utf-8"))
    res = decode_dcc(good["PREFIX"])
    assert res.steps["schema"] is True and res.schema_problems == []
    long_tc = json.loads((DCC / "HU" / "2DCode" / "raw" / "3.json").read_text(encoding="utf-8"))
    res = decode_dcc(long_tc["PREFIX"])
    assert res.steps["cbor"] and res.steps["schema"] is False
    assert any("tc is longer than 50" in p for p in res.summary()["schema_problems"])


def test_every_generation_is_a_published_file_validated_by_jsonschema():
    import hashlib

    from scanners.payloads.dcc_jsonschema import RELEASES, SCHEMA_DIR, SCHEMA_FILES, _validator

    readme = (SCHEMA_DIR / "README.md").read_text(encoding="utf-8")
    assert RELEASES == ("1.0.1", "1.1.0", "1.2.1", "1.3.0")
    for release in RELEASES:
        digest = hashlib.sha256(SCHEMA_FILES[release].read_bytes()).hexdigest()
        assert f"| `{release}/` |" in readme and digest in readme, release
        assert _validator(release).schema["$comment"] == f"Schema version {release}"
    assert any("at most 1" in p for p in problems(cert("1.3.0", v=[VACC["v"][0]] * 2)))


def test_each_ver_is_routed_to_the_latest_patch_of_its_generation():
    from scanners.payloads.dcc_jsonschema import release_for

    routes = {
        "1.0.0": "1.0.1",
        "1.0.1": "1.0.1",
        "1.1.0": "1.1.0",
        "1.2.0": "1.2.1",
        "1.2.1": "1.2.1",
        "1.3.0": "1.3.0",
        "1.3.2": "1.3.0",
        "1.4.0": "1.3.0",
        "2.0.0": "1.3.0",
        "1.3": "1.3.0",
        None: "1.3.0",
    }
    for ver, release in routes.items():
        assert release_for(ver) == release, ver
    bad = validate_hcert(cert(ver="1.3"))
    assert bad.version is None and not bad.ok
    assert validate_hcert(cert("1.2.0")).version == "1.2.0"


def test_the_hand_written_validator_is_gone():
    import scanners.payloads.dcc_schema as facade

    for name in ("_validate", "GEN_1_0", "GEN_1_2", "DOB_RE", "REQUIRED"):
        assert not hasattr(facade, name), name
