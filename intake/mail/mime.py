"""Serialise our own outbound emails straight to bytes.

The stdlib's Message and Generator cost about a millisecond per email (a tenth of all the work
per report), because they are general. What we send is narrow: headers we wrote ourselves, all
ASCII once RFC 2047-encoded, and one text body with an optional HTML alternative. So this writes
those bytes directly; tests parse the result with the stdlib to prove it is well formed.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from email.header import Header
from email.utils import encode_rfc2231

MAX_7BIT_LINE = 900
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _fits_7bit(text: str) -> bool:
    """ASCII, no control characters but tab and newline, and short lines (RFC 5322, 2045)."""
    return (
        text.isascii()
        and not _CONTROLS.search(text)
        and all(len(line) <= MAX_7BIT_LINE for line in text.split("\n"))
    )


def _body(text: str, subtype: str) -> tuple[list[str], bytes]:
    """Headers and body of one text part: 7bit when it can be, else UTF-8 in base64."""
    if _fits_7bit(text):
        headers = [
            f'Content-Type: text/{subtype}; charset="us-ascii"',
            "Content-Transfer-Encoding: 7bit",
        ]
        return headers, text.encode("ascii")
    headers = [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: base64",
    ]
    return headers, base64.encodebytes(text.encode("utf-8"))


def _header_value(value: str) -> str:
    """Non-ASCII text as RFC 2047 encoded words; address headers arrive already encoded."""
    return value if value.isascii() else Header(value, "utf-8").encode()


@dataclass(frozen=True)
class OutboundAttachment:
    filename: str  # already made safe to show (sanitize.display_filename)
    content_type: str  # type/subtype, from inbound mail: checked here
    payload: bytes


_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def _attachment_part(attachment: OutboundAttachment, boundary: str) -> bytes:
    content_type = attachment.content_type.lower()
    if not _CONTENT_TYPE.match(content_type):
        content_type = "application/octet-stream"
    name = encode_rfc2231(attachment.filename, "utf-8")
    headers = [
        f"--{boundary}",
        f"Content-Type: {content_type}",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: attachment; filename*={name}",
    ]
    return ("\n".join(headers) + "\n\n").encode("ascii") + base64.encodebytes(attachment.payload)


def _content(text: str, html: str | None) -> tuple[list[str], bytes]:
    """The content headers and body of the text, or of text and HTML as alternatives."""
    if html is None:
        return _body(text, "plain")
    boundary = f"=_intake_{uuid.uuid4().hex}"
    out = []
    for content, subtype in ((text, "plain"), (html, "html")):
        part_headers, body = _body(content, subtype)
        out.append(f"--{boundary}\n".encode("ascii"))
        out.append(("\n".join(part_headers) + "\n\n").encode("ascii"))
        out.append(body + b"\n")  # the line break before a boundary belongs to the boundary
    out.append(f"--{boundary}--\n".encode("ascii"))
    return [f'Content-Type: multipart/alternative; boundary="{boundary}"'], b"".join(out)


def serialise(
    headers: list[tuple[str, str]],
    text: str,
    html: str | None,
    attachments: tuple[OutboundAttachment, ...] = (),
) -> bytes:
    """The whole message. Header values must be free of line breaks (header_text sees to that);
    non-ASCII ones are encoded here as unstructured text. With attachments, the content (text,
    or text and HTML) is the first part of a multipart/mixed message."""
    lines = [f"{name}: {_header_value(value)}" for name, value in headers]
    lines.append("MIME-Version: 1.0")
    content_headers, body = _content(text, html)
    if not attachments:
        return ("\n".join(lines + content_headers) + "\n\n").encode("ascii") + body
    boundary = f"=_intake_mixed_{uuid.uuid4().hex}"
    lines.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
    out = [
        ("\n".join(lines) + "\n\n").encode("ascii"),
        f"--{boundary}\n".encode("ascii"),
        ("\n".join(content_headers) + "\n\n").encode("ascii"),
        body + b"\n",
    ]
    out += [_attachment_part(a, boundary) + b"\n" for a in attachments]
    out.append(f"--{boundary}--\n".encode("ascii"))
    return b"".join(out)
