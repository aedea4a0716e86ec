"""Mail about a case to its parties.

Every email about a case goes to one party and carries that party's signed reply address, so a
reply threads back as that party. Nothing here sends anything to a team member the case excludes.
"""

from __future__ import annotations

from typing import Any

from intake.conduct.notes import note
from intake.conduct.parties import excluded_emails, reporter_party, team_party
from intake.engine.compose import NOTHING, Answering, Recipient, queue_email
from intake.engine.tokens import ReplyToken, reply_address
from intake.mail.mime import OutboundAttachment
from intake.settings.schema import Settings
from intake.settings.secrets import signing_key
from intake.settings.templates import TemplateName
from intake.store.models import (
    EventKind,
    OutboundMessage,
    Party,
    PartyRole,
    TeamMember,
    Ticket,
    TicketEvent,
)

CONVERSATION_DEPTH = 10  # Message-IDs kept in References: enough for every client to thread


async def team_recipients(
    settings: Settings,
    ticket: Ticket,
    *,
    author: str | None = None,
    leads: bool = False,
    on_case: bool = False,
) -> list[TeamMember]:
    """Who on the team gets a copy of what happens on the case: the assignee always, the leads
    when `conversations.copy_leads` (or `leads`) is set, every member already on the case when
    `on_case` (the team's discussion); never an excluded member, never the author."""
    excluded = await excluded_emails(ticket)
    recipients: list[TeamMember] = []
    assignee = await TeamMember.get_or_none(id=ticket.assignee_id, active=True)
    if assignee is not None:
        recipients.append(assignee)
    if leads or settings.conversations.copy_leads:
        leads_now = [lead.email for lead in settings.leads]
        recipients += await TeamMember.filter(email__in=leads_now, active=True).order_by("id")
    if on_case:
        on_it = await Party.filter(ticket=ticket, role=PartyRole.TEAM).values_list(
            "email", flat=True
        )
        recipients += await TeamMember.filter(email__in=list(on_it), active=True).order_by("id")
    seen: set[str] = set()
    chosen = []
    for member in recipients:
        if member.email in seen or member.email in excluded or member.email == author:
            continue
        seen.add(member.email)
        chosen.append(member)
    return chosen


async def conversation(party: Party) -> list[str]:
    """The Message-IDs of the party's conversation so far, oldest first: what our next email to
    them answers, so their mail program shows one thread."""
    rows = (
        await TicketEvent.filter(party=party)
        .order_by("id")
        .values_list("inbound__message_id", "outbound__message_id")
    )
    ids: list[str] = []
    for inbound_id, outbound_id in rows:
        message_id = inbound_id or outbound_id
        if message_id and message_id not in ids:
            ids.append(str(message_id))
    return ids[-CONVERSATION_DEPTH:]


async def mail_party(
    settings: Settings,
    ticket: Ticket,
    party: Party,
    template: TemplateName,
    variables: dict[str, Any],
    *,
    internal: bool,
    answering: Answering | None = None,
    auto_submitted: str | None = "auto-replied",
    record_as: str = "",
    new_conversation: bool = False,
    attachments: tuple[OutboundAttachment, ...] = (),
    has_reporter: bool | None = None,
) -> OutboundMessage | None:
    """Queue one email about the case to one party, with that party's signed reply address, and
    record it in the case's thread. Without `answering` (or when what it answers has no
    Message-ID) it answers the party's
    conversation so far (`new_conversation`: there is none yet, so no need to look). A party
    the case excludes is never mailed (None is returned): the last line of defence for a
    conflict of interest. `has_reporter`: whether the case has a reporter party, when the
    caller knows (a case it just opened), for a team member's door line; else it is looked up."""
    if party.excluded or (
        party.role != PartyRole.TEAM  # a team party carries its own exclusion
        and settings.member(party.email)
        and party.email in await excluded_emails(ticket)
    ):
        await note(settings, ticket, f"Not sent to {party.email}, who is excluded: {template}.")
        return None
    if (answering is None or answering.message_id is None) and not new_conversation:
        # Nothing to thread on (no message in hand, or one without a Message-ID): answer the
        # party's conversation so far, still linking the row to the message in hand.
        chain = await conversation(party)
        if chain:
            inbound = answering.inbound if answering else None
            answering = Answering(inbound, chain[-1], tuple(chain[:-1]))
    key = signing_key(settings)
    door_line = (
        await doors(settings, ticket, party, key, has_reporter)
        if party.role == PartyRole.TEAM
        else ""
    )
    variables = {**variables, "doors": door_line}
    outbound = await queue_email(
        settings,
        template=template,
        to=[Recipient(party.email, party.name)],
        context={
            "organisation": settings.organisation.model_dump(),
            "ref": ticket.ref,
            **variables,
        },
        ticket=ticket,
        answering=answering or NOTHING,
        auto_submitted=auto_submitted,
        reply_to=reply_address(settings, key, ReplyToken(ticket.id, party.id)),
        party=party,
        attachments=attachments,
    )
    await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.OUTBOUND,
        author=settings.organisation.address,
        body=record_as or f"{template.replace('_', ' ').capitalize()} sent to {party.email}",
        internal=internal,
        outbound=outbound,
        party=party,
    )
    return outbound


async def doors(
    settings: Settings, ticket: Ticket, party: Party, key: bytes, has_reporter: bool | None = None
) -> str:
    """The line that opens every email to a team member: what a reply does, and the member's
    reporter door, the one deliberate way (with `#reply`) to write to the reporter."""
    internal = f"Replies to this email reach only the team on {ticket.ref}"
    if has_reporter is None:
        has_reporter = await reporter_party(ticket) is not None
    if not has_reporter:
        return f"{internal}; this case has no reporter address to answer."
    door = reply_address(settings, key, ReplyToken(ticket.id, party.id, door=True))
    return f"{internal}. To answer the reporter, write to {door} or start your reply with #reply."


async def mail_team(
    settings: Settings,
    ticket: Ticket,
    template: TemplateName,
    variables: dict[str, Any],
    *,
    author: str | None = None,
    leads: bool = False,
    on_case: bool = False,
) -> list[str]:
    """Copy the team on the case (see team_recipients); returns who was mailed. The copies are
    automatic mail (`Auto-Submitted: auto-generated`), so a member's autoresponder that reads
    the header stays silent."""
    mailed = []
    recipients = await team_recipients(
        settings, ticket, author=author, leads=leads, on_case=on_case
    )
    for member in recipients:
        party = await team_party(ticket, member)
        await mail_party(
            settings,
            ticket,
            party,
            template,
            {"member_name": member.name, **variables},
            internal=True,
            auto_submitted="auto-generated",
        )
        mailed.append(member.email)
    return mailed
