"""VERP: every email's envelope sender carries a signed tag of that email, `info+b-HEX-SIG@`,
so a bounce is matched to the email it bounced even when it quotes nothing of it (bounces go to
the envelope sender, and the receiving MTA records that address in Delivered-To, X-Original-To
or To). HEX is the hex part of the email's own Message-ID; SIG is 50 bits of HMAC-SHA256 with
the reply-address key, so nobody can mark our mail bounced by writing to a made-up tag.

It needs what reply addresses already need: the mail server delivers plus-addressed mail to
the intake mailbox. Where the tag would make the local part longer than RFC 5321 allows (64
octets), or with `[outbound] verp = false`, the envelope sender is the plain address and bounces
are matched by the Message-ID they quote, as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from functools import lru_cache

from intake.settings.schema import Settings

TAG = "b"
_SIGNATURE_CHARS = 10  # 50 bits in base32
_LOCAL_PART_MAX = 64
_MESSAGE_HEX = re.compile(r"<intake\.([0-9a-f]{32})@", re.IGNORECASE)


def _signature(key: bytes, hex_id: str) -> str:
    digest = hmac.new(key, f"verp:{hex_id.lower()}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_SIGNATURE_CHARS]


def envelope_sender(settings: Settings, key: bytes, message_id: str) -> str:
    """The MAIL FROM of the email with this Message-ID."""
    organisation = settings.organisation
    found = _MESSAGE_HEX.match(message_id)
    if not settings.outbound.verp or found is None:
        return organisation.address
    hex_id = found.group(1).lower()
    local = f"{organisation.local_part}{organisation.reply_separator}{TAG}-{hex_id}"
    local += f"-{_signature(key, hex_id)}"
    if len(local) > _LOCAL_PART_MAX:
        return organisation.address
    return f"{local}@{organisation.domain}"


@lru_cache(maxsize=8)
def _tagged(local_part: str, separator: str, domain: str) -> re.Pattern[bytes]:
    return re.compile(
        rf"(?<![\w.+=-]){re.escape(local_part)}{re.escape(separator)}{TAG}-([0-9a-f]{{32}})"
        rf"-([a-z2-7]{{{_SIGNATURE_CHARS}}})@{re.escape(domain)}(?![\w.-])".encode(),
        re.IGNORECASE,
    )


def _header_block(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    return raw if end < 0 else raw[:end]


def addressed_to_bounce_address(raw: bytes, settings: Settings) -> bool:
    """Whether the message came to one of our VERP addresses (signed or not): only machines
    write there, so it is never a person's mail."""
    organisation = settings.organisation
    pattern = _tagged(organisation.local_part, organisation.reply_separator, organisation.domain)
    return pattern.search(_header_block(raw)) is not None


def bounced_message_ids(raw: bytes, settings: Settings, key: bytes) -> list[str]:
    """The Message-IDs of our emails whose signed VERP address this message came to."""
    organisation = settings.organisation
    pattern = _tagged(organisation.local_part, organisation.reply_separator, organisation.domain)
    found = set()
    for match in pattern.finditer(_header_block(raw)):
        hex_id, signature = match.group(1).decode().lower(), match.group(2).decode().lower()
        if hmac.compare_digest(_signature(key, hex_id), signature):
            found.add(f"<intake.{hex_id}@{organisation.domain}>")
    return sorted(found)
