"""Write a file all at once or not at all (exports to a USB stick).

The content goes to a hidden temporary file in the target folder, is flushed and fsync'd, and
only then renamed over the target. A full disk, a write-protected stick or a missing folder
raises :class:`ExportError` with one line saying what happened and what to do, and leaves
neither a half-written file nor the temporary one behind; an older file of the same name is
left as it was.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from ..errors import FieldkitError
from ..i18n import t


class ExportError(FieldkitError):
    exit_code = 7


_REASONS = {
    errno.ENOSPC: "export.error.full",
    errno.EDQUOT: "export.error.full",
    errno.EFBIG: "export.error.full",
    errno.EROFS: "export.error.read_only",
    errno.EACCES: "export.error.denied",
    errno.EPERM: "export.error.denied",
    errno.ENOENT: "export.error.no_folder",
    errno.ENOTDIR: "export.error.not_folder",
    errno.EISDIR: "export.error.is_folder",
}


def describe(exc: OSError, path: Path, lang: str) -> ExportError:
    key = _REASONS.get(exc.errno or 0, "export.error.other")
    return ExportError(
        t(key, lang, path=str(path), folder=str(path.parent), why=exc.strerror or str(exc))
    )


def write_atomic(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], None],
    *,
    lang: str = "zh",
    private: bool = False,
) -> int:
    """Call ``write(fh)`` on a temporary file next to ``path`` and rename it into place.

    ``private``: a file of full (unmasked) personal data, readable by its owner only (0600);
    other exports are 0644, so a file written by root to a stick stays readable by the office
    PC's user. Returns the size written. Raises :class:`ExportError` for any file-system
    trouble.
    """
    target = Path(path)
    if target.is_dir():
        raise describe(OSError(errno.EISDIR, os.strerror(errno.EISDIR)), target, lang)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
    except OSError as exc:
        raise describe(exc, target, lang) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        size = tmp.stat().st_size
        with suppress(OSError):
            os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise describe(exc, target, lang) from None
        raise
    with suppress(OSError):  # make the rename itself durable (best effort: not on every fs)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return size
