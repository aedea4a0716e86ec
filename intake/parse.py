"""Raw bytes -> frozen ParsedMessage, with mail-parser underneath.

Nothing here raises on bad mail: defects are recorded and parsing goes on with what could be read.
mail-parser silently drops raw 8-bit bytes in headers (`Subject: caf\\xe9` becomes `caf`), so
headers are also read from the raw header block and preferred where mail-parser lost bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header, make_header
from email.utils import getaddresses, parsedate_to_datetime

import html2text
import mailparser

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class Address:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    payload: bytes


@dataclass(frozen=True)
class ParsedMessage:
    from_: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    date: datetime | None
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str
    attachments: tuple[ParsedAttachment, ...]
    headers: tuple[tuple[str, str], ...]
    content_type: str
    defects: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None

    @property
    def sender(self) -> Address | None:
        """Who a reply goes to: the first Reply-To, else From."""
        return self.reply_to[0] if self.reply_to else self.from_


def _decode_bytes(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("cp1252", errors="replace")


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words -> text; malformed ones are left as written."""
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeDecodeError, binascii.Error):
        return value


def raw_headers(raw: bytes) -> tuple[tuple[str, str], ...]:
    """The header block read straight from the bytes: unfolded, 8-bit bytes kept, words decoded."""
    end = _HEADER_END.search(raw)
    block = raw[: end.start()] if end else raw
    headers: list[tuple[str, str]] = []
    for line in _FOLD.sub(b"", block).splitlines():
        name, sep, value = line.partition(b":")
        if not sep or not name or name[:1] in b" \t" or b" " in name.strip():
            continue
        text = _decode_bytes(value.strip())
        headers.append((name.strip().decode("ascii", "replace"), _decode_words(text)))
    return tuple(headers)


def _addresses(values: list[str]) -> tuple[Address, ...]:
    found = []
    for name, email in getaddresses(values):
        email = email.strip().lower()
        if "@" in email:
            found.append(Address(name=name.strip(), email=email))
    return tuple(found)


def _msgids(value: str | None) -> tuple[str, ...]:
    return tuple(_MSGID.findall(value or ""))


def _header_values(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    lowered = name.lower()
    return [value for key, value in headers if key.lower() == lowered]


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else None


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.unicode_snob = True
    return str(converter.handle(html)).strip()


def _attachments(mail: mailparser.MailParser) -> tuple[ParsedAttachment, ...]:
    found = []
    for item in mail.attachments:
        payload = item.get("payload") or ""
        if item.get("binary"):
            try:
                data = base64.b64decode(payload)
            except (binascii.Error, ValueError):
                data = payload.encode("utf-8", "surrogateescape")
        else:
            data = payload.encode("utf-8", "surrogateescape")
        found.append(
            ParsedAttachment(
                filename=str(item.get("filename") or "attachment"),
                content_type=str(item.get("mail_content_type") or "application/octet-stream"),
                payload=data,
            )
        )
    return tuple(found)


def parse_message(raw: bytes) -> ParsedMessage:
    headers = raw_headers(raw)
    defects: list[str] = []
    try:
        mail = mailparser.parse_from_bytes(raw)
    except Exception as exc:  # mail-parser raises many types on hostile input
        mail = None
        defects.append(f"unparseable MIME: {type(exc).__name__}: {exc}")

    text, html, attachments, content_type = "", "", (), "text/plain"
    if mail is not None:
        text = "\n".join(part for part in mail.text_plain if part).strip()
        html = "\n".join(part for part in mail.text_html if part).strip()
        if not text and html:
            text = html_to_text(html)
        attachments = _attachments(mail)
        content_type = mail.message.get_content_type()
        defects.extend(_defect_names(mail))

    def first(name: str) -> str | None:
        values = _header_values(headers, name)
        return values[0] if values else None

    from_ = _addresses(_header_values(headers, "From"))
    return ParsedMessage(
        from_=from_[0] if from_ else None,
        reply_to=_addresses(_header_values(headers, "Reply-To")),
        to=_addresses(_header_values(headers, "To")),
        cc=_addresses(_header_values(headers, "Cc")),
        subject=(first("Subject") or "").strip(),
        date=_date(first("Date")),
        message_id=next(iter(_msgids(first("Message-ID"))), None),
        in_reply_to=_msgids(first("In-Reply-To")),
        references=_msgids(" ".join(_header_values(headers, "References"))),
        text=text,
        html=html,
        attachments=attachments,
        headers=headers,
        content_type=content_type,
        defects=tuple(defects),
    )


def _defect_names(mail: mailparser.MailParser) -> list[str]:
    names = []
    for defect in getattr(mail, "defects_categories", None) or []:
        names.append(str(defect))
    return names
