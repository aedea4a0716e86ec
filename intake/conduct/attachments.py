"""What a case keeps of a message's attachments, within `[limits]`."""

from __future__ import annotations

from dataclasses import dataclass

from intake.mail.mime import OutboundAttachment
from intake.mail.parse import ParsedMessage
from intake.mail.sanitize import db_text, display_filename, header_text, human_size
from intake.settings.schema import Settings
from intake.store.blobs import store_blob
from intake.store.models import (
    Attachment,
    EventKind,
    InboundMessage,
    Ticket,
    TicketEvent,
)


@dataclass(frozen=True)
class AttachmentRow:
    """One attachment of a message as the emails to the team list it."""

    name: str
    type: str
    size: str  # for people: "1.2 MB"
    dropped: str = ""  # why the case did not keep it, when it did not


def _over_limit(settings: Settings, index: int, size: int) -> str | None:
    limits = settings.limits
    if index >= limits.max_attachments:
        return f"more than {limits.max_attachments} attachments"
    if size > limits.max_attachment_bytes:
        return f"larger than {limits.max_attachment_mb:g} MB"
    return None


def kept_attachments(settings: Settings, message: ParsedMessage) -> tuple[OutboundAttachment, ...]:
    """The message's attachments that the limits let a case keep, ready to send on. Inline
    images (signature logos, mostly) stay behind: they would say who wrote."""
    return tuple(
        OutboundAttachment(
            display_filename(a.filename), header_text(a.content_type, 255), a.payload
        )
        for index, a in enumerate(message.attachments)
        if _over_limit(settings, index, len(a.payload)) is None and not a.inline
    )


async def store_attachments(
    settings: Settings,
    message: ParsedMessage,
    inbound: InboundMessage,
    ticket: Ticket,
    event: TicketEvent,
) -> list[AttachmentRow]:
    """Store the attachments the limits allow; note each one left out on the case. The raw
    message, with every attachment, stays stored either way. Returns them as template rows."""
    listed = []
    for index, attachment in enumerate(message.attachments):
        name = display_filename(attachment.filename)
        size = len(attachment.payload)
        dropped = _over_limit(settings, index, size)
        listed.append(AttachmentRow(name, attachment.content_type, human_size(size), dropped or ""))
        if dropped:
            await TicketEvent.create(
                ticket=ticket,
                kind=EventKind.NOTE,
                author=settings.organisation.address,
                body=f"Attachment {name} ({human_size(size)}) not kept: {dropped}."
                f" The original message is stored whole (inbound {inbound.id}).",
                internal=True,
            )
            continue
        digest = store_blob(settings.data_dir, attachment.payload)
        await Attachment.create(
            ticket=ticket,
            event=event,
            filename=db_text(attachment.filename, 1000),
            content_type=header_text(attachment.content_type, 255),
            size=size,
            sha256=digest,
        )
    return listed
