"""Render a template and queue the email as an outbox row, inside the caller's transaction.

Templates are Jinja2 files in the templates directory, one per TemplateName, each with a
`subject` block, a `text` block and optionally an `html` block. Undefined variables are errors.
Inbound values only ever arrive as template variables, never as template source, and every value
that reaches a header passes through `header_text`, so inbound mail cannot inject headers.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from intake.engine.verp import envelope_sender
from intake.mail.mime import OutboundAttachment, serialise
from intake.mail.sanitize import header_text
from intake.settings.schema import Settings
from intake.settings.secrets import signing_key
from intake.settings.templates import TemplateName
from intake.store.models import InboundMessage, OutboundMessage, Party, Ticket

# Printable ASCII only: an address we cannot put on an SMTP command line is not answered.
_ADDRESS = re.compile(r"^[!#-'*+\-./-9=?A-Z^-~]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")


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
class Answering:
    """What an email answers: the stored message it replies to (linked on the outbound row), its
    Message-ID and the References before it, so the recipient's mail program shows one thread."""

    inbound: InboundMessage | None = None
    message_id: str | None = None
    references: tuple[str, ...] = ()


NOTHING = Answering()


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


def render(directory: Path, name: TemplateName, context: dict[str, Any]) -> Rendered:
    template = _environment(directory).get_template(name.file_name)
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


@lru_cache(maxsize=8)
def _ours(domain: str) -> re.Pattern[str]:
    """The shape of the Message-IDs new_message_id makes for this domain."""
    return re.compile(rf"<intake\.[^@<>\s]+@{re.escape(domain)}>", re.IGNORECASE)


def is_our_message_id(message_id: str, settings: Settings) -> bool:
    return bool(_ours(settings.organisation.domain).fullmatch(message_id))


def our_message_ids_in(raw: bytes, settings: Settings) -> list[str]:
    """Our Message-IDs quoted anywhere in a message (a bounce quotes the mail it returns)."""
    text = raw.decode("ascii", "replace")
    return sorted(set(_ours(settings.organisation.domain).findall(text)))


def _message_ids(values: tuple[str, ...]) -> list[str]:
    """Message-IDs from inbound mail that are safe to repeat in our headers."""
    return [value for value in values if value.isascii() and len(value) <= 250]


def build_message(
    settings: Settings,
    *,
    to: list[Recipient],
    rendered: Rendered,
    message_id: str,
    answering: Answering,
    auto_submitted: str | None,
    reply_to: str | None = None,
    attachments: tuple[OutboundAttachment, ...] = (),
) -> bytes:
    """The email's bytes. Every header value is ours, or passed header_text and RFC 2047."""
    organisation = settings.organisation
    headers = [
        ("From", Recipient(organisation.address, organisation.display_name).header()),
        ("To", ", ".join(recipient.header() for recipient in to)),
        ("Subject", rendered.subject),
        ("Date", format_datetime(datetime.now(UTC), usegmt=True)),
        ("Message-ID", message_id),
    ]
    if reply_to:
        headers.append(("Reply-To", Recipient(reply_to, organisation.display_name).header()))
    answered = _message_ids((answering.message_id,) if answering.message_id else ())
    if answered:
        headers.append(("In-Reply-To", answered[0]))
        chain = [*_message_ids(answering.references)[-10:], answered[0]]
        headers.append(("References", "\n ".join(chain)))  # folded: one ID per line
    if auto_submitted:
        headers.append(("Auto-Submitted", auto_submitted))
        headers.append(("X-Auto-Response-Suppress", "All"))
    return serialise(headers, rendered.text, rendered.html, attachments)


async def queue_email(
    settings: Settings,
    *,
    template: TemplateName,
    to: list[Recipient],
    context: dict[str, Any],
    ticket: Ticket | None = None,
    answering: Answering = NOTHING,
    auto_submitted: str | None = "auto-replied",
    reply_to: str | None = None,
    party: Party | None = None,
    attachments: tuple[OutboundAttachment, ...] = (),
) -> OutboundMessage:
    """Render and store one outbound email; the delivery job sends it later."""
    rendered = render(settings.paths.templates, template, context)
    message_id = new_message_id(settings)
    message = build_message(
        settings,
        to=to,
        rendered=rendered,
        message_id=message_id,
        answering=answering,
        auto_submitted=auto_submitted,
        reply_to=reply_to,
        attachments=attachments,
    )
    return await OutboundMessage.create(
        kind=template,
        sender=envelope_sender(settings, signing_key(settings), message_id),
        recipients=[recipient.email for recipient in to],
        message_id=message_id,
        subject=rendered.subject,
        raw_bytes=message,
        ticket=ticket,
        in_reply_to=answering.inbound,
        party=party,
    )
