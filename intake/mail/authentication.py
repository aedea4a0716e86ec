"""Did the receiving server see a team member's mail pass DMARC or aligned DKIM?

A reply token proves the sender once had our email; `Authentication-Results` (RFC 8601), added by
the server that received the mail, says whether its From domain was proven. Only headers from a
trusted server count: those whose authserv-id is configured, else the topmost one, which the
receiving server adds last. Without such a header there is nothing to judge, and the token alone
decides.
"""

from __future__ import annotations

import re

from intake.mail.parse import ParsedMessage
from intake.settings.schema import Settings

_RESULT = re.compile(r"\b(dkim|dmarc)\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_DKIM_DOMAIN = re.compile(r"\bheader\.(?:d\s*=\s*|i\s*=\s*[^@\s;]*@)([a-z0-9.-]+)", re.IGNORECASE)
_DMARC_FROM = re.compile(r"\bheader\.from\s*=\s*([a-z0-9.-]+)", re.IGNORECASE)


def _authserv_id(header: str) -> str:
    words = header.split(";", 1)[0].split()
    return words[0].lower() if words else ""


def _aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489): one domain is the other or a subdomain of it."""
    signing_domain, from_domain = signing_domain.lower().rstrip("."), from_domain.lower()
    return (
        signing_domain == from_domain
        or from_domain.endswith("." + signing_domain)
        or signing_domain.endswith("." + from_domain)
    )


def _trusted_headers(message: ParsedMessage, settings: Settings) -> list[str]:
    headers = message.headers_named("Authentication-Results")
    trusted = {server.lower() for server in settings.conversations.trusted_authserv_ids}
    if trusted:
        return [header for header in headers if _authserv_id(header) in trusted]
    return headers[:1]


def authentication_problem(message: ParsedMessage, settings: Settings) -> str | None:
    """Why the mail's authentication is not good enough, or None when it is (or cannot be told)."""
    if not settings.conversations.require_authentication:
        return None
    headers = _trusted_headers(message, settings)
    if not headers:
        return None
    if message.from_count > 1:
        return "the message names more than one From address"
    from_domain = message.from_.email.rsplit("@", 1)[-1] if message.from_ else ""
    seen = []
    for header in headers:
        for method, result, properties in _RESULT.findall(header):
            method, result = method.lower(), result.lower()
            seen.append(f"{method}={result}")
            if result != "pass":
                continue
            domain = (_DMARC_FROM if method == "dmarc" else _DKIM_DOMAIN).search(properties)
            if method == "dmarc" and domain is None:
                return None  # a DMARC pass is for the From domain unless it says otherwise
            if domain and from_domain and _aligned(domain.group(1), from_domain):
                return None
    server = _authserv_id(headers[0]) or "the receiving server"
    found = ", ".join(seen) or "no DKIM or DMARC result"
    return (
        f"{server} found no DMARC pass and no DKIM pass for {from_domain or 'the sender'} ({found})"
    )
