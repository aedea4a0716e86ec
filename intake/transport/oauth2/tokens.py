"""Access tokens for IMAP and SMTP logins: the stored one while it has life left, else a fresh
one from the refresh token.

A token is refreshed `refresh_ahead_seconds` before it expires, and once more when a server
refuses it (a provider may revoke an access token early); a second refusal is the caller's to
report. A refused refresh token is written down in the token file, so every process, `intake
check` included, knows at once that a person must run `intake oauth login`.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from authlib.integrations.base_client import OAuthError

from intake.errors import TokenRefused
from intake.settings.oauth2 import OAuth2Settings
from intake.settings.schema import Settings
from intake.transport.oauth2.redaction import remember_secret
from intake.transport.oauth2.session import ask, oauth_session
from intake.transport.oauth2.token_file import (
    StoredToken,
    load_token,
    save_token,
    token_lock,
    token_path,
)

log = logging.getLogger(__name__)

LOGIN_COMMAND = "intake oauth login"


class TokenSource:
    """The access tokens of one token file; safe to share between threads."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oauth2 is not None
        self.settings = settings
        self.ahead = timedelta(seconds=settings.oauth2.refresh_ahead_seconds)
        self.path = token_path(settings.data_dir)
        self._lock = threading.Lock()

    def access_token(self, refused: str | None = None) -> str:
        """A token to log in with. `refused`: the token a server just refused, which is not
        handed out again (unless another process has already replaced it, it is refreshed)."""
        with self._lock, token_lock(self.path):
            token = self._stored()
            now = datetime.now(UTC)
            usable = token.access_token is not None and token.access_token != refused
            if usable and token.expires_at is not None and token.expires_at - self.ahead > now:
                assert token.access_token is not None
                return remember_secret(token.access_token)
            return self._refresh(token, now)

    def _stored(self) -> StoredToken:
        token = load_token(self.path)
        if token is None:
            raise TokenRefused(f"no OAuth2 token yet: run `{LOGIN_COMMAND}`")
        if token.refused is not None:
            raise TokenRefused(_refused_line(token.refused))
        remember_secret(token.refresh_token)
        return token

    def _refresh(self, token: StoredToken, now: datetime) -> str:
        config = self.settings.oauth2
        assert config is not None
        session = oauth_session(self.settings)
        url = config.endpoints.token
        try:
            answer: dict[str, Any] = ask(
                url, lambda: session.refresh_token(url, refresh_token=token.refresh_token)
            )
        except OAuthError as exc:
            reason = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
            save_token(self.path, token.refused_now(reason, now))
            raise TokenRefused(_refused_line(reason)) from None
        fresh = stored_from_answer(answer, token, now)
        save_token(self.path, fresh)  # a rotated refresh token is kept before the old is gone
        if fresh.refresh_token != token.refresh_token:
            log.info("oauth2: the provider rotated the refresh token; the new one is saved")
        assert fresh.access_token is not None
        return fresh.access_token


def stored_from_answer(answer: dict[str, Any], before: StoredToken, now: datetime) -> StoredToken:
    """The token file's content after the token endpoint's `answer` to a refresh."""
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenRefused("the token endpoint answered without an access token")
    refresh = answer.get("refresh_token") or before.refresh_token
    return StoredToken(
        provider=before.provider,
        client_id=before.client_id,
        account=before.account,
        scopes=scopes_of(answer, before.scopes),
        refresh_token=remember_secret(str(refresh)),
        obtained_at=before.obtained_at,
        access_token=remember_secret(access),
        expires_at=expiry_of(answer, now),
        refreshed_at=now,
    )


def scopes_of(answer: dict[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    scope = answer.get("scope")
    return tuple(str(scope).split()) if scope else default


def expiry_of(answer: dict[str, Any], now: datetime) -> datetime:
    """When the access token of `answer` expires: `expires_in` seconds from now (one hour where
    the provider says nothing, the usual lifetime)."""
    try:
        seconds = int(answer.get("expires_in") or 3600)
    except (TypeError, ValueError):
        seconds = 3600
    return now + timedelta(seconds=seconds)


def require_token(settings: Settings) -> None:
    """For the commands that connect: a side set to OAuth2 needs a token signed in first."""
    if settings.oauth2 is None:
        return
    path = token_path(settings.data_dir)
    if load_token(path) is None:
        raise TokenRefused(f"auth = 'oauth2' but no token in {path} yet: run `{LOGIN_COMMAND}`")


def _refused_line(reason: str) -> str:
    return (
        f"the OAuth2 provider refused the refresh token ({reason}): it was revoked or has"
        f" expired; run `{LOGIN_COMMAND}`"
    )


_sources: dict[tuple[Path, OAuth2Settings], TokenSource] = {}
_sources_lock = threading.Lock()


def token_source(settings: Settings) -> TokenSource:
    """One source per token file and process, shared by the fetch, IDLE and delivery."""
    assert settings.oauth2 is not None
    key = (token_path(settings.data_dir), settings.oauth2)
    with _sources_lock:
        if key not in _sources:
            _sources[key] = TokenSource(settings)
        return _sources[key]
