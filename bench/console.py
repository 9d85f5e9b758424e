"""Town office console: overview and trace-with-co-presence server time on a large town.

    python bench/console.py [--passages 1000000] [--checkpoints 50] [--days 30]
                            [--backends sqlite,postgresql] [--runs 40] [--sample 20000]
                            [--people 100000]

For each backend, a fresh database is filled with ``--passages`` gate passages from
``--checkpoints`` checkpoints (one device each) over the last ``--days`` days (bodies sealed at
rest as the server seals them, bulk-inserted with ``Repository.raw_insert``). The console reads
each passage body once into its facts table: the first ``--sample`` passages go through its real
catch-up (timed per body: the cost a town pays once per passage); for the rest the same facts
are bulk-inserted beside the records, so a million-passage town builds in minutes.
Then, in the same run:

- **overview**: ``GET /console/overview`` over real HTTP on loopback (uvicorn in a thread, a
  logged-in session), against the bare SQL that returns the same numbers (today's per-checkpoint
  counts and per-hour counts);
- **trace**: ``POST /console/trace`` of a random person (timeline + co-presence ±30 min),
  against the bare SQL that returns the same rows (the page's two queries alone: the person's
  passages, and every passage in each one's window at its checkpoint), for other random people
  so that neither finds the other's rows cached.

p50/p95 in ms and the page/bare ratio. Goals (issue 18): overview p95 ≤ 300 ms, trace p95 ≤ 200 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from fieldkit.crypto import blind_index  # noqa: E402
from sync.server.app import encrypt_body  # noqa: E402
from sync.server.console.facts import FACT_COLUMNS, catch_up, fact_row  # noqa: E402
from sync.server.repository import IngestRecord  # noqa: E402
from sync.testing import LoopbackServer, TestTown, make_repo, pg_available  # noqa: E402

PASSWORD = "bench-password-1"
PEOPLE = 100_000


def id_number(serial: int) -> str:
    """A distinct resident ID number per serial (a birth date per thousand people, then the
    sequence): every one of the PEOPLE is a different person, as in a real town."""
    born = date(1950, 1, 1) + timedelta(days=serial // 1000)
    body = f"110105{born:%Y%m%d}{serial % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def fill(town: TestTown, n: int, checkpoints: int, days: int, sample: int) -> list[str]:
    """n passages; returns the ID numbers of the people (index = person number).

    The first ``sample`` passages are read into the console's facts by its own catch-up (timed
    and printed); for the rest the same facts (:func:`fact_row` of the very line sealed) are
    bulk-inserted beside the records, so a million-passage town builds in minutes here."""
    repo, keys = town.repo, town.keys
    db = town.app.state.console.db
    received = time.time() - 3600  # received an hour ago: the catch-up has settled
    cipher = AESGCM(keys.data_key)
    rng = random.Random(7)
    people = [id_number(i) for i in range(PEOPLE)]
    hashes = [blind_index(keys.index_key, x) for x in people]
    devices = [f"dev{c:03d}" for c in range(checkpoints)]
    end = datetime.now().astimezone()
    start = end - timedelta(days=days)
    span = (end - start).total_seconds()
    tz = end.strftime("%z")
    tz = tz[:3] + ":" + tz[3:]
    batch = 20_000
    made = 0
    while made < n:
        rows, lines = [], {}
        for _ in range(min(batch, n - made)):
            person = rng.randrange(PEOPLE)
            cp = rng.randrange(checkpoints)
            at = start + timedelta(seconds=rng.random() * span)
            decision = rng.choices(("admit", "turn_back", "deny", "refer"), (90, 6, 2, 2))[0]
            temp = 38.2 if decision == "refer" and rng.random() < 0.5 else 36.5
            rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            body = {
                "id": rid,
                "ts": at.strftime("%Y-%m-%dT%H:%M:%S.000") + tz,
                "checkpoint": f"CP-{cp:02d}",
                "direction": "in" if rng.random() < 0.5 else "out",
                "decision": decision,
                "temperature": temp,
                "reasons": [{"code": "fever"}] if temp > 38 else [],
                "category": "resident",
                "name": "张三",
                "name_masked": "张*",
                "id_number": people[person],
                "id_masked": people[person][:6] + "********" + people[person][-4:],
                "id_hash_town": hashes[person],
            }
            line = orjson.dumps({"id": rid, "kind": "passage", "hash": "0" * 64, "body": body})
            lines[rid] = line
            rows.append(
                IngestRecord(
                    0,
                    rid,
                    "passage",
                    "0" * 64,
                    at.timestamp(),
                    at.date().isoformat(),
                    body["checkpoint"],
                    body["direction"],
                    hashes[person],
                    "张*",
                    body["id_masked"],
                    encrypt_body(cipher, rid, line),
                )
            )
        by_device: dict[str, list] = {}
        for r in rows:
            by_device.setdefault(devices[int(r.checkpoint[3:])], []).append(r)
        facts = []
        for dev, recs in by_device.items():
            repo.raw_insert(recs, dev, uuid.uuid4().hex, received)
            if made >= sample:
                facts += [fact_row(r.record_id, dev, lines[r.record_id], received) for r in recs]
        if facts:
            with db.tx():
                db.insert_ignore("console_facts", FACT_COLUMNS, facts)
        made += len(rows)
        if made == sample or (made > sample and made - len(rows) < sample):
            t0 = time.perf_counter()
            added = catch_up(db, keys.data_key)
            took = time.perf_counter() - t0
            print(
                f"  catch-up  {took:7.1f} s for the first {added:,} bodies "
                f"({took / max(added, 1) * 1e6:.0f} µs each, once per passage)"
            )
    db.many(
        "INSERT INTO console_device_cp (device_id, checkpoint, last_record) VALUES (?, ?, ?) "
        "ON CONFLICT (device_id) DO NOTHING",
        [(d, f"CP-{c:02d}", received) for c, d in enumerate(devices)],
    )
    db.set_meta("facts_mark", repr(received))
    return people


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def line(name: str, page: list[float], bare: list[float], goal: float) -> None:
    p95, b95 = pct(page, 0.95), pct(bare, 0.95)
    ok = "meets" if p95 <= goal else "MISSES"
    print(
        f"  {name:9} page p50 {pct(page, 0.5):7.1f} ms  p95 {p95:7.1f} ms   "
        f"bare SQL p50 {pct(bare, 0.5):6.1f} ms  p95 {b95:6.1f} ms   "
        f"page/bare p95 {p95 / max(b95, 1e-6):5.1f}x   goal ≤ {goal:.0f} ms: {ok}"
    )


def bench(backend: str, args: argparse.Namespace) -> None:
    tmp = tempfile.mkdtemp(prefix="fk-bench-console-")
    repo = make_repo(backend, tmp)
    town = TestTown(repo)
    console = town.app.state.console
    print(
        f"== {backend}: {args.passages:,} passages, {args.checkpoints} checkpoints, "
        f"{args.days} days"
    )
    t0 = time.perf_counter()
    people = fill(town, args.passages, args.checkpoints, args.days, args.sample)
    print(f"  build     {time.perf_counter() - t0:7.1f} s (bulk insert, bodies sealed)")
    # What autovacuum does after a bulk load: statistics, and on PostgreSQL the visibility map
    # that lets the covering indexes answer without reading the table.
    console.db.q("VACUUM ANALYZE" if backend == "postgresql" else "ANALYZE")
    console.accounts.add("bench", "admin", PASSWORD)
    db = console.db
    from sync.server.console.views import (
        COPRESENT_SQL,
        HOURLY_SQL,
        OVERVIEW_SQL,
        PERSON_SQL,
        today,
    )

    day = today()
    rng = random.Random(3)
    with LoopbackServer(town.app) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        page = http.get("/console/login").text
        tok = re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)
        r = http.post(
            "/console/login", data={"name": "bench", "password": PASSWORD, "login_csrf": tok}
        )
        cookie = r.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        http.cookies.set("fk_console", cookie)
        html = http.get("/console/overview").text
        assert "CP-00" in html, html[:500]
        csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)

        def overview_page() -> None:
            assert http.get("/console/overview").status_code == 200

        def overview_bare() -> None:
            db.q(OVERVIEW_SQL, (day,))
            db.q(HOURLY_SQL, (day,))

        line("overview", timed(overview_page, args.runs), timed(overview_bare, args.runs), 300)

        # Page and bare SQL each look up their own random people, so that neither finds the
        # other's rows already in the page cache.
        persons = [rng.randrange(PEOPLE) for _ in range(args.runs)]
        others = [rng.randrange(PEOPLE) for _ in range(args.runs)]
        hashes = [blind_index(town.keys.index_key, people[i]) for i in others]
        it = iter(persons)

        def trace_page() -> None:
            r = http.post(
                "/console/trace",
                data={"csrf": csrf, "id_number": people[next(it)], "minutes": "30"},
            )
            assert r.status_code == 200 and "timeline" in r.text

        hit = iter(hashes)
        found: list[tuple[int, int]] = []

        def trace_bare() -> None:  # the two queries that return the page's rows, alone
            h = next(hit)
            mine = db.q(PERSON_SQL, (h, 200))
            co = db.q(COPRESENT_SQL, (h, 200, 1800.0, 1800.0, h))
            found.append((len(mine), len(co)))

        line("trace", timed(trace_page, args.runs), timed(trace_bare, args.runs), 200)
        print(
            f"  (a traced person: {sum(m for m, _ in found) / len(found):.1f} passages and "
            f"{sum(c for _, c in found) / len(found):.0f} co-present passages on average)"
        )
    console.db.close()
    if backend == "postgresql":
        repo.drop_schema()
    repo.close()
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    global PEOPLE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--checkpoints", type=int, default=50)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument(
        "--sample", type=int, default=20_000, help="passages read by the real catch-up (timed)"
    )
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument(
        "--people",
        type=int,
        default=PEOPLE,
        help="distinct people passing (fewer people: more passages and co-present rows each)",
    )
    args = ap.parse_args()
    PEOPLE = args.people
    for backend in args.backends.split(","):
        if backend == "postgresql" and (why := pg_available()):
            print(f"== postgresql: skipped ({why})")
            continue
        bench(backend, args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
