"""Opening a case from the message in hand: the ticket, its reporter party, the first thread
entry, its attachments and exclusions; and the notice that gives it to a member. Shared by the
handlers of reports, appeals and general mail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from intake.conduct.attachments import AttachmentRow, store_attachments
from intake.conduct.audit import record_listed
from intake.conduct.conflicts import Conflict, named_members
from intake.conduct.history import earlier_cases
from intake.conduct.mailing import mail_party
from intake.conduct.notes import TIME_FORMAT
from intake.conduct.parties import exclude_named, team_party
from intake.conduct.replies import own_or_team_address
from intake.engine.compose import valid_address
from intake.engine.contract import HandlerContext
from intake.mail.phrases import places
from intake.mail.sanitize import db_text, sanitize_html
from intake.settings.policy import CaseKind
from intake.settings.templates import TemplateName
from intake.store.models import EventKind, Party, PartyRole, TeamMember, Ticket, TicketEvent
from intake.store.references import next_reference


@dataclass(frozen=True)
class NewCase:
    """A case just opened from a message."""

    ticket: Ticket
    reporter: Party | None  # None: the sender cannot be answered (or is us or the team)
    attachments: list[AttachmentRow]  # as template rows (intake.conduct.attachments)
    excluded: list[str]  # the members it names, kept from it: why, one line each


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


async def open_case(
    context: HandlerContext,
    *,
    kind: CaseKind,
    kind_reason: str = "",
    urgent: bool = False,
    acknowledged: bool = False,
    refers_to: Ticket | None = None,
    assignee: TeamMember | None = None,
    conflicts: list[Conflict] | None = None,
) -> NewCase:
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
    return NewCase(ticket, party, attachments, [str(conflict) for conflict in conflicts])


async def send_assignment(
    context: HandlerContext,
    ticket: Ticket,
    member: TeamMember,
    *,
    label: str,
    urgent: bool,
    attachments: list[AttachmentRow],
    not_acknowledged: str | None,
    has_reporter: bool | None = None,
) -> None:
    """The notice that gives a member a new case, with the whole message in it; `label` says
    what the case is ("report", "appeal (of COC-2026-0001)"); `has_reporter` as for
    `mail_party`, when the caller has just opened the case."""
    await mail_party(
        context.settings,
        ticket,
        await team_party(ticket, member, new=True),  # the case is new to them
        TemplateName.ASSIGNMENT,
        {
            "assignee_name": member.name,
            "urgent": urgent,
            "kind": label,
            "not_acknowledged": not_acknowledged or "",
            "defects": list(context.message.defects),
            "earlier": await _earlier_lines(context, ticket, member),
            **message_report(context, attachments),
        },
        internal=True,
        auto_submitted="auto-generated",
        new_conversation=True,
        has_reporter=has_reporter,
    )


async def _earlier_lines(context: HandlerContext, ticket: Ticket, member: TeamMember) -> list[str]:
    """The earlier cases the notice lists, each recorded in its own audit trail."""
    earlier = await earlier_cases(ticket, places(context.message), member.email)
    where = f"listed as an earlier case in the assignment notice of {ticket.ref}"
    await record_listed([case.ticket_id for case in earlier], member.email, where)
    return [case.line() for case in earlier]


def message_report(context: HandlerContext, attachments: list[AttachmentRow]) -> dict[str, Any]:
    """The report as the templates that carry it show it (compare notes.recorded_report)."""
    message = context.message
    return {
        "reporter": str(message.from_) if message.from_ else "(no sender address)",
        "subject": message.subject,
        "received": context.now.strftime(TIME_FORMAT),
        "text": message.text,
        "attachments": attachments,
    }
