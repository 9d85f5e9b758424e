"""The camera for the FieldKit app: a camera, a video file or a folder of images.

The camera (or a video) runs in a worker thread through the scanner pipeline and posts each read
as a :class:`~fieldkit.ui.messages.ScanRead`; ``--images DIR`` plays a folder as a queue of
people, one image per person, the next once the last one is recorded. Its state goes to the
status bar as :class:`~fieldkit.ui.messages.CameraStatus`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual import work
from textual.worker import Worker

from ..config import Settings
from .app_base import FieldkitBase
from .messages import CameraStatus, ScanRead


class CameraFeed(FieldkitBase):
    """Starts and runs the camera worker; records its state for the status bar."""

    camera_source: object  # the FrameSource while the camera worker runs
    _camera_worker: Worker | None
    _presented: threading.Event  # --images: the last presentation was recorded

    def start_camera(self) -> None:
        if self.sources is None or self._camera_worker is not None:
            return
        if getattr(self.sources, "kind", None) == "images":
            self._camera_worker = self.image_queue_loop(self.sources.target)
            return
        self._camera_worker = self.camera_loop()

    IMAGE_POLL_S = 1.0  # how often an empty (or emptied) folder is looked at again

    @work(thread=True, exit_on_error=False, group="camera", name="image queue")
    def image_queue_loop(self, folder: str) -> None:
        """``--images DIR``: one image = one person; the next once the last one is recorded."""
        from textual.worker import get_current_worker

        from scanners.pipeline import Pipeline
        from scanners.sources import load_image

        from .image_queue import PresentationQueue

        worker = get_current_worker()
        queue = PresentationQueue(folder)
        cam = self.settings.camera
        said = None

        def say(state: str, key: str, **params) -> None:
            nonlocal said
            if said != key:
                said = key
                text = self.t(key, folder=folder, **params)
                self.post_message(CameraStatus(state, text))
                self.notify(text, timeout=8)  # thread-safe

        while not worker.is_cancelled:
            if queue.missing:
                say("missing", "images.missing")
                time.sleep(self.IMAGE_POLL_S)
                continue
            path = queue.next()
            if path is None:
                say("connected", "images.empty" if not queue.seen else "images.done")
                time.sleep(self.IMAGE_POLL_S)
                continue
            frame, problem = load_image(path)
            if frame is None:
                self.notify(self.t("images.unreadable", name=path.name, problem=problem))
                continue
            pipeline = Pipeline(
                budget_ms=cam.frame_budget_ms,
                dedupe_seconds=0,
                payload_config=self.payload_config(),
            )
            reads = list(pipeline.process(frame))
            if not reads:
                self.notify(self.t("images.no_code", name=path.name))
                continue
            said = None
            self._presented.clear()
            self.post_message(CameraStatus("connected", path.name))
            read = reads[0]
            text = read.text if read.text is not None else ""
            self.post_message(ScanRead(text, read.result, "scan", time.perf_counter()))
            while not worker.is_cancelled and not self._presented.wait(0.2):
                pass  # the operator records this person before the next one comes

    def on_record_committed(self, message) -> None:
        """A record was saved: the image queue may present the next person."""
        self._presented.set()

    @work(thread=True, exit_on_error=False, group="camera", name="camera")
    def camera_loop(self) -> None:
        from textual.worker import get_current_worker

        from scanners.pipeline import Pipeline
        from scanners.sources import FrameSource, SourceSpec, open_source
        from scanners.words import status_text

        worker = get_current_worker()
        cam = self.settings.camera
        source = self.sources
        if not isinstance(source, FrameSource):
            if isinstance(source, str):
                source = SourceSpec.parse(source, width=cam.width, height=cam.height, fps=cam.fps)
            source = open_source(source)
        self.camera_source = source
        pipeline = Pipeline(
            budget_ms=cam.frame_budget_ms,
            dedupe_seconds=cam.dedupe_seconds,
            payload_config=self.payload_config(),
        )
        is_camera = type(source).__name__ == "CameraSource"
        frame_gap = 1.0 / max(1, cam.fps)
        last_state = None
        try:
            while not worker.is_cancelled:
                started = time.monotonic()
                frame = source.read()
                status = source.status
                if status.state != last_state:
                    last_state = status.state
                    self.post_message(CameraStatus(status.state, status_text(status, self.lang)))
                if frame is None:
                    if status.state == "ended":
                        return
                    time.sleep(0.1)
                    continue
                for read in pipeline.process(frame):
                    text = read.text if read.text is not None else ""
                    self.post_message(ScanRead(text, read.result, "scan", time.perf_counter()))
                if not is_camera:  # files play at the camera's pace, not as fast as possible
                    time.sleep(max(0.0, frame_gap - (time.monotonic() - started)))
        finally:
            source.close()

    def on_camera_status(self, message: CameraStatus) -> None:
        self.camera_state = message.state
        self.camera_detail = message.detail
        self.status = {**self.status, "camera": message.state, "camera_detail": message.detail}


def source_from_args(
    settings: Settings,
    camera: str | None = None,
    images: str | None = None,
    video: str | None = None,
):
    """--images / --video / --camera, else the configured camera, as a source spec."""
    from scanners.sources import SourceSpec

    cam = settings.camera
    size = {"width": cam.width, "height": cam.height, "fps": cam.fps}
    if images:
        return SourceSpec("images", images)
    if video:
        return SourceSpec("video", video)
    target = camera if camera is not None else cam.source
    if target.startswith(("camera:", "video:", "images:")):
        return SourceSpec.parse(target, **size)
    path = Path(target)
    if path.is_dir():
        return SourceSpec("images", target)
    if path.is_file() and not target.startswith("/dev/"):
        return SourceSpec("video", target)
    return SourceSpec("camera", target, width=cam.width, height=cam.height, fps=cam.fps)
