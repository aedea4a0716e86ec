"""IMAP IDLE (RFC 2177) on a connection and a thread of its own; imapclient is synchronous
and its clients are not thread safe, so this one is never shared.

The traps, and what is done about each:
- `idle_check` swallows EOF and socket errors and returns nothing, so a dead link looks like
  "no mail". An empty answer that comes back before its timeout means the socket woke with
  nothing to read: that is checked at once with DONE, NOOP and IDLE, which fail on a dead link.
- A link a NAT dropped silently never wakes at all: TCP keepalives notice it within about two
  minutes, and IDLE is renewed (DONE, NOOP, IDLE) every `idle_renew` anyway.
- A server shutting down says BYE: the connection is given up and made again.
- Every call has the mailbox's socket timeout, so `idle_done` cannot hang on a cut network.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
import threading
import time
from datetime import timedelta

from imapclient import IMAPClient

from intake.errors import MailboxError
from intake.settings.retry import backoff
from intake.settings.schema import MailboxSettings
from intake.transport.mailbox.imap import IMAP_ERRORS, connect, describe, disconnect
from intake.transport.push import Heard, News

CHECK_SECONDS = 1.0  # how long one idle_check waits: also how soon a stop is noticed
RECONNECT_FIRST = timedelta(seconds=2)
RECONNECT_MAX = timedelta(minutes=5)
NEW_MAIL = {b"EXISTS", b"RECENT"}  # FETCH (flags) and EXPUNGE (mail moved out) bring nothing new
KEEPALIVE = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 15, "TCP_KEEPCNT": 4}


class LinkLost(Exception):
    """The server ended the session (BYE)."""


LINK_ERRORS: tuple[type[BaseException], ...] = (MailboxError, LinkLost, *IMAP_ERRORS)


class IdleWatch:
    def __init__(self, config: MailboxSettings, password: str, heard: Heard) -> None:
        self.config = config
        self.password = password
        self.heard = heard
        self.identity = f"imap://{config.username}@{config.host}:{config.effective_port}"

    def run(self, halt: threading.Event) -> None:
        """Until `halt`: connect, IDLE, report; reconnect with backoff when the link breaks."""
        failures = 0
        while not halt.is_set():
            client: IMAPClient | None = None
            try:
                client = connect(self.config, self.password, self.identity)
                client.select_folder(self.config.folder, readonly=True)
                if not client.has_capability("IDLE"):
                    self.heard(News.UNAVAILABLE, f"{self.identity} does not offer IDLE")
                    return
                _keep_alive(client.socket())
                self.heard(News.UP, f"IMAP IDLE on {self.identity} {self.config.folder}")
                failures = 0
                self._idle(client, halt)
            except LINK_ERRORS as exc:
                failures += 1
                self.heard(
                    News.DOWN,
                    str(exc) if isinstance(exc, MailboxError) else describe(self.identity, exc),
                )
                halt.wait(backoff(RECONNECT_FIRST, failures, RECONNECT_MAX).total_seconds())
            finally:
                disconnect(client)

    def _idle(self, client: IMAPClient, halt: threading.Event) -> None:
        renew_every = self.config.idle_renew.total_seconds()
        client.idle()
        renew_at = time.monotonic() + renew_every
        while not halt.is_set():
            started = time.monotonic()
            responses = client.idle_check(timeout=CHECK_SECONDS)
            woke_early = time.monotonic() - started < CHECK_SECONDS / 2
            kinds = {response[1] for response in responses if len(response) > 1}
            if any(response[0] == b"BYE" for response in responses):
                raise LinkLost(f"{self.identity}: the server ended the session")
            if kinds & NEW_MAIL:
                self.heard(News.ARRIVED, "")
            if (woke_early and not responses) or time.monotonic() >= renew_at:
                client.idle_done()
                client.noop()  # raises on a dead link
                client.idle()
                renew_at = time.monotonic() + renew_every
        client.idle_done()


def _keep_alive(sock: socket.socket) -> None:
    """TCP keepalives, so a link dropped silently (a NAT forgetting it) ends in an error."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in KEEPALIVE.items():
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


async def watch_imap(
    config: MailboxSettings, password: str, heard: Heard, stop: asyncio.Event
) -> None:
    """Run the watch in a daemon thread until `stop`; its news is handed to the event loop.
    On stop, the thread is given a few seconds to say DONE and log out; a thread stuck on a
    dead network does not hold up the process (it is a daemon thread)."""
    loop = asyncio.get_running_loop()
    # News is handled in the caller's context, not the thread's: the database connection (and
    # every timer a scheduler arms while handling it) lives in context variables.
    context = contextvars.copy_context()
    halt = threading.Event()
    ended = asyncio.Event()

    def tell(news: News, detail: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(heard, news, detail, context=context)

    def body() -> None:
        try:
            IdleWatch(config, password, tell).run(halt)
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ended.set)

    threading.Thread(target=body, name="intake-imap-idle", daemon=True).start()
    await stop.wait()
    halt.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ended.wait(), timeout=CHECK_SECONDS + 5)
