"""Raw bytes -> frozen ParsedMessage, with mail-parser underneath for the body.

Nothing here raises on bad mail: defects are recorded and parsing goes on with what could be read.
The headers are read from the raw header block (intake.mail.headers), with their 8-bit bytes kept.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, fields
from email.message import Message

import html2text
import mailparser

from intake.mail.headers import Headers, lenient_b64decode, read_headers


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    payload: bytes
    # Shown inside the HTML (a Content-ID, or disposition inline): a signature logo, usually.
    inline: bool = False


@dataclass(frozen=True, kw_only=True)
class ParsedMessage(Headers):
    """A message as Intake reads it: its headers, and its body as text, HTML and attachments."""

    text: str
    html: str
    attachments: tuple[ParsedAttachment, ...]
    content_type: str
    defects: tuple[str, ...] = field(default=())
    # The message had no text part: `text` is its HTML converted (html2text).
    text_from_html: bool = False


@dataclass(frozen=True)
class _Body:
    text: str = ""
    html: str = ""
    attachments: tuple[ParsedAttachment, ...] = ()
    content_type: str = ""
    defects: tuple[str, ...] = ()
    text_from_html: bool = False


# --- bodies and attachments -------------------------------------------------------------------


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.unicode_snob = True
    return str(converter.handle(html)).strip()


def _attachment_bytes(item: dict[str, object]) -> bytes:
    payload = item.get("payload") or ""
    if isinstance(payload, bytes):
        return payload
    text = str(payload)
    if not item.get("binary"):
        return text.encode("utf-8", "surrogateescape")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return lenient_b64decode(text.encode("ascii", "ignore"))


def _attachments(mail: mailparser.MailParser) -> tuple[ParsedAttachment, ...]:
    return tuple(
        ParsedAttachment(
            filename=str(item.get("filename") or "attachment"),
            content_type=str(item.get("mail_content_type") or "application/octet-stream"),
            payload=_attachment_bytes(item),
            inline=bool(item.get("content-id"))
            or str(item.get("content-disposition") or "").lower().startswith("inline"),
        )
        for item in mail.attachments
    )


def _defect_names(mail: mailparser.MailParser) -> tuple[str, ...]:
    return tuple(sorted(str(name) for name in getattr(mail, "defects_categories", None) or ()))


def _body(raw: bytes) -> _Body:
    """Text, HTML, attachments and defects; any failure becomes a defect, never an exception."""
    try:
        mail = mailparser.parse_from_bytes(raw)
        text = "\n".join(part for part in mail.text_plain if part).strip()
        html = "\n".join(part for part in mail.text_html if part).strip()
        message: Message = mail.message
        return _Body(
            text=text or (html_to_text(html) if html else ""),
            text_from_html=not text and bool(html),
            html=html,
            attachments=_attachments(mail),
            content_type=message.get_content_type(),
            defects=_defect_names(mail),
        )
    except Exception as exc:  # mail-parser and html2text raise many types on hostile input
        return _Body(defects=(f"unparseable MIME: {type(exc).__name__}: {exc}",))


def _declared_type(value: str | None) -> str:
    kind = (value or "").split(";", 1)[0].strip().lower()
    return kind if "/" in kind else "text/plain"


def parse_message(raw: bytes) -> ParsedMessage:
    """Never raises: mail no rule here foresaw still yields a message, empty but for a defect
    naming what went wrong, and so still becomes a case a person can look at."""
    try:
        return _parse(raw)
    except Exception as exc:  # hostile input must not stop the pipeline
        return ParsedMessage(
            from_=None,
            reply_to=(),
            to=(),
            cc=(),
            subject="",
            date=None,
            message_id=None,
            in_reply_to=(),
            references=(),
            text="",
            html="",
            attachments=(),
            headers=(),
            content_type="text/plain",
            defects=(f"unparseable: {type(exc).__name__}: {exc}"[:300],),
        )


def parse_headers_only(raw: bytes, note: str) -> ParsedMessage:
    """For a message too large to read whole: its headers, and `note` in place of its body."""
    end = re.search(rb"\r?\n\r?\n", raw[:1_000_000])
    head = raw[: end.start()] if end else raw[:1_000_000]
    head = re.sub(rb"(?im)^content-(type|transfer-encoding):", rb"X-Original-Content-\1:", head)
    return parse_message(head + b"\n\n" + note.encode("utf-8"))


def _parse(raw: bytes) -> ParsedMessage:
    head = read_headers(raw)
    body = _body(raw)
    return ParsedMessage(
        **{name.name: getattr(head, name.name) for name in fields(Headers)},
        text=body.text,
        text_from_html=body.text_from_html,
        html=body.html,
        attachments=body.attachments,
        content_type=body.content_type or _declared_type(head.declared_type),
        defects=body.defects,
    )

