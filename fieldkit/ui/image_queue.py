"""``--images DIR`` as a queue of people: each image is one presentation at the gate.

Images are taken in name order, one at a time; the next is read only once the person of the
previous one has been dealt with at the gate (:class:`~fieldkit.ui.messages.RecordCommitted`):
their record saved, or the form cleared of them with Esc (they walked away). A correction of an
earlier record (Ctrl+R) is not their record: the gate sets them aside, puts them back after it
and the queue goes on waiting for them (see :mod:`.gate_record`). The folder is
looked at again whenever the queue runs dry, so images added later are picked up. A folder that
is missing or empty is said so, once, in the screen language.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


class PresentationQueue:
    """The images of a folder not yet presented, in name order (rescanned on each call)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.seen: set[str] = set()

    @property
    def missing(self) -> bool:
        return not self.folder.is_dir()

    def waiting(self) -> list[Path]:
        if self.missing:
            return []
        return sorted(
            p
            for p in self.folder.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and p.name not in self.seen
        )

    def next(self) -> Path | None:
        """The next image to present (marked as taken), or None when none waits."""
        waiting = self.waiting()
        if not waiting:
            return None
        self.seen.add(waiting[0].name)
        return waiting[0]
