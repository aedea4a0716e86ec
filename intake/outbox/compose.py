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
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime
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
        local, domain = self.email.rsplit("@", 1)
        return str(
            HeaderAddress(display_name=header_text(self.name), username=local, domain=domain)
        )


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


def build_message(
    settings: Settings,
    *,
    to: list[Recipient],
    rendered: Rendered,
    message_id: str,
    answering_message_id: str | None,
    references: tuple[str, ...],
    auto_submitted: str | None,
) -> EmailMessage:
    organisation = settings.organisation
    message = EmailMessage()
    sender = Recipient(organisation.address, organisation.display_name)
    message["From"] = sender.header()
    message["To"] = ", ".join(recipient.header() for recipient in to)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(datetime.now(UTC), usegmt=True)
    message["Message-ID"] = message_id
    if answering_message_id:
        message["In-Reply-To"] = answering_message_id
        message["References"] = " ".join([*references[-10:], answering_message_id])
    if auto_submitted:
        message["Auto-Submitted"] = auto_submitted
        message["X-Auto-Response-Suppress"] = "All"
    message.set_content(rendered.text)
    if rendered.html:
        message.add_alternative(rendered.html, subtype="html")
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
