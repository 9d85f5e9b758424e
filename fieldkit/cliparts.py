"""What every ``fieldkit`` command module uses: PINs from the environment, stdin or a prompt,
the settings of a run, opening and unlocking the store, printing a result (``--json``), and the
options every command shares.

Its own module so that the command modules (:mod:`fieldkit.cli`, :mod:`fieldkit.ledger_cli`,
:mod:`fieldkit.reports_cli`, :mod:`sync.device_cli` …) import it, never one another:
``fieldkit.cli`` registers them, they do not import ``fieldkit.cli``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from .config import Settings, load_settings
from .errors import ConfigError, InputError
from .i18n import Msg, env_language, set_language

EXIT_OK, EXIT_USAGE = 0, 2


class PinSource:
    """Hands out PINs in order: current operator's first, then a new one."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._stdin_lines: list[str] | None = None
        self._use_stdin = getattr(args, "pin_stdin", False)

    def _next_stdin(self, what: str | Msg) -> str:
        if self._stdin_lines is None:
            self._stdin_lines = [line.rstrip("\r\n") for line in sys.stdin.readlines()]
        if not self._stdin_lines:
            raise InputError("cli.pin_stdin_empty", what=what)
        return self._stdin_lines.pop(0)

    def get(self, env: str, what: str | Msg) -> str:
        if self._use_stdin:
            return self._next_stdin(what)
        if os.environ.get(env):
            return os.environ[env]
        if sys.stdin.isatty():
            return getpass.getpass(f"{what}: ")
        raise InputError("cli.pin_needed", what=what, env=env)

    def current(self) -> str:
        return self.get("FIELDKIT_PIN", Msg("cli.what.pin"))

    def new(self, who: str) -> str:
        return self.get("FIELDKIT_NEW_PIN", Msg("cli.what.new_pin", who=who))


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The config, in the language of this run: ``--lang``, else FIELDKIT_LANG, else the
    config's ``ui.language`` (the process language follows, for every message)."""
    try:
        settings = load_settings(args.config, args.data_dir)
    except ConfigError as exc:
        file_lang = getattr(exc, "language", None)
        if file_lang and not (getattr(args, "lang", None) or env_language()):
            set_language(file_lang)  # the broken file still says its language
        raise
    lang = getattr(args, "lang", None) or env_language() or settings.ui.language
    settings.ui.language = lang
    set_language(lang)
    return settings


def open_cli_store(args: argparse.Namespace, *, create: bool = False):
    from . import ledger  # noqa: F401  (plugs the household ledger into the store)
    from .store import open_store

    return open_store(settings_from_args(args), create=create)


def pick_operator(store, args: argparse.Namespace) -> str:
    name = getattr(args, "operator", None) or os.environ.get("FIELDKIT_OPERATOR")
    if name:
        return name
    ops = store.keyring.list()
    if len(ops) == 1:
        return ops[0].name
    raise InputError("cli.several_operators")


def login(store, args: argparse.Namespace, pins: PinSource | None = None):
    """Unlock the store for a CLI command; returns the PinSource for any further PINs."""
    pins = pins or PinSource(args)
    store.unlock(pick_operator(store, args), pins.current())
    return pins


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """``--json``: stable English keys and codes (a dict result also gets ``message``, the
    human line in the chosen language); otherwise the human text."""
    if getattr(args, "json", False):
        if isinstance(data, dict) and "message" not in data and text:
            data = {**data, "message": text}
        print(json.dumps(data, ensure_ascii=False, indent=None, default=str))
    else:
        print(text)


def common_options(
    p: argparse.ArgumentParser, *, pin: bool = False, json_flag: bool = True
) -> None:
    if json_flag:
        p.add_argument("--json", action="store_true", help="machine-readable output")
    if pin:
        p.add_argument(
            "--operator", help="who you are (default: FIELDKIT_OPERATOR, or the only operator)"
        )
        p.add_argument(
            "--pin-stdin", action="store_true", help="read PINs from standard input, one per line"
        )
