"""What every handler receives and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from intake.classify import Verdict
from intake.config import Settings
from intake.models import InboundMessage, Ticket
from intake.parse import ParsedMessage
from intake.threading import ThreadLink


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
