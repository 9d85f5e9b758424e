"""SIGKILL a writer in the middle of 1,000 durable commits: nothing acknowledged is lost."""

import os
import random
import signal
import subprocess
import sys
import textwrap

import pytest

from fieldkit.store import open_store
from tests.conftest import SUPERVISOR, SUPERVISOR_PIN

WRITER = textwrap.dedent("""
    import sys
    from fieldkit.gate import GateEntry, GateService
    from fieldkit.store import open_store
    from tests.conftest import make_settings, SUPERVISOR, SUPERVISOR_PIN
    from pathlib import Path
    store = open_store(make_settings(Path(sys.argv[1])))
    store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    gate = GateService(store)
    for i in range(1000):
        e = GateEntry(direction="in", id_number="11010519491231002X", name=f"张{i}",
                      temperature=36.5, code_colour="green", notes="x" * (i % 50))
        _, row = gate.commit(e)
        if i % 25 == 24:  # corrections write audit entries in the same transaction
            _, row = gate.correct(row.id, e)
        print(row.id, flush=True)  # acknowledged: the commit returned
""")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_mid_commits_loses_nothing_acknowledged(settings, seed):
    store = open_store(settings, create=True)
    store.setup(SUPERVISOR, SUPERVISOR_PIN)
    store.close()
    kill_after = random.Random(seed).randint(50, 600)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(settings.data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) >= kill_after:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the writer must be killed mid-run"

    store = open_store(settings)
    store.unlock(SUPERVISOR, SUPERVISOR_PIN)
    stored = {r["id"]: r for r in store.passages.rows()}
    missing = [rid for rid in acknowledged if rid not in stored]
    assert not missing, f"{len(missing)} acknowledged records lost"
    for row in stored.values():  # none partial: every stored row opens whole
        full = store.passages.decrypt_row(row)
        assert full["name"].startswith("张") and full["id_number"] == "11010519491231002X"
    checked, problem = store.audit.verify()
    assert problem is None, problem
    assert store.g.scalar("PRAGMA integrity_check") == "ok"
