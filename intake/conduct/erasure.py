"""Erasure on request: a person's addresses, names and words removed from every case that may
lose them (`intake erase --person ADDRESS`).

A case that must be kept whole (still open, a measure in force, a ban kept forever) is named
with its reason and left as it is. Everywhere else: what the person wrote becomes "[erased on
request]" (with its attachments and raw message); their address and names, wherever else they
appear (other entries, subjects, reasons, recipients, the audit trail), become "[erased]"; any
stored message or email that holds the address loses its raw bytes; their parties go, so their
reply addresses lead nowhere. Mail about no case is treated the same way. The records of the
erasure never hold the address.

Found by the address as written: words quoted by someone else without it, or an address inside
an encoded body part, are not found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from intake.conduct.audit import record
from intake.conduct.purge import remove_unused_files
from intake.conduct.retention import must_keep
from intake.errors import IntakeError
from intake.settings.schema import Settings
from intake.store.compaction import compact
from intake.store.models import (
    Attachment,
    AuditAction,
    AuditEvent,
    EventKind,
    InboundMessage,
    OutboundMessage,
    OutboundState,
    Party,
    TeamMember,
    Ticket,
    TicketEvent,
)

ERASED = "[erased]"
THEIR_WORDS = "[erased on request]"
_SCAN_BATCH = 200
_SHORTEST_NAME = 3  # shorter names would erase ordinary words


@dataclass
class Found:
    """Where the addresses occur: by case (None: mail about no case)."""

    inbound: dict[int | None, set[int]] = field(default_factory=dict)
    outbound: dict[int | None, set[int]] = field(default_factory=dict)
    cases: set[int] = field(default_factory=set)


@dataclass
class ErasurePlan:
    addresses: tuple[str, ...]
    names: tuple[str, ...]
    erase: list[Ticket]
    kept: list[tuple[Ticket, str]]
    found: Found

    @property
    def no_case(self) -> tuple[int, int]:
        """Stored messages and emails about no case that hold an address."""
        return len(self.found.inbound.get(None, ())), len(self.found.outbound.get(None, ()))


class Scrubber:
    """Replaces the addresses and names in text, whatever their case."""

    def __init__(self, addresses: Iterable[str], names: Iterable[str]) -> None:
        words = sorted({*addresses, *names}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(word) for word in words), re.IGNORECASE)
        self._needles = [address.lower().encode() for address in addresses]

    def text(self, value: str) -> str:
        return self._pattern.sub(ERASED, value)

    def holds(self, value: str) -> bool:
        return self._pattern.search(value) is not None

    def in_bytes(self, raw: bytes) -> bool:
        lowered = raw.lower()
        return any(needle in lowered for needle in self._needles)


async def plan_erasure(settings: Settings, addresses: Iterable[str], now: datetime) -> ErasurePlan:
    wanted = tuple(sorted({address.strip().lower() for address in addresses}))
    for address in wanted:
        if "@" not in address:
            raise IntakeError(f"erase: {address!r} is not an email address")
        if await TeamMember.filter(email=address).exists() or settings.member(address):
            raise IntakeError(f"erase: {address} is a team member; remove them from [[team]] first")
    names = await _names(wanted)
    scrubber = Scrubber(wanted, names)
    found = await _find(wanted, scrubber)
    tickets = await Ticket.filter(id__in=sorted(found.cases), purged_at__isnull=True).order_by("id")
    erase: list[Ticket] = []
    kept: list[tuple[Ticket, str]] = []
    for ticket in tickets:
        reason = must_keep(settings, ticket, now)
        if reason is None:
            erase.append(ticket)
        else:
            kept.append((ticket, reason))
    return ErasurePlan(wanted, names, erase, kept, found)


async def _names(addresses: tuple[str, ...]) -> tuple[str, ...]:
    names = set(await Party.filter(email__in=addresses).values_list("name", flat=True))
    names |= set(
        await Ticket.filter(reporter_email__in=addresses).values_list("reporter_name", flat=True)
    )
    return tuple(sorted(str(name) for name in names if len(str(name).strip()) >= _SHORTEST_NAME))


def _contains(fields: Iterable[str], words: Iterable[str]) -> Q:
    query = Q()
    for word in words:
        for name in fields:
            query |= Q(**{f"{name}__icontains": word})
    return query


async def _ids(query: QuerySet[Any], column: str) -> set[int]:
    return {
        int(value) for value in cast(list[Any], await query.values_list(column, flat=True)) if value
    }


async def _find(addresses: tuple[str, ...], scrubber: Scrubber) -> Found:
    found = Found()
    tickets = Ticket.filter(
        Q(reporter_email__in=addresses) | _contains(("subject", "resolution_reason"), addresses)
    )
    found.cases |= await _ids(tickets, "id")
    found.cases |= await _ids(Party.filter(email__in=addresses), "ticket_id")
    events = TicketEvent.filter(_contains(("body", "html", "author"), addresses))
    found.cases |= await _ids(events, "ticket_id")
    audit = AuditEvent.filter(_contains(("actor", "what", "why"), addresses))
    found.cases |= await _ids(audit, "ticket_id")
    await _scan(InboundMessage, scrubber, found.inbound, ("reason", "last_error"))
    await _scan(OutboundMessage, scrubber, found.outbound, ("recipients", "subject", "last_error"))
    found.cases |= {case for case in (*found.inbound, *found.outbound) if case is not None}
    return found


async def _scan(
    model: type[InboundMessage] | type[OutboundMessage],
    scrubber: Scrubber,
    into: dict[int | None, set[int]],
    texts: tuple[str, ...],
) -> None:
    """Every row whose raw bytes or texts hold an address, by case; in batches, so a mailbox of
    years is read without holding it all."""
    last = 0
    while True:
        rows = await (
            model.filter(id__gt=last)
            .order_by("id")
            .limit(_SCAN_BATCH)
            .values_list("id", "ticket_id", "raw_bytes", *texts)
        )
        if not rows:
            return
        for row_id, ticket_id, raw, *values in rows:
            if scrubber.in_bytes(bytes(raw)) or any(scrubber.holds(str(v)) for v in values if v):
                into.setdefault(ticket_id, set()).add(row_id)
        last = rows[-1][0]


@dataclass
class Erased:
    entries: int = 0
    messages: int = 0
    emails: int = 0
    attachments: int = 0
    files: set[str] = field(default_factory=set)

    def text(self) -> str:
        return (
            f"{self.entries} thread entr{'y' if self.entries == 1 else 'ies'},"
            f" {self.messages} message(s), {self.emails} email(s),"
            f" {self.attachments} attachment(s)"
        )


async def erase(settings: Settings, plan: ErasurePlan, actor: str, now: datetime) -> list[str]:
    """Carry the plan out; returns one line per case, for the operator."""
    scrubber = Scrubber(plan.addresses, plan.names)
    lines: list[str] = []
    files: set[str] = set()
    for ticket in plan.erase:
        async with in_transaction():
            erased = await _erase_case(ticket, plan, scrubber)
            text = f"a person's addresses and words removed: {erased.text()}"
            await TicketEvent.create(
                ticket=ticket,
                kind=EventKind.STATE,
                author=actor,
                body=f"Erasure on request by {actor} on {now:%Y-%m-%d}: {text}.",
                internal=True,
            )
            await record(ticket, actor, AuditAction.ERASE, text, "erasure on request")
        files |= erased.files
        lines.append(f"{ticket.ref}: {erased.text()} erased")
    for ticket, reason in plan.kept:
        await record(
            ticket, actor, AuditAction.ERASE, f"not erased: {reason}", "erasure on request"
        )
        lines.append(f"{ticket.ref}: kept whole, {reason}")
    async with in_transaction():
        messages = await _clear_inbound(plan.found.inbound.get(None, set()), scrubber)
        emails = await _clear_outbound(plan.found.outbound.get(None, set()), scrubber)
        await record(
            None,
            actor,
            AuditAction.ERASE,
            f"erasure on request: {len(plan.erase)} case(s) erased, {len(plan.kept)} kept whole,"
            f" {messages} message(s) and {emails} email(s) about no case cleared",
            "erasure on request",
        )
    await remove_unused_files(settings, files)
    await compact()
    return lines


async def _erase_case(ticket: Ticket, plan: ErasurePlan, scrubber: Scrubber) -> Erased:
    erased = Erased()
    theirs = await Party.filter(ticket=ticket, email__in=plan.addresses)
    their_ids = {party.id for party in theirs}
    inbound = set(plan.found.inbound.get(ticket.id, set()))
    for event in await TicketEvent.filter(ticket=ticket):
        own = event.party_id in their_ids or event.author.lower() in plan.addresses
        if own:
            if event.kind == EventKind.INBOUND and event.inbound_id is not None:
                inbound.add(event.inbound_id)
            digests = await Attachment.filter(event=event).values_list("sha256", flat=True)
            erased.files |= {str(digest) for digest in digests}
            erased.attachments += await Attachment.filter(event=event).delete()
        changed = _scrub(event, ("body", "html", "author"), scrubber)
        if own:
            event.body, event.html, event.author = THEIR_WORDS, "", ERASED
        if own or changed:
            event.party_id = None if event.party_id in their_ids else event.party_id
            await event.save(update_fields=["body", "html", "author", "party_id"])
            erased.entries += 1
    await OutboundMessage.filter(party_id__in=their_ids).update(party_id=None)
    await Party.filter(id__in=their_ids).delete()
    if ticket.reporter_email in plan.addresses:
        ticket.reporter_email, ticket.reporter_name = "", ""
    _scrub(ticket, ("subject", "resolution_reason", "kind_reason", "reporter_name"), scrubber)
    await ticket.save()
    for entry in await AuditEvent.filter(ticket=ticket):
        if _scrub(entry, ("actor", "what", "why"), scrubber):
            await entry.save(update_fields=["actor", "what", "why"])
    erased.messages = await _clear_inbound(inbound, scrubber)
    erased.emails = await _clear_outbound(plan.found.outbound.get(ticket.id, set()), scrubber)
    return erased


def _scrub(row: Model, names: Iterable[str], scrubber: Scrubber) -> bool:
    """Replace the addresses and names in these text fields of `row`; True if any changed."""
    changed = False
    for name in names:
        value: Any = getattr(row, name)
        if isinstance(value, str) and scrubber.holds(value):
            setattr(row, name, scrubber.text(value))
            changed = True
    return changed


async def _clear_inbound(ids: set[int], scrubber: Scrubber) -> int:
    for row in await InboundMessage.filter(id__in=list(ids)):
        row.raw_bytes, row.message_id = b"", None
        _scrub(row, ("reason", "last_error"), scrubber)
        await row.save(update_fields=["raw_bytes", "message_id", "reason", "last_error"])
    return len(ids)


async def _clear_outbound(ids: set[int], scrubber: Scrubber) -> int:
    for row in await OutboundMessage.filter(id__in=list(ids)):
        row.raw_bytes = b""
        row.recipients = [scrubber.text(address) for address in row.recipients]
        _scrub(row, ("subject", "last_error"), scrubber)
        if row.state in (OutboundState.QUEUED, OutboundState.FAILED):
            row.state, row.next_attempt_at = OutboundState.CANCELLED, None
        await row.save(
            update_fields=[
                "raw_bytes",
                "recipients",
                "subject",
                "last_error",
                "state",
                "next_attempt_at",
            ]
        )
    return len(ids)
