"""Leases: who may do a piece of work now, when several daemons share one database.

A lease is one row per piece of work (`JobLease`), taken with a single UPDATE that succeeds
only when the lease is free, expired or already ours, so two daemons can never both hold it,
on PostgreSQL or SQLite. Nothing else coordinates the daemons: no leader is elected, and a
daemon that dies simply stops renewing what it held.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tortoise.expressions import Q

from intake.store.models import JobLease, OutboundMessage


def _pid_space() -> str:
    """This boot and pid namespace: two containers may share a hostname but not both, and a
    pid means something only within one of them."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        return f"{boot}.{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return "unknown"


# This process, as a holder of leases and claims: readable in the database, unique per start.
HOST = f"{socket.gethostname()}/{_pid_space()}"
HOLDER = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


async def take_lease(
    name: str, duration: timedelta, *, renew: bool = True, now: datetime | None = None
) -> bool:
    """Hold `name` for `duration` from `now`, unless another holder has it. With `renew`, our
    own lease is extended (work in progress); without, even ours must have expired first (work
    done once per period, whoever does it). True when we hold it."""
    now = now or datetime.now(UTC)
    await JobLease.bulk_create(
        [JobLease(name=name, holder="", until=_NEVER)], ignore_conflicts=True
    )
    free = Q(until__lte=now) | Q(holder=HOLDER) if renew else Q(until__lte=now)
    taken = await JobLease.filter(Q(name=name) & free).update(holder=HOLDER, until=now + duration)
    return taken == 1


async def release_lease(name: str) -> None:
    """Give back a lease before it expires, so another daemon may take the work at once."""
    await JobLease.filter(name=name, holder=HOLDER).update(until=_NEVER)


def _gone(holder: str) -> bool:
    """A holder on this host whose process no longer exists. (A reused pid reads as alive:
    then the lease simply runs out, as one held on another host does.)"""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != HOST or HOST.endswith("/unknown") or not pid.isdigit() or holder == HOLDER:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


async def free_leases_of_the_dead() -> list[str]:
    """At start: the leases and outbound claims of earlier processes on this host that died
    holding them (a crash, SIGKILL) are freed at once, so a daemon restarted after a crash does
    not wait for its predecessor's leases to run out. Returns the holders freed."""
    leased = await JobLease.filter(until__gt=_NEVER).values_list("holder", flat=True)
    claimed = OutboundMessage.filter(claimed_by__not_isnull=True).distinct()
    holders = {
        str(holder) for holder in [*leased, *await claimed.values_list("claimed_by", flat=True)]
    }
    dead = sorted(holder for holder in holders if _gone(holder))
    if dead:
        await JobLease.filter(holder__in=dead).update(until=_NEVER)
        await OutboundMessage.filter(claimed_by__in=dead).update(
            claimed_by=None, claimed_until=None
        )
    return dead
