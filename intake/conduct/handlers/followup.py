"""A reply from a party to a case (the reporter, a witness, the reported person, the outside
contact).

It joins the case's thread with its attachments, quoted history stripped; the team on the case is
told with the new text. Nothing goes back to the sender, so a careless autoresponder that gets
this far still cannot start a loop. A follow-up to a resolved case reopens it (configurable).
"""

from __future__ import annotations

from intake.conduct.assignment import eligible_assignee, hand_over
from intake.conduct.attachments import store_attachments
from intake.conduct.commands import parse_command
from intake.conduct.conflicts import named_members_in
from intake.conduct.mailing import mail_party, mail_team
from intake.conduct.parties import exclude_named, excluded_emails, outside_contact
from intake.conduct.referral import refer_outside
from intake.engine.contract import HandlerContext, HandlerResult
from intake.mail.phrases import Places
from intake.mail.quotes import reply_text
from intake.mail.sanitize import db_text, sanitize_html
from intake.settings.templates import TemplateName
from intake.store.models import (
    DECIDED,
    EventKind,
    Outcome,
    Party,
    Ticket,
    TicketEvent,
    TicketStatus,
)

NOTHING_NEW = "(nothing new: the message only quoted earlier mail)"


async def _update_status(context: HandlerContext, ticket: Ticket) -> str:
    """Reopen or wake the case; returns what changed, for the team and the log."""
    before = ticket.status
    if before == TicketStatus.RESOLVED and context.settings.conversations.reopen_resolved:
        after = TicketStatus.INVESTIGATING
        said = "This case was resolved; the reply has reopened it."
    elif before == TicketStatus.WAITING:
        after = TicketStatus.INVESTIGATING
        said = ""
    elif before in DECIDED:
        return f"This case is {before}; it stays {before}."
    else:
        return ""
    ticket.status = after
    await ticket.save(update_fields=["status", "updated_at"])
    await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.STATE,
        author=context.settings.organisation.address,
        body=f"status {before} -> {after}: a reply from a party",
        internal=True,
    )
    return said


async def _exclude_newly_named(context: HandlerContext, ticket: Ticket, text: str) -> list[str]:
    """A member the new text names is kept from the case from now on; if they held it, the case
    is left unheld, for the next eligible member (or the outside contact) to be brought in."""
    message = context.message
    texts = Places(
        {
            "subject": message.subject,
            "body": text,
            "attachment_names": "\n".join(a.filename for a in message.attachments),
        }
    )
    conflicts = named_members_in(context.settings, texts)
    skip = await excluded_emails(ticket) if conflicts else set()
    excluded = await exclude_named(ticket, conflicts, skip=skip)
    if any(member.id == ticket.assignee_id for member in excluded):
        ticket.assignee = None
        await ticket.save(update_fields=["assignee_id", "updated_at"])
    return [str(c) for c in conflicts if c.member.email in {m.email for m in excluded}]


async def _bring_in_member_on_duty(context: HandlerContext, ticket: Ticket, text: str) -> list[str]:
    """Nobody holds the case (general mail, say): the member on duty gets it with the reply."""
    holder = await eligible_assignee(context.settings, ticket, context.now)
    if holder is None:
        await refer_outside(
            context.settings, ticket, "every member of the team who is available is named in it"
        )
        return []
    await hand_over(context.settings, ticket, holder, "a reply came on a case nobody held", text)
    return [holder.email]


async def handle_followup(context: HandlerContext) -> HandlerResult:
    assert context.link is not None and context.link.party is not None  # the case rules saw to it
    ticket = context.link.ticket
    assert ticket is not None
    party: Party = context.link.party
    message = context.message
    text = reply_text(message)
    event = await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.INBOUND,
        author=party.email,
        body=db_text(text or NOTHING_NEW),
        html=db_text(sanitize_html(message.html)),
        inbound=context.inbound,
        party=party,
    )
    attachments = await store_attachments(context.settings, message, context.inbound, ticket, event)
    excluded = await _exclude_newly_named(context, ticket, text)
    status_change = await _update_status(context, ticket)
    who = "The reporter" if party.role == "reporter" else f"The {party.role} ({party.email})"
    listed = "".join(f"\nAttached: {a.name} ({a.size})" for a in attachments)
    brought_in: list[str] = []
    if ticket.assignee_id is None:
        brought_in = await _bring_in_member_on_duty(context, ticket, text or NOTHING_NEW)
    copied = brought_in + await mail_team(
        context.settings,
        ticket,
        TemplateName.CASE_UPDATE,
        {
            "headline": f"{who} wrote",
            "event": " ".join(
                part for part in (f"{who} wrote on the case.", status_change) if part
            ),
            "text": (text or NOTHING_NEW) + listed,
        },
        author=brought_in[0] if brought_in else None,  # the handover carries the text already
    )
    outside = await outside_contact(context.settings, ticket)
    if not copied and outside is not None and outside.id != party.id:
        await mail_party(
            context.settings,
            ticket,
            outside,
            TemplateName.CASE_UPDATE,
            {
                "member_name": outside.name,
                "headline": f"{who} wrote",
                "event": f"{who} wrote on the case referred to you.",
                "text": (text or NOTHING_NEW) + listed,
            },
            internal=True,
            auto_submitted="auto-generated",
        )
        copied = [outside.email]
    reason = f"{context.verdict.reason}; appended to {ticket.ref}"
    if excluded:
        reason += "; excluded: " + "; ".join(excluded)
    if status_change:
        reason += f"; {status_change}"
    reason += f"; told {', '.join(copied)}" if copied else "; nobody on the team to tell"
    if parse_command(text) is not None:
        reason += "; its first line looks like a command, but only the team's commands count"
    return HandlerResult(outcome=Outcome.APPENDED, reason=reason, ticket=ticket)
