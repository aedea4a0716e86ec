"""Team members are configured in settings and mirrored into the database at start.

A change to the team reaches the open cases at once: a member who joined (or got a new alias) is
kept from every open case that names them, and a case held by a member who left passes to the
next eligible member, who is sent it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from intake.conduct.assignment import eligible_assignee, hand_over
from intake.conduct.conflicts import named_members_in
from intake.conduct.notes import note
from intake.conduct.parties import exclude_named
from intake.mail.phrases import Places
from intake.settings.schema import Settings
from intake.store.models import DECIDED, EventKind, Party, TeamMember, Ticket, TicketEvent


async def sync_team(settings: Settings) -> None:
    configured = {member.email: member for member in settings.team}
    for member in settings.team:
        await TeamMember.update_or_create(
            email=member.email,
            defaults={"name": member.name, "roles": ",".join(member.roles), "active": True},
        )
    await TeamMember.filter(active=True).exclude(email__in=list(configured)).update(active=False)
    await recheck_open_cases(settings, datetime.now(UTC))


async def _first_texts(tickets: list[Ticket]) -> dict[int, str]:
    """The text each case began with, by ticket id, in one query."""
    texts: dict[int, str] = {}
    rows = (
        await TicketEvent.filter(ticket_id__in=[t.id for t in tickets], kind=EventKind.INBOUND)
        .order_by("id")
        .values_list("ticket_id", "body")
    )
    for ticket_id, body in rows:
        texts.setdefault(int(ticket_id), str(body))
    return texts


async def recheck_open_cases(settings: Settings, now: datetime) -> None:
    tickets = await Ticket.exclude(status__in=DECIDED).order_by("id")
    if not tickets:
        return
    texts = await _first_texts(tickets)
    involved: dict[int, set[str]] = {}
    for ticket_id, email in await Party.filter(ticket_id__in=[t.id for t in tickets]).values_list(
        "ticket_id", "email"
    ):
        involved.setdefault(int(ticket_id), set()).add(str(email))
    members = {m.id: m for m in await TeamMember.all()}
    for ticket in tickets:
        places = Places({"subject": ticket.subject, "body": texts.get(ticket.id, "")})
        conflicts = named_members_in(settings, places)
        await exclude_named(ticket, conflicts, skip=involved.get(ticket.id, set()))
        holder = members.get(ticket.assignee_id) if ticket.assignee_id else None
        if holder is not None and not holder.active:
            await _pass_on(settings, ticket, holder, now)


async def _pass_on(settings: Settings, ticket: Ticket, left: TeamMember, now: datetime) -> None:
    """The holder left the team: the case goes to the next eligible member, who is sent it."""
    successor = await eligible_assignee(settings, ticket, now)
    if successor is None:
        ticket.assignee = None
        await ticket.save(update_fields=["assignee_id", "updated_at"])
        await note(settings, ticket, f"{left.email} left the team; nobody is left to hold this.")
        return
    await hand_over(settings, ticket, successor, f"{left.name} has left the team")
