"""Fields of the gate and vehicle forms: cheap to type into, and an ID never shown in full.

* :class:`FixedInput`: a one-line field of fixed size. Textual's ``Input`` marks every key as a
  layout change (its virtual width follows the text), which re-arranges the whole screen, often
  twice a key, where a fixed field only needs to repaint; at the gate that was most of the app's
  time per key.
* :class:`MaskedIdInput`: an ID field that shows a number being typed as
  :func:`fieldkit.gate.mask_typing` does (110105******** and the tail): the field's value keeps
  every key, in order; only what is drawn is masked.
* :class:`SteadyFooter`: the footer re-built only when the keys it shows change, not on every
  focus move between fields (Textual's ``Footer`` re-mounts all its keys then).
* :func:`prepare_identity`: the slow key-person hash of a number just read, started in a worker
  while the thermometer is read, so the record at Enter does not wait for it.
"""

from __future__ import annotations

from functools import partial

from rich.text import Text
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Footer, Input

from ..gate import mask_typing


class FixedInput(Input):
    """An ``Input`` whose growing text repaints the field instead of laying out the screen."""

    # The same reactive as Widget.virtual_size (same name, same stored value), without
    # layout=True: the field's width comes from the form's CSS, never from its text.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)


class MaskedIdInput(FixedInput):
    """A field for ID numbers: drawn masked while typed (the value itself is untouched)."""

    @property
    def _value(self) -> Text:
        return Text(mask_typing(self.value), no_wrap=True, overflow="ignore", end="")


def _shown_keys(footer: Footer) -> tuple:
    bindings = footer.screen.active_bindings.values()
    return tuple(
        (b.key, b.description, b.action, enabled, tooltip)
        for _node, b, enabled, tooltip in bindings
        if b.show
    )


class SteadyFooter(Footer):
    """A ``Footer`` that re-builds its keys only when what it would show has changed."""

    _shown: tuple | None = None

    def bindings_changed(self, screen) -> None:
        # Footer re-builds only when attached to this screen and the app has focus: the same
        # conditions decide whether what it shows is remembered.
        if self.is_attached and screen is self.screen and screen.app.app_focus:
            if screen is not screen.app.screen:
                # Under a dialog (an alert): the keys that change there (no screen keys over
                # a dialog) are looked at again when this screen is on top once more.
                self._bindings_ready = True
                return
            shown = (self.compact, _shown_keys(self))
            if shown == self._shown:
                self._bindings_ready = True
                return
            self._shown = shown
        super().bindings_changed(screen)


def prepare_identity(screen, service, number: str | None) -> None:
    """Start :meth:`fieldkit.gate.GateService.prepare` for ``number`` in a worker."""
    if number:
        screen.run_worker(
            partial(service.prepare, number), thread=True, group="id-prepare", exit_on_error=False
        )
