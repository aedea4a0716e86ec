"""One backoff rule for everything that retries: processing, delivery, and the daemon's jobs."""

from __future__ import annotations

from datetime import timedelta


def backoff(first: timedelta, attempt: int, ceiling: timedelta | None = None) -> timedelta:
    """The wait before retry number `attempt` (1 is the first): `first`, doubled at each further
    attempt, never more than `ceiling` when one is given."""
    delay: timedelta = first * 2 ** max(attempt - 1, 0)
    return delay if ceiling is None else min(delay, ceiling)
