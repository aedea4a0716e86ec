"""Push: hearing of new mail as it arrives, instead of at the next poll.

An IMAP mailbox is watched with IDLE on a connection of its own, in a thread of its own (see
imap_idle.py); a local Maildir's new/ folder is watched with inotify (see maildir_watch.py).
Neither fetches anything: each only tells the daemon, through `heard`, that mail may be
waiting and whether push is working, and the fetch keeps its own connection and its
exactly-once rules. Whatever push misses, the poll still finds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum

from intake.settings.schema import Settings


class News(StrEnum):
    ARRIVED = "arrived"  # new mail may be waiting: fetch now
    UP = "up"  # push works (again): mail that came while it was down may be waiting too
    DOWN = "down"  # push broke; it is being re-established, with backoff
    UNAVAILABLE = "unavailable"  # the mailbox cannot push at all: poll only


Heard = Callable[[News, str], None]


async def watch(settings: Settings, heard: Heard, stop: asyncio.Event) -> None:
    """Watch the mailbox until `stop`, telling `heard` what happens; called on the event loop."""
    config = settings.mailbox
    if config.kind == "imap":
        from intake.transport.credentials import mailbox_login
        from intake.transport.mailbox import sasl_mechanism
        from intake.transport.push.imap_idle import watch_imap

        await watch_imap(config, mailbox_login(settings), sasl_mechanism(settings), heard, stop)
        return
    from intake.transport.push.maildir_watch import watch_maildir

    assert config.path is not None
    await watch_maildir(config.path, heard, stop)
