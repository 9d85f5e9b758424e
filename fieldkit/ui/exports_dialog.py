"""The export dialog: what (shift log, daily report, passages), which format, which day or
shift, where (a USB stick when one is mounted), masked or full.

A masked export needs nothing more than the session; a full one needs a reason and a
supervisor's PIN in the dialog, and is audited with that reason. The file is written in a worker
(atomically: a full or write-protected stick leaves nothing behind), and a failure keeps the
dialog open with the reason.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select

from ..errors import FieldkitError, PermissionDenied
from ..reports import KINDS, export
from . import supervisor_common as common
from .supervisor_common import PinDialog
from .typed import fieldkit_app, store_of

FORMATS = ("xlsx", "csv")
TITLE_KEYS = {
    "shift-log": "export.title.shift_log",
    "daily": "export.title.daily",
    "passages": "export.title.passages",
}


def removable_folder() -> Path | None:
    """The first mounted USB stick or card, if any (/media/USER/LABEL, /run/media/…, /mnt/…)."""
    for base in (Path("/media"), Path("/run/media"), Path("/mnt")):
        try:
            candidates = sorted(p for p in base.glob("*") if p.is_dir())
            candidates += sorted(p for c in candidates for p in c.glob("*") if p.is_dir())
        except OSError:
            continue
        for path in candidates:
            if os.path.ismount(path) and os.access(path, os.W_OK):
                return path
    return None


def default_folder(data_dir: Path) -> Path:
    stick = removable_folder()
    return stick if stick is not None else data_dir / "exports"


def file_name(kind: str, fmt: str, day: str, t) -> str:
    return f"{t(TITLE_KEYS[kind])}-{day or 'all'}.{fmt}"


class ExportDialog(PinDialog):
    """F10 exports; the PIN is asked only for a full export."""

    def __init__(
        self, kind: str = "shift-log", day: date | None = None, folder: Path | None = None
    ) -> None:
        super().__init__()
        self.kind = kind if kind in KINDS else "shift-log"
        self.fmt = "xlsx"
        self.day = (day or common.today()).isoformat()
        self.folder = folder
        self.path_touched = False

    def compose(self) -> ComposeResult:
        t = fieldkit_app(self).t
        with Vertical(classes="dialog wide", id="export-box"):
            yield Label(t("sup.export_title"), classes="dialog-title")
            with Horizontal(classes="pin-row"):
                yield Label(t("sup.export_kind"), classes="field-label")
                yield Select(
                    [(t(TITLE_KEYS[k]), k) for k in KINDS],
                    value=self.kind,
                    allow_blank=False,
                    compact=True,
                    id="export-kind",
                )
                yield Label(t("sup.export_format"), classes="field-label")
                yield Select(
                    [(f.upper(), f) for f in FORMATS],
                    value=self.fmt,
                    allow_blank=False,
                    compact=True,
                    id="export-format",
                )
            with Horizontal(classes="pin-row"):
                yield Label(t("sup.export_day"), classes="field-label")
                yield Input(self.day, id="export-day", compact=True, max_length=10)
                yield Label(t("sup.export_shift"), classes="field-label")
                yield Input(
                    id="export-shift",
                    compact=True,
                    max_length=36,
                    placeholder=t("sup.export_shift_hint"),
                )
            with Horizontal(classes="pin-row"):
                yield Label(t("sup.export_path"), classes="field-label")
                yield Input(id="export-path", compact=True)
            yield Checkbox(t("sup.export_full"), id="export-full", compact=True)
            with Horizontal(classes="pin-row"):
                yield Label(t("export_reason.label"), classes="field-label")
                yield Input(
                    id="export-reason",
                    compact=True,
                    max_length=200,
                    placeholder=t("export_reason.hint"),
                )
            yield from self.pin_fields()
        yield from self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        if self.folder is None:
            self.folder = default_folder(fieldkit_app(self).settings.data_dir)
        self._suggest_path()
        self.query_one("#export-kind", Select).focus()

    def _suggest_path(self) -> None:
        if self.path_touched or self.folder is None:
            return
        day = self.query_one("#export-day", Input).value.strip()
        if self.query_one("#export-shift", Input).value.strip() and self.kind != "daily":
            day = "shift"
        path = self.folder / file_name(self.kind, self.fmt, day, fieldkit_app(self).t)
        field = self.query_one("#export-path", Input)
        with field.prevent(Input.Changed):
            field.value = str(path)

    @on(Select.Changed, "#export-kind")
    def _kind(self, event: Select.Changed) -> None:
        self.kind = str(event.value)
        self._suggest_path()

    @on(Select.Changed, "#export-format")
    def _format(self, event: Select.Changed) -> None:
        self.fmt = str(event.value)
        if self.path_touched:  # keep the typed name, change its extension
            field = self.query_one("#export-path", Input)
            with field.prevent(Input.Changed):
                field.value = str(Path(field.value).with_suffix(f".{self.fmt}"))
        self._suggest_path()

    @on(Input.Changed, "#export-day")
    @on(Input.Changed, "#export-shift")
    def _scope_changed(self) -> None:
        self._suggest_path()

    @on(Input.Changed, "#export-path")
    def _path_typed(self) -> None:
        self.path_touched = True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in ("export-day", "export-shift", "export-path", "export-reason"):
            event.stop()
            self.action_submit()

    def values(self) -> dict[str, Any]:
        day = self.query_one("#export-day", Input).value.strip()
        shift = self.query_one("#export-shift", Input).value.strip()
        return {
            "kind": self.kind,
            "fmt": self.fmt,
            "out": self.query_one("#export-path", Input).value.strip(),
            "day": None if shift and self.kind != "daily" else (day or None),
            "shift": shift if self.kind != "daily" else None,
            "full": self.query_one("#export-full", Checkbox).value,
            "reason": self.query_one("#export-reason", Input).value.strip(),
        }

    def ready(self) -> str | None:
        if not self.query_one("#export-path", Input).value.strip():
            return fieldkit_app(self).t("sup.export_path_needed")
        values = self.values()
        if values["full"] and not values["reason"]:
            self.query_one("#export-reason", Input).focus()
            return fieldkit_app(self).t("export_reason.needed")
        return None

    def action_submit(self) -> None:
        """A masked export goes straight away; a full one first needs the PIN."""
        problem = self.ready()
        if problem:
            self.say(problem, error=True)
            return
        values = self.values()
        if values["full"]:
            super().action_submit()
            return
        self.say(fieldkit_app(self).t("sup.exporting"))
        self._export(values)

    @work(thread=True, exit_on_error=False, group="export", exclusive=True)
    def _export(self, values: dict[str, Any]) -> None:
        try:
            result = self.perform(None, values)
        except FieldkitError as exc:
            fieldkit_app(self).call_from_thread(
                self.say, fieldkit_app(self).error_text(exc), error=True
            )
            return
        fieldkit_app(self).call_from_thread(self.dismiss, result)

    def perform(self, supervisor, values: dict[str, Any]):
        if values["full"] and supervisor is None:
            raise PermissionDenied(fieldkit_app(self).t("sup.pin_needed"))
        if values["full"] and not values["reason"]:
            raise PermissionDenied(fieldkit_app(self).t("export_reason.needed"))
        out = Path(values["out"]).expanduser()
        if out.parent == fieldkit_app(self).settings.data_dir / "exports":
            out.parent.mkdir(parents=True, exist_ok=True)
        return export(
            store_of(self),
            values["kind"],
            out,
            fmt=values["fmt"],
            day=values["day"],
            shift_id=values["shift"],
            full=values["full"],
            reason=values["reason"] if values["full"] else None,
            by=supervisor,
            lang=fieldkit_app(self).lang,
        )
