"""Team members are configured in settings and mirrored into the database at start."""

from __future__ import annotations

from intake.config import Settings
from intake.models import TeamMember


async def sync_team(settings: Settings) -> None:
    configured = {member.email: member for member in settings.team}
    for member in settings.team:
        await TeamMember.update_or_create(
            email=member.email,
            defaults={"name": member.name, "roles": ",".join(member.roles), "active": True},
        )
    await TeamMember.filter(active=True).exclude(email__in=list(configured)).update(active=False)
