"""``fieldkit-server``: set up and run a town server, enroll devices, push lists, ask questions.

Only the parser and ``main`` are here; each group of commands is its own module and adds
itself with ``register(sub, common)``, in the order ``--help`` lists them: :mod:`.serve_cli`
(init, serve), :mod:`.devices_cli` (device), :mod:`.push_cli` (keyperson, mode, rules),
:mod:`.passes_cli` (pass), :mod:`.users_cli` (user), :mod:`.query_cli` (stats, trace,
conflicts, ledger-conflicts). They share :mod:`.cli_base` and never import this module.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fieldkit.clirun import run_guarded, translate_help
from fieldkit.i18n import LANGUAGES, env_language, set_language

from . import devices_cli, passes_cli, push_cli, query_cli, serve_cli, users_cli
from .cli_base import LANG_CHOSEN as _LANG_CHOSEN
from .cli_base import CliError, default_data_dir
from .keypersons import KeypersonFileError
from .repository import RepositoryError
from .town import TownSetupError


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=argparse.SUPPRESS,
        help="language of this run's messages (default: FIELDKIT_LANG, the town's setting, zh)",
    )
    common.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="town data directory (keys, settings, SQLite file; env FIELDKIT_SERVER_DIR)",
    )
    parser = argparse.ArgumentParser(
        prog="fieldkit-server",
        description="FieldKit town server: receives checkpoint "
        "records, sends key-person lists to gates",
    )
    parser.add_argument("--lang", choices=LANGUAGES, help="language of this run's messages")
    sub = parser.add_subparsers(dest="command", required=True)

    for group in (serve_cli, devices_cli, push_cli, passes_cli, users_cli, query_cli):
        group.register(sub, common)
    translate_help(parser, "server")  # --help in the run's language
    return parser


def _early_language(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--lang" and i + 1 < len(argv):
            return argv[i + 1] if argv[i + 1] in LANGUAGES else None
        if a.startswith("--lang="):
            value = a.split("=", 1)[1]
            return value if value in LANGUAGES else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Every outcome is a line in the server's language and an exit code, never a traceback.
    Language: --lang, else FIELDKIT_LANG, else ``language`` in the town's settings, else zh."""
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = _early_language(argv) or env_language()
    _LANG_CHOSEN[0] = bool(chosen)
    set_language(chosen)
    holder: dict[str, Any] = {}

    def run() -> int:
        args = holder["args"] = build_parser().parse_args(argv)
        return int(args.func(args) or 0)

    user_errors = (CliError, TownSetupError, RepositoryError, KeypersonFileError)
    return run_guarded(
        "fieldkit-server",
        run,
        lambda: getattr(holder.get("args"), "json", False),
        user_errors=user_errors,
    )


if __name__ == "__main__":
    sys.exit(main())
