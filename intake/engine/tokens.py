"""Signed reply addresses: `info+TOKEN@domain` names one party of one case.

Every email about a case carries, in Reply-To, an address whose TOKEN says which case and which
party (the reporter, one team member, a witness) it was sent to, signed with an HMAC. A reply to
it threads into that case as that party; a token whose signature fails, or that arrives from
someone who is not its party, is refused. Like Zulip's email gateway, tokens are credentials:
encode and decode are a tested pair, and tokens are redacted from every log line.

The token is lowercase letters, digits and hyphens only, because mail systems lowercase local
parts and some drop other characters. It is `<ticket id>-<party id>-<signature>`; the signature is
80 bits of HMAC-SHA256 in base32. A team member's *reporter door* (mail to it reaches the reporter)
is `<ticket id>-<party id>-r-<signature>`, signed for that purpose: a plain token cannot be turned
into a door by adding the `r-`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from intake.settings.schema import Settings

_SIGNATURE_CHARS = 16  # 80 bits in base32
_DOOR = "r"
_TOKEN = re.compile(rf"^(\d{{1,12}})-(\d{{1,12}})-(?:({_DOOR})-)?([a-z2-7]{{16}})$")
# A token anywhere in text: what the log filter hides.
_TOKEN_IN_TEXT = re.compile(
    rf"(?<![\w-])(\d{{1,12}}-\d{{1,12}}-(?:{_DOOR}-)?)[A-Za-z2-7]{{16}}(?![\w-])"
)


@dataclass(frozen=True)
class ReplyToken:
    """One party of one case; `door`: the team member's reporter door, not their plain reply
    address (see intake.conduct.handlers.team_reply)."""

    ticket_id: int
    party_id: int
    door: bool = False


class ForgedToken(Exception):
    """A token-shaped string whose signature does not verify; `token` is what it claims."""

    def __init__(self, message: str, token: ReplyToken) -> None:
        super().__init__(message)
        self.token = token


def _signature(key: bytes, token: ReplyToken) -> str:
    purpose = "door" if token.door else "reply"
    message = f"intake-{purpose}-v1:{token.ticket_id}:{token.party_id}".encode("ascii")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_SIGNATURE_CHARS]


def encode(key: bytes, token: ReplyToken) -> str:
    door = f"{_DOOR}-" if token.door else ""
    return f"{token.ticket_id}-{token.party_id}-{door}{_signature(key, token)}"


def decode(key: bytes, text: str) -> ReplyToken | None:
    """The token `text` carries; None when it is not token-shaped at all.

    Raises ForgedToken when it is shaped like a token but its signature does not verify.
    """
    match = _TOKEN.match(text.strip().lower())
    if match is None:
        return None
    token = ReplyToken(
        ticket_id=int(match.group(1)), party_id=int(match.group(2)), door=bool(match.group(3))
    )
    if not hmac.compare_digest(_signature(key, token), match.group(4)):
        raise ForgedToken(f"the signature of reply token {redact(text)} does not verify", token)
    return token


def reply_address(settings: Settings, key: bytes, token: ReplyToken) -> str:
    organisation = settings.organisation
    separator = organisation.reply_separator
    return f"{organisation.local_part}{separator}{encode(key, token)}@{organisation.domain}"


def tokens_in(settings: Settings, text: str) -> list[str]:
    """The tokens of our reply addresses written anywhere in `text` (a header's value)."""
    organisation = settings.organisation
    pattern = _reply_addresses(
        organisation.local_part, organisation.reply_separator, organisation.domain
    )
    return pattern.findall(text)


@lru_cache(maxsize=8)
def _reply_addresses(local_part: str, separator: str, domain: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?<![\w.+=-]){re.escape(local_part)}{re.escape(separator)}"
        rf"([0-9A-Za-z-]+)@{re.escape(domain)}\b",
        re.IGNORECASE,
    )


def redact(text: str) -> str:
    """`text` with the signature of every reply token in it replaced by `…`."""
    return _TOKEN_IN_TEXT.sub(r"\1…", text)
