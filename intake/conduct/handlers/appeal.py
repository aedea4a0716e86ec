"""An appeal of a decision.

It is linked to the case it appeals: the case of the party's signed reply address it came to, else
a case reference in its subject or body (when its sender is a party to that case), else the
sender's own latest decided case. When the decision's rung can be appealed and the appeal window
is open, an appeal case opens, held by a lead who neither took the decision nor is excluded from
the original case or named in the appeal. Otherwise the appellant is told the policy, courteously,
and the attempt is recorded on the original case. An appeal with no findable case opens a case
that asks for the reference. Nothing of the original case is ever shown to the appellant.
"""

from __future__ import annotations

from intake.conduct.mailing import mail_party
from intake.conduct.notes import note
from intake.conduct.opening import open_case, send_assignment
from intake.conduct.parties import exclude_member, excluded_emails
from intake.conduct.replies import appeal_refused_today, why_not_answer
from intake.engine.contract import HandlerContext, HandlerResult
from intake.mail.sanitize import db_text, header_text, human_duration
from intake.settings.policy import CaseKind
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import (
    DECIDED,
    EventKind,
    Outcome,
    Party,
    PartyRole,
    TeamMember,
    Ticket,
    TicketEvent,
)
from intake.store.references import reference_in


async def _is_party(ticket: Ticket, sender: str) -> bool:
    if sender and ticket.reporter_email.lower() == sender:
        return True
    return await Party.filter(ticket=ticket, email=sender).exclude(role=PartyRole.TEAM).exists()


async def find_original(context: HandlerContext) -> tuple[Ticket | None, str]:
    """The case the appeal is about, and how it was found."""
    link = context.link
    if link is not None and link.party is not None and link.ticket is not None:
        return link.ticket, f"the {link.party.role}'s reply address"
    sender = context.message.from_email
    prefix = context.settings.organisation.ticket_prefix
    message = context.message
    if message.sender is None or message.sender.email.lower() != sender:
        # Without a token, From proves nothing: answers could go to whoever set Reply-To.
        return None, ""
    ref = reference_in(prefix, message.subject, message.text)
    if ref is not None:
        ticket = await Ticket.get_or_none(ref=ref)
        if ticket is not None and await _is_party(ticket, sender):
            return ticket, f"the reference {ref}"
    if sender:
        ticket_ids = (
            await Party.filter(email=sender)
            .exclude(role=PartyRole.TEAM)
            .values_list("ticket_id", flat=True)
        )
        latest = (
            await Ticket.filter(id__in=list(ticket_ids), status__in=DECIDED)
            .exclude(kind=CaseKind.APPEAL)
            .order_by("-resolved_at", "-id")
            .first()
        )
        if latest is not None:
            return latest, "the sender's latest decided case"
    return None, ""


def _refusal(context: HandlerContext, original: Ticket) -> str | None:
    """Why this decision cannot be appealed now, or None when it can."""
    if original.status not in DECIDED or original.resolution is None:
        return "The case has no decision yet, so there is nothing to appeal."
    rung = context.settings.resolution(original.resolution)
    if rung is None or not rung.appealable:
        return "The decision on this case is not one that can be appealed."
    window = context.settings.appeals.window
    decided = original.resolved_at or original.updated_at
    if context.now > decided + window:
        ended = (decided + window).strftime("%Y-%m-%d")
        return f"The time to appeal this decision ended on {ended}."
    return None


async def _reviewer(settings: Settings, appeal: Ticket) -> TeamMember | None:
    """The first active lead the appeal does not exclude: by then it excludes the members the
    appeal names, the members excluded from the original case, and whoever decided it."""
    excluded = await excluded_emails(appeal)
    for lead in settings.leads:
        if lead.email not in excluded:
            member = await TeamMember.get_or_none(email=lead.email, active=True)
            if member is not None:
                return member
    return None


async def _carry_over_exclusions(original: Ticket, appeal: Ticket) -> None:
    """Whoever the original case excludes, and whoever decided it, stays out of its appeal."""
    barred = set(await excluded_emails(original))
    if original.resolved_by:
        barred.add(original.resolved_by)
    for email in barred:
        member = await TeamMember.get_or_none(email=email)
        if member is not None:
            reason = (
                "decided the case appealed"
                if email == original.resolved_by
                else (f"excluded from {original.ref}")
            )
            await exclude_member(appeal, member, reason)


async def _record_attempt(context: HandlerContext, original: Ticket, why: str) -> None:
    await TicketEvent.create(
        ticket=original,
        kind=EventKind.INBOUND,
        author=db_text(context.message.from_address or "(no sender)", 320),
        body=db_text(context.message.text),
        internal=True,
        inbound=context.inbound,
    )
    await note(context.settings, original, f"An appeal was not opened: {why}")


async def handle_appeal(context: HandlerContext) -> HandlerResult:
    settings = context.settings
    original, how = await find_original(context)
    not_acknowledged, _ = await why_not_answer(context)
    answer = not_acknowledged is None

    if original is not None:
        refused = _refusal(context, original)
        if refused is not None:
            await _record_attempt(context, original, refused)
            party = await Party.filter(ticket=original, email=context.message.from_email).first()
            if answer and party and not await appeal_refused_today(party, context.now):
                await mail_party(
                    settings,
                    original,
                    party,
                    TemplateName.APPEAL_REFUSED,
                    {
                        "reporter_name": header_text(party.name),
                        "original_ref": original.ref,
                        "policy": settings.appeals.policy,
                        "why": refused,
                    },
                    internal=False,
                    answering=context.answering,
                )
            reason = f"{context.verdict.reason}; about {original.ref} ({how}); refused: {refused}"
            return HandlerResult(Outcome.APPEAL_REFUSED, reason, original)

    case = await open_case(context, kind=CaseKind.APPEAL, acknowledged=answer, refers_to=original)
    ticket, appellant, attachments = case.ticket, case.reporter, case.attachments
    if original is not None:
        await _carry_over_exclusions(original, ticket)
    reviewer = await _reviewer(settings, ticket)
    if reviewer is not None and not context.inbound.quiet:
        ticket.assignee = reviewer
        await ticket.save(update_fields=["assignee_id"])
        await send_assignment(
            context,
            ticket,
            reviewer,
            label=f"appeal (of {original.ref})" if original else "appeal (case unknown)",
            urgent=False,
            attachments=attachments,
            not_acknowledged=not_acknowledged,
            has_reporter=appellant is not None,
        )
    if original is not None:
        await note(settings, original, f"Appealed: {ticket.ref} ({how}).")
    if answer and appellant is not None:
        await mail_party(
            settings,
            ticket,
            appellant,
            (
                TemplateName.APPEAL_ACKNOWLEDGEMENT
                if original
                else TemplateName.APPEAL_REFERENCE_NEEDED
            ),
            {
                "reporter_name": header_text(appellant.name),
                "original_ref": original.ref if original else "",
                "readers": [reviewer.name] if reviewer else [],
                "next_contact": human_duration(settings.deadlines.first_response_for(False)),
            },
            internal=False,
            answering=context.answering,
        )
    about = f"of {original.ref} ({how})" if original else "of no findable case: reference asked for"
    holder = reviewer.email if reviewer else "nobody (no eligible lead)"
    reason = f"{context.verdict.reason}; appeal {about}; assigned to {holder}"
    return HandlerResult(Outcome.TICKET_CREATED, reason, ticket)
