"""What handlers do to a case: its parties, its thread, its attachments, mail to its parties.

Every email about a case goes to one party and carries that party's signed reply address, so a
reply threads back as that party. Nothing here sends anything to a team member the case excludes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from intake.conduct.conflicts import Conflict
from intake.conduct.roster import duty_order
from intake.engine.compose import Recipient, queue_email
from intake.engine.tokens import ReplyToken, reply_address, tokens_in
from intake.mail.mime import OutboundAttachment
from intake.mail.parse import ParsedMessage
from intake.mail.sanitize import db_text, display_filename, header_text, human_size
from intake.settings.schema import Settings
from intake.settings.secrets import signing_key
from intake.store.blobs import store_blob
from intake.store.models import (
    Attachment,
    EventKind,
    InboundMessage,
    OutboundMessage,
    Party,
    PartyRole,
    TeamMember,
    Ticket,
    TicketEvent,
)

TIME_FORMAT = "%Y-%m-%d %H:%M UTC"  # instants shown in emails to the team
CONVERSATION_DEPTH = 10  # Message-IDs kept in References: enough for every client to thread


async def add_party(
    ticket: Ticket,
    role: PartyRole,
    email: str,
    name: str = "",
    member: TeamMember | None = None,
    *,
    new: bool = False,
) -> Party:
    """The case's party with that role and address, created on first use (`new`: the caller
    knows there is none yet, so no lookup)."""
    email = email.lower()
    existing = None if new else await Party.get_or_none(ticket=ticket, role=role, email=email)
    if existing is not None:
        return existing
    return await Party.create(
        ticket=ticket,
        role=role,
        email=db_text(email, 320),
        name=db_text(name, 200),
        member=member,
    )


async def team_party(ticket: Ticket, member: TeamMember, *, new: bool = False) -> Party:
    """The member's party on the case; `new`: the caller knows it has none yet (no lookup)."""
    return await add_party(ticket, PartyRole.TEAM, member.email, member.name, member, new=new)


async def reporter_party(ticket: Ticket) -> Party | None:
    return await Party.filter(ticket=ticket, role=PartyRole.REPORTER).order_by("id").first()


async def excluded_emails(ticket: Ticket) -> set[str]:
    rows = await Party.filter(ticket=ticket, excluded=True).values_list("email", flat=True)
    return {str(email) for email in rows}


async def exclude_member(ticket: Ticket, member: TeamMember, reason: str) -> Party:
    """Mark a member excluded from the case: never assigned, never mailed about it again."""
    party = await team_party(ticket, member)
    party.excluded = True
    party.excluded_reason = db_text(reason, 2000)
    await party.save(update_fields=["excluded", "excluded_reason"])
    return party


async def exclude_named(
    ticket: Ticket, conflicts: list[Conflict], *, skip: set[str] | frozenset[str] = frozenset()
) -> list[TeamMember]:
    """Exclude every member these conflicts name (but those in `skip`) from the case; returns
    the members excluded now."""
    excluded = []
    for conflict in conflicts:
        if conflict.member.email in skip:
            continue
        member = await TeamMember.get_or_none(email=conflict.member.email)
        if member is not None:
            await exclude_member(ticket, member, str(conflict))
            excluded.append(member)
    return excluded


async def eligible_assignee(
    settings: Settings, ticket: Ticket | None, now: datetime, excluded: set[str] | None = None
) -> TeamMember | None:
    """Who should hold the case: the first in the duty order (the member on duty, the backup, the
    rest of the rota, then the leads; absent members skipped) whom the case does not exclude;
    None when nobody on the team may. For a case not yet created, pass `excluded` instead."""
    if excluded is None:
        excluded = await excluded_emails(ticket) if ticket is not None else set()
    for email in duty_order(settings, now):
        if email not in excluded:
            member = await TeamMember.get_or_none(email=email, active=True)
            if member is not None:
                return member
    return None


async def team_recipients(
    settings: Settings, ticket: Ticket, *, author: str | None = None, leads: bool = False
) -> list[TeamMember]:
    """Who on the team gets a copy of what happens on the case: the assignee always, the leads
    when `conversations.copy_leads` (or `leads`) is set; never an excluded member, never the
    author."""
    excluded = await excluded_emails(ticket)
    recipients: list[TeamMember] = []
    assignee = await TeamMember.get_or_none(id=ticket.assignee_id, active=True)  # type: ignore[attr-defined]
    if assignee is not None:
        recipients.append(assignee)
    if leads or settings.conversations.copy_leads:
        leads_now = [lead.email for lead in settings.leads]
        recipients += await TeamMember.filter(email__in=leads_now, active=True).order_by("id")
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
    kind: str,
    variables: dict[str, Any],
    *,
    internal: bool,
    answering: InboundMessage | None = None,
    answering_message_id: str | None = None,
    references: tuple[str, ...] = (),
    auto_submitted: str | None = "auto-replied",
    record_as: str = "",
    new_conversation: bool = False,
    attachments: tuple[OutboundAttachment, ...] = (),
) -> OutboundMessage | None:
    """Queue one email about the case to one party, with that party's signed reply address, and
    record it in the case's thread. Without `answering_message_id` it answers the party's
    conversation so far (`new_conversation`: there is none yet, so no need to look). A party
    the case excludes is never mailed (None is returned): the last line of defence for a
    conflict of interest."""
    if party.excluded or (
        party.role != PartyRole.TEAM  # a team party carries its own exclusion
        and settings.member(party.email)
        and party.email in await excluded_emails(ticket)
    ):
        await note(settings, ticket, f"Not sent to {party.email}, who is excluded: {kind}.")
        return None
    if answering_message_id is None and not new_conversation:
        chain = await conversation(party)
        if chain:
            answering_message_id, references = chain[-1], tuple(chain[:-1])
    key = signing_key(settings)
    outbound = await queue_email(
        settings,
        kind=kind,
        to=[Recipient(party.email, party.name)],
        context={
            "organisation": settings.organisation.model_dump(),
            "ref": ticket.ref,
            **variables,
        },
        ticket=ticket,
        answering=answering,
        answering_message_id=answering_message_id,
        references=references,
        auto_submitted=auto_submitted,
        reply_to=reply_address(settings, key, ReplyToken(ticket.id, party.id)),
        party=party,
        attachments=attachments,
    )
    await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.OUTBOUND,
        author=settings.organisation.address,
        body=record_as or f"{kind.replace('_', ' ').capitalize()} sent to {party.email}",
        internal=internal,
        outbound=outbound,
        party=party,
    )
    return outbound


async def mail_team(
    settings: Settings,
    ticket: Ticket,
    kind: str,
    variables: dict[str, Any],
    *,
    author: str | None = None,
    leads: bool = False,
) -> list[str]:
    """Copy the team on the case (see team_recipients); returns who was mailed."""
    mailed = []
    for member in await team_recipients(settings, ticket, author=author, leads=leads):
        party = await team_party(ticket, member)
        await mail_party(
            settings,
            ticket,
            party,
            kind,
            {"member_name": member.name, **variables},
            internal=True,
            auto_submitted="auto-generated",
        )
        mailed.append(member.email)
    return mailed


async def report_text(ticket: Ticket) -> str:
    """The text of the message the case began with."""
    first = await TicketEvent.filter(ticket=ticket, kind=EventKind.INBOUND).order_by("id").first()
    return first.body if first else ""


async def recorded_report(ticket: Ticket) -> dict[str, Any]:
    """The report as the case records it, for the templates that carry it."""
    return {
        "reporter": ticket.reporter_email or "(no sender address)",
        "subject": ticket.subject,
        "received": ticket.created_at.strftime(TIME_FORMAT),
        "text": await report_text(ticket),
        "attachments": [],
    }


def own_or_team_address(settings: Settings, address: str) -> bool:
    """Our own address, one of our reply addresses, or a team member's."""
    own = address == settings.organisation.address or bool(tokens_in(settings, address))
    return own or settings.member(address) is not None


async def sent_today(party: Party, kind: str, now: datetime) -> int:
    """How many emails of this kind the party was sent in the last 24 hours."""
    return await OutboundMessage.filter(
        party=party, kind=kind, created_at__gte=now - timedelta(days=1)
    ).count()


async def hand_over(
    settings: Settings, ticket: Ticket, member: TeamMember, why: str, text: str | None = None
) -> None:
    """Give the case to `member` and send it to them (`text`, else the report it began with)."""
    ticket.assignee = member
    await ticket.save(update_fields=["assignee_id", "updated_at"])
    await mail_party(
        settings,
        ticket,
        await team_party(ticket, member),
        "handover",
        {
            "member_name": member.name,
            "why": why,
            "text": await report_text(ticket) if text is None else text,
        },
        internal=True,
        auto_submitted="auto-generated",
    )


async def outside_contact(settings: Settings, ticket: Ticket) -> Party | None:
    """The case's outside contact, once it has been referred to them."""
    contact = settings.organisation.outside_contact
    if contact is None:
        return None
    return await Party.get_or_none(ticket=ticket, role=PartyRole.OTHER, email=contact)


async def refer_outside(
    settings: Settings, ticket: Ticket, reason: str, report: dict[str, Any] | None = None
) -> str:
    """Nobody on the team may hold the case: it goes, with the report (default: as the case
    records it), to the outside contact, once. Returns what happened, for the log."""
    if await outside_contact(settings, ticket) is not None:
        return "nobody on the team may hold it: already with the outside contact"
    contact = settings.organisation.outside_contact
    if contact is None:
        await note(
            settings,
            ticket,
            f"Nobody on the team may hold this case ({reason}) and no"
            " organisation.outside_contact is set: nobody has been sent it.",
        )
        return "nobody may hold it and no outside contact is set: sent to nobody"
    party = await add_party(
        ticket, PartyRole.OTHER, contact, settings.organisation.outside_contact_name or ""
    )
    await mail_party(
        settings,
        ticket,
        party,
        "referral",
        {"reason": reason, **(report or await recorded_report(ticket))},
        internal=True,
        auto_submitted="auto-generated",
    )
    return f"nobody on the team may hold it ({reason}): referred to {contact}"


def _over_limit(settings: Settings, index: int, size: int) -> str | None:
    limits = settings.limits
    if index >= limits.max_attachments:
        return f"more than {limits.max_attachments} attachments"
    if size > limits.max_attachment_bytes:
        return f"larger than {limits.max_attachment_mb:g} MB"
    return None


def kept_attachments(settings: Settings, message: ParsedMessage) -> tuple[OutboundAttachment, ...]:
    """The message's attachments that the limits let a case keep, ready to send on. Inline
    images (signature logos, mostly) stay behind: they would say who wrote."""
    return tuple(
        OutboundAttachment(
            display_filename(a.filename), header_text(a.content_type, 255), a.payload
        )
        for index, a in enumerate(message.attachments)
        if _over_limit(settings, index, len(a.payload)) is None and not a.inline
    )


async def store_attachments(
    settings: Settings,
    message: ParsedMessage,
    inbound: InboundMessage,
    ticket: Ticket,
    event: TicketEvent,
) -> list[dict[str, Any]]:
    """Store the attachments the limits allow; note each one left out on the case. The raw
    message, with every attachment, stays stored either way. Returns them as template rows."""
    listed = []
    for index, attachment in enumerate(message.attachments):
        name = display_filename(attachment.filename)
        size = len(attachment.payload)
        dropped = _over_limit(settings, index, size)
        listed.append(
            {
                "name": name,
                "type": attachment.content_type,
                "size": human_size(size),
                "dropped": dropped or "",
            }
        )
        if dropped:
            await TicketEvent.create(
                ticket=ticket,
                kind=EventKind.NOTE,
                author=settings.organisation.address,
                body=f"Attachment {name} ({human_size(size)}) not kept: {dropped}."
                f" The original message is stored whole (inbound {inbound.id}).",
                internal=True,
            )
            continue
        digest = store_blob(settings.data_dir, attachment.payload)
        await Attachment.create(
            ticket=ticket,
            event=event,
            filename=db_text(attachment.filename, 1000),
            content_type=header_text(attachment.content_type, 255),
            size=size,
            sha256=digest,
        )
    return listed


async def note(settings: Settings, ticket: Ticket, body: str, author: str | None = None) -> None:
    """An internal entry in the case's thread: what Intake decided, or a team member's note."""
    await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.NOTE,
        author=author or settings.organisation.address,
        body=db_text(body),
        internal=True,
    )
