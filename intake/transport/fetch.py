"""One fetch: store each raw message durably, and only then move it out of the inbox.

A crash between the commit and the move leaves the message in the folder; the next fetch finds
it stored (by mailbox, folder, UIDVALIDITY and UID, or by content hash) and only moves it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

from tortoise.transactions import in_transaction

from intake.errors import IntakeError, OnboardingRequired
from intake.mail.headers import message_id
from intake.settings.schema import MailboxSettings, Settings
from intake.store.leases import release_lease, take_lease
from intake.store.models import InboundMessage, MailboxState
from intake.transport.mailbox import Fetched, Key, Mailbox, open_mailbox

log = logging.getLogger("intake.fetch")


@dataclass
class FetchStats:
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    moved: int = 0
    elsewhere: bool = False  # another daemon was fetching from this mailbox: nothing done


def chunks(items: Sequence[Key], size: int) -> Iterator[list[Key]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


async def _current_state(mailbox: Mailbox, uidvalidity: int | None) -> MailboxState:
    state, _ = await MailboxState.get_or_create(
        mailbox=mailbox.identity,
        folder=mailbox.folder,
        defaults={"uidvalidity": uidvalidity or 0, "last_uid": 0},
    )
    if uidvalidity is not None and state.uidvalidity != uidvalidity:
        log.warning(
            "%s %s: UIDVALIDITY changed from %s to %s; rescanning (stored mail is recognised by"
            " its content hash)",
            mailbox.identity,
            mailbox.folder,
            state.uidvalidity,
            uidvalidity,
        )
        state.uidvalidity = uidvalidity
        state.last_uid = 0
        await state.save(update_fields=["uidvalidity", "last_uid", "updated_at"])
    return state


async def _already_stored(mailbox: Mailbox, uidvalidity: int | None, uids: list[int]) -> set[Key]:
    """Which of these UIDs (at or below the last one seen) are stored already."""
    stored: set[Key] = set()
    for batch in chunks(uids, 500):
        query = InboundMessage.filter(
            mailbox=mailbox.identity,
            folder=mailbox.folder,
            uidvalidity=uidvalidity,
            uid__in=batch,
        )
        stored.update(cast(list[int], await query.values_list("uid", flat=True)))
    return stored


async def _store(
    mailbox: Mailbox,
    uidvalidity: int | None,
    state: MailboxState,
    fetched: list[Fetched],
    stats: FetchStats,
    quiet: bool,
) -> None:
    rows = []
    for key, raw, arrived_at in fetched:
        is_uid = isinstance(key, int)
        rows.append(
            InboundMessage(
                raw_bytes=raw,
                size=len(raw),
                sha256=hashlib.sha256(raw).hexdigest(),
                message_id=message_id(raw),
                mailbox=mailbox.identity,
                folder=mailbox.folder,
                uidvalidity=uidvalidity,
                uid=key if is_uid else None,
                source_ref=None if is_uid else str(key),
                arrived_at=arrived_at,
                quiet=quiet,
            )
        )
    hashes = [row.sha256 for row in rows]
    async with in_transaction():
        known = set(
            cast(
                list[str],
                await InboundMessage.filter(sha256__in=hashes).values_list("sha256", flat=True),
            )
        )
        fresh = []
        for row in rows:  # identical bytes, in this batch or stored before, are stored once
            if row.sha256 not in known:
                known.add(row.sha256)
                fresh.append(row)
        await InboundMessage.bulk_create(fresh, ignore_conflicts=True)
        uids = [item.key for item in fetched if isinstance(item.key, int)]
        if uids and max(uids) > state.last_uid:
            state.last_uid = max(uids)
            await state.save(update_fields=["last_uid", "updated_at"])
    stats.stored += len(fresh)
    stats.duplicates += len(rows) - len(fresh)


async def _move_leftovers(mailbox: Mailbox, keys: list[Key], stats: FetchStats) -> None:
    """Move mail an earlier run stored but could not move. It is safe in the database already,
    so a failure here is logged and must not keep new mail from being stored."""
    try:
        await asyncio.to_thread(mailbox.mark_processed, keys)
    except IntakeError as exc:
        log.warning("could not move %d stored message(s) out of the inbox: %s", len(keys), exc)
        return
    stats.moved += len(keys)


@dataclass(frozen=True)
class Backfill:
    """How a fetch treats mail already waiting when Intake first meets a mailbox."""

    first_run_limit: int | None = None  # stop when more than this is waiting on a first run
    quiet: bool = False  # store as cases that nobody is mailed about


async def _check_first_run(mailbox: Mailbox, waiting: int, limit: int | None) -> None:
    if limit is None or limit == 0 or waiting <= limit:
        return
    if await InboundMessage.filter(mailbox=mailbox.identity).exists():
        return
    raise OnboardingRequired(
        f"{mailbox.identity} {mailbox.folder} already holds {waiting} messages (first run limit"
        f" {limit}): run `intake backfill --no-replies` to import them as cases without mailing"
        " anyone, or `intake backfill --with-replies` to acknowledge them all"
    )


async def fetch_from(
    mailbox: Mailbox,
    config: MailboxSettings,
    stop: asyncio.Event | None = None,
    backfill: Backfill = Backfill(),
    on_stored: Callable[[], None] | None = None,
) -> FetchStats:
    """Store every new message, batch by batch, moving each batch once it is committed, and
    telling `on_stored` (the processing stage) at once. Between batches, honour `stop`.
    Maildir files are always read: their names are not unique keys (people copy files in),
    so their content hash decides what is new.

    One daemon at a time fetches from a mailbox (a lease for `claim_for`, renewed after every
    batch); another that tries meanwhile returns at once with `elsewhere` set. The unique keys
    would keep a second fetch from storing anything twice, but it would read and move the same
    mail."""
    return await _Fetch(mailbox, config, stop, backfill, on_stored).run()


@dataclass
class _Fetch:
    mailbox: Mailbox
    config: MailboxSettings
    stop: asyncio.Event | None
    backfill: Backfill
    on_stored: Callable[[], None] | None
    stats: FetchStats = field(default_factory=FetchStats)

    @property
    def lease(self) -> str:
        return f"fetch {self.mailbox.identity} {self.mailbox.folder}"

    async def run(self) -> FetchStats:
        if not await take_lease(self.lease, self.config.claim_for):
            self.stats.elsewhere = True  # its fetch stores what ours would
            return self.stats
        try:
            await self._leased()
        finally:
            await release_lease(self.lease)
        return self.stats

    async def _leased(self) -> None:
        mailbox, stats = self.mailbox, self.stats
        uidvalidity = await asyncio.to_thread(mailbox.open)
        try:
            state = await _current_state(mailbox, uidvalidity)
            keys = await asyncio.to_thread(mailbox.pending)
            stats.seen = len(keys)
            await _check_first_run(mailbox, len(keys), self.backfill.first_run_limit)
            leftovers = [key for key in keys if isinstance(key, int) and key <= state.last_uid]
            stored = await _already_stored(mailbox, uidvalidity, leftovers) if leftovers else set()
            if stored:
                await _move_leftovers(mailbox, [key for key in keys if key in stored], stats)
            for batch in chunks([key for key in keys if key not in stored], self.config.batch_size):
                if self.stop is not None and self.stop.is_set():
                    break
                fetched = await asyncio.to_thread(mailbox.fetch, batch)
                await _store(mailbox, uidvalidity, state, fetched, stats, self.backfill.quiet)
                if self.on_stored is not None:
                    self.on_stored()
                moved = [item.key for item in fetched]
                await asyncio.to_thread(mailbox.mark_processed, moved)
                stats.moved += len(moved)
                await take_lease(self.lease, self.config.claim_for)
        finally:
            await asyncio.to_thread(mailbox.close)


async def fetch_once(
    settings: Settings,
    stop: asyncio.Event | None = None,
    backfill: Backfill | None = None,
    on_stored: Callable[[], None] | None = None,
) -> FetchStats:
    """One fetch. Unless `backfill` says otherwise, a first run that finds more than
    `mailbox.first_run_limit` messages waiting stops with OnboardingRequired."""
    backfill = backfill or Backfill(first_run_limit=settings.mailbox.first_run_limit)
    mailbox = open_mailbox(settings)
    stats = await fetch_from(mailbox, settings.mailbox, stop, backfill, on_stored)
    if stats.seen:
        log.info(
            "fetched %d message(s): %d stored, %d already stored, %d moved",
            stats.seen,
            stats.stored,
            stats.duplicates,
            stats.moved,
        )
    return stats
