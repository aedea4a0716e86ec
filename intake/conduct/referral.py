"""A case nobody on the team may hold goes to the configured outside contact, once."""

from __future__ import annotations

from typing import Any

from intake.conduct.mailing import mail_party
from intake.conduct.notes import note, recorded_report
from intake.conduct.parties import add_party, outside_contact
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import (
    PartyRole,
    Ticket,
)


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
        TemplateName.REFERRAL,
        {"reason": reason, **(report or await recorded_report(ticket))},
        internal=True,
        auto_submitted="auto-generated",
    )
    return f"nobody on the team may hold it ({reason}): referred to {contact}"
