"""Getting the first token, with no browser on the server.

The device flow (RFC 8628; Microsoft allows it for mail): the operator opens a short address on
any machine and types a code; we poll the token endpoint until they have. The code flow with
PKCE (Google, which keeps mail scopes from the device flow): the operator opens the consent page
on any machine, and pastes back the address the browser was sent to (it need not load) or the
code in it. Either way the answer must hold a refresh token, which is saved in the token file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from intake.errors import IntakeError
from intake.settings.oauth2 import OAuth2Settings
from intake.settings.schema import Settings
from intake.transport.oauth2.redaction import remember_secret
from intake.transport.oauth2.session import DEVICE_GRANT, ask, oauth_session
from intake.transport.oauth2.token_file import StoredToken, save_token, token_lock, token_path
from intake.transport.oauth2.tokens import expiry_of, scopes_of

SLOW_DOWN_SECONDS = 5  # RFC 8628 3.5: a `slow_down` answer adds this to the interval


class LoginDenied(IntakeError):
    """The provider refused the login (denied, expired code, wrong client)."""


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int
    message: str | None


@dataclass(frozen=True)
class Consent:
    """The code flow's first half: the page to open, and what the second half needs."""

    url: str
    session: OAuth2Session
    code_verifier: str


def start_device_flow(settings: Settings) -> DeviceCode:
    config = _config(settings)
    url = config.endpoints.device
    if url is None:
        raise LoginDenied("this provider has no device flow: use --flow code")
    session = oauth_session(settings)
    form = {"client_id": config.client_id, "scope": " ".join(config.effective_scopes)}
    response = ask(url, lambda: session.post(url, data=form, withhold_token=True))
    answer = ask(url, response.json)
    if response.status_code != 200 or "device_code" not in answer:
        raise LoginDenied(f"{url}: {_error_text(answer, response.status_code)}")
    return DeviceCode(
        device_code=remember_secret(str(answer["device_code"])),
        user_code=str(answer["user_code"]),
        # Google spells it verification_url; RFC 8628 and Microsoft verification_uri
        verification_uri=str(answer.get("verification_uri") or answer.get("verification_url")),
        expires_in=int(answer.get("expires_in", 900)),
        interval=int(answer.get("interval", 5)),
        message=answer.get("message"),
    )


def finish_device_flow(
    settings: Settings, code: DeviceCode, sleep: Callable[[float], None] = time.sleep
) -> StoredToken:
    """Poll until the operator has approved (or refused, or the code expired)."""
    config = _config(settings)
    session = oauth_session(settings)
    url = config.endpoints.token
    interval = code.interval
    deadline = time.monotonic() + code.expires_in
    while time.monotonic() < deadline:
        sleep(interval)
        try:
            answer = ask(
                url,
                lambda: session.fetch_token(
                    url, grant_type=DEVICE_GRANT, device_code=code.device_code
                ),
            )
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += SLOW_DOWN_SECONDS
                continue
            raise LoginDenied(f"{url}: {exc.error}: {exc.description or 'refused'}") from None
        return keep_login(settings, answer)
    raise LoginDenied(f"the code {code.user_code} expired before it was approved")


def start_code_flow(settings: Settings) -> Consent:
    config = _config(settings)
    url = config.endpoints.authorization
    if url is None:
        raise LoginDenied("this provider has no authorization_url: use --flow device")
    session = oauth_session(settings, code_challenge_method="S256")
    verifier = generate_token(64)
    # access_type=offline and prompt=consent: Google hands out a refresh token only so
    consent, _state = session.create_authorization_url(
        url, code_verifier=verifier, access_type="offline", prompt="consent"
    )
    return Consent(url=consent, session=session, code_verifier=verifier)


def finish_code_flow(settings: Settings, consent: Consent, pasted: str) -> StoredToken:
    """`pasted`: the address the browser was sent to, or only the code in it."""
    url = _config(settings).endpoints.token
    pasted = pasted.strip()
    if not pasted:
        raise LoginDenied("nothing was pasted")
    how: dict[str, str] = (
        {"authorization_response": pasted} if "://" in pasted else {"code": pasted}
    )
    try:
        answer = ask(
            url,
            lambda: consent.session.fetch_token(url, code_verifier=consent.code_verifier, **how),
        )
    except OAuthError as exc:
        raise LoginDenied(f"{url}: {exc.error}: {exc.description or 'refused'}") from None
    return keep_login(settings, answer)


def keep_login(settings: Settings, answer: dict[str, Any]) -> StoredToken:
    """Save the token a login got, in place of any earlier one (a refused one included)."""
    config = _config(settings)
    refresh = answer.get("refresh_token")
    access = answer.get("access_token")
    if not refresh or not access:
        raise LoginDenied(
            "the provider sent no refresh token: Microsoft needs the scope offline_access,"
            " Google the code flow (it asks for offline access)"
        )
    now = datetime.now(UTC)
    token = StoredToken(
        provider=config.provider,
        client_id=config.client_id,
        account=settings.mailbox.username or settings.outbound.username or "",
        scopes=scopes_of(answer, config.effective_scopes),
        refresh_token=remember_secret(str(refresh)),
        obtained_at=now,
        access_token=remember_secret(str(access)),
        expires_at=expiry_of(answer, now),
    )
    path = token_path(settings.data_dir)
    with token_lock(path):
        save_token(path, token)
    return token


def _config(settings: Settings) -> OAuth2Settings:
    if settings.oauth2 is None:
        raise LoginDenied("no [oauth2] table in the settings: see README, 'OAuth2'")
    return settings.oauth2


def _error_text(answer: Any, status: int) -> str:
    if isinstance(answer, dict) and "error" in answer:
        return f"{answer['error']}: {answer.get('error_description') or 'refused'}"
    return f"HTTP {status}"
