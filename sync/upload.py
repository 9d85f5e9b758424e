"""Upload half of a sync run: outbox items to wire lines, sealed batches, sent while the next
one is prepared (:class:`_Pipeline`), the server's fates written back to the outbox.

Retries resend the *same bytes* (same batch id), so a batch that reached the server before the
connection dropped is answered from the server's record and stored once.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson

from . import protocol as p
from .report import SyncReport
from .transport import (
    SyncNetworkError,
    SyncServerError,
    TownClient,
    _CompressionRefused,
    _Identity,
    _raise_for,
    _server_message,
)

if TYPE_CHECKING:  # the store's real type, for checkers: the client never imports it
    from fieldkit.store import Store

log = logging.getLogger("fieldkit.sync")

RETRIES = 2  # resends of one batch on a cut connection, a timeout or a 5xx
SYNCED_FATES = (p.STORED, p.DUPLICATE)


def wire_record(item: Any) -> dict[str, Any]:
    """An outbox item as the server reads it. The server indexes what the body holds (time,
    checkpoint, direction, town ID hash, masked name and ID); nothing is sent twice."""
    return {"id": item.record_id, "kind": item.kind, "hash": item.content_hash, "body": item.body}


def wire_line(item: Any) -> bytes:
    """The wire record as one JSON line. The body's canonical bytes from the outbox (the bytes
    its content hash was taken over) are spliced in rather than encoded a second time; the
    line itself need not be canonical (the server reads it, nobody hashes it)."""
    canonical = item.canonical
    if not canonical:
        return p.canonical_json(wire_record(item))
    head = {"id": item.record_id, "kind": item.kind, "hash": item.content_hash}
    try:
        head_bytes = orjson.dumps(head)
    except TypeError:  # a value orjson does not take (never from the store): the slow way
        head_bytes = p.canonical_json(head)
    return head_bytes[:-1] + b',"body":' + canonical + b"}"


class _Uploader:
    def __init__(
        self, town: TownClient, ident: _Identity, report: SyncReport, sleep: Any = time.sleep
    ) -> None:
        self.town, self.ident, self.report, self.sleep = town, ident, report, sleep

    def seal(self, lines: list[bytes]) -> tuple[str, bytes]:
        return p.seal_batch(
            lines,
            device_id=self.ident.device_id,
            device_key=self.ident.key,
            town_x25519=self.ident.town_x25519,
            compression=self.ident.compression,
        )

    def post(self, batch_id: str, body: bytes) -> tuple[str, dict[str, Any]]:
        """Send one sealed batch (the same bytes again on a retry) and return its reply."""
        last: Exception | None = None
        for attempt in range(RETRIES + 1):
            if attempt:
                self.sleep(min(4.0, 0.5 * 2 ** (attempt - 1)))
            try:
                resp = self.town.request(
                    "POST",
                    p.PATH_BATCHES,
                    content=body,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "X-Fieldkit-Device": self.ident.device_id,
                    },
                )
            except SyncNetworkError as err:
                if err.code == "syncerr.unreachable":  # refused: no server there, stop now
                    raise
                last = err
                continue
            self.report.bytes_sent += len(body)
            if resp.status_code == 429:
                wait = float(resp.headers.get("Retry-After", "1") or 1)
                self.sleep(min(wait, 10.0))
                last = SyncServerError("syncerr.busy")
                continue
            if resp.status_code >= 500:
                last = SyncServerError("syncerr.server_failed", status=resp.status_code)
                continue
            if (
                resp.status_code == 400
                and self.ident.compression != "zlib"
                and (_server_message(resp)[0] == "unsupported_compression")
            ):
                raise _CompressionRefused(self.ident.compression)
            _raise_for(resp, "the batch")
            try:
                return batch_id, resp.json()
            except ValueError:
                last = SyncServerError("syncerr.unreadable_reply")
        assert last is not None
        raise last


def _apply_reply(
    store: Store, items: list[Any], reply: dict[str, Any], batch_id: str, report: SyncReport
) -> None:
    fates = {int(f[0]): (f[2], f[3]) for f in reply.get("fates", [])}
    synced: dict[str, list[Any]] = {}
    for i, item in enumerate(items):
        status, reason = fates.get(i, (p.STORED, None))
        if status in SYNCED_FATES:
            synced.setdefault(item.kind, []).append(item)
            if status == p.DUPLICATE:
                report.duplicate += 1
            else:
                report.stored += 1
        else:
            store.outbox.mark_quarantined(
                item.record_id, f"server: {reason or status}", kind=item.kind
            )
            report.quarantined += 1
    for kind, done in synced.items():
        store.outbox.mark_synced(
            [item.record_id for item in done],
            batch_id,
            kind=kind,
            rowids=[getattr(item, "rowid", 0) for item in done],
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while batches are built: thousands of short-lived
    dicts per batch would set it off over and over (a third of the client's time), and none of
    them form cycles, so reference counting frees them all the same."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Pipeline:
    """Uploads batches while the next one is read, encoded and sealed and the fates of the
    ones before are written.

    Up to :attr:`DEPTH` batches are in flight at once, once the server has answered one (a
    run against a server that is down or failing stops after the first batch). Two in flight
    hide the round trip on a slow mobile link and let the server open one batch while it
    stores the other. A batch holding a kind the server merges in arrival order (ledger edits)
    goes alone: everything before it is answered first. The sender threads only wait on the
    network; reading, sealing and every store access stay on the caller's thread. When a batch
    fails, the ones in flight beside it are still answered and settled, the batch prepared
    behind it is dropped unsent, and its records stay pending for the next run.
    """

    DEPTH = 2

    def __init__(self, store: Store, uploader: _Uploader, report: SyncReport, size: int) -> None:
        self.store, self.uploader, self.report = store, uploader, report
        self.size = size  # records per request; halved when the server says it is too large
        self.sender = ThreadPoolExecutor(self.DEPTH, thread_name_prefix="fieldkit-sync-send")
        self.depth = 1  # one at a time until the server has answered once in this run
        # (reply, lines, items, ordered), oldest first
        self.in_flight: deque[
            tuple[Future[tuple[str, dict[str, Any]]], list[bytes], list[Any], bool]
        ] = deque()

    def close(self) -> None:
        self.sender.shutdown(wait=True, cancel_futures=True)

    def submit(self, lines: list[bytes], items: list[Any]) -> None:
        """Send this batch when there is room for it; write the fates of the batches answered
        meanwhile while it is on its way."""
        ordered = any(item.kind in p.ORDERED_KINDS for item in items)
        compression = self.uploader.ident.compression
        sealed = self.uploader.seal(lines)
        answered = []
        with self._salvage_on_error():
            while self.in_flight and (ordered or len(self.in_flight) >= self.depth):
                answered += self._answer_oldest()
        if self.uploader.ident.compression != compression:  # the server refused it meanwhile
            sealed = self.uploader.seal(lines)
        self.in_flight.append(
            (self.sender.submit(self.uploader.post, *sealed), lines, items, ordered)
        )
        for batch in answered:
            self._settle(*batch)

    def finish(self) -> None:
        """Every batch answered and its fates written."""
        with self._salvage_on_error():
            while self.in_flight:
                for batch in self._answer_oldest():
                    self._settle(*batch)

    @contextmanager
    def _salvage_on_error(self) -> Iterator[None]:
        """On a failure, the batches still in flight are waited for and those the server took
        are settled (nothing it stored stays pending here), then the failure goes on."""
        try:
            yield
        except BaseException:
            while self.in_flight:
                future, _, items, _ = self.in_flight.popleft()
                try:
                    batch_id, reply = future.result()
                except Exception as err:  # noqa: BLE001 - the first failure is the one reported
                    log.info("a batch beside the failed one failed too: %s", err)
                    continue
                self._settle(batch_id, reply, items)
            raise

    def _answer_oldest(self) -> list[tuple[str, dict[str, Any], list[Any]]]:
        """Wait for the oldest batch in flight: [(batch id, reply, its items)], or [] when it
        went again (in smaller batches, or in zlib) and was settled that way."""
        future, lines, items, _ = self.in_flight.popleft()
        try:
            batch_id, reply = future.result()
        except _CompressionRefused:
            # The server no longer reads what it once offered (a reinstall without zstandard):
            # zlib from now on, and this batch again.
            self.uploader.ident.compression = "zlib"
            self.store.kv.set("sync.compression", "zlib")
            self.submit(lines, items)
            self.finish()
            return []
        except SyncServerError as err:
            if err.code != "syncerr.too_large" or len(items) <= 1:
                raise
            # The server's limits are lower than ours: send these again in halves, and halve
            # the batches from now on.
            self.size = size = max(1, len(items) // 2)
            for k in range(0, len(items), size):
                self.submit(lines[k : k + size], items[k : k + size])
            self.finish()
            return []
        self.depth = self.DEPTH
        return [(batch_id, reply, items)]

    def _settle(self, batch_id: str, reply: dict[str, Any], items: list[Any]) -> None:
        _apply_reply(self.store, items, reply, batch_id, self.report)
        self.report.batches += 1
        self.report.sent += len(items)


def _encode(store: Store, items: list[Any], report: SyncReport) -> tuple[list[bytes], list[Any]]:
    lines, sendable = [], []
    for item in items:
        try:
            line = wire_line(item)
        except (TypeError, ValueError) as err:
            store.outbox.mark_quarantined(
                item.record_id, f"local: cannot encode ({err})", kind=item.kind
            )
            report.quarantined += 1
            continue
        lines.append(line)
        sendable.append(item)
    return lines, sendable


def _upload(
    store: Store,
    town: TownClient,
    ident: _Identity,
    batch_size: int,
    report: SyncReport,
    sleep: Any,
) -> None:
    limit = max(1, min(batch_size, int(store.kv.get("sync.max_batch_records", batch_size))))
    pipeline = _Pipeline(store, _Uploader(town, ident, report, sleep), report, limit)
    try:
        with _collector_paused():
            for items in store.outbox.batches(limit):
                lines, sendable = _encode(store, items, report)
                k = 0
                while k < len(sendable):
                    n = pipeline.size
                    pipeline.submit(lines[k : k + n], sendable[k : k + n])
                    k += n
            pipeline.finish()
    finally:
        pipeline.close()
