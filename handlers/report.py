"""A new report: open a confidential case, assign the member on duty, acknowledge the sender.

Everything here runs inside the pipeline's transaction: the ticket, its first thread entry, its
attachments, the acknowledgement and the assignment notice commit together or not at all.
"""

from __future__ import annotations

from typing import Any

from handlers.base import HandlerContext, HandlerResult
from intake.blobs import store_blob
from intake.config import parse_duration
from intake.models import (
    Attachment,
    EventKind,
    Outcome,
    TeamMember,
    Ticket,
    TicketEvent,
)
from intake.outbox.compose import Recipient, queue_email, valid_address
from intake.roster import shift_at
from intake.sanitize import display_filename, header_text, human_duration, human_size
from intake.tickets import next_reference

REPORT = "report"


def _organisation_context(context: HandlerContext) -> dict[str, Any]:
    organisation = context.settings.organisation
    return {
        "name": organisation.name,
        "display_name": organisation.display_name,
        "address": organisation.address,
        "emergency_notice": organisation.emergency_notice,
        "outside_contact": organisation.outside_contact,
        "outside_contact_name": organisation.outside_contact_name,
    }


async def _store_attachments(
    context: HandlerContext, ticket: Ticket, event: TicketEvent
) -> list[dict[str, Any]]:
    listed = []
    for attachment in context.message.attachments:
        digest = store_blob(context.settings.data_dir, attachment.payload)
        name = display_filename(attachment.filename)
        await Attachment.create(
            ticket=ticket,
            event=event,
            filename=attachment.filename,
            content_type=header_text(attachment.content_type, 255),
            size=len(attachment.payload),
            sha256=digest,
        )
        listed.append(
            {
                "name": name,
                "type": attachment.content_type,
                "size": human_size(len(attachment.payload)),
            }
        )
    return listed


async def _send(
    context: HandlerContext,
    ticket: Ticket,
    kind: str,
    to: Recipient,
    variables: dict[str, Any],
    *,
    internal: bool,
    **queue_options: Any,
) -> None:
    """Queue one email about this case and record it in the case's thread."""
    outbound = await queue_email(
        context.settings,
        kind=kind,
        to=[to],
        context={"organisation": _organisation_context(context), "ref": ticket.ref, **variables},
        ticket=ticket,
        **queue_options,
    )
    await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.OUTBOUND,
        author=context.settings.organisation.address,
        body=f"{kind.capitalize()} sent to {to.email}",
        internal=internal,
        outbound=outbound,
    )


async def handle_report(context: HandlerContext) -> HandlerResult:
    settings, message = context.settings, context.message
    reporter = message.from_
    shift = shift_at(settings, context.now)
    assignee = await TeamMember.get(email=shift.member.email)
    answer_to = message.sender
    acknowledged = answer_to is not None and valid_address(answer_to.email)
    ticket = await Ticket.create(
        ref=await next_reference(settings.organisation.ticket_prefix, context.now),
        kind=REPORT,
        subject=message.subject,
        reporter_email=reporter.email if reporter else "",
        reporter_name=reporter.name if reporter else "",
        assignee=assignee,
        acknowledged_at=context.now if acknowledged else None,
    )
    event = await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.INBOUND,
        author=reporter.email if reporter else "(no sender)",
        body=message.text,
        inbound=context.inbound,
    )
    attachments = await _store_attachments(context, ticket, event)

    if acknowledged and answer_to is not None:
        await _send(
            context,
            ticket,
            "acknowledgement",
            Recipient(answer_to.email, answer_to.name),
            {
                "reporter_name": header_text(reporter.name if reporter else ""),
                "readers": [assignee.name],
                "next_contact": human_duration(parse_duration(settings.deadlines.first_response)),
            },
            internal=False,
            answering=context.inbound,
            answering_message_id=message.message_id,
            references=message.references,
        )

    await _send(
        context,
        ticket,
        "assignment",
        Recipient(assignee.email, assignee.name),
        {
            "assignee_name": assignee.name,
            "reporter": str(reporter) if reporter else "(no sender address)",
            "subject": message.subject,
            "received": context.now.strftime("%Y-%m-%d %H:%M UTC"),
            "text": message.text,
            "attachments": attachments,
            "acknowledged": acknowledged,
            "defects": list(message.defects),
        },
        internal=True,
        auto_submitted="auto-generated",
    )
    reason = f"{context.verdict.reason}; assigned to {assignee.email}"
    if not acknowledged:
        reason += "; not acknowledged: no usable sender address"
    return HandlerResult(outcome=Outcome.TICKET_CREATED, reason=reason, ticket=ticket)
