"""Earlier cases, for the team: how a pattern of behaviour shows.

A case's earlier cases are those from the same reporter address, and those whose reported party
(recorded by `#contact ADDRESS reported`) this report names by address, by display name or by
handle (`@` and the local part of their address). `#history WHO` answers the same for anyone.
A member is never shown a case they are excluded from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from tortoise.expressions import Subquery

from intake.mail.phrases import Places, find
from intake.store.models import Party, PartyRole, Ticket

WHERE = ("subject", "body")


@dataclass(frozen=True)
class EarlierCase:
    ref: str
    kind: str
    status: str
    resolution: str
    opened: str  # the day, YYYY-MM-DD
    why: str  # "from the same address", "about max@example.com"

    def line(self) -> str:
        resolution = f", {self.resolution}" if self.resolution else ""
        return f"{self.ref} ({self.kind}, {self.status}{resolution}, {self.opened}): {self.why}"


def _names(party: Party) -> tuple[str, ...]:
    """The ways a report may name a reported party."""
    handle = f"@{party.email.split('@', 1)[0]}" if "@" in party.email else ""
    return tuple(name for name in (party.email, party.name, handle) if name)


async def _shown(found: dict[int, str], member_email: str) -> list[EarlierCase]:
    """These cases (id -> why) but those the member is excluded from, oldest first: one query,
    and none when nothing was found (the common case, on every new report)."""
    if not found:
        return []
    kept_from = Party.filter(email=member_email, excluded=True).values("ticket_id")
    rows = (
        await Ticket.filter(id__in=list(found))
        .exclude(id__in=Subquery(kept_from))
        .order_by("created_at", "id")
    )
    return [
        EarlierCase(
            ref=row.ref,
            kind=row.kind,
            status=str(row.status),
            resolution=row.resolution or "",
            opened=row.created_at.strftime("%Y-%m-%d"),
            why=found[row.id],
        )
        for row in rows
    ]


async def earlier_cases(ticket: Ticket, texts: Places, member_email: str) -> list[EarlierCase]:
    """The cases before this one that the member may see: from the same reporter address, or
    about a reported party this report names."""
    found: dict[int, str] = {}
    if ticket.reporter_email:
        same_sender = await Ticket.filter(
            reporter_email=ticket.reporter_email, id__lt=ticket.id
        ).values_list("id", flat=True)
        found.update({int(cast(int, row)): "from the same address" for row in same_sender})
    reported = await Party.filter(role=PartyRole.REPORTED, ticket_id__lt=ticket.id)
    for party in reported:
        match = find({"": _names(party)}, WHERE, texts)
        if match is not None:
            why = f"about {party.email}, named here ({match.phrase})"
            found.setdefault(party.ticket_id, why)
    return await _shown(found, member_email)


async def history(who: str, member_email: str) -> list[EarlierCase]:
    """Every case from `who` (an address) or about them (a reported party by address, display
    name or handle), that the member may see."""
    wanted = who.strip().lower()
    found: dict[int, str] = {}
    if "@" in wanted and not wanted.startswith("@"):
        sent = await Ticket.filter(reporter_email=wanted).values_list("id", flat=True)
        found.update({int(cast(int, row)): f"reported by {wanted}" for row in sent})
    for party in await Party.filter(role=PartyRole.REPORTED):
        if wanted in (name.lower() for name in _names(party)):
            found.setdefault(party.ticket_id, f"about {party.email}")
    return await _shown(found, member_email)
