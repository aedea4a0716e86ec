"""A team member's mail on a case: the team's discussion, a command, a message to the reporter,
or refused.

Two doors, as Request Tracker keeps comment apart from correspond: a plain reply to anything
Intake sent the member stays in the team (recorded on the case, copied to the other members on
it); only `#reply` on the first line, or mail to the member's reporter door (a signed address of
its own, printed at the top of every email to them), reaches the reporter. So an autoresponder or
a remark thought aloud can only ever reach the team.

Accepted only with the member's own valid reply token for this case and, where the receiving
server added Authentication-Results, a DMARC or aligned DKIM pass. The reporter receives only what
the member newly wrote (quoted history and signature stripped), from the team's display name and
address, threaded on the reporter's own conversation: never the member's address.
"""

from __future__ import annotations

from typing import Any

from intake.conduct.attachments import kept_attachments, store_attachments
from intake.conduct.commands import CommandContext, parse_command, run_command
from intake.conduct.mailing import mail_party, mail_team
from intake.conduct.notes import note
from intake.conduct.parties import reporter_party
from intake.conduct.replies import command_answers_capped, team_discussion_capped
from intake.engine.contract import HandlerContext, HandlerResult
from intake.engine.link import Via
from intake.engine.tokens import tokens_in
from intake.mail.authentication import authentication_problem
from intake.mail.quotes import reply_text
from intake.mail.sanitize import db_text, header_text
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
    TicketStatus,
)

# What a member is told when their plain reply was kept for the team only.
KEPT = (
    "Your reply is kept on the case for the team; the reporter has not seen it. To answer the"
    " reporter, start your reply with #reply or write to your reporter door."
)


async def _tell_member(
    context: HandlerContext, ticket: Ticket, party: Party, what: str, ok: bool, result: str
) -> None:
    """Answer the member about their mail, unless that mail answers one of these answers (an
    autoresponder that sets no header would otherwise loop) or they had many today."""
    if await _answers_a_confirmation(context) or await command_answers_capped(party, context.now):
        await note(context.settings, ticket, f"Not told to {party.email} (loop guard): {result}")
        return
    await mail_party(
        context.settings,
        ticket,
        party,
        TemplateName.COMMAND_RESULT,
        {"member_name": party.name, "what": what, "ok": ok, "result": result},
        internal=True,
        answering=context.answering,
        auto_submitted="auto-replied",
    )


async def _answers_a_confirmation(context: HandlerContext) -> bool:
    named = [*context.message.in_reply_to, *context.message.references]
    return (
        bool(named)
        and await OutboundMessage.filter(
            message_id__in=named, kind=TemplateName.COMMAND_RESULT
        ).exists()
    )


async def _why_not_relay(context: HandlerContext, ticket: Ticket, party: Party, text: str) -> str:
    """Why this text must not reach the reporter, or "" when it may."""
    lowered = text.lower()
    addresses = [m.email for m in context.settings.team if m.email in lowered]
    if addresses:
        return (
            f"It contains a team address ({', '.join(addresses)}), perhaps in a signature; the"
            " reporter must never see one. Remove it and send your reply again."
        )
    if tokens_in(context.settings, text):
        return (
            "It contains one of Intake's reply addresses (your reporter door, perhaps, pasted or"
            " quoted); nobody outside the team may see one. Remove it and send your reply again."
        )
    if await _repeats_previous(context, ticket, party, text, relayed_only=True):
        return "It repeats your previous message word for word (an autoresponder?)."
    return ""


async def _repeats_previous(
    context: HandlerContext, ticket: Ticket, party: Party, text: str, *, relayed_only: bool = False
) -> bool:
    """The member's previous message on the case (`relayed_only`: the previous one sent on to
    someone) said the same, word for word: an autoresponder, most likely."""
    entries = TicketEvent.filter(ticket=ticket, party=party, kind=EventKind.INBOUND)
    if relayed_only:
        entries = entries.filter(internal=False)
    previous = await entries.exclude(inbound_id=context.inbound.id).order_by("-id").first()
    return previous is not None and previous.body.strip() == text.strip()


async def _record(
    context: HandlerContext, ticket: Ticket, party: Party, text: str, *, internal: bool
) -> TicketEvent:
    """The member's message as an entry in the case's thread (`internal`: for the team only)."""
    return await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.INBOUND,
        author=party.email,
        body=db_text(text),
        internal=internal,
        inbound=context.inbound,
        party=party,
    )


async def _keep_internal(
    context: HandlerContext, ticket: Ticket, party: Party, text: str, why: str
) -> None:
    """Record the member's message on the case without relaying it, and tell them why."""
    await _record(context, ticket, party, text, internal=True)
    await _tell_member(
        context,
        ticket,
        party,
        "reply not sent",
        False,
        f"{why} It is kept on the case as an internal note; the reporter has not seen it.",
    )


async def _recipient(ticket: Ticket, wanted: str) -> tuple[Party | None, str]:
    """Whom `#reply <wanted>` writes to: the reporter (nothing, or "reporter"), else the case's
    party with that address or role (reported, witness, other); and why not, when nobody."""
    wanted = wanted.strip().lower()
    if wanted in ("", "reporter"):
        reporter = await reporter_party(ticket)
        why = "This case has no address to answer: the report came without a usable sender address."
        return reporter, "" if reporter else why
    parties = Party.filter(ticket=ticket, excluded=False).exclude(role=PartyRole.TEAM)
    by_role = wanted in {role.value for role in PartyRole}
    matching = await (parties.filter(role=wanted) if by_role else parties.filter(email=wanted))
    if not matching:
        return None, f"#reply {wanted}: nobody on this case has that address or role."
    if len(matching) > 1:
        return None, f"#reply {wanted}: several parties on this case have it; name the address."
    return matching[0], ""


async def _relay(
    context: HandlerContext,
    ticket: Ticket,
    party: Party,
    member: TeamMember,
    text: str,
    to: str = "",
) -> HandlerResult:
    """What the member wrote, sent from the team's address to the reporter (or, with `to`, the
    party `#reply` names)."""
    refusal = await _why_not_relay(context, ticket, party, text)
    recipient: Party | None = None
    if not refusal:
        recipient, refusal = await _recipient(ticket, to)
    if refusal or recipient is None:
        await _keep_internal(context, ticket, party, text, refusal)
        return HandlerResult(Outcome.APPENDED_INTERNAL, f"not relayed: {refusal}", ticket)
    whom = "the reporter" if recipient.role == PartyRole.REPORTER else f"the {recipient.role}"
    event = await _record(context, ticket, party, text, internal=False)
    attachments = await store_attachments(
        context.settings, context.message, context.inbound, ticket, event
    )
    relayed = kept_attachments(context.settings, context.message)
    await mail_party(
        context.settings,
        ticket,
        recipient,
        TemplateName.RELAY,
        {"reporter_name": header_text(recipient.name), "text": text},
        internal=False,
        auto_submitted=None,  # a person wrote it
        attachments=relayed,
        record_as=f"{member.name}'s reply relayed to {whom} ({recipient.email})",
    )
    if recipient.role == PartyRole.REPORTER:
        await _after_first_response(context, ticket)
    await mail_team(
        context.settings,
        ticket,
        TemplateName.CASE_UPDATE,
        {
            "headline": f"{member.name} answered {whom}",
            "event": f"{member.name} wrote to {whom}.",
            "text": text,
        },
        author=member.email,
    )
    reason = f"{context.verdict.reason}; relayed to {whom} of {ticket.ref}"
    if any(a.dropped for a in attachments):
        left_out = ", ".join(str(a.name) for a in attachments if a.dropped)
        await _tell_member(
            context,
            ticket,
            party,
            "attachments left out",
            False,
            f"Your reply was sent to {whom} without these attachments, which are over"
            f" the limits: {left_out}.",
        )
        reason += f"; attachments over the limits not relayed: {left_out}"
    return HandlerResult(Outcome.RELAYED, reason, ticket)


async def _after_first_response(context: HandlerContext, ticket: Ticket) -> None:
    updates: dict[str, Any] = {}
    if ticket.first_response_at is None:
        updates["first_response_at"] = context.now
    if ticket.status == TicketStatus.NEW:
        updates["status"] = TicketStatus.INVESTIGATING
    if updates:
        await Ticket.filter(id=ticket.id).update(**updates)


async def handle_team_reply(context: HandlerContext) -> HandlerResult:
    assert context.link is not None and context.link.party is not None  # the case rules saw to it
    ticket = context.link.ticket
    assert ticket is not None
    party = context.link.party
    member = await TeamMember.get_or_none(email=party.email, active=True)
    if member is None:  # left the team: their old reply addresses no longer count
        reason = f"{party.email} is no longer on the team"
        await note(context.settings, ticket, f"A message was refused: {reason}.")
        return HandlerResult(Outcome.REJECTED_EXCLUDED, reason, None)
    message = context.message
    text = reply_text(message)

    problem = authentication_problem(message, context.settings)
    if problem is not None:
        await note(
            context.settings, ticket, f"A reply in {member.email}'s name was refused: {problem}."
        )
        await _tell_member(
            context,
            ticket,
            party,
            "reply refused",
            False,
            f"A reply in your name was refused and not added to the case: {problem}. If it was"
            " yours, your mail server's signature did not verify; ask whoever runs it.",
        )
        return HandlerResult(Outcome.REJECTED_UNAUTHENTICATED, problem, None)

    if context.link.via != Via.TOKEN:
        await _keep_internal(
            context,
            ticket,
            party,
            text,
            "Your message reached the case without your reply"
            " address (found by its references or subject), so it was neither sent to the"
            " reporter nor read for commands. To act on the case, reply to an email Intake sent"
            " you; to answer the reporter, start with #reply or write to your reporter door.",
        )
        reason = f"{context.verdict.reason}; no reply token: kept internal, not relayed"
        return HandlerResult(Outcome.APPENDED_INTERNAL, reason, ticket)

    command = parse_command(text)
    if command is not None and command.name == "reply":
        if not command.body:
            await _keep_internal(context, ticket, party, text, "#reply had nothing after it.")
            return HandlerResult(Outcome.APPENDED_INTERNAL, "#reply without text", ticket)
        return await _relay(context, ticket, party, member, command.body, to=command.args)
    if command is not None:
        result = await run_command(
            CommandContext(context.settings, ticket, member, context.now), command
        )
        await _tell_member(context, ticket, party, f"#{command.name}", result.ok, result.message)
        state = "done" if result.ok else "refused"
        return HandlerResult(
            Outcome.COMMAND, f"#{command.name} from {member.email}: {state}", ticket
        )

    if not text:
        await _keep_internal(context, ticket, party, text, "Your reply had no new text.")
        return HandlerResult(Outcome.APPENDED_INTERNAL, "an empty team reply", ticket)
    if context.link.door:
        return await _relay(context, ticket, party, member, text)
    return await _discuss(context, ticket, party, member, text)


async def _discuss(
    context: HandlerContext, ticket: Ticket, party: Party, member: TeamMember, text: str
) -> HandlerResult:
    """A plain reply: the team's discussion. Recorded on the case and copied to the other members
    on it; never sent to a reporter or any other party. A text the member already sent word for
    word (an autoresponder answering a copy) is recorded but not copied again, and copies stop at
    a daily cap, so autoresponders that set no header cannot keep a case busy."""
    repeated = await _repeats_previous(context, ticket, party, text)
    event = await _record(context, ticket, party, text, internal=True)
    await store_attachments(context.settings, context.message, context.inbound, ticket, event)
    reason = f"{context.verdict.reason}; to the team on {ticket.ref}"
    if repeated:
        return HandlerResult(Outcome.APPENDED_INTERNAL, f"{reason}; a repeat: not copied", ticket)
    if await team_discussion_capped(ticket, context.now, event):
        why = "Not copied to the team: the case's daily cap of team discussion is reached."
        await note(context.settings, ticket, f"{member.name}'s entry was recorded. {why}")
        await _tell_member(context, ticket, party, "not copied", False, f"{why} {KEPT}")
        return HandlerResult(
            Outcome.APPENDED_INTERNAL, f"{reason}; not copied: the daily cap is reached", ticket
        )
    copied = await mail_team(
        context.settings,
        ticket,
        TemplateName.TEAM_DISCUSSION,
        {"author_name": member.name, "text": text},
        author=member.email,
        on_case=True,
    )
    if not copied:
        alone = "Nobody else on the team is on this case, so nobody was sent it."
        await _tell_member(context, ticket, party, "kept for the team", True, f"{alone} {KEPT}")
        return HandlerResult(
            Outcome.APPENDED_INTERNAL, f"{reason}; nobody else is on the case", ticket
        )
    return HandlerResult(
        Outcome.APPENDED_INTERNAL, f"{reason}; copied to {', '.join(copied)}", ticket
    )
