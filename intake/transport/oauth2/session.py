"""The OAuth2 client, built on authlib's requests integration for every provider.

authlib rather than msal or google-auth: one well-kept library speaks to Google, Microsoft and a
custom authority alike (the device flow is its generic token request with the RFC 8628 grant
type, the code flow has PKCE built in), so the three providers share one road and one test.
Every answer the token endpoint gives is read here: errors the provider sends back (a refused
grant) become OAuthError with its `error` code, anything else (no answer, no JSON) becomes a
TokenEndpointError, a passing failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from intake.errors import SettingsError, TokenEndpointError
from intake.settings.oauth2 import OAuth2Settings
from intake.settings.schema import Settings

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TIMEOUT_SECONDS = 30

T = TypeVar("T")


def client_secret(settings: Settings) -> str | None:
    config = _config(settings)
    return settings.secret(config.client_secret_env, "oauth2.client_secret_env")


class _Session(OAuth2Session):  # type: ignore[misc]
    """authlib's session, trusting `ca_file` where one is set. requests lets REQUESTS_CA_BUNDLE
    override a session's own `verify`, so it is given with every request instead."""

    ca_file: str | None = None

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if self.ca_file is not None:
            kwargs.setdefault("verify", self.ca_file)
        return super().request(method, url, **kwargs)


def oauth_session(settings: Settings, **kwargs: Any) -> OAuth2Session:
    """A session for the [oauth2] table: the client's secret sent in the body where there is
    one (Microsoft and Google both take it there), none for a public client."""
    config = _config(settings)
    secret = client_secret(settings)
    session = _Session(
        client_id=config.client_id,
        client_secret=secret,
        token_endpoint_auth_method="client_secret_post" if secret else "none",
        scope=" ".join(config.effective_scopes),
        redirect_uri=config.redirect_uri,
        default_timeout=TIMEOUT_SECONDS,
        **kwargs,
    )
    if config.ca_file is not None:
        session.ca_file = str(config.ca_file)
    return session


def ask(endpoint: str, call: Callable[[], T]) -> T:
    """`call`, with a provider that cannot be reached or read turned into TokenEndpointError
    (OAuthError, the provider's own refusal, passes through for the caller to judge)."""
    try:
        return call()
    except OAuthError:
        raise
    except requests.RequestException as exc:
        raise TokenEndpointError(f"{endpoint}: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # an answer that is not the JSON a token endpoint sends
        raise TokenEndpointError(f"{endpoint}: unreadable answer: {exc}") from None


def _config(settings: Settings) -> OAuth2Settings:
    if settings.oauth2 is None:
        raise SettingsError("auth = 'oauth2' needs an [oauth2] table")
    return settings.oauth2
