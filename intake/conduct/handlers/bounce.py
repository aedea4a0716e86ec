"""A bounce (delivery status notification): never answered; when it reports on an email of ours,
that email is marked bounced with the status and reason, and the case gets an internal note.

Our emails are found by their Message-ID (`<intake.HEX@our-domain>`), which a DSN quotes in its
returned headers or message. Bounces of mail that is not ours are recorded and ignored.
"""

from __future__ import annotations

import re

from intake.engine.compose import our_message_ids_in
from intake.engine.contract import HandlerContext, HandlerResult
from intake.mail.sanitize import db_text, header_text
from intake.store.models import (
    EventKind,
    InboundMessage,
    OutboundMessage,
    OutboundState,
    Outcome,
    TicketEvent,
)

_STATUS = re.compile(rb"(?im)^Status:[ \t]*([245]\.\d{1,3}\.\d{1,3})")
_DIAGNOSTIC = re.compile(rb"(?im)^Diagnostic-Code:[ \t]*([^\r\n]+)")


async def handle_bounce(context: HandlerContext) -> HandlerResult:
    reason = context.verdict.reason
    raw = await InboundMessage.get(id=context.inbound.id).values_list("raw_bytes", flat=True)
    assert isinstance(raw, bytes)
    ids = our_message_ids_in(raw, context.settings)
    bounced = await OutboundMessage.filter(message_id__in=ids).prefetch_related("ticket")
    if not bounced:
        return HandlerResult(outcome=Outcome.IGNORED_BOUNCE, reason=reason)
    status_match = _STATUS.search(raw)
    status = status_match.group(1).decode("ascii") if status_match else "5.0.0"
    diagnostic = _DIAGNOSTIC.search(raw)
    detail = header_text(diagnostic.group(1).decode("utf-8", "replace"), 300) if diagnostic else ""
    permanent = status.startswith("5")
    for row in bounced:
        summary = f"{status} {detail}".strip()
        if permanent:
            row.state = OutboundState.BOUNCED
            row.last_error = db_text(f"bounced: {summary}")
            await row.save(update_fields=["state", "last_error"])
        if row.ticket is not None:
            what = "could not be delivered" if permanent else "is delayed"
            await TicketEvent.create(
                ticket=row.ticket,
                kind=EventKind.NOTE,
                author=context.settings.organisation.address,
                body=f"The {row.kind} to {', '.join(row.recipients)} {what}: {summary}",
                internal=True,
                inbound=context.inbound,
            )
    refs = ", ".join(f"outbound {row.id}" for row in bounced)
    kind = "bounce" if permanent else "delay notice"
    return HandlerResult(
        outcome=Outcome.IGNORED_BOUNCE,
        reason=f"{reason}; {kind} of {refs}: {status} {detail}".strip(),
        ticket=bounced[0].ticket,
    )
