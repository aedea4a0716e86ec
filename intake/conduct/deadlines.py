"""Deadlines on cases: the team is reminded when something the reporter was promised falls due.

The rules: a first response within `deadlines.first_response` (shorter for urgent cases), else the
assignee is reminded, and `escalate_after` later the backup on duty and the leads; an open case's
reporter hears from us at least every `reporter_update`; a temporary measure's end is announced
`ban_expiry_notice` ahead. Reminders carry the case reference and what is due, never the report.

Each reminder is a `Reminder` row, unique per case and kind, inserted before its emails are queued
and in the same transaction. A reminder is therefore sent once, even when two runs overlap: the
later insert fails, and that run sends nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from intake.conduct.mailing import mail_party
from intake.conduct.parties import excluded_emails, reporter_party, team_party
from intake.conduct.roster import shift_at
from intake.mail.sanitize import human_duration
from intake.settings.policy import CaseKind
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import (
    DECIDED,
    InboundMessage,
    OutboundMessage,
    Reminder,
    TeamMember,
    Ticket,
)

HOW_TO_ANSWER = (
    "To answer the reporter, start your reply with #reply or write to your reporter door (the"
    " first line of this email): only what you write is sent to them, from the team's address."
    " A plain reply reaches only the team; #help lists the commands."
)


async def _claim(ticket: Ticket, kind: str) -> bool:
    """Record the reminder; False when it is recorded already (by a run overlapping this one).
    The savepoint keeps the refused insert from spoiling the transaction around it."""
    try:
        async with in_transaction():
            await Reminder.create(ticket=ticket, kind=kind)
    except IntegrityError:
        return False
    return True


async def _active(email: str | None) -> TeamMember | None:
    return await TeamMember.get_or_none(email=email, active=True) if email else None


def _assignee(ticket: Ticket) -> TeamMember | None:
    """Who holds the case; None when nobody does or they have left the team."""
    assignee = ticket.assignee
    return assignee if assignee is not None and assignee.active else None


@dataclass
class _Run:
    settings: Settings
    now: datetime
    done: set[tuple[int, str]]  # (ticket id, kind) of the reminders recorded before this run
    sent: list[str] = field(default_factory=list)

    async def remind(
        self, ticket: Ticket, kind: str, members: list[TeamMember], headline: str, text: str
    ) -> None:
        """Send one reminder, once, to each of `members` the case does not exclude."""
        if (ticket.id, kind) in self.done:
            return
        excluded = await excluded_emails(ticket)
        chosen: dict[str, TeamMember] = {}
        for member in members:
            if member.email not in excluded:
                chosen.setdefault(member.email, member)
        if not chosen or not await _claim(ticket, kind):
            return
        for member in chosen.values():
            await mail_party(
                self.settings,
                ticket,
                await team_party(ticket, member),
                TemplateName.REMINDER,
                {"member_name": member.name, "headline": headline, "text": text},
                internal=True,
                auto_submitted="auto-generated",
                record_as=f"Reminder ({kind}) sent to {member.email}: {headline}",
            )
            self.sent.append(f"{ticket.ref}: {kind} reminder sent to {member.email}")

    async def first_response(self, ticket: Ticket) -> None:
        deadline = self.settings.deadlines.first_response_for(ticket.urgent)
        assignee = _assignee(ticket)
        if assignee is None or self.now < ticket.created_at + deadline:
            return
        await self.remind(
            ticket,
            "first_response",
            [assignee],
            "First response due",
            f"{ticket.ref} has had no reply to the reporter for"
            f" {human_duration(self.now - ticket.created_at)}; the first response on"
            f" {'an urgent' if ticket.urgent else 'a'} case is due within"
            f" {human_duration(deadline)}.\n\n{HOW_TO_ANSWER}",
        )

    async def escalation(self, ticket: Ticket) -> None:
        deadlines = self.settings.deadlines
        deadline = deadlines.first_response_for(ticket.urgent)
        if self.now < ticket.created_at + deadline + deadlines.escalation_for(ticket.urgent):
            return
        assignee = _assignee(ticket)
        wanted = [shift_at(self.settings, self.now).backup, *self.settings.leads]
        members = [
            member
            for member in [await _active(m.email) for m in wanted]
            if member is not None and (assignee is None or member.email != assignee.email)
        ]
        holder = f"It is held by {assignee.name}." if assignee else "Nobody holds it."
        await self.remind(
            ticket,
            "escalation",
            members,
            "Escalated: no first response",
            f"{ticket.ref} has had no reply to the reporter for"
            f" {human_duration(self.now - ticket.created_at)}, although the first response is"
            f" due within {human_duration(deadline)}. {holder} The backup on duty and the team"
            f" leads are told.\n\nReply with #assign <member> to hand the case over."
            f" {HOW_TO_ANSWER}",
        )

    async def reporter_update(self, ticket: Ticket) -> None:
        """Once per period (counted from the case's creation) in which the reporter heard
        nothing from us for a whole `reporter_update`."""
        every = self.settings.deadlines.reporter_update
        kind = f"update:{(self.now - ticket.created_at) // every}"
        assignee = _assignee(ticket)
        if assignee is None or (ticket.id, kind) in self.done:  # spare the queries below
            return
        reporter = await reporter_party(ticket)
        if reporter is None:
            return
        times = (  # the time only: the row's stored email can be large
            await OutboundMessage.filter(party=reporter)
            .order_by("-created_at")
            .limit(1)
            .values_list("created_at", flat=True)
        )
        latest = cast(datetime, times[0]) if times else None
        last = latest if latest is not None else ticket.created_at
        if self.now - last < every:
            return
        since = human_duration(self.now - last)
        heard = (
            f"last heard from us {since} ago"
            if latest is not None
            else f"has not heard from us since the case was opened {since} ago"
        )
        await self.remind(
            ticket,
            kind,
            [assignee],
            "The reporter is due an update",
            f"The reporter of {ticket.ref} {heard}. The reporter of an open case hears from us at"
            f" least every {human_duration(every)}, even if only to say that it is still being"
            f" worked on.\n\n{HOW_TO_ANSWER}",
        )

    async def ban_expiry(self, ticket: Ticket) -> None:
        ends = ticket.resolution_ends_at
        assert ends is not None  # selected for it
        member = _assignee(ticket) or await _active(ticket.resolved_by)
        await self.remind(
            ticket,
            "ban_expiry",
            [member] if member is not None else [],
            "A temporary measure ends soon",
            f"The temporary measure on {ticket.ref}, {ticket.resolution}, ends at"
            f" {ends.astimezone(UTC):%Y-%m-%d %H:%M UTC}, in {human_duration(ends - self.now)}."
            " If anything has to happen when it ends, or it should be extended, now is the time.",
        )


async def run_deadlines(settings: Settings, now: datetime) -> list[str]:
    """Send the reminders that are due at `now`, all in one transaction; one line per email."""
    deadlines = settings.deadlines
    earliest = min(
        deadlines.first_response_for(urgent=True),
        deadlines.first_response_for(urgent=False),
        deadlines.reporter_update,
    )
    quiet = InboundMessage.filter(quiet=True, ticket_id__not_isnull=True)
    async with in_transaction():
        due = (
            await Ticket.filter(created_at__lte=now - earliest)
            .exclude(status__in=DECIDED)
            .exclude(kind=CaseKind.GENERAL)  # not a report: nobody owes its sender a response
            # cases imported by `intake backfill --no-replies`: old mail, taken up at leisure
            .exclude(id__in=Subquery(quiet.values("ticket_id")))
            .prefetch_related("assignee")
            .order_by("id")
        )
        ending = (
            await Ticket.filter(
                resolution_ends_at__gt=now,
                resolution_ends_at__lte=now + deadlines.ban_expiry_notice,
            )
            .prefetch_related("assignee")
            .order_by("id")
        )
        recorded = await Reminder.filter(
            ticket_id__in=[ticket.id for ticket in (*due, *ending)]
        ).values_list("ticket_id", "kind")
        run = _Run(settings, now, {(int(ticket_id), str(kind)) for ticket_id, kind in recorded})
        for ticket in due:
            if ticket.first_response_at is None:
                await run.first_response(ticket)
                await run.escalation(ticket)
            await run.reporter_update(ticket)
        for ticket in ending:
            await run.ban_expiry(ticket)
    return run.sent
