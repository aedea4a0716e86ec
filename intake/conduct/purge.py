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

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from tortoise.transactions import in_transaction

from intake.conduct.audit import record, write_down_emails
from intake.conduct.retention import due_at, holding, last_mail, pointed_at_by_open_cases
from intake.settings.schema import Settings
from intake.store.blobs import delete_blob, stored_blobs
from intake.store.compaction import compact
from intake.store.job_runs import job_succeeded
from intake.store.leases import release_lease, take_lease
from intake.store.models import (
    DECIDED,
    NOT_SENT,
    Attachment,
    AuditAction,
    EventKind,
    InboundMessage,
    InboundState,
    JobRun,
    OutboundMessage,
    OutboundState,
    Party,
    RetentionPolicy,
    Ticket,
    TicketEvent,
)

# A file of a removed attachment that is stored again within this of its row's creation is
# kept; an unused file older than FILE_GRACE (left by a run that died) goes at the next purge.
FILE_SLACK = timedelta(seconds=2)
FILE_GRACE = timedelta(days=1)
PURGE_ACTOR = "intake (retention policy)"  # who the records name for a scheduled purge
LAST_PURGE = "retention purge"  # the job_run row of the last scheduled purge
PURGE_LEASE = "purge"
PURGE_LEASE_FOR = timedelta(hours=1)  # longer than any purge; a dead holder's lapses


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
    files: dict[str, datetime] = field(default_factory=dict)  # digest: when its row was made

    def text(self) -> str:
        return (
            f"removed {self.messages} message(s), {self.emails} email(s), {self.entries} thread"
            f" entr{'y' if self.entries == 1 else 'ies'}, {self.attachments} attachment(s),"
            f" {self.parties} part{'y' if self.parties == 1 else 'ies'}"
        )


@dataclass
class PurgeRun:
    purged: list[Due]  # in a dry run, those that would be
    held: list[Due]
    no_case_messages: int = 0
    no_case_emails: int = 0
    files_removed: int = 0
    # A scheduled run of a policy still in its grace: nothing removed, purging starts then.
    waits_until: datetime | None = None


async def cases_due(settings: Settings, now: datetime) -> tuple[list[Due], list[Due]]:
    """The decided cases whose period has run out: those to purge, and those held back."""
    pointed_at = await pointed_at_by_open_cases()
    waiting = {"status__in": DECIDED, "purged_at__isnull": True}
    mail = await last_mail(**waiting)
    due: list[Due] = []
    held: list[Due] = []
    for ticket in await Ticket.filter(**waiting).order_by("id"):
        when = due_at(settings, ticket, mail.get(ticket.id))
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
    files: dict[str, datetime] = {}
    run.purged = []
    for item in due:
        removed = await purge_case(settings, item, actor, now)
        if removed is not None:  # None: no longer due once locked, or purged by another run
            run.purged.append(item)
            files.update(removed.files)
    run.no_case_messages, run.no_case_emails = await purge_no_case_mail(settings, now)
    run.files_removed = await remove_unused_files(settings, files)
    run.files_removed += await sweep_unused_files(settings, now - FILE_GRACE)
    if run.purged or run.no_case_messages or run.no_case_emails:
        await compact()
    return run


async def scheduled_purge(settings: Settings, now: datetime, actor: str) -> PurgeRun | None:
    """The scheduled purge, once per `[retention] every` across every daemon and cron run
    sharing the database; None when it is not due or the policy leaves it to hand. The last
    run is a `job_run` row (a lease would be freed when a cron run exits); the lease only keeps
    two runs from overlapping."""
    retention = settings.retention
    if not retention.purge or not await _purge_due(now, retention.every):
        return None
    if not await take_lease(PURGE_LEASE, PURGE_LEASE_FOR):
        return None
    try:
        if not await _purge_due(now, retention.every):  # another run finished meanwhile
            return None
        starts = await _purging_starts(settings, now)
        run = await run_purge(settings, now, actor, dry_run=starts > now)
        if starts > now:
            run.waits_until = starts
        await job_succeeded(LAST_PURGE, now)
        return run
    finally:
        await release_lease(PURGE_LEASE)


async def _purging_starts(settings: Settings, now: datetime) -> datetime:
    """When the scheduled purge may remove what this policy lets go: `grace` after it came
    into force on this database, which is now when the last run met another policy (an
    upgrade, changed rules, or going back to an older policy that kept less)."""
    fingerprint = settings.retention_fingerprint
    latest = await RetentionPolicy.all().order_by("-last_seen_at").first()
    if latest is not None and latest.fingerprint == fingerprint:
        latest.last_seen_at = now
        await latest.save(update_fields=["last_seen_at"])
        return latest.in_force_since + settings.retention.grace
    policy = RetentionPolicy(fingerprint=fingerprint, in_force_since=now, last_seen_at=now)
    await RetentionPolicy.bulk_create(
        [policy], on_conflict=["fingerprint"], update_fields=["in_force_since", "last_seen_at"]
    )
    return now + settings.retention.grace


async def policy_starts(settings: Settings) -> datetime | None:
    """When purging by the policy in the settings starts; None while the scheduled purge has
    not met it yet (its grace starts at the next run)."""
    latest = await RetentionPolicy.all().order_by("-last_seen_at").first()
    if latest is None or latest.fingerprint != settings.retention_fingerprint:
        return None
    return latest.in_force_since + settings.retention.grace


async def _purge_due(now: datetime, every: timedelta) -> bool:
    last = await JobRun.get_or_none(name=LAST_PURGE)
    return last is None or last.succeeded_at is None or now - last.succeeded_at >= every * 0.9


def report_purge(run: PurgeRun | None, log: logging.Logger) -> None:
    """A scheduled purge in the log: a warning while the policy is in its grace, else a line
    per case purged and one for mail about no case."""
    if run is None:
        return
    if run.waits_until is not None:
        if run.purged:
            log.warning(
                "retention: this policy is new on this database; %d case(s) it lets go are kept"
                " until %s ([retention] grace), then purged: `intake purge --dry-run` lists"
                " them, [retention] purge = false keeps them",
                len(run.purged),
                f"{run.waits_until:%Y-%m-%d %H:%M} UTC",
            )
        return
    for line in _purged_lines(run):
        log.info("%s", line)


def _purged_lines(run: PurgeRun) -> list[str]:
    lines = [f"purged {item.ref} by {item.rule}" for item in run.purged]
    if run.no_case_messages or run.no_case_emails:
        lines.append(
            f"purged {run.no_case_messages} message(s) and {run.no_case_emails} email(s)"
            " about no case"
        )
    return lines


async def purge_case(settings: Settings, item: Due, actor: str, now: datetime) -> Removed | None:
    """Remove one case's content; None when, once it is locked, it is no longer due (another
    run purged it, it was reopened, mail came, an appeal began)."""
    async with in_transaction():
        ticket = await Ticket.select_for_update().get_or_none(ref=item.ref, purged_at__isnull=True)
        if ticket is None:
            return None
        when = due_at(settings, ticket, (await last_mail(id=ticket.id)).get(ticket.id))
        if when is None or when > now or ticket.id in await pointed_at_by_open_cases():
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
    for digest, created in await attachments.values_list("sha256", "created_at"):
        removed.files[digest] = max(created, removed.files.get(digest, created))
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
        .exclude(state=OutboundState.QUEUED)
        .exclude(raw_bytes=b"")
        .update(raw_bytes=b"", recipients=[], subject="", last_error=None)
    )
    return messages, emails


async def remove_unused_files(settings: Settings, files: Mapping[str, datetime]) -> int:
    """Delete the files of removed attachments (digest: when the newest removed row was made)
    that no remaining row names, unless stored again since: a new message with the same file
    may be in a transaction not yet committed."""
    if not files:
        return 0
    rows = await Attachment.filter(sha256__in=list(files)).values_list("sha256", flat=True)
    used = set(cast(list[str], rows))
    return sum(
        delete_blob(settings.data_dir, digest, stored_before=created + FILE_SLACK)
        for digest, created in files.items()
        if digest not in used
    )


async def sweep_unused_files(settings: Settings, older_than: datetime) -> int:
    """Delete the files no attachment row names that were last stored before `older_than`:
    those a purge or an erasure meant to remove before it died."""
    digests = stored_blobs(settings.data_dir, older_than)
    removed = 0
    for start in range(0, len(digests), 500):
        batch = digests[start : start + 500]
        rows = await Attachment.filter(sha256__in=batch).values_list("sha256", flat=True)
        used = set(cast(list[str], rows))
        removed += sum(
            delete_blob(settings.data_dir, digest, stored_before=older_than)
            for digest in batch
            if digest not in used
        )
    return removed
