"""How every FieldKit command line ends: one line in the user's language and an exit code.

Used by ``fieldkit`` and ``fieldkit-server`` (ground layer: it needs only :mod:`fieldkit.i18n`).
A coded error (``FieldkitError`` or any exception with ``render``) prints its message; with
``--json`` its stable code and parameters also go to standard output. A closed pipe
(``fieldkit-server device list | head``) ends quietly; Ctrl+C says so; anything unexpected is
one line naming the error, never a traceback. argparse's own words come from the catalogue too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from .i18n import t

log = logging.getLogger("fieldkit.cli")

# argparse's messages (its gettext ids) → catalogue keys: usage, errors, help headings.
_ARGPARSE = {
    "usage: ": "argparse.usage",
    "%(prog)s: error: %(message)s\n": "argparse.error",
    "the following arguments are required: %s": "argparse.required",
    "invalid choice: %(value)r (choose from %(choices)s)": "argparse.invalid_choice",
    "unrecognized arguments: %s": "argparse.unrecognized",
    "argument %(argument_name)s: %(message)s": "argparse.argument",
    "expected one argument": "argparse.expected_one",
    "expected at least one argument": "argparse.expected_at_least_one",
    "expected at most one argument": "argparse.expected_at_most_one",
    "invalid %(type)s value: %(value)r": "argparse.invalid_value",
    "not allowed with argument %s": "argparse.not_allowed_with",
    "one of the arguments %s is required": "argparse.one_required",
    "ambiguous option: %(option)s could match %(matches)s": "argparse.ambiguous",
    "ignored explicit argument %r": "argparse.ignored_explicit",
    "positional arguments": "argparse.positionals",
    "options": "argparse.options",
    "show this help message and exit": "argparse.help",
    "can't open '%(filename)s': %(error)s": "argparse.cant_open",
}


def _argparse_text(msgid: str) -> str:
    key = _ARGPARSE.get(msgid)
    if key is None:
        return msgid
    # The catalogue keeps argparse's own %-placeholders; braces are not used there.
    return t(key)


def _argparse_ntext(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def translate_argparse() -> None:
    """argparse's usage line, errors and headings in the run's language."""
    argparse._ = _argparse_text  # type: ignore[attr-defined]
    argparse.ngettext = _argparse_ntext  # type: ignore[attr-defined]


def _quiet_stdout() -> None:
    """The reader went away (``| head``): send the rest nowhere, so exit does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def error_json(exc: BaseException) -> dict[str, Any]:
    as_json = getattr(exc, "as_json", None)
    if callable(as_json):
        return as_json()
    return {"error": type(exc).__name__, "params": {}, "message": str(exc)}


def run_guarded(
    prog: str,
    run: Callable[[], int],
    wants_json: Callable[[], bool] = lambda: False,
    user_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Run a command; turn every way it can end into a line and an exit code."""
    translate_argparse()
    try:
        code = run()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        _say(prog, t("cli.interrupted"))
        return 130
    except SystemExit:
        raise
    except Exception as exc:
        coded = callable(getattr(exc, "render", None)) or isinstance(exc, user_errors)
        if coded:
            message, code = str(exc), int(getattr(exc, "exit_code", 2))
        else:
            log.debug("unexpected error", exc_info=True)
            message, code = t("cli.internal_error", error=f"{type(exc).__name__}: {exc}"), 70
        _say(prog, message)
        if _json_wanted(wants_json):
            data = error_json(exc) if coded else {"error": "internal", "message": message}
            try:
                print(json.dumps(data, ensure_ascii=False, default=str))
            except BrokenPipeError:
                _quiet_stdout()
        return code


def _json_wanted(wants_json: Callable[[], bool]) -> bool:
    try:
        return bool(wants_json())
    except Exception:  # noqa: BLE001 - the question itself must not fail the exit path
        return False


def _say(prog: str, message: str) -> None:
    try:
        print(f"{prog}: {message}", file=sys.stderr)
    except (BrokenPipeError, OSError):
        pass


def translate_help(parser: argparse.ArgumentParser, prefix: str) -> None:
    """Help texts from the catalogue: ``help.<prefix>.about`` (the description),
    ``help.<prefix>.<command>.about`` for each sub-command, ``help.<prefix>[.<command>].<dest>``
    for an option, else ``help.option.<dest>``. A text without a key keeps the one in the code."""
    from .i18n import has_key

    def key(*parts: str) -> str:
        return ".".join(p.replace("-", "_") for p in parts)

    if has_key(key("help", prefix, "about")):
        parser.description = t(key("help", prefix, "about"))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a for a in action._choices_actions}
            for name, sub in action.choices.items():
                k = key("help", prefix, name, "about")
                if name in helps and has_key(k):
                    helps[name].help = t(k)
                    sub.description = sub.description or t(k)
                translate_help(sub, f"{prefix}.{name}")
        elif action.help and action.help != argparse.SUPPRESS and action.dest != "help":
            for k in (key("help", prefix, action.dest), key("help.option", action.dest)):
                if has_key(k):
                    action.help = t(k)
                    break
