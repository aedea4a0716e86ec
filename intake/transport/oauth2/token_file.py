"""The OAuth2 token in the data directory: one JSON file, mode 0600, replaced atomically.

The refresh token is the one credential that cannot be had again without a person, so a new one
is written (to a temporary file, fsynced, renamed over the old, the directory fsynced) before the
old one is forgotten. A lock file beside it keeps the processes of one host (daemons, `intake
poll`, `intake oauth login`) from refreshing at once, which with a provider that rotates refresh
tokens would leave one of them holding a token that no longer works.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intake.errors import SettingsError

TOKEN_FILE = "oauth2-token.json"


@dataclass(frozen=True)
class StoredToken:
    provider: str
    client_id: str
    account: str
    scopes: tuple[str, ...]
    refresh_token: str
    obtained_at: datetime  # when `intake oauth login` got the refresh token
    access_token: str | None = None
    expires_at: datetime | None = None
    refreshed_at: datetime | None = None  # when the refresh token was last used
    # Set when the provider refused the refresh token: only a new login clears it.
    refused: str | None = None
    refused_at: datetime | None = None

    def refused_now(self, reason: str, now: datetime) -> StoredToken:
        return replace(self, refused=reason, refused_at=now, access_token=None)


def token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE


def load_token(path: Path) -> StoredToken | None:
    """The stored token, or None when there is none yet; a file others can read is refused."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"{path}: the OAuth2 token is readable by others; run: chmod 600 {path}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(
            f"{path}: not a readable OAuth2 token ({exc}); run `intake oauth login` again"
        ) from None


def save_token(path: Path, token: StoredToken) -> None:
    """Write `token` in place of the stored one, all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(_to_json(token), file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@contextlib.contextmanager
def token_lock(path: Path) -> Iterator[None]:
    """Held while the token is read, refreshed and written back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


_TIMES = ("obtained_at", "expires_at", "refreshed_at", "refused_at")


def _to_json(token: StoredToken) -> dict[str, Any]:
    data = asdict(token)
    for key in _TIMES:
        value = data[key]
        data[key] = value.isoformat() if value is not None else None
    data["scopes"] = list(token.scopes)
    return data


def _from_json(data: dict[str, Any]) -> StoredToken:
    for key in _TIMES:
        value = data.get(key)
        data[key] = _aware(datetime.fromisoformat(value)) if value else None
    data["scopes"] = tuple(data.get("scopes") or ())
    return StoredToken(**data)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
