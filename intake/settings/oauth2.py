"""The `[oauth2]` table: which provider issues the mailbox's tokens, and how to reach it.

Google and Microsoft are known by name (their endpoints and the scopes mail needs are built in);
`custom` names its own endpoints. One token serves both sides (IMAP and SMTP log in as the same
account), so there is one table, and its scopes cover both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from intake.settings.types import Section

Provider = Literal["google", "microsoft", "custom"]
Flow = Literal["device", "code"]
Mechanism = Literal["xoauth2", "oauthbearer"]

MICROSOFT_LOGIN = "https://login.microsoftonline.com"
MICROSOFT_SCOPES = (
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
)
GOOGLE_SCOPES = ("https://mail.google.com/",)
GOOGLE_AUTHORIZATION_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
# Google's device flow does not grant mail scopes: the operator opens the consent page on any
# machine and pastes back the address the browser was sent to, which need not load.
DEFAULT_REDIRECT_URI = "http://127.0.0.1:1/"


class OAuth2Settings(Section):
    provider: Provider
    client_id: str = Field(min_length=1)
    client_secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    tenant: str = "organizations"  # Microsoft: the directory (tenant) ID or domain
    scopes: tuple[str, ...] | None = None  # None: what mail needs at this provider
    flow: Flow | None = None  # None: device where the provider allows it for mail, else code
    mechanism: Mechanism = "xoauth2"  # the SASL mechanism for IMAP (SMTP always uses XOAUTH2)
    token_url: str | None = None
    device_authorization_url: str | None = None
    authorization_url: str | None = None
    redirect_uri: str = DEFAULT_REDIRECT_URI
    ca_file: Path | None = None  # to trust a private authority's certificate (tests, proxies)
    # An access token is refreshed this long before it expires, so no login uses a dying one.
    refresh_ahead_seconds: int = Field(default=300, ge=0)

    @model_validator(mode="after")
    def _endpoints(self) -> OAuth2Settings:
        if self.provider == "custom":
            if self.token_url is None:
                raise ValueError("provider = 'custom' needs 'token_url'")
            if self.device_authorization_url is None and self.authorization_url is None:
                raise ValueError(
                    "provider = 'custom' needs 'device_authorization_url' or 'authorization_url'"
                )
        if self.provider == "google" and self.client_secret_env is None:
            raise ValueError("provider = 'google' needs 'client_secret_env' (Google requires it)")
        if self.provider == "google" and self.flow == "device":
            raise ValueError(
                "flow = 'device': Google does not grant mail scopes to the device flow"
            )
        if self.flow == "device" and self.endpoints.device is None:
            raise ValueError("flow = 'device' needs 'device_authorization_url'")
        if self.flow == "code" and self.endpoints.authorization is None:
            raise ValueError("flow = 'code' needs 'authorization_url'")
        for key in ("token_url", "device_authorization_url", "authorization_url"):
            url = getattr(self, key)
            if url is not None and urlsplit(url).scheme != "https":
                raise ValueError(f"'{key}' must be an https:// address")
        return self

    @property
    def endpoints(self) -> Endpoints:
        """The provider's endpoints, with any the table names in their place."""
        known = _known_endpoints(self)
        return Endpoints(
            token=self.token_url or known.token,
            device=self.device_authorization_url or known.device,
            authorization=self.authorization_url or known.authorization,
        )

    @property
    def effective_scopes(self) -> tuple[str, ...]:
        if self.scopes is not None:
            return self.scopes
        return {"google": GOOGLE_SCOPES, "microsoft": MICROSOFT_SCOPES}.get(self.provider, ())

    @property
    def effective_flow(self) -> Flow:
        if self.flow is not None:
            return self.flow
        return "device" if self.endpoints.device is not None else "code"


class Endpoints(Section):
    token: str
    device: str | None
    authorization: str | None


def _known_endpoints(settings: OAuth2Settings) -> Endpoints:
    if settings.provider == "microsoft":
        base = f"{MICROSOFT_LOGIN}/{settings.tenant}/oauth2/v2.0"
        return Endpoints(
            token=f"{base}/token", device=f"{base}/devicecode", authorization=f"{base}/authorize"
        )
    if settings.provider == "google":
        return Endpoints(
            token=GOOGLE_TOKEN_URL, device=None, authorization=GOOGLE_AUTHORIZATION_URL
        )
    return Endpoints(token=settings.token_url or "", device=None, authorization=None)
