"""Where FieldKit keeps things. One module, so every path has one answer."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "fieldkit"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """``--data-dir`` beats ``FIELDKIT_HOME`` beats the platform's user data directory."""
    chosen = override or os.environ.get("FIELDKIT_HOME")
    path = Path(chosen).expanduser() if chosen else Path(platformdirs.user_data_dir(APP))
    return path


def config_file(override: str | os.PathLike[str] | None = None) -> Path | None:
    """``--config`` beats ``FIELDKIT_CONFIG`` beats ``config.toml`` in the user config dir."""
    chosen = override or os.environ.get("FIELDKIT_CONFIG")
    if chosen:
        return Path(chosen).expanduser()
    default = Path(platformdirs.user_config_dir(APP)) / "config.toml"
    return default if default.exists() else None


def store_file(directory: Path) -> Path:
    return directory / "fieldkit.db"
