"""The tables. Unique keys make a re-fetch of the same message a no-op."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class InboundState(StrEnum):
    PENDING = "pending"  # stored, waiting to be processed
    DONE = "done"  # processed; `outcome` says how
    FAILED = "failed"  # processing raised too often: parked until `intake inbound retry`


class Outcome(StrEnum):
    TICKET_CREATED = "ticket_created"
    IGNORED_AUTO_REPLY = "ignored_auto_reply"
    IGNORED_BOUNCE = "ignored_bounce"
    IGNORED_BULK = "ignored_bulk"
    IGNORED_OWN_ADDRESS = "ignored_own_address"
    APPENDED = "appended"  # a follow-up from a party, added to its case
    APPENDED_INTERNAL = "appended_internal"  # a team member's mail without a reply token
    RELAYED = "relayed"  # a team reply, sent on to the reporter
    COMMAND = "command"  # a team reply that was a command or an internal note
    REJECTED_FORGED_TOKEN = "rejected_forged_token"
    REJECTED_UNAUTHENTICATED = "rejected_unauthenticated"
    REJECTED_EXCLUDED = "rejected_excluded"  # from a member excluded from the case
    APPEAL_REFUSED = "appeal_refused"  # the decision cannot be appealed; recorded on its case
    IGNORED_NOTICE_REPLY = "ignored_notice_reply"  # answers our mail about no case (a digest)
    FAILED = "failed"


class OutboundState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"  # refused for good by our server, or too many attempts
    BOUNCED = "bounced"  # accepted, then reported undeliverable by a bounce
    CANCELLED = "cancelled"  # withdrawn by hand before it was sent (`intake outbox cancel`)


# Not sent yet: may be retried or cancelled (and a purge or an erasure cancels it).
NOT_SENT = (OutboundState.QUEUED, OutboundState.FAILED)


class TicketStatus(StrEnum):
    NEW = "new"
    INVESTIGATING = "investigating"
    WAITING = "waiting"
    RESOLVED = "resolved"
    CLOSED = "closed"


# A case with a decision, or closed: what appeals look for and reminders leave alone.
DECIDED = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class EventKind(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    NOTE = "note"
    STATE = "state"


class PartyRole(StrEnum):
    REPORTER = "reporter"
    TEAM = "team"
    REPORTED = "reported"
    WITNESS = "witness"
    OTHER = "other"


class TeamMember(Model):
    """Synced from settings at start. Members who left stay as inactive rows."""

    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=320, unique=True)
    name = fields.CharField(max_length=200)
    roles = fields.CharField(max_length=200, default="member")
    active = fields.BooleanField(default=True)

    class Meta:
        table = "team_member"


class Ticket(Model):
    id = fields.IntField(primary_key=True)
    events: fields.ReverseRelation[TicketEvent]
    ref = fields.CharField(max_length=32, unique=True)
    kind = fields.CharField(max_length=32)
    status = fields.CharEnumField(TicketStatus, max_length=16, default=TicketStatus.NEW)
    subject = fields.TextField(default="")
    reporter_email = fields.CharField(max_length=320)
    reporter_name = fields.CharField(max_length=200, default="")
    assignee: fields.ForeignKeyNullableRelation[TeamMember] = fields.ForeignKeyField(
        "intake.TeamMember", related_name="tickets", null=True, on_delete=fields.SET_NULL
    )
    assignee_id: int | None  # the column behind `assignee`, set by tortoise
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    acknowledged_at = fields.DatetimeField(null=True)
    first_response_at = fields.DatetimeField(null=True)
    # A report from someone who is not a party, pointing at another case: which one.
    refers_to: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "intake.Ticket", related_name="referred_by", null=True, on_delete=fields.SET_NULL
    )
    resolution = fields.CharField(max_length=64, null=True)
    resolution_reason = fields.TextField(default="", db_default="")
    resolved_by = fields.CharField(max_length=320, null=True)
    resolved_at = fields.DatetimeField(null=True)
    # A temporary measure (a rung with a duration) ends at this instant.
    resolution_ends_at = fields.DatetimeField(null=True)
    urgent = fields.BooleanField(default=False, db_default=False)
    kind_reason = fields.TextField(default="", db_default="")  # why this kind (rule or member)
    closed_at = fields.DatetimeField(null=True)  # `#status closed`; cleared when it moves on
    # When the retention policy removed the case's content (intake.conduct.purge); the
    # reference, kind, dates and resolution stay, for the ban list and the figures.
    purged_at = fields.DatetimeField(null=True)
    parties: fields.ReverseRelation[Party]

    class Meta:
        table = "ticket"
        # Each new report looks up its sender's cases (the daily cap, earlier cases): without
        # it every report reads the whole table.
        indexes = (("reporter_email",),)


class Party(Model):
    """Someone a case talks with, each with a signed reply address of their own: the reporter,
    the team members on it, the reported person, witnesses and the outside contact (`#contact`
    adds them). A team member the case must not reach is a party marked excluded."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "intake.Ticket", related_name="parties", on_delete=fields.CASCADE
    )
    ticket_id: int  # the column behind `ticket`, set by tortoise
    role = fields.CharEnumField(PartyRole, max_length=16)
    email = fields.CharField(max_length=320)
    name = fields.CharField(max_length=200, default="")
    member: fields.ForeignKeyNullableRelation[TeamMember] = fields.ForeignKeyField(
        "intake.TeamMember", related_name="parties", null=True, on_delete=fields.SET_NULL
    )
    excluded = fields.BooleanField(default=False)
    excluded_reason = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "party"
        # By case; by address (exclusions, erasure); by role (reported parties, which each new
        # report is checked against, are few among many).
        indexes = (("ticket_id", "email"), ("email",), ("role", "ticket_id"))


class Reminder(Model):
    """A deadline message sent for a case, so that each is sent once (`kind` names the deadline
    and, for recurring ones, its period)."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "intake.Ticket", related_name="reminders", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=64)
    sent_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "reminder"
        unique_together = (("ticket", "kind"),)


class TicketSequence(Model):
    """Per prefix and year, the last number handed out, so references never repeat."""

    id = fields.IntField(primary_key=True)
    prefix = fields.CharField(max_length=16)
    year = fields.IntField()
    last_number = fields.IntField(default=0)

    class Meta:
        table = "ticket_sequence"
        unique_together = (("prefix", "year"),)


class InboundMessage(Model):
    id = fields.IntField(primary_key=True)
    raw_bytes = fields.BinaryField()
    size = fields.IntField()
    sha256 = fields.CharField(max_length=64, unique=True)
    message_id = fields.CharField(max_length=998, null=True, db_index=True)
    mailbox = fields.CharField(max_length=500)
    folder = fields.CharField(max_length=500)
    uidvalidity = fields.BigIntField(null=True)
    uid = fields.BigIntField(null=True)
    source_ref = fields.CharField(max_length=500, null=True)
    received_at = fields.DatetimeField(auto_now_add=True)  # stored by us
    arrived_at = fields.DatetimeField(null=True)  # in the mailbox: INTERNALDATE, Maildir mtime
    state = fields.CharEnumField(InboundState, max_length=16, default=InboundState.PENDING)
    outcome = fields.CharField(max_length=32, null=True)
    reason = fields.TextField(default="")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    processed_at = fields.DatetimeField(null=True)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "intake.Ticket", related_name="inbound", null=True, on_delete=fields.SET_NULL
    )
    ticket_id: int | None  # the column behind `ticket`, set by tortoise
    # Imported by `intake backfill --no-replies`: becomes a case, but nobody is mailed about it.
    quiet = fields.BooleanField(default=False, db_default=False)

    class Meta:
        table = "inbound_message"
        unique_together = (("mailbox", "folder", "uidvalidity", "uid"),)
        indexes = (("state", "next_attempt_at"), ("ticket_id",))


class OutboundMessage(Model):
    """The transactional outbox. One row per email, rendered once, sent by the delivery job."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=64)
    sender = fields.CharField(max_length=320)
    recipients: fields.JSONField[list[str]] = fields.JSONField()
    message_id = fields.CharField(max_length=998, unique=True)
    subject = fields.TextField()
    raw_bytes = fields.BinaryField()
    state = fields.CharEnumField(OutboundState, max_length=16, default=OutboundState.QUEUED)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "intake.Ticket", related_name="outbound", null=True, on_delete=fields.SET_NULL
    )
    in_reply_to: fields.ForeignKeyNullableRelation[InboundMessage] = fields.ForeignKeyField(
        "intake.InboundMessage", related_name="replies", null=True, on_delete=fields.SET_NULL
    )
    in_reply_to_id: int | None  # the column behind `in_reply_to`, set by tortoise
    ticket_id: int | None  # the column behind `ticket`
    # Taken by one delivery run at a time: a run claims a group of rows until `claimed_until`,
    # so another daemon skips them; a run that dies releases them when the claim expires.
    claimed_by = fields.CharField(max_length=200, null=True)
    claimed_until = fields.DatetimeField(null=True)
    party: fields.ForeignKeyNullableRelation[Party] = fields.ForeignKeyField(
        "intake.Party", related_name="outbound", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "outbound_message"
        indexes = (("state", "next_attempt_at"), ("ticket_id",))


class TicketEvent(Model):
    """One entry of a case's thread."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "intake.Ticket", related_name="events", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(EventKind, max_length=16)
    author = fields.CharField(max_length=320)
    body = fields.TextField(default="")
    # The HTML of an inbound message, sanitised (nh3) before it is stored, for display.
    html = fields.TextField(default="", db_default="")
    internal = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    inbound: fields.ForeignKeyNullableRelation[InboundMessage] = fields.ForeignKeyField(
        "intake.InboundMessage", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    inbound_id: int | None  # the column behind `inbound`
    outbound: fields.ForeignKeyNullableRelation[OutboundMessage] = fields.ForeignKeyField(
        "intake.OutboundMessage", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    # Whose conversation this entry belongs to: who wrote it, or to whom it was sent.
    party: fields.ForeignKeyNullableRelation[Party] = fields.ForeignKeyField(
        "intake.Party", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    party_id: int | None  # the column behind `party`

    class Meta:
        table = "ticket_event"
        indexes = (("ticket_id", "created_at"),)


class Attachment(Model):
    """Metadata only. The bytes live content-addressed under the data directory."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "intake.Ticket", related_name="attachments", on_delete=fields.CASCADE
    )
    event: fields.ForeignKeyNullableRelation[TicketEvent] = fields.ForeignKeyField(
        "intake.TicketEvent", related_name="attachments", null=True, on_delete=fields.SET_NULL
    )
    filename = fields.TextField()
    content_type = fields.CharField(max_length=255)
    size = fields.IntField()
    sha256 = fields.CharField(max_length=64, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "attachment"
        indexes = (("ticket_id",),)


class AuditAction(StrEnum):
    READ = "read"  # case content shown on the command line (text or JSON)
    EXPORT = "export"  # `intake export`
    EMAIL = "email"  # an email of the case, written down when a purge or erasure clears it
    PURGE = "purge"  # the retention policy removed the case's content
    ERASE = "erase"  # `intake erase --person`: a person's addresses and words removed


class AuditEvent(Model):
    """One entry of the audit trail: who saw or changed what of a case, when and why. Emails
    still in the outbox are read from it (intake.conduct.audit); these rows hold the rest."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "intake.Ticket", related_name="audit", null=True, on_delete=fields.SET_NULL
    )
    ticket_id: int | None  # the column behind `ticket`
    at = fields.DatetimeField()
    actor = fields.CharField(max_length=320)  # an operating-system user, or who was mailed
    action = fields.CharEnumField(AuditAction, max_length=16)
    what = fields.TextField()
    why = fields.TextField(default="")

    class Meta:
        table = "audit_event"
        indexes = (("ticket_id", "at"),)


class MailboxState(Model):
    id = fields.IntField(primary_key=True)
    mailbox = fields.CharField(max_length=500)
    folder = fields.CharField(max_length=500)
    uidvalidity = fields.BigIntField()
    last_uid = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "mailbox_state"
        unique_together = (("mailbox", "folder"),)


class JobLease(Model):
    """A job (or a piece of one) that one daemon at a time may run: whoever holds the lease
    until `until`. A daemon that dies holding one loses it when it expires."""

    name = fields.CharField(max_length=500, primary_key=True)
    holder = fields.CharField(max_length=200)
    until = fields.DatetimeField()

    class Meta:
        table = "job_lease"


class RetentionPolicy(Model):
    """Each retention policy the scheduled purge has met on this database (by fingerprint):
    since when it is in force (met first, or met again after another policy) and when it was
    last met. The purge waits `[retention] grace` after a policy comes into force."""

    fingerprint = fields.CharField(max_length=64, primary_key=True)
    in_force_since = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()

    class Meta:
        table = "retention_policy"


class JobRun(Model):
    """The last outcome of each daemon job, whichever daemon ran it: what `intake check` and
    the status line read."""

    name = fields.CharField(max_length=100, primary_key=True)
    succeeded_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    error = fields.TextField(default="")
    holder = fields.CharField(max_length=200, default="")

    class Meta:
        table = "job_run"
