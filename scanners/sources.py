"""Frame sources: a camera (index or device path), a video file, a folder of images.

Every source has the same small API — ``read() -> frame | None``, ``status``, ``close()`` — and
never raises from ``read``: a camera that is missing, busy or unplugged mid-shift shows it in
``status`` (state ``missing`` / ``reconnecting``) and is reopened every ``reconnect_seconds``.
A file or folder that has been played to the end is ``ended``.

``open_source`` builds one from a :class:`SourceSpec` or a short text: ``camera:0``,
``camera:/dev/video0``, ``video:clip.mp4``, ``images:frames/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from .coded import Problem

CONNECTED, RECONNECTING, MISSING, ENDED = "connected", "reconnecting", "missing", "ended"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


@dataclass(frozen=True)
class SourceStatus:
    state: str  # connected | reconnecting | missing | ended
    message: str = ""  # English (logs); people read ``source.status.<code>`` with ``params``
    code: str = ""
    params: tuple[tuple[str, object], ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == CONNECTED


def _status(state: str, message: str, code: str, source: object, **params: object) -> SourceStatus:
    """A status with its code; the source's own name part (device, file, folder) is a parameter."""
    where = {
        "device": getattr(source, "device", None),
        "file": getattr(getattr(source, "path", None), "name", None),
        "folder": getattr(source, "folder", None),
    }
    params = {**{k: str(v) for k, v in where.items() if v is not None}, **params}
    return SourceStatus(state, message, code, tuple(params.items()))


@dataclass(frozen=True)
class SourceSpec:
    """What to open; camera settings come from the app's config."""

    kind: str  # camera | video | images
    target: str  # camera index or device path; file; folder
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    loop: bool = False  # video / images: start again at the end
    reconnect_seconds: float = 2.0

    @classmethod
    def parse(cls, text: str, **settings) -> SourceSpec:
        kind, sep, target = text.partition(":")
        if not sep or kind not in ("camera", "video", "images"):
            raise ValueError(
                f"source must be camera:N, camera:/dev/videoN, video:FILE or images:DIR, "
                f"not {text!r}"
            )
        return cls(kind, target, **settings)


class FrameSource:
    """Base: subclasses implement ``read``; ``status`` tells the UI what is going on."""

    status: SourceStatus = SourceStatus(MISSING, "not opened", "not_opened")
    name: str = "source"

    def read(self) -> np.ndarray | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def frames(self) -> Iterator[np.ndarray]:
        """Frames until the source ends (a camera never ends: use read() in a loop)."""
        while self.status.state != ENDED:
            frame = self.read()
            if frame is not None:
                yield frame
            elif self.status.state != ENDED:
                time.sleep(0.05)


class CameraSource(FrameSource):
    """An OpenCV camera (V4L2 on a Pi). Missing, busy and unplugged cameras are retried."""

    def __init__(
        self,
        device: int | str,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        reconnect_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = int(device) if isinstance(device, str) and device.isdigit() else device
        self.name = f"camera {self.device}"
        self.width, self.height, self.fps = width, height, fps
        self.reconnect_seconds = reconnect_seconds
        self.clock = clock
        self._cap: cv2.VideoCapture | None = None
        self._next_try = 0.0
        self._failures = 0
        self.status = _status(MISSING, f"{self.name}: not opened yet", "camera_not_opened", self)
        self._open()

    def _device_exists(self) -> bool:
        if isinstance(self.device, int):
            return os.path.exists(f"/dev/video{self.device}") or not os.path.isdir("/dev")
        return os.path.exists(self.device)

    def _open(self) -> None:
        self._next_try = self.clock() + self.reconnect_seconds
        if not self._device_exists():
            self.status = _status(
                MISSING,
                f"{self.name}: no such camera; plug it in or check the camera setting (retrying)",
                "camera_missing",
                self,
            )
            return
        try:
            backend = cv2.CAP_V4L2 if os.name == "posix" and os.path.isdir("/dev") else cv2.CAP_ANY
            cap = cv2.VideoCapture(self.device, backend)
            if not cap.isOpened():
                cap.release()
                self.status = _status(
                    RECONNECTING,
                    f"{self.name}: present but cannot be opened "
                    f"(busy in another program?); retrying",
                    "camera_busy",
                    self,
                )
                return
            if self.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            if self.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps:
                cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a stale queue
        except cv2.error as exc:
            self.status = _status(
                RECONNECTING, f"{self.name}: {exc}; retrying", "camera_error", self
            )
            return
        self._cap = cap
        self._failures = 0
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.status = _status(
            CONNECTED, f"{self.name}: {w}×{h}", "camera_connected", self, size=f"{w}×{h}"
        )

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            if self.clock() >= self._next_try:
                self._open()
            if self._cap is None:
                return None
        try:
            ok, frame = self._cap.read()
        except cv2.error:
            ok, frame = False, None
        if ok and frame is not None:
            self._failures = 0
            return frame
        self._failures += 1
        if self._failures >= 3:  # a few empty grabs in a row: unplugged or taken away
            self._cap.release()
            self._cap = None
            self._next_try = self.clock() + self.reconnect_seconds
            self.status = _status(
                RECONNECTING, f"{self.name}: lost (unplugged?); reconnecting", "camera_lost", self
            )
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self.status = _status(ENDED, f"{self.name}: closed", "camera_closed", self)


class VideoFileSource(FrameSource):
    """A video file played as a camera (optionally looping)."""

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        self.path = Path(path)
        self.name = f"video {self.path.name}"
        self.loop = loop
        self.frames_read = 0
        self._cap = None
        if not self.path.is_file():
            self.status = _status(MISSING, f"{self.name}: file not found", "video_missing", self)
            return
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            self.status = _status(
                MISSING, f"{self.name}: not a video OpenCV can read", "video_unreadable", self
            )
            return
        self._cap = cap
        self.status = _status(CONNECTED, f"{self.name}: playing", "video_playing", self)

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            if self.status.state == MISSING:
                self.status = replace(self.status, state=ENDED)
            return None
        ok, frame = self._cap.read()
        if not ok and self.loop and self.frames_read:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok:
            self.status = _status(
                ENDED,
                f"{self.name}: ended after {self.frames_read} frames",
                "video_ended",
                self,
                frames=self.frames_read,
            )
            self._cap.release()
            self._cap = None
            return None
        self.frames_read += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self.status = _status(ENDED, f"{self.name}: closed", "video_closed", self)


class ImageFolderSource(FrameSource):
    """The images of a folder, in name order, played as a camera. Unreadable files are skipped."""

    def __init__(self, folder: str | Path, loop: bool = False) -> None:
        self.folder = Path(folder)
        self.name = f"images {self.folder}"
        self.loop = loop
        self.index = 0
        self.skipped: list[tuple[Path, str]] = []
        self.current: Path | None = None
        if not self.folder.is_dir():
            self.paths: list[Path] = []
            self.status = _status(MISSING, f"{self.name}: folder not found", "images_missing", self)
            return
        self.paths = sorted(
            p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        state = CONNECTED if self.paths else ENDED
        self.status = _status(
            state,
            f"{self.name}: {len(self.paths)} images",
            "images_count",
            self,
            count=len(self.paths),
        )

    def read(self) -> np.ndarray | None:
        while self.index < len(self.paths) or (
            self.loop and self.paths and len(self.skipped) < len(self.paths)
        ):
            if self.index >= len(self.paths):
                self.index = 0
            path = self.paths[self.index]
            self.index += 1
            frame, problem = load_image(path)
            if frame is not None:
                self.current = path
                return frame
            self.skipped.append((path, problem or "unreadable"))
        if self.status.state == MISSING:  # say "folder not found", not "ended (0 unreadable)"
            self.status = replace(self.status, state=ENDED)
            return None
        self.status = _status(
            ENDED,
            f"{self.name}: ended ({len(self.skipped)} unreadable)",
            "images_ended",
            self,
            unreadable=len(self.skipped),
        )
        return None


MAX_PIXELS = 40_000_000  # 40 MP: a phone photo is ~12 MP; 8000×8000 is refused


def load_image(
    path: str | Path, max_pixels: int = MAX_PIXELS, flags: int = cv2.IMREAD_GRAYSCALE
) -> tuple[np.ndarray | None, str | None]:
    """Read an image safely: ``(image, None)`` or ``(None, why not)``; never raises."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, Problem(f"cannot open: {exc.strerror or exc}", "open", why=exc.strerror or exc)
    if size == 0:
        return None, Problem("empty file", "empty")
    truncated = _truncation(path, size)
    if truncated:
        return None, truncated
    width, height = _header_size(path)
    if width * height > max_pixels:
        return (
            None,
            Problem(
                f"image too large: {width}×{height} is over {max_pixels // 1_000_000} megapixels",
                "too_large",
                size=f"{width}×{height}",
            ),
        )
    try:
        image = cv2.imread(str(path), flags)
    except cv2.error as exc:
        why = exc.msg if hasattr(exc, "msg") else exc
        return None, Problem(f"not a readable image ({why})", "not_image")
    if image is None:
        return None, Problem("not an image, or truncated/corrupt", "not_image")
    if image.shape[0] * image.shape[1] > max_pixels:
        shown = f"{image.shape[1]}×{image.shape[0]}"
        return None, Problem(f"image too large: {shown}", "too_large", size=shown)
    return image, None


def _header_size(path: Path) -> tuple[int, int]:
    """Width and height from the header alone (0, 0 if PIL does not know the format)."""
    from PIL import Image

    try:
        with Image.open(path) as probe:
            return probe.size
    except Exception:  # noqa: BLE001 - PIL does not know every format OpenCV reads; let OpenCV try
        return 0, 0


def _truncation(path: Path, size: int) -> str | None:
    """JPEG and PNG files cut short decode to half a picture with only a warning: refuse them."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            f.seek(max(0, size - 32))
            tail = f.read()
    except OSError as exc:
        return Problem(f"cannot read: {exc.strerror or exc}", "open", why=exc.strerror or exc)
    if head.startswith(b"\xff\xd8") and b"\xff\xd9" not in tail:
        return Problem("truncated JPEG (no end-of-image marker)", "truncated", format="JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" not in tail:
        return Problem("truncated PNG (no IEND chunk)", "truncated", format="PNG")
    return None


def open_source(spec: SourceSpec | str) -> FrameSource:
    """Open a camera, video or image folder; never raises for a missing device or file."""
    if isinstance(spec, str):
        spec = SourceSpec.parse(spec)
    if spec.kind == "camera":
        return CameraSource(spec.target, spec.width, spec.height, spec.fps, spec.reconnect_seconds)
    if spec.kind == "video":
        return VideoFileSource(spec.target, loop=spec.loop)
    if spec.kind == "images":
        return ImageFolderSource(spec.target, loop=spec.loop)
    raise ValueError(f"unknown source kind {spec.kind!r}")
