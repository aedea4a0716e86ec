"""The digest: an overview of open cases by email, for a team without a shell.

Every `[digest] every` (default weekly), each member is sent the open cases they hold or are on,
and each lead every open case they are not excluded from: reference, kind, urgency, status,
holder, age, next deadline and last activity. Never report text, never a reporter's address:
digests are skimmed on phones and forwarded. `#digest` sends one at once; `intake digest
--dry-run` prints what would be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from tortoise.expressions import Q
from tortoise.functions import Max
from tortoise.transactions import in_transaction

from intake.engine.compose import Recipient, queue_email
from intake.mail.sanitize import human_duration
from intake.settings.policy import CaseKind
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.locks import hold_job_lock
from intake.store.models import (
    DECIDED,
    InboundMessage,
    OutboundMessage,
    Party,
    PartyRole,
    TeamMember,
    Ticket,
    TicketEvent,
)

TIME = "%Y-%m-%d %H:%M UTC"


@dataclass(frozen=True)
class DigestRow:
    ref: str
    kind: str
    urgent: bool
    status: str
    holder: str
    age: str
    next_deadline: str
    last_activity: str

    def line(self) -> str:
        urgent = "URGENT " if self.urgent else ""
        return (
            f"{self.ref}  {urgent}{self.kind}, {self.status}, held by {self.holder}, open"
            f" {self.age}; next: {self.next_deadline}; last activity {self.last_activity}"
        )


@dataclass(frozen=True)
class Digest:
    member: TeamMember
    rows: list[DigestRow]


def _next_deadline(settings: Settings, ticket: Ticket, imported: bool) -> str:
    """What the deadlines job will next ask of the case; an imported one it leaves alone."""
    if imported:
        return "none: imported by intake backfill --no-replies"
    if ticket.first_response_at is None and ticket.kind != CaseKind.GENERAL:
        due = ticket.created_at + settings.deadlines.first_response_for(ticket.urgent)
        return f"first response due {due.strftime(TIME)}"
    every = human_duration(settings.deadlines.reporter_update)
    return f"an update to the reporter at least every {every}"


def _is_lead(settings: Settings, member: TeamMember) -> bool:
    configured = settings.member(member.email)
    return configured is not None and configured.is_lead


async def _cases_for(settings: Settings, member: TeamMember) -> list[Ticket]:
    """The open cases this member may see in a digest: all not excluding them for a lead; those
    they hold or are on for anyone else."""
    open_cases = Ticket.exclude(status__in=DECIDED)
    excluded = await Party.filter(email=member.email, excluded=True).values_list(
        "ticket_id", flat=True
    )
    if _is_lead(settings, member):
        chosen = open_cases
    else:
        on = await Party.filter(
            email=member.email, role=PartyRole.TEAM, excluded=False
        ).values_list("ticket_id", flat=True)
        chosen = open_cases.filter(Q(id__in=list(on)) | Q(assignee_id=member.id))
    return await chosen.exclude(id__in=list(excluded)).prefetch_related("assignee").order_by("id")


async def _rows(settings: Settings, tickets: list[Ticket], now: datetime) -> dict[int, DigestRow]:
    """The digest rows of these cases, by ticket id: two queries, however many cases."""
    ids = [ticket.id for ticket in tickets]
    quiet = await InboundMessage.filter(quiet=True, ticket_id__in=ids).values_list(
        "ticket_id", flat=True
    )
    imported = {int(cast(int, ticket_id)) for ticket_id in quiet}
    latest = (
        await TicketEvent.filter(ticket_id__in=ids)
        .annotate(last=Max("created_at"))
        .group_by("ticket_id")
        .values_list("ticket_id", "last")
    )
    last = {int(ticket_id): cast(datetime, at) for ticket_id, at in latest}
    return {
        ticket.id: DigestRow(
            ref=ticket.ref,
            kind=ticket.kind,
            urgent=ticket.urgent,
            status=str(ticket.status),
            holder=ticket.assignee.name if ticket.assignee else "nobody",
            age=human_duration(now - ticket.created_at),
            next_deadline=_next_deadline(settings, ticket, ticket.id in imported),
            last_activity=last.get(ticket.id, ticket.created_at).strftime(TIME),
        )
        for ticket in tickets
    }


async def digests(
    settings: Settings, now: datetime, members: list[TeamMember] | None = None
) -> list[Digest]:
    """The digests of these members (default: every active member), each with the open cases
    they may see; a member with none gets none. A case two members see is read once."""
    if members is None:
        members = await TeamMember.filter(active=True).order_by("id")
    cases = {member.id: await _cases_for(settings, member) for member in members}
    unique = {ticket.id: ticket for listed in cases.values() for ticket in listed}
    rows = await _rows(settings, list(unique.values()), now)
    return [
        Digest(member, [rows[ticket.id] for ticket in cases[member.id]])
        for member in members
        if cases[member.id]
    ]


async def digest_for(settings: Settings, member: TeamMember, now: datetime) -> Digest:
    """One member's digest, even an empty one (`#digest` answers whatever there is)."""
    found = await digests(settings, now, [member])
    return found[0] if found else Digest(member, [])


async def send_digest(settings: Settings, digest: Digest, now: datetime) -> OutboundMessage:
    member = digest.member
    return await queue_email(
        settings,
        template=TemplateName.DIGEST,
        to=[Recipient(member.email, member.name)],
        context={
            "organisation": settings.organisation.model_dump(),
            "member_name": member.name,
            "date": now.strftime("%Y-%m-%d"),
            "rows": [row.line() for row in digest.rows],
            "lead": _is_lead(settings, member),
        },
        auto_submitted="auto-generated",
    )


async def due_digests(settings: Settings, now: datetime) -> list[Digest]:
    """The digests due at `now`: for every active member with open cases to show who had none in
    the last `[digest] every`."""
    if not settings.digest.enabled:
        return []
    recent = await OutboundMessage.filter(
        kind=TemplateName.DIGEST, created_at__gt=now - settings.digest.every
    ).values_list("recipients", flat=True)
    sent = {str(address) for recipients in recent for address in (recipients or [])}
    members = await TeamMember.filter(active=True).exclude(email__in=list(sent)).order_by("id")
    return await digests(settings, now, members)


async def run_digests(settings: Settings, now: datetime, *, due_only: bool = True) -> list[Digest]:
    """Send the digests that are due (`due_only=False`: every member's, now) and return them.
    One transaction, holding the digest job's lock: when several daemons share the database, a
    digest is sent once. The daemon's deadlines job and `intake poll` run it after the deadline
    reminders."""
    async with in_transaction() as connection:
        await hold_job_lock(connection, "digest")
        chosen = await due_digests(settings, now) if due_only else await digests(settings, now)
        for digest in chosen:
            await send_digest(settings, digest, now)
    return chosen


def sent_lines(sent: list[Digest]) -> list[str]:
    """One log line per digest sent."""
    return [f"digest of {len(d.rows)} open case(s) sent to {d.member.email}" for d in sent]
