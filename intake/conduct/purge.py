"""Purging: a decided case's content goes when its retention period has run out.

What a purge keeps of a case: its reference, kind, status, resolution and its duration, the
dates (created, acknowledged, first response, resolved, closed, purged), who resolved it, its
deadline reminders, the arrival and sending times of its mail (so `intake stats` gives the same
figures after the purge as before), its audit trail (emails written down with roles in place of
outside addresses) and the hashes that stop a re-fetched message from opening it again.

What it removes: raw messages, bodies and HTML, attachments (their files too, unless a case not
purged has the same file), addresses and names (the reporter's, the parties', the recipients'),
subjects, reasons, and the parties themselves, so their reply addresses no longer lead anywhere.
Mail not sent yet is cancelled. The thread gets one entry saying when and by which rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from tortoise.transactions import in_transaction

from intake.conduct.audit import record, write_down_emails
from intake.conduct.retention import due_at, holding, pointed_at_by_open_cases
from intake.settings.schema import Settings
from intake.store.blobs import delete_blob
from intake.store.compaction import compact
from intake.store.leases import release_lease, take_lease
from intake.store.models import (
    DECIDED,
    Attachment,
    AuditAction,
    EventKind,
    InboundMessage,
    InboundState,
    OutboundMessage,
    OutboundState,
    Party,
    Ticket,
    TicketEvent,
)

NOT_SENT = (OutboundState.QUEUED, OutboundState.FAILED)
PURGE_ACTOR = "intake (retention policy)"  # who the records name for a scheduled purge


@dataclass(frozen=True)
class Due:
    """A case whose retention period has run out."""

    ref: str
    kind: str
    resolution: str | None
    rule: str
    due_at: datetime
    held: str | None = None  # why it is kept all the same


@dataclass
class Removed:
    """What one purge removed, for its record."""

    messages: int = 0
    emails: int = 0
    entries: int = 0
    attachments: int = 0
    parties: int = 0
    files: list[str] = field(default_factory=list)  # attachment digests no longer used

    def text(self) -> str:
        return (
            f"removed {self.messages} message(s), {self.emails} email(s), {self.entries} thread"
            f" entr{'y' if self.entries == 1 else 'ies'}, {self.attachments} attachment(s),"
            f" {self.parties} part{'y' if self.parties == 1 else 'ies'}"
        )


@dataclass
class PurgeRun:
    purged: list[Due]
    held: list[Due]
    no_case_messages: int = 0
    no_case_emails: int = 0
    files_removed: int = 0


async def cases_due(settings: Settings, now: datetime) -> tuple[list[Due], list[Due]]:
    """The decided cases whose period has run out: those to purge, and those held back."""
    pointed_at = await pointed_at_by_open_cases()
    due: list[Due] = []
    held: list[Due] = []
    for ticket in await Ticket.filter(status__in=DECIDED, purged_at__isnull=True).order_by("id"):
        when = due_at(settings, ticket)
        if when is None or when > now:
            continue
        reason = "an open case points at it (an appeal)" if ticket.id in pointed_at else None
        item = Due(
            ticket.ref, ticket.kind, ticket.resolution, holding(settings, ticket).rule, when, reason
        )
        (held if reason else due).append(item)
    return due, held


async def run_purge(settings: Settings, now: datetime, actor: str, dry_run: bool) -> PurgeRun:
    """Purge what is due (with `dry_run`, only say what would go)."""
    due, held = await cases_due(settings, now)
    run = PurgeRun(due, held)
    if dry_run:
        return run
    files: set[str] = set()
    for item in due:
        removed = await purge_case(item, actor, now)
        files.update(removed.files if removed else ())
    run.no_case_messages, run.no_case_emails = await purge_no_case_mail(settings, now)
    run.files_removed = await remove_unused_files(settings, files)
    if due or run.no_case_messages or run.no_case_emails:
        await compact()
    return run


async def scheduled_purge(settings: Settings, now: datetime, actor: str) -> PurgeRun | None:
    """The scheduled purge, once per `[retention] every` across every daemon and cron run
    sharing the database (a lease); None when it is not due or the policy leaves it to hand."""
    retention = settings.retention
    if not retention.purge or not await take_lease("purge", retention.every * 0.9, renew=False):
        return None
    try:
        return await run_purge(settings, now, actor, dry_run=False)
    except Exception:
        await release_lease("purge")  # a failed run is no run: the retry must run
        raise


def purged_lines(run: PurgeRun | None) -> list[str]:
    """One log line per case purged, and one for mail about no case."""
    if run is None:
        return []
    lines = [f"purged {item.ref} by {item.rule}" for item in run.purged]
    if run.no_case_messages or run.no_case_emails:
        lines.append(
            f"purged {run.no_case_messages} message(s) and {run.no_case_emails} email(s)"
            " about no case"
        )
    return lines


async def purge_case(item: Due, actor: str, now: datetime) -> Removed | None:
    """Remove one case's content; None when another run purged it first."""
    async with in_transaction():
        ticket = await Ticket.select_for_update().get_or_none(ref=item.ref, purged_at__isnull=True)
        if ticket is None:
            return None
        await write_down_emails(ticket)
        removed = await _remove_content(ticket)
        ticket.subject = ticket.reporter_email = ticket.reporter_name = ""
        ticket.resolution_reason = ticket.kind_reason = ""
        ticket.purged_at = now
        await ticket.save()
        await TicketEvent.create(
            ticket=ticket,
            kind=EventKind.STATE,
            author=actor,
            body=f"Content purged {now:%Y-%m-%d} by the retention policy ({item.rule}):"
            f" {removed.text()}.",
            internal=True,
        )
        await record(ticket, actor, AuditAction.PURGE, removed.text(), item.rule)
    return removed


async def _remove_content(ticket: Ticket) -> Removed:
    removed = Removed()
    attachments = Attachment.filter(ticket=ticket)
    removed.files = cast(list[str], await attachments.values_list("sha256", flat=True))
    removed.attachments = await attachments.delete()
    removed.entries = await TicketEvent.filter(ticket=ticket).delete()
    outbound = OutboundMessage.filter(ticket=ticket)
    await outbound.filter(state__in=NOT_SENT).update(
        state=OutboundState.CANCELLED, next_attempt_at=None
    )
    removed.emails = await outbound.update(
        raw_bytes=b"", recipients=[], subject="", sender="", last_error=None, party_id=None
    )
    removed.parties = await Party.filter(ticket=ticket).delete()
    removed.messages = await InboundMessage.filter(ticket=ticket).update(
        raw_bytes=b"", message_id=None, reason="", last_error=None
    )
    return removed


async def purge_no_case_mail(settings: Settings, now: datetime) -> tuple[int, int]:
    """Mail about no case, older than `[retention] no_case`, loses its bytes and addresses."""
    keep = settings.retention.no_case
    if keep is None:
        return 0, 0
    cutoff = now - keep
    messages = await (
        InboundMessage.filter(ticket_id__isnull=True, state=InboundState.DONE)
        .filter(received_at__lt=cutoff)
        .exclude(raw_bytes=b"")
        .update(raw_bytes=b"", message_id=None, reason="", last_error=None)
    )
    emails = await (
        OutboundMessage.filter(ticket_id__isnull=True, created_at__lt=cutoff)
        .exclude(state__in=NOT_SENT)
        .exclude(raw_bytes=b"")
        .update(raw_bytes=b"", recipients=[], subject="", last_error=None)
    )
    return messages, emails


async def remove_unused_files(settings: Settings, digests: set[str]) -> int:
    """Delete the attachment files no remaining attachment row names."""
    if not digests:
        return 0
    rows = await Attachment.filter(sha256__in=list(digests)).values_list("sha256", flat=True)
    used = set(cast(list[str], rows))
    return sum(delete_blob(settings.data_dir, digest) for digest in digests - used)
