"""How each side logs in: a password from the environment, or an OAuth2 token (XOAUTH2 or
OAUTHBEARER) from the token file, refreshed as it nears expiry."""

from __future__ import annotations

from dataclasses import dataclass

from intake.settings.schema import Settings
from intake.transport.oauth2.tokens import TokenSource, token_source


@dataclass(frozen=True)
class Login:
    username: str
    password: str = ""
    tokens: TokenSource | None = None  # set: log in with an OAuth2 access token, not a password


def mailbox_login(settings: Settings) -> Login:
    config = settings.mailbox
    username = config.username or ""
    if config.auth == "oauth2":
        return Login(username, tokens=token_source(settings))
    password = settings.secret(config.password_env, "mailbox.password_env") or ""
    return Login(username, password)


def outbound_login(settings: Settings) -> Login | None:
    """None: the SMTP server takes our mail without a login (a local relay)."""
    config = settings.outbound
    if config.username is None:
        return None
    if config.auth == "oauth2":
        return Login(config.username, tokens=token_source(settings))
    password = settings.secret(config.password_env, "outbound.password_env") or ""
    return Login(config.username, password)
