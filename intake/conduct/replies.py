"""May we answer? The reply policy and every daily cap on what Intake sends by itself."""

from __future__ import annotations

from datetime import datetime, timedelta

from intake.engine.tokens import tokens_in
from intake.settings.schema import Settings
from intake.store.models import (
    OutboundMessage,
    Party,
)


def own_or_team_address(settings: Settings, address: str) -> bool:
    """Our own address, one of our reply addresses, or a team member's."""
    own = address == settings.organisation.address or bool(tokens_in(settings, address))
    return own or settings.member(address) is not None


async def sent_today(party: Party, kind: str, now: datetime) -> int:
    """How many emails of this kind the party was sent in the last 24 hours."""
    return await OutboundMessage.filter(
        party=party, kind=kind, created_at__gte=now - timedelta(days=1)
    ).count()
