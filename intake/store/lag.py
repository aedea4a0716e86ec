"""Arrival to acknowledgement: how long a person waited for our answer.

A message's arrival is when it reached the mailbox (IMAP's INTERNALDATE, to the second; a
Maildir file's mtime), or, for mail stored before arrival times were kept, when we stored it.
Its acknowledgement time is when the SMTP server (or the outbox directory) took the first
acknowledgement that answers it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from intake.settings.templates import TemplateName
from intake.store.models import InboundMessage, OutboundMessage, OutboundState

_DELIVERED = (OutboundState.SENT, OutboundState.BOUNCED)  # a bounced one was sent first


def arrival(arrived_at: datetime | None, received_at: datetime) -> datetime:
    return arrived_at or received_at


async def arrivals(inbound_ids: Collection[int]) -> dict[int, datetime]:
    rows = await InboundMessage.filter(id__in=list(inbound_ids)).values_list(
        "id", "arrived_at", "received_at"
    )
    return {row_id: arrival(arrived, received) for row_id, arrived, received in rows}


async def _acknowledgement_lags(key: str, **filters: Any) -> dict[int, timedelta]:
    rows = await OutboundMessage.filter(
        kind=TemplateName.ACKNOWLEDGEMENT, state__in=_DELIVERED, **filters
    ).values_list(key, "sent_at", "in_reply_to__arrived_at", "in_reply_to__received_at")
    lags: dict[int, timedelta] = {}
    for owner, sent_at, arrived_at, received_at in rows:
        if owner is None or sent_at is None or received_at is None:
            continue
        lag = max(sent_at - arrival(arrived_at, received_at), timedelta(0))
        lags[owner] = min(lag, lags.get(owner, lag))
    return lags


async def lags_by_inbound(inbound_ids: Collection[int]) -> dict[int, timedelta]:
    """Arrival to first acknowledgement, for each of these messages that has one."""
    return await _acknowledgement_lags("in_reply_to_id", in_reply_to_id__in=list(inbound_ids))


async def lags_by_ticket(ticket_ids: Collection[int]) -> dict[int, timedelta]:
    """The same for each of these cases: the wait of the mail that opened it."""
    return await _acknowledgement_lags("ticket_id", ticket_id__in=list(ticket_ids))
