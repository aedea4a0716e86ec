"""A new report: open a confidential case, assign the member on duty, acknowledge the sender.

Everything here runs inside the pipeline's transaction: the ticket, its first thread entry, its
attachments, the acknowledgement and the assignment notice commit together or not at all.
"""

from __future__ import annotations

from typing import Any

from intake.conduct.assignment import eligible_assignee
from intake.conduct.attachments import AttachmentRow
from intake.conduct.conflicts import named_members
from intake.conduct.mailing import mail_party, mail_team
from intake.conduct.notes import note
from intake.conduct.opening import NewCase, message_report, open_case, send_assignment
from intake.conduct.referral import refer_outside
from intake.conduct.replies import rate_notice_sent_today, why_not_answer
from intake.engine.contract import HandlerContext, HandlerResult
from intake.mail.phrases import find, places
from intake.mail.sanitize import header_text, human_duration
from intake.settings.policy import CaseKind
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import (
    Outcome,
    Party,
    TeamMember,
    Ticket,
)

CASE_KINDS = (CaseKind.REPORT, CaseKind.RETALIATION)  # kinds this handler opens cases of


async def _answer_sender(
    context: HandlerContext,
    ticket: Ticket,
    reporter: Party,
    template: TemplateName,
    variables: dict[str, Any],
) -> None:
    """An automatic email to whoever sent the report, threaded on their message."""
    await mail_party(
        context.settings,
        ticket,
        reporter,
        template,
        {"reporter_name": header_text(reporter.name), **variables},
        internal=False,
        answering=context.answering,
    )


def _readers(settings: Settings, assignee: TeamMember | None, alerted: list[str]) -> list[str]:
    """Who the acknowledgement says will read the report: only people who will."""
    if assignee is None:
        outside = settings.organisation.outside_contact
        return [settings.organisation.outside_contact_name or outside] if outside else []
    names = [assignee.name]
    for email in alerted:
        member = settings.member(email)
        if member is not None and member.name not in names:
            names.append(member.name)
    return names


async def handle_report(context: HandlerContext) -> HandlerResult:
    settings, message = context.settings, context.message
    answer_to = message.sender
    not_acknowledged, capped = await why_not_answer(context)
    pointed_at = context.link.ticket if context.link else None
    verdict_kind = context.verdict.kind
    kind = CaseKind(verdict_kind) if verdict_kind in CASE_KINDS else CaseKind.REPORT
    urgent = find(
        settings.classification.urgent_phrases,
        settings.classification.urgent_where,
        places(message),
    )
    conflicts = named_members(settings, message)
    named = {conflict.member.email for conflict in conflicts}
    assignee = await eligible_assignee(settings, None, context.now, excluded=named)
    case = await open_case(
        context,
        kind=kind,
        kind_reason=context.verdict.reason,
        urgent=urgent is not None,
        acknowledged=not_acknowledged is None,
        refers_to=pointed_at,
        assignee=assignee,
        conflicts=conflicts,
    )
    ticket, party, attachments = case.ticket, case.reporter, case.attachments
    excluded = case.excluded
    reason = f"{context.verdict.reason}; " + (
        f"assigned to {assignee.email}" if assignee else "not assigned"
    )
    if urgent is not None:
        reason += f"; urgent: {urgent}"
    if excluded:
        reason += "; excluded: " + "; ".join(excluded)
    if pointed_at is not None:
        reason += await _record_pointer(context, ticket, pointed_at)
    alerted: list[str] = []
    if not context.inbound.quiet:  # a backfill of old mail must not flood anyone
        if assignee is None:
            reason += "; " + await _refer(context, ticket, attachments, excluded)
        else:
            alerted = await _tell_team(
                context, case, assignee, urgent is not None, not_acknowledged
            )
            if alerted:
                reason += f"; {'alerted' if urgent else 'copied to'} {', '.join(alerted)}"
    if not_acknowledged is None and party is not None:
        await _answer_sender(
            context,
            ticket,
            party,
            TemplateName.ACKNOWLEDGEMENT,
            {
                "urgent": urgent is not None,
                "readers": _readers(settings, assignee, alerted),
                "next_contact": human_duration(
                    settings.deadlines.first_response_for(urgent is not None)
                ),
            },
        )
    if not_acknowledged:
        reason += f"; not acknowledged: {not_acknowledged}"
    if (
        capped
        and party is not None
        and answer_to is not None
        and not await rate_notice_sent_today(context, answer_to)
    ):
        await _answer_sender(context, ticket, party, TemplateName.RATE_NOTICE, {})
        reason += "; told once that automatic replies stop for today"
    return HandlerResult(outcome=Outcome.TICKET_CREATED, reason=reason, ticket=ticket)


async def _refer(
    context: HandlerContext, ticket: Ticket, attachments: list[AttachmentRow], excluded: list[str]
) -> str:
    return await refer_outside(
        context.settings,
        ticket,
        "every member of the team who is available is named in it"
        if excluded
        else "the members on the rota are away or have left",
        message_report(context, attachments),
    )


async def _tell_team(
    context: HandlerContext,
    case: NewCase,
    assignee: TeamMember,
    urgent: bool,
    not_acknowledged: str | None,
) -> list[str]:
    """The assignment notice to the assignee; copies to the leads (all of them at once when the
    case is urgent). Returns who got a copy."""
    message = context.message
    settings = context.settings
    ticket = case.ticket
    await send_assignment(
        context,
        ticket,
        assignee,
        label=ticket.kind,
        urgent=urgent,
        attachments=case.attachments,
        not_acknowledged=not_acknowledged,
        has_reporter=case.reporter is not None,
    )
    if not urgent and not settings.conversations.copy_leads:
        return []  # nobody besides the assignee is told
    headline = "URGENT: new case" if urgent else "New case"
    return await mail_team(
        context.settings,
        ticket,
        TemplateName.CASE_UPDATE,
        {
            "headline": headline,
            "event": f"{headline}, assigned to {assignee.name}."
            + (" Every lead is told at once: it reads as urgent." if urgent else ""),
            "text": message.text,
        },
        author=assignee.email,
        leads=urgent,
    )


async def _record_pointer(context: HandlerContext, ticket: Ticket, pointed_at: Ticket) -> str:
    """Someone who is not a party wrote about an existing case: a new case that records the old
    one, and a note on the old one. Nothing of the old case reaches the sender."""
    via = context.link.via if context.link else "a reference"
    await note(
        context.settings,
        pointed_at,
        f"{ticket.ref} was opened from a message that pointed at this case ({via}) but came"
        f" from {context.message.from_address or 'no sender'}, who is not a party to it.",
    )
    return f"; points at {pointed_at.ref} ({via}) but its sender is not a party to it"
