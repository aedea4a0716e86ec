"""The contract between the engine and what it runs: verdicts, handlers and the registry.

The engine decides nothing about cases itself. The runtime hands it a `Registry`: the case rules
that decide what mail the screen let through is, and one handler per kind of verdict they give.
A handler receives a `HandlerContext` and returns a `HandlerResult`; its writes and the message's
outcome commit together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from intake.engine.compose import Answering
from intake.engine.link import CaseLink
from intake.mail.parse import ParsedMessage
from intake.settings.schema import Settings
from intake.store.models import InboundMessage, Outcome, Ticket


@dataclass(frozen=True)
class Verdict:
    """What a message is (`kind`: the screen's MachineMail or a kind of the case rules), why, and
    the name of the rule that said so."""

    kind: StrEnum
    reason: str
    rule: str


@dataclass(frozen=True)
class HandlerContext:
    """Everything a handler may need of the message in hand, so none reads its row again."""

    settings: Settings
    inbound: InboundMessage
    raw: bytes
    message: ParsedMessage
    verdict: Verdict
    now: datetime
    link: CaseLink | None = None

    @property
    def answering(self) -> Answering:
        """An email that answers the message in hand."""
        return Answering(self.inbound, self.message.message_id, self.message.references)


@dataclass(frozen=True)
class HandlerResult:
    outcome: Outcome
    reason: str
    ticket: Ticket | None = None


Handler = Callable[[HandlerContext], Awaitable[HandlerResult]]
CaseRules = Callable[[ParsedMessage, CaseLink | None], Verdict]


@dataclass(frozen=True)
class Registry:
    """What the runtime gives the engine: the case rules, and a handler for every kind of verdict
    they can give (the screen's machine mail has the engine's own handlers)."""

    rules: CaseRules
    handlers: Mapping[StrEnum, Handler]
