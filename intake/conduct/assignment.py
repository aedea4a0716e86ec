"""Who holds a case: the first eligible member in the duty order, and handing a case over."""

from __future__ import annotations

from datetime import datetime

from intake.conduct.mailing import mail_party
from intake.conduct.notes import report_text
from intake.conduct.parties import excluded_emails, team_party
from intake.conduct.roster import duty_order
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import (
    TeamMember,
    Ticket,
)


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
        TemplateName.HANDOVER,
        {
            "member_name": member.name,
            "why": why,
            "text": await report_text(ticket) if text is None else text,
        },
        internal=True,
        auto_submitted="auto-generated",
    )
