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
from tortoise.queryset import QuerySet

from intake.mail.phrases import Places, find
from intake.store.models import Party, PartyRole, Ticket

WHERE = ("subject", "body")


@dataclass(frozen=True)
class EarlierCase:
    ticket_id: int
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


def _visible(cases: QuerySet[Ticket], member_email: str) -> QuerySet[Ticket]:
    """These cases but those the member is excluded from, oldest first."""
    kept_from = Party.filter(email=member_email, excluded=True).values("ticket_id")
    return cases.exclude(id__in=Subquery(kept_from)).order_by("created_at", "id")


def _lines(rows: list[Ticket], found: dict[int, str]) -> list[EarlierCase]:
    return [
        EarlierCase(
            ticket_id=row.id,
            ref=row.ref,
            kind=row.kind,
            status=str(row.status),
            resolution=row.resolution or "",
            opened=row.created_at.strftime("%Y-%m-%d"),
            why=found[row.id],
        )
        for row in rows
    ]


async def _shown(found: dict[int, str], member_email: str) -> list[EarlierCase]:
    """These cases (id -> why) that the member may see: one query, and none when nothing was
    found."""
    if not found:
        return []
    return _lines(await _visible(Ticket.filter(id__in=list(found)), member_email), found)


async def earlier_cases(ticket: Ticket, texts: Places, member_email: str) -> list[EarlierCase]:
    """The cases before this one that the member may see: from the same reporter address, or
    about a reported party this report names. When the report names no reported party (the
    common case, on every new report), the reporter's earlier cases are read in one query."""
    found: dict[int, str] = {}
    for party in await Party.filter(role=PartyRole.REPORTED, ticket_id__lt=ticket.id):
        match = find({"": _names(party)}, WHERE, texts)
        if match is not None:
            why = f"about {party.email}, named here ({match.phrase})"
            found.setdefault(party.ticket_id, why)
    if not ticket.reporter_email:
        return await _shown(found, member_email)
    same_sender = Ticket.filter(reporter_email=ticket.reporter_email, id__lt=ticket.id)
    if not found:
        rows = await _visible(same_sender, member_email)
        return _lines(rows, {row.id: "from the same address" for row in rows})
    for row in await same_sender.values_list("id", flat=True):
        found[int(cast(int, row))] = "from the same address"
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
