"""The key that signs reply addresses: from the environment variable `organisation.secret_env`
names, else a secret generated once into the data directory (mode 0600; a file others can read
is refused)."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from intake.errors import SettingsError

if TYPE_CHECKING:
    from intake.settings.schema import Settings

MIN_SECRET_LENGTH = 32
SECRET_FILE = "reply-secret"


def _read_secret_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"{path}: the reply-address secret is readable by others; run: chmod 600 {path}"
        )
    return path.read_text(encoding="ascii").strip()


def _generate_secret_file(path: Path) -> None:
    """Write a new random secret, readable only by its owner; never overwrite one. It is
    written whole under a name of its own and then linked into place, so a process starting at
    the same moment finds either no file or the whole secret, never an empty one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(partial, path)
    finally:
        partial.unlink()


def signing_key(settings: Settings) -> bytes:
    """The key for reply tokens: the environment variable `organisation.secret_env` names, else
    the secret kept in the data directory, generated on first use."""
    env_name = settings.organisation.secret_env
    value = os.environ.get(env_name)
    if value is not None:
        if len(value) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"organisation.secret_env: {env_name} is {len(value)} characters long;"
                f" a reply-address secret needs at least {MIN_SECRET_LENGTH}"
            )
        return value.encode("utf-8")
    path = settings.data_dir / SECRET_FILE
    if path not in _kept_secrets:
        _kept_secrets[path] = _kept_secret(path)
    return _kept_secrets[path]


_kept_secrets: dict[Path, bytes] = {}  # read once per process: every outbound email needs it


def _kept_secret(path: Path) -> bytes:
    try:
        if not path.exists():
            _generate_secret_file(path)
        secret = _read_secret_file(path)
    except OSError as exc:
        raise SettingsError(
            f"{path}: cannot keep the reply-address secret: {exc.strerror}"
        ) from None
    if len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(
            f"{path}: the reply-address secret is shorter than {MIN_SECRET_LENGTH} characters"
        )
    return secret.encode("utf-8")
