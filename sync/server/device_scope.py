"""Which checkpoints each device may write records for.

``fieldkit-server device add NAME --checkpoint CODE`` (repeatable) binds a device to the codes of
the checkpoints it serves; the server then refuses, record by record with the reason, any record
of that device naming another checkpoint (a gate tablet cannot file passages under another
gate's code). A device added without ``--checkpoint`` is not bound (``device add`` says so).

A checkpoint code is compared without regard to case or width: :func:`checkpoint_code` is the
one normal form (upper case, NFKC, no surrounding space), applied where a binding is made (the
``device add`` CLI, the console's enrolment form), where it is read back (a file written before,
with ``cp-0207`` in it, still binds ``CP-0207``) and to the code a record names.

The bindings live in ``device-checkpoints.json`` in the data directory (``{device_id: [codes]}``,
written whole and renamed into place), read again by the server whenever the file changes, so
every worker process of ``serve`` sees a binding as soon as it is made.
"""

from __future__ import annotations

import json
import os
import re
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCOPE_FILE = "device-checkpoints.json"
_SEPARATORS = re.compile(r"[,，、;；\s]+")


def checkpoint_code(code: str) -> str:
    """The one form a checkpoint code is stored and compared in: ``cp-0207`` is ``CP-0207``."""
    return unicodedata.normalize("NFKC", str(code)).strip().upper()


def checkpoint_codes(codes: Iterable[str] | str) -> list[str]:
    """Codes as typed (a list, or one text separated by commas, 、 or spaces): normal form,
    each once, sorted; empty entries dropped."""
    if isinstance(codes, str):
        codes = _SEPARATORS.split(unicodedata.normalize("NFKC", codes))
    return sorted({checkpoint_code(c) for c in codes} - {""})


class DeviceScopes:
    """The bindings of one data directory (``None``: nobody is bound)."""

    def __init__(self, data_dir: str | Path | None) -> None:
        self.path = Path(data_dir) / SCOPE_FILE if data_dir else None
        self._stamp: tuple[int, int] | None = None
        self._scopes: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def _read(self) -> dict[str, frozenset[str]]:
        if self.path is None:
            return {}
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                raw = json.loads(self.path.read_text(encoding="utf-8") or "{}")
                self._scopes = {
                    str(k): frozenset(checkpoint_codes(map(str, v))) for k, v in raw.items()
                }
                self._stamp = stamp
            return self._scopes

    def checkpoints(self, device_id: str) -> frozenset[str] | None:
        """The codes this device may write for (normal form), or ``None`` when it is not bound."""
        return self._read().get(device_id)

    def allows(self, device_id: str, code: str | None) -> bool:
        """May this device write a record naming checkpoint ``code`` (any case)?"""
        allowed = self.checkpoints(device_id)
        return allowed is None or code is None or checkpoint_code(code) in allowed

    def bind(self, device_id: str, codes: list[str]) -> None:
        if self.path is None:
            raise ValueError("no data directory to keep device checkpoints in")
        current = {k: sorted(v) for k, v in self._read().items()}
        current[device_id] = checkpoint_codes(codes)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def device_name_key(name: str) -> str:
    """Device names compare without regard to case, width or spaces (``幸福社区 网格员平板`` is
    ``幸福社区网格员平板``: two rows a clerk could not tell apart)."""
    return "".join(unicodedata.normalize("NFKC", name).split()).casefold()


def live_device_named(devices: Iterable[Any], name: str) -> Any | None:
    """The device not revoked (pending or active) already called ``name``, if any: a new device
    may not take its name (the console and ``device revoke NAME`` tell devices apart by it)."""
    key = device_name_key(name)
    return next(
        (d for d in devices if d.status != "revoked" and device_name_key(d.name) == key), None
    )
