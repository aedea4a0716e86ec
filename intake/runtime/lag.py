"""Mail that waits too long: one warning when it starts, one line when it is over.

Two things can keep a report waiting: a message stored but not processed (processing stuck),
or no successful fetch for a while (push broken and polling failing), when mail may be piling
up in the mailbox unseen. Each daemon judges its own fetches; the stored messages are shared.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from intake.mail.sanitize import human_duration
from intake.runtime.health import oldest_waiting

log = logging.getLogger("intake.daemon")


class LagWatch:
    def __init__(self, threshold: timedelta, started: datetime) -> None:
        self.threshold = threshold
        self.last_fetch = started  # no fetch yet counts from the start
        self.warned = False

    def fetched(self, when: datetime) -> None:
        self.last_fetch = when

    async def problems(self, now: datetime) -> list[str]:
        found = []
        waiting = await oldest_waiting(now)
        if waiting is not None and waiting[1] > self.threshold:
            inbound_id, age = waiting
            found.append(
                f"inbound {inbound_id} arrived {human_duration(age)} ago and is not processed"
            )
        silent = now - self.last_fetch
        if silent > self.threshold:
            found.append(
                f"no successful fetch for {human_duration(silent)}: mail may be waiting unseen"
                " in the mailbox"
            )
        return found

    async def check(self, now: datetime, push: str) -> None:
        found = await self.problems(now)
        if found and not self.warned:
            log.warning("mail is waiting: %s (push: %s)", "; ".join(found), push)
        elif self.warned and not found:
            log.info("mail is flowing again")
        self.warned = bool(found)
