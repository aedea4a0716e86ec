"""What every handler receives and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from intake.engine.classify import Verdict
from intake.engine.link import ThreadLink
from intake.mail.parse import ParsedMessage
from intake.settings.schema import Settings
from intake.store.models import InboundMessage, Ticket


@dataclass(frozen=True)
class HandlerContext:
    settings: Settings
    inbound: InboundMessage
    message: ParsedMessage
    verdict: Verdict
    now: datetime
    thread: ThreadLink | None = None


@dataclass(frozen=True)
class HandlerResult:
    outcome: str
    reason: str
    ticket: Ticket | None = None


Handler = Callable[[HandlerContext], Awaitable[HandlerResult]]
