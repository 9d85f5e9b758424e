"""What every ``fieldkit-server`` command module shares: the user-mistake error, the data
directory, and opening the town (settings, keys, repository) in the town's language.

Its own module so that the command modules (:mod:`.serve_cli`, :mod:`.devices_cli`,
:mod:`.push_cli`, :mod:`.query_cli`, :mod:`.passes_cli`, :mod:`.users_cli`) import it instead
of one another: ``cli`` registers them all, they never import ``cli``. ``emit`` and ``iso``
print every command's ``--json`` and times alike.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from fieldkit.i18n import LANGUAGES, set_language, t

from .repository import Repository, open_repository
from .town import ServerSettings, TownKeys, TownSetupError

# Set by ``cli.main`` when --lang or FIELDKIT_LANG chose the language (the town's own setting
# then does not apply). A list, so the one object is shared by every importer.
LANG_CHOSEN = [False]


class CliError(Exception):
    """A user mistake: printed as one line, exit code 2."""


def default_data_dir() -> str:
    env = os.environ.get("FIELDKIT_SERVER_DIR")
    if env:
        return env
    import platformdirs

    return str(platformdirs.user_data_path("fieldkit-server"))


def open_town(args: argparse.Namespace) -> tuple[Path, ServerSettings, TownKeys, Repository]:
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise TownSetupError(t("server.err.no_data_dir", path=str(data_dir)))
    settings = ServerSettings.load(data_dir)
    follow_server_language(settings)
    keys = TownKeys.load(data_dir)
    repo = open_repository(settings.database_url or None, str(data_dir), settings.db_schema or None)
    return data_dir, settings, keys, repo


def follow_server_language(settings: ServerSettings) -> None:
    """The town's own language setting applies unless --lang or FIELDKIT_LANG chose one."""
    if LANG_CHOSEN[0]:
        return
    lang = getattr(settings, "language", "") or ""
    if lang and lang not in LANGUAGES:
        raise CliError(t("server.err.language", value=lang, allowed=", ".join(LANGUAGES)))
    set_language(lang or None)


def emit(args: argparse.Namespace, data: Any, text_lines: list[str]) -> None:
    """``--json``: stable English keys; a dict result also gets ``message`` (the human text)."""
    if getattr(args, "json", False):
        if isinstance(data, dict) and "message" not in data and text_lines:
            data = {**data, "message": "\n".join(text_lines)}
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print("\n".join(text_lines))


def iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def parse_time(text: str) -> float:
    """ISO 8601 date or date-time; without an offset it is the server's local time."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(t("server.err.time", value=text)) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.timestamp()
