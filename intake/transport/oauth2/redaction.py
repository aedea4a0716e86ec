"""Keeping OAuth2 secrets out of the log: every token this process handles is remembered, and
the log filter blanks it, and any token-shaped field or SASL response, wherever it appears."""

from __future__ import annotations

import re
import threading

REDACTED = "[redacted]"
MIN_SECRET = 12  # shorter strings are not tokens, and blanking them would garble the log

# access_token=..., "refresh_token": "...", Bearer ..., AUTH XOAUTH2 <base64>
_TOKEN_FIELDS = re.compile(
    r"""(?ix)
    ( (?:access_token|refresh_token|id_token|device_code|client_secret|code_verifier)
      ["']?\s*[=:]\s*["']? )
    [^"'&\s,}]+
    | (bearer\s+)[A-Za-z0-9._~+/=-]+
    | ((?:xoauth2|oauthbearer)\s+)[A-Za-z0-9+/=]{16,}
    """
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def remember_secret(secret: str) -> str:
    """Blank `secret` in every later log line; returns it, to be used in place."""
    if len(secret) >= MIN_SECRET:
        with _secrets_lock:
            _secrets.add(secret)
    return secret


def redact_secrets(text: str) -> str:
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _TOKEN_FIELDS.sub(_blank, text)


def _blank(match: re.Match[str]) -> str:
    prefix = next(group for group in match.groups() if group is not None)
    return prefix + REDACTED
