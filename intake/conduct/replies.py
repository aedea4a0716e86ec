"""May we answer? The reply policy and every daily cap on what Intake sends by itself.

RFC 3834 and every helpdesk's scars: never answer ourselves, the team, or a machine that replies
to our replies; cap what one address gets per day; tell a sender once that answers stop for the
day. The case is opened or updated either way: only the automatic answer is held back.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from intake.engine.compose import is_our_message_id, valid_address
from intake.engine.contract import HandlerContext
from intake.engine.link import Via
from intake.engine.tokens import tokens_in
from intake.mail.headers import Address
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import EventKind, OutboundMessage, Party, PartyRole, Ticket, TicketEvent


def own_or_team_address(settings: Settings, address: str) -> bool:
    """Our own address, one of our reply addresses, or a team member's."""
    own = address == settings.organisation.address or bool(tokens_in(settings, address))
    return own or settings.member(address) is not None


async def sent_today(party: Party, template: TemplateName, now: datetime) -> int:
    """How many emails of this template the party was sent in the last 24 hours."""
    return await OutboundMessage.filter(
        party=party, kind=template, created_at__gte=now - timedelta(days=1)
    ).count()


# Entries of the team's discussion on one case copied a day: far above any team's pace, and a
# stop for autoresponders that set no header and answer each other's copies.
TEAM_ENTRIES_PER_CASE_PER_DAY = 30


async def team_discussion_capped(ticket: Ticket, now: datetime, entry: TicketEvent) -> bool:
    """Whether the case's team discussion had its entries for today before `entry`."""
    earlier = await (
        TicketEvent.filter(
            ticket=ticket,
            kind=EventKind.INBOUND,
            internal=True,
            party__role=PartyRole.TEAM,
            created_at__gte=now - timedelta(days=1),
        )
        .exclude(id=entry.id)
        .count()
    )
    return earlier >= TEAM_ENTRIES_PER_CASE_PER_DAY


# Answers to one member's commands on one case a day: far above any person's pace.
COMMAND_ANSWERS_PER_DAY = 50


async def command_answers_capped(party: Party, now: datetime) -> bool:
    return await sent_today(party, TemplateName.COMMAND_RESULT, now) >= COMMAND_ANSWERS_PER_DAY


async def appeal_refused_today(party: Party, now: datetime) -> bool:
    """One refusal a day per party: an autoresponder echoing "appeal" cannot start a loop."""
    return await sent_today(party, TemplateName.APPEAL_REFUSED, now) > 0


# "Fwd: Returned mail: ...": a person forwarding a bounce. It is a case for the team to look at,
# but a bounce inside it is never answered, not even to the person who forwarded it.
FORWARDED_BOUNCE = re.compile(
    r"^\s*(fwd?|fw|wg|tr|rv|doorst)\s*:\s*(returned mail|undeliver|mail delivery fail"
    r"|delivery status notification|failure notice|delivery failure)",
    re.IGNORECASE,
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
    link = context.link
    return link is not None and link.via == Via.TOKEN and link.party is not None


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


async def rate_notice_sent_today(context: HandlerContext, answer_to: Address) -> bool:
    return await OutboundMessage.filter(
        kind=TemplateName.RATE_NOTICE,
        ticket__reporter_email=_reporter_address(context, answer_to),
        created_at__gte=context.now - timedelta(days=1),
    ).exists()
