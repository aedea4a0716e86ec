"""The daemon's outbound connection, kept open for a while after its last use.

An acknowledgement queued seconds after the one before then leaves over the same SMTP session
instead of waiting for a new connection, TLS handshake and login. A server that closes the
idle session first costs nothing: the transport reconnects once before deferring a message.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from intake.transport.transports import Transport


class KeptOpen:
    def __init__(self, transport: Transport, keep_open: timedelta) -> None:
        self.transport = transport
        self.keep_open = keep_open.total_seconds()
        self._timer: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None

    async def take(self) -> Transport:
        """The transport, for one delivery run; its close is put off until `release`."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closing is not None:
            closing, self._closing = self._closing, None
            await closing
        return self.transport

    def release(self) -> None:
        """The run is over: close the connection once it has been idle for `keep_open`."""
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.keep_open, self._close_idle)

    def _close_idle(self) -> None:
        self._timer = None
        self._closing = asyncio.create_task(self.transport.close())

    async def close(self) -> None:
        await self.take()
        await self.transport.close()
