"""Erasure on request: a person's addresses, names and words removed from every case that may
lose them (`intake erase --person ADDRESS`).

Which cases and messages are the person's is decided by their addresses only, as whole
addresses: a name decides nothing (it would pull in strangers' cases that share a word). Within
the cases chosen, their names (whole words, from the case's parties) are scrubbed too.

A case that must be kept whole (still open, a measure in force, a ban kept forever) is named
with its reason and left as it is, and so is mail not yet processed (it may be someone's
report). Everywhere else: what the person wrote becomes "[erased on request]" (with its
attachments and raw message); their address and names, wherever else they appear (other
entries, subjects, reasons, file names, recipients, the audit trail), become "[erased]"; any
stored message or email that holds the address loses its raw bytes; their parties go, so their
reply addresses lead nowhere. Mail about no case is treated the same way. The records of the
erasure never hold the address.

Found by the address as written, in the stored bytes and in their decoded text parts (base64,
quoted-printable, encoded words): words quoted by someone else without it, or an address inside
an attachment that is not text, are not found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.transactions import in_transaction

from intake.conduct.audit import record
from intake.conduct.purge import remove_unused_files
from intake.conduct.retention import must_keep
from intake.errors import IntakeError
from intake.mail.searchable import searchable_text
from intake.settings.schema import Settings
from intake.store.compaction import compact
from intake.store.models import (
    NOT_SENT,
    Attachment,
    AuditAction,
    AuditEvent,
    EventKind,
    InboundMessage,
    InboundState,
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
_SHORTEST_NAME = 4  # shorter names are too often ordinary words
CaseId = int | None  # None: mail about no case


@dataclass
class Found:
    """The rows that hold one of the addresses, by case."""

    inbound: dict[CaseId, set[int]] = field(default_factory=dict)
    outbound: dict[CaseId, set[int]] = field(default_factory=dict)
    cases: set[int] = field(default_factory=set)
    unprocessed: set[int] = field(default_factory=set)  # inbound not yet processed: left alone


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


def _whole(words: Iterable[str]) -> str:
    """A pattern for any of `words`, not as part of a longer word or address."""
    ordered = sorted(set(words), key=len, reverse=True)
    return r"(?<![\w.@+-])(?:" + "|".join(re.escape(word) for word in ordered) + r")(?![\w@-])"


class Scrubber:
    """Finds the addresses (whole addresses, any case) and replaces them and the names."""

    def __init__(self, addresses: Iterable[str], names: Iterable[str] = ()) -> None:
        addresses = tuple(addresses)
        self._addresses = re.compile(_whole(addresses), re.IGNORECASE)
        self._raw = re.compile(_whole(addresses).encode(), re.IGNORECASE)
        self._all = re.compile(_whole([*addresses, *names]), re.IGNORECASE)

    def holds(self, value: str) -> bool:
        return self._addresses.search(value) is not None

    def in_bytes(self, raw: bytes) -> bool:
        """In the bytes as stored or in their decoded text (a base64 or quoted-printable part,
        an encoded word)."""
        if self._raw.search(raw) is not None:
            return True
        text = searchable_text(raw)
        return text is not None and self.holds(text)

    def text(self, value: str) -> str:
        return self._all.sub(ERASED, value)


async def plan_erasure(settings: Settings, addresses: Iterable[str], now: datetime) -> ErasurePlan:
    wanted = tuple(sorted({address.strip().lower() for address in addresses}))
    for address in wanted:
        if "@" not in address:
            raise IntakeError(f"erase: {address!r} is not an email address")
        if await TeamMember.filter(email=address).exists() or settings.member(address):
            raise IntakeError(f"erase: {address} is a team member; remove them from [[team]] first")
    found = await _find(wanted, Scrubber(wanted))
    erase: list[Ticket] = []
    kept: list[tuple[Ticket, str]] = []
    for ticket in await Ticket.filter(id__in=sorted(found.cases)).order_by("id"):
        reason = must_keep(settings, ticket, now)
        if reason is None:
            erase.append(ticket)
        else:
            kept.append((ticket, reason))
    return ErasurePlan(wanted, await _names(wanted), erase, kept, found)


async def _names(addresses: tuple[str, ...]) -> tuple[str, ...]:
    """The names the person gave or was given with these addresses, on any case: they are
    scrubbed (as whole words) in the cases and mail the addresses chose, nowhere else."""
    rows = await Party.filter(email__in=addresses).values_list("name", flat=True)
    rows += await Ticket.filter(reporter_email__in=addresses).values_list(
        "reporter_name", flat=True
    )
    names = {str(name).strip() for name in cast(list[str], rows)}
    return tuple(sorted(name for name in names if len(name) >= _SHORTEST_NAME))


async def _holding(
    model: type[Model],
    columns: tuple[str, ...],
    addresses: tuple[str, ...],
    scrubber: Scrubber,
    case: str = "ticket_id",
) -> set[int]:
    """The cases of the rows whose columns hold an address (the database narrows, the pattern
    decides: a longer address containing this one is not it)."""
    query = Q()
    for address in addresses:
        for column in columns:
            query |= Q(**{f"{column}__icontains": address})
    rows = await model.filter(query).values_list(case, *columns)
    return {
        int(row[0])
        for row in rows
        if row[0] and any(scrubber.holds(str(value)) for value in row[1:] if value)
    }


async def _find(addresses: tuple[str, ...], scrubber: Scrubber) -> Found:
    found = Found()
    reported = Ticket.filter(reporter_email__in=addresses).values_list("id", flat=True)
    found.cases |= set(cast(list[int], await reported))
    parties = Party.filter(email__in=addresses).values_list("ticket_id", flat=True)
    found.cases |= set(cast(list[int], await parties))
    ticket_columns = ("subject", "resolution_reason", "kind_reason")
    found.cases |= await _holding(Ticket, ticket_columns, addresses, scrubber, case="id")
    found.cases |= await _holding(TicketEvent, ("body", "html", "author"), addresses, scrubber)
    found.cases |= await _holding(AuditEvent, ("actor", "what", "why"), addresses, scrubber)
    await _scan(InboundMessage, scrubber, found, ("reason", "last_error"))
    await _scan(OutboundMessage, scrubber, found, ("recipients", "subject", "last_error"))
    found.cases |= {case for case in (*found.inbound, *found.outbound) if case is not None}
    return found


async def _scan(
    model: type[InboundMessage] | type[OutboundMessage],
    scrubber: Scrubber,
    found: Found,
    texts: tuple[str, ...],
) -> None:
    """Every row whose raw bytes or texts hold an address, by case; in batches, so a mailbox of
    years is read without holding it all. Inbound mail not yet processed is set aside."""
    into = found.inbound if model is InboundMessage else found.outbound
    last = 0
    while True:
        rows = await (
            model.filter(id__gt=last)
            .order_by("id")
            .limit(_SCAN_BATCH)
            .values_list("id", "ticket_id", "state", "raw_bytes", *texts)
        )
        if not rows:
            return
        for row_id, ticket_id, state, raw, *values in rows:
            if not (
                scrubber.in_bytes(bytes(raw)) or any(scrubber.holds(str(v)) for v in values if v)
            ):
                continue
            if model is InboundMessage and state != InboundState.DONE:
                found.unprocessed.add(row_id)
            else:
                into.setdefault(ticket_id, set()).add(row_id)
        last = rows[-1][0]


@dataclass
class Erased:
    entries: int = 0
    messages: int = 0
    emails: int = 0
    attachments: int = 0
    files: dict[str, datetime] = field(default_factory=dict)

    def text(self) -> str:
        return (
            f"{self.entries} thread entr{'y' if self.entries == 1 else 'ies'},"
            f" {self.messages} message(s), {self.emails} email(s),"
            f" {self.attachments} attachment(s)"
        )


async def erase(settings: Settings, plan: ErasurePlan, actor: str, now: datetime) -> list[str]:
    """Carry the plan out; returns one line per case, for the operator. Each case is locked and
    judged again first: one reopened since the plan was shown is kept whole."""
    scrubber = Scrubber(plan.addresses, plan.names)
    lines: list[str] = []
    files: dict[str, datetime] = {}
    kept = list(plan.kept)
    erased_cases = 0
    for planned in plan.erase:
        async with in_transaction():
            ticket = await Ticket.select_for_update().get(id=planned.id)
            reason = must_keep(settings, ticket, now)
            if reason is not None:
                kept.append((ticket, reason))
                continue
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
        erased_cases += 1
        files.update(erased.files)
        lines.append(f"{ticket.ref}: {erased.text()} erased")
    for ticket, reason in kept:
        await record(
            ticket, actor, AuditAction.ERASE, f"not erased: {reason}", "erasure on request"
        )
        lines.append(f"{ticket.ref}: kept whole, {reason}")
    async with in_transaction():
        messages = await _clear_inbound(plan.found.inbound.get(None, set()), scrubber)
        emails = await _clear_outbound(plan.found.outbound.get(None, set()), scrubber)
        await _scrub_rows(
            AuditEvent.filter(ticket_id__isnull=True), ("actor", "what", "why"), scrubber
        )
        await record(
            None,
            actor,
            AuditAction.ERASE,
            f"erasure on request: {erased_cases} case(s) erased, {len(kept)} kept whole,"
            f" {messages} message(s) and {emails} email(s) about no case cleared,"
            f" {len(plan.found.unprocessed)} message(s) not yet processed left alone",
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
            for item in await Attachment.filter(event=event):
                erased.files[item.sha256] = max(
                    item.created_at, erased.files.get(item.sha256, item.created_at)
                )
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
    await _scrub_rows(Party.filter(ticket=ticket), ("name", "excluded_reason"), scrubber)
    await _scrub_rows(Attachment.filter(ticket=ticket), ("filename",), scrubber)
    await _scrub_rows(AuditEvent.filter(ticket=ticket), ("actor", "what", "why"), scrubber)
    if ticket.reporter_email in plan.addresses:
        ticket.reporter_email, ticket.reporter_name = "", ""
    columns = ("subject", "resolution_reason", "kind_reason", "reporter_name")
    _scrub(ticket, columns, scrubber)
    await ticket.save(update_fields=[*columns, "reporter_email"])
    erased.messages = await _clear_inbound(inbound, scrubber)
    erased.emails = await _clear_outbound(plan.found.outbound.get(ticket.id, set()), scrubber)
    return erased


def _scrub(row: Model, names: Iterable[str], scrubber: Scrubber) -> bool:
    """Replace the addresses and names in these text fields of `row`; True if any changed."""
    changed = False
    for name in names:
        value: Any = getattr(row, name)
        if isinstance(value, str):
            scrubbed = scrubber.text(value)
            changed = changed or scrubbed != value
            setattr(row, name, scrubbed)
    return changed


async def _scrub_rows(query: Any, columns: tuple[str, ...], scrubber: Scrubber) -> None:
    for row in await query:
        if _scrub(row, columns, scrubber):
            await row.save(update_fields=list(columns))


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
        if row.state in NOT_SENT:
            row.state, row.next_attempt_at = OutboundState.CANCELLED, None
        fields = ["raw_bytes", "recipients", "subject", "last_error", "state", "next_attempt_at"]
        await row.save(update_fields=fields)
    return len(ids)
