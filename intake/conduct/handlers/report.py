"""A new report: open a confidential case, assign the member on duty, acknowledge the sender.

Everything here runs inside the pipeline's transaction: the ticket, its first thread entry, its
attachments, the acknowledgement and the assignment notice commit together or not at all.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from intake.conduct.assignment import eligible_assignee
from intake.conduct.attachments import store_attachments
from intake.conduct.conflicts import Conflict, named_members
from intake.conduct.mailing import mail_party, mail_team
from intake.conduct.notes import TIME_FORMAT, note
from intake.conduct.parties import exclude_named, team_party
from intake.conduct.referral import refer_outside
from intake.conduct.replies import own_or_team_address
from intake.engine.compose import is_our_message_id, valid_address
from intake.engine.contract import HandlerContext, HandlerResult
from intake.engine.link import Via
from intake.mail.headers import Address
from intake.mail.phrases import find, places
from intake.mail.sanitize import db_text, header_text, human_duration, sanitize_html
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import (
    EventKind,
    OutboundMessage,
    Outcome,
    Party,
    PartyRole,
    TeamMember,
    Ticket,
    TicketEvent,
)
from intake.store.references import next_reference

REPORT = "report"
CASE_KINDS = ("report", "retaliation")  # kinds this handler opens cases of
# "Fwd: Returned mail: ...": a person forwarding a bounce. It is a case for the team to look at,
# but a bounce inside it is never answered, not even to the person who forwarded it.
FORWARDED_BOUNCE = re.compile(
    r"^\s*(fwd?|fw|wg|tr|rv|doorst)\s*:\s*(returned mail|undeliver|mail delivery fail"
    r"|delivery status notification|failure notice|delivery failure)",
    re.IGNORECASE,
)


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


def _answers_our_mail(context: HandlerContext) -> bool:
    """In-Reply-To or References name a Message-ID we made: a reply to our own mail."""
    return any(
        is_our_message_id(msgid, context.settings)
        for msgid in (*context.message.in_reply_to, *context.message.references)
    )


def _proven_party(context: HandlerContext) -> bool:
    """The sender replied through their own signed reply address: a person we wrote to, not a
    stranger's autoresponder (answers to them are still capped per day)."""
    thread = context.link
    return thread is not None and thread.via == Via.TOKEN and thread.party is not None


async def why_not_acknowledge(context: HandlerContext, answer_to: Address | None) -> str | None:
    """The reason this report gets no acknowledgement, or None when it should get one.

    The case is opened either way; only the automatic answer is held back, so that Intake never
    answers itself, the team, or a machine that replies to its replies.
    """
    settings = context.settings
    if context.inbound.quiet:
        return "imported by `intake backfill --no-replies`"
    if answer_to is None or not valid_address(answer_to.email):
        return "no usable sender address"
    if own_or_team_address(settings, answer_to.email):
        return f"{answer_to.email} is our own or a team address"
    if _answers_our_mail(context) and not _proven_party(context):
        return "it replies to our own automatic mail (loop guard)"
    if FORWARDED_BOUNCE.match(context.message.subject):
        return "it forwards a delivery failure notice"
    return None


def _reporter_address(context: HandlerContext, answer_to: Address) -> str:
    return context.message.from_.email if context.message.from_ else answer_to.email


async def _over_daily_cap(context: HandlerContext, answer_to: Address) -> str | None:
    """RFC 3834: a responder must not answer the same sender without limit."""
    limit = context.settings.processing.acknowledgements_per_sender_per_day
    reporter = _reporter_address(context, answer_to)
    today = await Ticket.filter(
        reporter_email=reporter, acknowledged_at__gte=context.now - timedelta(days=1)
    ).count()
    if today >= limit:
        return f"{reporter} had {today} acknowledgements in the last 24 hours (limit {limit})"
    return None


async def why_not_answer(context: HandlerContext) -> tuple[str | None, bool]:
    """Why the sender of a new case gets no automatic answer (None: they get one), and whether
    that is the daily cap."""
    answer_to = context.message.sender
    refusal = await why_not_acknowledge(context, answer_to)
    if refusal is None and answer_to is not None:
        refusal = await _over_daily_cap(context, answer_to)
        return refusal, refusal is not None
    return refusal, False


async def _rate_notice_sent_today(context: HandlerContext, answer_to: Address) -> bool:
    return await OutboundMessage.filter(
        kind=TemplateName.RATE_NOTICE,
        ticket__reporter_email=_reporter_address(context, answer_to),
        created_at__gte=context.now - timedelta(days=1),
    ).exists()


async def _reporter_party(context: HandlerContext, ticket: Ticket) -> Party | None:
    """The reporter as a party of the case: where our replies go (Reply-To, else From)."""
    answer_to = context.message.sender
    if answer_to is None or not valid_address(answer_to.email):
        return None
    if own_or_team_address(context.settings, answer_to.email):
        return None  # never a reply address on a case for a team member in the reporter's place
    return await Party.create(  # the case is new: it has no parties yet
        ticket=ticket,
        role=PartyRole.REPORTER,
        email=db_text(answer_to.email.lower(), 320),
        name=db_text(answer_to.name, 200),
    )


async def open_case_record(
    context: HandlerContext,
    *,
    kind: str,
    kind_reason: str = "",
    urgent: bool = False,
    acknowledged: bool = False,
    refers_to: Ticket | None = None,
    assignee: TeamMember | None = None,
    conflicts: list[Conflict] | None = None,
) -> tuple[Ticket, Party | None, list[dict[str, Any]], list[str]]:
    """A new case from this message: the ticket, its sender as the reporter party, the message as
    the first thread entry, its attachments (as template rows), and the members it names, who
    are excluded from it at once (why, one line each). Pass `conflicts` when they are known."""
    settings, message = context.settings, context.message
    reporter = message.from_
    ticket = await Ticket.create(
        ref=await next_reference(settings.organisation.ticket_prefix, context.now),
        kind=kind,
        kind_reason=db_text(kind_reason or context.verdict.reason),
        urgent=urgent,
        subject=db_text(message.subject),
        reporter_email=db_text(reporter.email, 320) if reporter else "",
        reporter_name=db_text(reporter.name, 200) if reporter else "",
        acknowledged_at=context.now if acknowledged else None,
        refers_to=refers_to,
        assignee=assignee,
    )
    party = await _reporter_party(context, ticket)
    event = await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.INBOUND,
        author=db_text(reporter.email, 320) if reporter else "(no sender)",
        body=db_text(message.text),
        html=db_text(sanitize_html(message.html)),
        inbound=context.inbound,
        party=party,
    )
    attachments = await store_attachments(settings, message, context.inbound, ticket, event)
    if conflicts is None:
        conflicts = named_members(settings, message)
    await exclude_named(ticket, conflicts)
    return ticket, party, attachments, [str(conflict) for conflict in conflicts]


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
    kind = context.verdict.kind if context.verdict.kind in CASE_KINDS else REPORT
    urgent = find(
        settings.classification.urgent_phrases,
        settings.classification.urgent_where,
        places(message),
    )
    conflicts = named_members(settings, message)
    named = {conflict.member.email for conflict in conflicts}
    assignee = await eligible_assignee(settings, None, context.now, excluded=named)
    ticket, party, attachments, excluded = await open_case_record(
        context,
        kind=kind,
        kind_reason=context.verdict.reason,
        urgent=urgent is not None,
        acknowledged=not_acknowledged is None,
        refers_to=pointed_at,
        assignee=assignee,
        conflicts=conflicts,
    )
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
                context, ticket, assignee, urgent is not None, attachments, not_acknowledged
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
        and not await _rate_notice_sent_today(context, answer_to)
    ):
        await _answer_sender(context, ticket, party, TemplateName.RATE_NOTICE, {})
        reason += "; told once that automatic replies stop for today"
    return HandlerResult(outcome=Outcome.TICKET_CREATED, reason=reason, ticket=ticket)


async def send_assignment(
    context: HandlerContext,
    ticket: Ticket,
    member: TeamMember,
    *,
    kind: str,
    urgent: bool,
    attachments: list[dict[str, Any]],
    not_acknowledged: str | None,
) -> None:
    """The notice that gives a member a new case, with the whole message in it."""
    await mail_party(
        context.settings,
        ticket,
        await team_party(ticket, member, new=True),  # the case is new to them
        TemplateName.ASSIGNMENT,
        {
            "assignee_name": member.name,
            "urgent": urgent,
            "kind": kind,
            "not_acknowledged": not_acknowledged or "",
            "defects": list(context.message.defects),
            **_message_report(context, attachments),
        },
        internal=True,
        auto_submitted="auto-generated",
        new_conversation=True,
    )


def _message_report(context: HandlerContext, attachments: list[dict[str, Any]]) -> dict[str, Any]:
    """The report as the templates that carry it show it (compare cases.recorded_report)."""
    message = context.message
    return {
        "reporter": str(message.from_) if message.from_ else "(no sender address)",
        "subject": message.subject,
        "received": context.now.strftime(TIME_FORMAT),
        "text": message.text,
        "attachments": attachments,
    }


async def _refer(
    context: HandlerContext, ticket: Ticket, attachments: list[Any], excluded: list[str]
) -> str:
    return await refer_outside(
        context.settings,
        ticket,
        "every member of the team who is available is named in it"
        if excluded
        else "the members on the rota are away or have left",
        _message_report(context, attachments),
    )


async def _tell_team(
    context: HandlerContext,
    ticket: Ticket,
    assignee: TeamMember,
    urgent: bool,
    attachments: list[dict[str, Any]],
    not_acknowledged: str | None,
) -> list[str]:
    """The assignment notice to the assignee; copies to the leads (all of them at once when the
    case is urgent). Returns who got a copy."""
    message = context.message
    settings = context.settings
    await send_assignment(
        context,
        ticket,
        assignee,
        kind=ticket.kind,
        urgent=urgent,
        attachments=attachments,
        not_acknowledged=not_acknowledged,
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
