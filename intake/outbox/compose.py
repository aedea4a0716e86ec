"""Render a template and queue the email as an outbox row, inside the caller's transaction.

Templates are Jinja2 files in the templates directory, one per outbound kind, each with a
`subject` block, a `text` block and optionally an `html` block. Undefined variables are errors.
Inbound values only ever arrive as template variables, never as template source, and every value
that reaches a header passes through `header_text`, so inbound mail cannot inject headers.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from intake.config import Settings
from intake.models import InboundMessage, OutboundMessage, Ticket
from intake.sanitize import header_text

_ADDRESS = re.compile(r"^[^@\s<>()\[\]\\,;:\"]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")


def valid_address(address: str) -> bool:
    return bool(_ADDRESS.match(address)) and len(address) <= 254


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""

    def header(self) -> str:
        """`Name <address>`, the name quoted or RFC 2047-encoded as needed."""
        return formataddr((header_text(self.name), self.email), charset="utf-8")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


@lru_cache(maxsize=8)
def _environment(directory: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(directory)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=(), default_for_string=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(directory: Path, kind: str, context: dict[str, Any]) -> Rendered:
    template = _environment(directory).get_template(f"{kind}.j2")
    bound = template.new_context(context)

    def block(name: str) -> str:
        return "".join(template.blocks[name](bound))

    html = block("html").strip() if "html" in template.blocks else None
    return Rendered(
        subject=header_text(block("subject"), limit=300),
        text=block("text").strip() + "\n",
        html=html or None,
    )


def new_message_id(settings: Settings) -> str:
    return f"<intake.{uuid.uuid4().hex}@{settings.organisation.domain}>"


def _encoded(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def _text_part(text: str, subtype: str) -> MIMEText:
    """7bit when it can be, else UTF-8 in base64 (encoded in C, unlike quoted-printable)."""
    if text.isascii() and all(len(line) <= 900 for line in text.splitlines()):
        return MIMEText(text, subtype, "us-ascii")
    return MIMEText(text, subtype, "utf-8")


def build_message(
    settings: Settings,
    *,
    to: list[Recipient],
    rendered: Rendered,
    message_id: str,
    answering_message_id: str | None,
    references: tuple[str, ...],
    auto_submitted: str | None,
) -> Message:
    """The email as bytes-ready compat32 message: much cheaper to build than EmailMessage, which
    re-parses every header it is given. Every header value here is ours or passed header_text."""
    organisation = settings.organisation
    message: Message
    if rendered.html:
        message = MIMEMultipart("alternative")
        message.attach(_text_part(rendered.text, "plain"))
        message.attach(_text_part(rendered.html, "html"))
    else:
        message = _text_part(rendered.text, "plain")
    message["From"] = Recipient(organisation.address, organisation.display_name).header()
    message["To"] = ", ".join(recipient.header() for recipient in to)
    message["Subject"] = _encoded(rendered.subject)
    message["Date"] = format_datetime(datetime.now(UTC), usegmt=True)
    message["Message-ID"] = message_id
    if answering_message_id:
        message["In-Reply-To"] = answering_message_id
        message["References"] = " ".join([*references[-10:], answering_message_id])
    if auto_submitted:
        message["Auto-Submitted"] = auto_submitted
        message["X-Auto-Response-Suppress"] = "All"
    return message


async def queue_email(
    settings: Settings,
    *,
    kind: str,
    to: list[Recipient],
    context: dict[str, Any],
    ticket: Ticket | None = None,
    answering: InboundMessage | None = None,
    answering_message_id: str | None = None,
    references: tuple[str, ...] = (),
    auto_submitted: str | None = "auto-replied",
) -> OutboundMessage:
    """Render and store one outbound email; the delivery job sends it later."""
    rendered = render(settings.paths.templates, kind, context)
    message_id = new_message_id(settings)
    message = build_message(
        settings,
        to=to,
        rendered=rendered,
        message_id=message_id,
        answering_message_id=answering_message_id,
        references=references,
        auto_submitted=auto_submitted,
    )
    return await OutboundMessage.create(
        kind=kind,
        sender=settings.organisation.address,
        recipients=[recipient.email for recipient in to],
        message_id=message_id,
        subject=rendered.subject,
        raw_bytes=message.as_bytes(),
        ticket=ticket,
        in_reply_to=answering,
    )
