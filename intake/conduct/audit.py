"""The audit trail of a case: who saw what of it, when and why.

Two sources make one trail. Every email that carried the case to someone is in the outbox
(its recipients, when the server took it, what it was); the rest is `audit_event` rows: reads on
the command line (the operating-system user), exports, purges and erasures. When a purge clears
an outbox row, it writes the email down as an `audit_event` row first, with every address
outside the team replaced by the party's role, so the trail outlives the content.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from intake.store.models import (
    AuditAction,
    AuditEvent,
    OutboundMessage,
    OutboundState,
    Party,
    TeamMember,
    Ticket,
)

DELIVERED = (OutboundState.SENT, OutboundState.BOUNCED)  # it reached a server: someone has it


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor: str
    action: str
    what: str
    why: str

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "actor": self.actor,
            "action": self.action,
            "what": self.what,
            "why": self.why,
        }


async def record(
    ticket: Ticket | None,
    actor: str,
    action: AuditAction,
    what: str,
    why: str = "",
    at: datetime | None = None,
) -> None:
    await AuditEvent.create(
        ticket=ticket, at=at or datetime.now(UTC), actor=actor, action=action, what=what, why=why
    )


async def record_listed(ticket_ids: Iterable[int], member: str, where: str) -> None:
    """Cases named in an email to a member (an assignment notice's earlier cases, an answer
    to #history): each line tells the member of a case and why it is listed, so the listed
    case's trail says who was told, when, and in what."""
    now = datetime.now(UTC)
    rows = [
        AuditEvent(ticket_id=ticket_id, at=now, actor=member, action=AuditAction.EMAIL, what=where)
        for ticket_id in ticket_ids
    ]
    if rows:
        await AuditEvent.bulk_create(rows)


async def record_reads(tickets: Iterable[Ticket], actor: str, what: str, why: str) -> None:
    now = datetime.now(UTC)
    await AuditEvent.bulk_create(
        [
            AuditEvent(
                ticket=ticket, at=now, actor=actor, action=AuditAction.READ, what=what, why=why
            )
            for ticket in tickets
        ]
    )


def _email_line(row: OutboundMessage, recipients: str) -> AuditLine:
    return AuditLine(
        at=row.sent_at or row.created_at,
        actor=recipients,
        action=str(AuditAction.EMAIL),
        what=f"email {row.id} ({row.kind}): {row.subject}".rstrip(": "),
        why=f"{row.kind}, {row.state}",
    )


async def trail(ticket: Ticket) -> list[AuditLine]:
    """The case's whole trail, oldest first."""
    stored = await AuditEvent.filter(ticket=ticket).order_by("at", "id")
    lines = [AuditLine(e.at, e.actor, str(e.action), e.what, e.why) for e in stored]
    emails = await OutboundMessage.filter(ticket=ticket, state__in=DELIVERED).order_by("id")
    lines += [_email_line(row, ", ".join(row.recipients)) for row in emails if row.recipients]
    return sorted(lines, key=lambda line: line.at)


async def write_down_emails(ticket: Ticket) -> None:
    """Before a purge clears the case's outbox rows: each email delivered, as an audit row in
    which a team member keeps their address and anyone else is named by their role."""
    team = set(cast(list[str], await TeamMember.all().values_list("email", flat=True)))
    roles = dict(await Party.filter(ticket=ticket).values_list("email", "role"))
    emails = await OutboundMessage.filter(ticket=ticket, state__in=DELIVERED).order_by("id")
    lines = []
    for row in emails:
        named = [
            address if address in team else f"the {roles.get(address, 'recipient')}"
            for address in row.recipients
        ]
        line = _email_line(row, ", ".join(named))
        lines.append(
            AuditEvent(
                ticket=ticket,
                at=line.at,
                actor=line.actor,
                action=AuditAction.EMAIL,
                what=f"email {row.id} ({row.kind})",
                why=line.why,
            )
        )
    await AuditEvent.bulk_create(lines)
