"""The device outbox as the uploader reads it: a keyset walk in insertion order, and marking a
batch as on the server with one ranged update that must never touch a record it did not send."""

from __future__ import annotations

from fieldkit.domain import Decision, Outcome
from fieldkit.store import PassageInput

ADMIT = Decision(Outcome.ADMIT, ())


def add_passages(store, n: int, start: int = 0) -> None:
    store.passages.record_many(
        (
            PassageInput(
                direction="in",
                id_kind="resident_id",
                id_number="11010519491231002X",
                name=f"张{i}",
                temperature=36.5,
                code_colour="green",
                source="scan",
                notes=f"n{i}",
            ),
            ADMIT,
        )
        for i in range(start, start + n)
    )


def states(store) -> dict[str, int]:
    return {
        r["sync_state"]: r["n"]
        for r in store.g.query("SELECT sync_state, count(*) AS n FROM passages GROUP BY sync_state")
    }


def test_batches_read_each_pending_record_once_in_order(store):
    add_passages(store, 25)
    walk = store.outbox.batches(10)
    first = next(walk)
    # Records of a batch still in flight stay pending, yet the walk never reads them again;
    # records written meanwhile are reached.
    add_passages(store, 3, start=100)
    rest = [item for batch in walk for item in batch]
    sizes = [len(first)] + [len(rest)]
    ids = [i.record_id for i in first + rest]
    assert sizes == [10, 18] and len(set(ids)) == 28
    in_order = [r["id"] for r in store.g.query("SELECT id FROM passages ORDER BY rowid")]
    assert ids == in_order
    body = first[0].body
    assert body["name"] == "张0" and body["notes"] == "n0"
    assert not {"id_hash", "sync_state", "name_enc", "superseded"} & body.keys()


def test_a_batch_is_marked_with_one_ranged_update(store):
    add_passages(store, 30)
    batch = store.outbox.pending(30)
    assert all(item.rowid for item in batch)
    statements = []
    store.g.db.conn.set_trace_callback(statements.append)
    store.outbox.mark_synced(
        [i.record_id for i in batch], "b-1", kind="passage", rowids=[i.rowid for i in batch]
    )
    store.g.db.conn.set_trace_callback(None)
    assert sum("UPDATE passages" in s for s in statements) == 1
    assert states(store) == {"synced": 30}
    assert {r["batch_id"] for r in store.g.query("SELECT batch_id FROM passages")} == {"b-1"}


def test_a_requeued_record_inside_the_range_is_not_marked(store):
    add_passages(store, 12)
    items = store.outbox.pending(12)
    middle = items[5]
    store.outbox.mark_quarantined(middle.record_id, "server: rejected: test", kind="passage")
    sendable = [i for i in items if i is not middle]
    # The supervisor puts it back in the queue while the batch is on its way.
    store.outbox.requeue(middle.record_id)
    store.outbox.mark_synced(
        [i.record_id for i in sendable], "b-1", kind="passage", rowids=[i.rowid for i in sendable]
    )
    row = store.g.query(
        "SELECT sync_state, sync_reason FROM passages WHERE id = ?", [middle.record_id]
    )[0]
    assert row["sync_state"] == "pending" and row["sync_reason"].startswith("requeued: ")
    assert states(store) == {"synced": 11, "pending": 1}
    # Next run: it is read again (its reason keeps it out of ranged marks) and marked by id.
    again = store.outbox.pending(10)
    assert [i.record_id for i in again] == [middle.record_id] and again[0].rowid == 0
    store.outbox.mark_synced([middle.record_id], "b-2", kind="passage", rowids=[0])
    assert states(store) == {"synced": 12}


def test_a_range_holding_a_record_not_sent_falls_back_to_marking_by_id(store):
    add_passages(store, 10)
    items = store.outbox.pending(10)
    # Pretend the batch held only every other record (something the walk never does): the
    # ranged update would change 10 rows for 5 items, so it is undone and each is marked.
    sent = items[::2]
    store.outbox.mark_synced(
        [i.record_id for i in sent], "b-1", kind="passage", rowids=[i.rowid for i in sent]
    )
    synced = {r["id"] for r in store.g.query("SELECT id FROM passages WHERE sync_state = 'synced'")}
    assert synced == {i.record_id for i in sent}
    assert states(store) == {"synced": 5, "pending": 5}
