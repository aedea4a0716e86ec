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
from typing import Any

from imapclient import IMAPClient

from intake.errors import MailboxError, MailboxLoginFailed
from intake.settings.oauth2 import Mechanism
from intake.settings.retry import backoff
from intake.settings.schema import MailboxSettings
from intake.transport.credentials import Login
from intake.transport.mailbox.imap import abandon, connect, describe, disconnect
from intake.transport.push import Heard, News

CHECK_SECONDS = 1.0  # how long one idle_check waits: also how soon a stop is noticed
RECONNECT_FIRST = timedelta(seconds=2)
RECONNECT_MAX = timedelta(minutes=5)
STABLE_SECONDS = 60.0  # a link that lasted this long was working: the backoff starts again
NEW_MAIL = {b"EXISTS", b"RECENT"}  # FETCH (flags) and EXPUNGE (mail moved out) bring nothing new
KEEPALIVE = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 15, "TCP_KEEPCNT": 4}


class LinkLost(Exception):
    """The server ended the session (BYE)."""


class IdleWatch:
    def __init__(
        self, config: MailboxSettings, login: Login, mechanism: Mechanism, heard: Heard
    ) -> None:
        self.config = config
        self.login = login
        self.mechanism = mechanism
        self.heard = heard
        self.identity = f"imap://{config.username}@{config.host}:{config.effective_port}"

    def run(self, halt: threading.Event) -> None:
        """Until `halt`: connect, IDLE, report; reconnect with backoff when the link breaks.
        The backoff is reset only by a link that lasted STABLE_SECONDS, so a server that takes
        IDLE and drops it at once is not hammered; a refused login waits RECONNECT_MAX, as the
        fetch's own attempts (and its alerts) already tell a person about it."""
        failures = 0
        while not halt.is_set():
            client: IMAPClient | None = None
            began = time.monotonic()
            try:
                client = connect(self.config, self.login, self.mechanism, self.identity)
                client.select_folder(self.config.folder, readonly=True)
                if not client.has_capability("IDLE"):
                    self.heard(News.UNAVAILABLE, f"{self.identity} does not offer IDLE")
                    disconnect(client)
                    return
                _keep_alive(client.socket())
                self._idle(client, halt)
                disconnect(client)
                return  # halted
            except Exception as exc:  # whatever breaks the link, the watch goes on
                abandon(client)
                failures = 1 if time.monotonic() - began > STABLE_SECONDS else failures + 1
                pause = backoff(RECONNECT_FIRST, failures, RECONNECT_MAX)
                if isinstance(exc, MailboxLoginFailed):
                    pause = RECONNECT_MAX
                detail = str(exc) if isinstance(exc, MailboxError) else describe(self.identity, exc)
                self.heard(News.DOWN, detail)
                halt.wait(pause.total_seconds())

    def _idle(self, client: IMAPClient, halt: threading.Event) -> None:
        renew_every = self.config.idle_renew.total_seconds()
        client.idle()
        self.heard(News.UP, f"IMAP IDLE on {self.identity} {self.config.folder}")
        renew_at = time.monotonic() + renew_every
        while not halt.is_set():
            started = time.monotonic()
            responses = client.idle_check(timeout=CHECK_SECONDS)
            woke_early = time.monotonic() - started < CHECK_SECONDS / 2
            self._read(responses)
            if (woke_early and not responses) or time.monotonic() >= renew_at:
                # Renew, and prove the link alive: NOOP raises on a dead one. What the server
                # says in between (mail that arrived just then) is read like IDLE's news.
                self._read(client.idle_done()[1])
                self._read(client.noop()[1])
                client.idle()
                renew_at = time.monotonic() + renew_every
        client.idle_done()

    def _read(self, responses: list[tuple[Any, ...]]) -> None:
        if any(response[0] == b"BYE" for response in responses):
            raise LinkLost(f"{self.identity}: the server ended the session")
        if any(len(response) > 1 and response[1] in NEW_MAIL for response in responses):
            self.heard(News.ARRIVED, "")


def _keep_alive(sock: socket.socket) -> None:
    """TCP keepalives, so a link dropped silently (a NAT forgetting it) ends in an error."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in KEEPALIVE.items():
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


async def watch_imap(
    config: MailboxSettings, login: Login, mechanism: Mechanism, heard: Heard, stop: asyncio.Event
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
            IdleWatch(config, login, mechanism, tell).run(halt)
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ended.set)

    threading.Thread(target=body, name="intake-imap-idle", daemon=True).start()
    waits = {asyncio.create_task(stop.wait()), asyncio.create_task(ended.wait())}
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)  # stopping, or it gave up
    halt.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ended.wait(), timeout=CHECK_SECONDS + 5)
    for wait in waits:
        wait.cancel()
