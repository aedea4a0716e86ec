"""A case's parties: the reporter, the team members on it, the outside contact; who is
excluded from it (a conflict of interest), which no email about the case may ever reach."""

from __future__ import annotations

from intake.conduct.conflicts import Conflict
from intake.mail.sanitize import db_text
from intake.settings.schema import Settings
from intake.store.models import (
    Party,
    PartyRole,
    TeamMember,
    Ticket,
)


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


async def outside_contact(settings: Settings, ticket: Ticket) -> Party | None:
    """The case's outside contact, once it has been referred to them."""
    contact = settings.organisation.outside_contact
    if contact is None:
        return None
    return await Party.get_or_none(ticket=ticket, role=PartyRole.OTHER, email=contact)
