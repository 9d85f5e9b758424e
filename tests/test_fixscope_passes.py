"""``fieldkit-server pass revoke`` refuses a pass number the town never issued (by name, exit 2,
nothing revoked), and pass issue and revoke are written to the audit chain the console's
审计记录 shows. The real CLI on a real data directory, SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from sync.server.cli import main as server_main
from sync.server.console.auth import Audit
from sync.server.console.db import ConsoleDB
from sync.testing import new_pg_schema, pg_url

from .console_support import pg_or_skip


def run(capsys, *argv):
    code = server_main(["--lang", "zh", *[str(a) for a in argv]])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def town_dir(request, tmp_path, capsys):
    d = tmp_path / "town"
    extra: list[str] = []
    schema = None
    if request.param == "postgresql":
        pg_or_skip()
        schema = new_pg_schema()
        extra = ["--database-url", pg_url(), "--db-schema", schema]
    code, _, err = run(capsys, "init", "--data-dir", d, *extra)
    assert code == 0, err
    yield d
    if schema:
        import psycopg

        with psycopg.connect(pg_url(), autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _revoked(town_dir) -> list[str]:
    repo = _repo(town_dir)
    try:
        return [c.data["pass_id"] for c in repo.changes_since(0, 100) if c.kind == "revocation"]
    finally:
        repo.close()


def _repo(town_dir):
    from types import SimpleNamespace

    from sync.server.cli_base import open_town

    return open_town(SimpleNamespace(data_dir=str(town_dir)))[3]


def _audit(town_dir) -> list[dict]:
    repo = _repo(town_dir)
    db = ConsoleDB(repo)
    try:
        audit = Audit(db)
        assert audit.verify() is None
        return list(reversed(audit.rows()))
    finally:
        db.close()
        repo.close()


def test_unknown_pass_numbers_are_refused_and_passes_are_audited(town_dir, tmp_path, capsys):
    code, out, err = run(
        capsys,
        "pass",
        "issue",
        "--subject",
        "3-2-501",
        "--subject",
        "3-2-502",
        "--valid-from",
        "2026-12-01",
        "--valid-to",
        "2026-12-31",
        "--prefix",
        "HX-",
        "--out",
        tmp_path / "sheet.png",
        "--data-dir",
        town_dir,
    )
    assert code == 0, err
    issued = [
        line.split(",")[0] for line in (tmp_path / "sheet.csv").read_text("utf-8-sig").split()
    ]
    issued = [p for p in issued if p.startswith("HX-")]
    assert len(issued) == 2

    # The trial: a number that does not exist was "revoked", exit 0.
    code, out, err = run(
        capsys, "pass", "revoke", "NOSUCH-1", "--reason", "测试", "--data-dir", town_dir
    )
    assert code != 0 and "已吊销" not in out
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith(
            "没有这些通行证编号，未吊销任何通行证：NOSUCH-1。请核对编号；"
            "若确是本镇早先签发而未登记的通行证，加 --force 吊销。"
        )
    )
    # One real number among unknown ones: nothing is revoked, the unknown one is named.
    code, out, err = run(
        capsys, "pass", "revoke", issued[0], "NOSUCH-2", "--reason", "测试", "--data-dir", town_dir
    )
    assert code != 0 and "NOSUCH-2" in err and issued[0] not in err
    assert _revoked(town_dir) == []

    code, out, err = run(
        capsys, "pass", "revoke", issued[0], "--reason", "测试", "--data-dir", town_dir
    )
    assert code == 0 and "已吊销 1 张通行证" in out, err
    code, out, err = run(capsys, "pass", "revoke", "OLD-7", "--force", "--data-dir", town_dir)
    assert code == 0, err
    assert _revoked(town_dir) == [issued[0], "OLD-7"]

    rows = [r for r in _audit(town_dir) if r["action"].startswith("pass_")]
    assert [r["action"] for r in rows] == ["pass_issue", "pass_revoke", "pass_revoke"]
    assert sorted(json.loads(rows[0]["detail"])["pass_ids"]) == sorted(issued)
    assert json.loads(rows[1]["detail"])["pass_ids"] == [issued[0]] and rows[1]["reason"] == "测试"
    assert json.loads(rows[2]["detail"]) == {"pass_ids": ["OLD-7"], "forced": True}
    assert all(r["user"].startswith("cli:") for r in rows)
