"""A stored message as its reader would see it, for searching: the headers with encoded words
decoded, and every text part with its transfer encoding (base64, quoted-printable) undone.

A search of the raw bytes misses an address written inside a base64 body, which is how
Intake's own notices carry a report that is not plain ASCII; erasure must find it there.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message

from intake.mail.headers import raw_headers

# A message whose bytes name none of these has nothing encoded: its bytes are its text.
_ENCODED = re.compile(rb"base64|quoted-printable|=\?", re.IGNORECASE)


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", errors="replace")


def searchable_text(raw: bytes) -> str | None:
    """The decoded headers and text parts of `raw`; None when nothing in it is encoded (search
    the bytes themselves then)."""
    if _ENCODED.search(raw) is None:
        return None
    texts = [f"{name}: {value}" for name, value in raw_headers(raw)]
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in message.walk():
        if part.get_content_maintype() == "text":
            texts.append(_text_of(part))
    return "\n".join(texts)
