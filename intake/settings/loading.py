"""Reading settings.toml: resolve relative paths, validate, check the templates; any problem is
one SettingsError line naming the key.

Relative paths are resolved against the directory of the settings file, so a checkout runs from
anywhere.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from intake.errors import SettingsError
from intake.settings.schema import Settings
from intake.settings.secrets import signing_key
from intake.settings.templates import check_templates

CONFIG_ENV = "INTAKE_CONFIG"
DEFAULT_CONFIG = Path("settings.toml")
OUTSIDE_CONTACT_MISSING = (
    "organisation.outside_contact is not set: acknowledgements cannot name someone outside the"
    " team to write to when a report concerns a team member"
)


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make every path in the file relative to the file's own directory."""

    def resolve(section: dict[str, Any], key: str) -> None:
        if isinstance(section.get(key), str):
            path = Path(section[key]).expanduser()
            section[key] = path if path.is_absolute() else base / path

    paths = raw.setdefault("paths", {})
    if isinstance(paths, dict):
        paths.setdefault("data_dir", "var")
        paths.setdefault("templates", "templates")
        resolve(paths, "data_dir")
        resolve(paths, "templates")
    for name in ("mailbox", "outbound", "oauth2"):
        section = raw.get(name)
        if isinstance(section, dict):
            resolve(section, "path")
            resolve(section, "ca_file")
    database = raw.get("database")
    if isinstance(database, dict) and isinstance(database.get("url"), str):
        url: str = database["url"]
        if url.startswith("sqlite://") and url != "sqlite://:memory:":
            path = Path(url.removeprefix("sqlite://"))
            database["url"] = "sqlite://" + str(path if path.is_absolute() else base / path)
    elif database is None:
        raw["database"] = {"url": "sqlite://" + str(base / "var" / "intake.sqlite3")}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        message = "is not a known setting"
    return f"{where}: {message}" if where else message


def config_path(explicit: str | Path | None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(path: str | Path | None = None) -> Settings:
    """Read, validate and resolve the settings file; any problem is one SettingsError line."""
    file = config_path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{file}: settings file not found") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{file}: not UTF-8 text") from None
    except OSError as exc:
        raise SettingsError(f"{file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{file}: not valid TOML: {exc}") from None
    _resolve_paths(raw, file.resolve().parent)
    raw["source_file"] = file.resolve()
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"{file}: {_first_error(exc)}") from None
    check_templates(settings.paths.templates)
    return settings


def require_secrets(settings: Settings) -> None:
    """For the commands that connect: every secret the file names must be set."""
    settings.secret(settings.mailbox.password_env, "mailbox.password_env")
    settings.secret(settings.outbound.password_env, "outbound.password_env")
    settings.secret(settings.database.password_env, "database.password_env")
    if settings.oauth2 is not None:
        settings.secret(settings.oauth2.client_secret_env, "oauth2.client_secret_env")
    signing_key(settings)
