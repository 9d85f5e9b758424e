"""Which checkpoints each device may write records for.

``fieldkit-server device add NAME --checkpoint CODE`` (repeatable) binds a device to the codes of
the checkpoints it serves; the server then refuses, record by record with the reason, any record
of that device naming another checkpoint (a gate tablet cannot file passages under another
gate's code). A device added without ``--checkpoint`` is not bound (``device add`` says so).

The bindings live in ``device-checkpoints.json`` in the data directory (``{device_id: [codes]}``,
written whole and renamed into place), read again by the server whenever the file changes, so
every worker process of ``serve`` sees a binding as soon as it is made.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

SCOPE_FILE = "device-checkpoints.json"


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
                self._scopes = {str(k): frozenset(map(str, v)) for k, v in raw.items()}
                self._stamp = stamp
            return self._scopes

    def checkpoints(self, device_id: str) -> frozenset[str] | None:
        """The codes this device may write for, or ``None`` when it is not bound."""
        return self._read().get(device_id)

    def bind(self, device_id: str, codes: list[str]) -> None:
        if self.path is None:
            raise ValueError("no data directory to keep device checkpoints in")
        current = {k: sorted(v) for k, v in self._read().items()}
        current[device_id] = sorted({c.strip() for c in codes if c.strip()})
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
