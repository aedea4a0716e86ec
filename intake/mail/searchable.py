"""A stored message as its reader would see it, for searching: every header with its encoded
words decoded, every text part with its transfer encoding (base64, quoted-printable) undone and
HTML entities read, and attached messages read the same way.

A search of the raw bytes misses an address written inside a base64 body, which is how
Intake's own notices carry a report that is not plain ASCII; erasure must find it there. The
mail is anyone's, so nothing in it may make the search fail: a part that cannot be read is
searched as its bytes, and so is a message the parser cannot take at all.
"""

from __future__ import annotations

import binascii
import email
import email.policy
import html
import quopri
import re
from email.message import Message
from email.utils import collapse_rfc2231_value

from intake.mail.headers import decode_words, lenient_b64decode, raw_headers

# A message whose bytes name none of these has nothing encoded: its bytes are its text.
_ENCODED = re.compile(rb"base64|quoted-printable|=\?|&#|&[a-z]+;|\*=", re.IGNORECASE)
MAX_DEPTH = 50  # parts within parts, read this deep


def _transfer_encoding(part: Message) -> str:
    value = str(part.get("Content-Transfer-Encoding", ""))
    return value.split(";", 1)[0].strip().strip('"').lower()


def _undone(data: bytes, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return lenient_b64decode(data)
        if encoding == "quoted-printable":
            return quopri.decodestring(data)
    except (binascii.Error, ValueError):
        pass
    return data


def _payload(part: Message) -> bytes:
    raw = part.get_payload(decode=False)
    data = raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""
    return _undone(data, _transfer_encoding(part))


def _encoded_attachment(part: Message) -> bytes:
    """An attached message sent with a transfer encoding (RFC 2046 forbids it; real mail does
    it): the parser read the encoded text as a message of its own, so undo the encoding of
    that text."""
    inner = part.get_payload()
    first = inner[0] if isinstance(inner, list) and inner else inner
    text = first.as_string() if isinstance(first, Message) else str(first)
    return _undone(text.encode("ascii", "surrogateescape"), _transfer_encoding(part))


def _decoded(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except (LookupError, UnicodeError):  # unknown, or a codec that refuses "replace" (idna)
        return data.decode("utf-8", errors="replace")


def _headers(part: Message) -> list[str]:
    texts = []
    for name, value in part.items():
        texts.append(f"{name}: {decode_words(str(value))}")
    for _, value in part.get_params(failobj=[]) + part.get_params(
        failobj=[], header="content-disposition"
    ):
        if value:
            texts.append(str(collapse_rfc2231_value(value)))
    return texts


def _texts(part: Message, depth: int) -> list[str]:
    """The texts of this part and of every part within it."""
    maintype = part.get_content_maintype()
    if maintype == "message" and _transfer_encoding(part) in ("base64", "quoted-printable"):
        return _message_texts(_encoded_attachment(part), depth + 1) if depth < MAX_DEPTH else []
    if part.is_multipart():
        texts: list[str] = []
        for inner in part.get_payload():
            if isinstance(inner, Message) and depth < MAX_DEPTH:
                texts += _headers(inner) + _texts(inner, depth + 1)
        return texts
    if maintype != "text":
        return []
    text = _decoded(_payload(part), part.get_content_charset())
    return [html.unescape(text) if part.get_content_subtype() == "html" else text]


def _message_texts(raw: bytes, depth: int) -> list[str]:
    texts = [f"{name}: {value}" for name, value in raw_headers(raw)]
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        return texts + _texts(message, depth)
    except Exception:  # RecursionError on deep nesting, and whatever else hostile mail finds
        return [*texts, raw.decode("utf-8", errors="replace")]


def searchable_text(raw: bytes) -> str | None:
    """The decoded headers and text parts of `raw`; None when nothing in it is encoded (search
    the bytes themselves then)."""
    if _ENCODED.search(raw) is None:
        return None
    return "\n".join(_message_texts(raw, 0))
