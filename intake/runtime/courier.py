"""The SMTP conversation in a process of its own, the courier, so that it uses the second core.

Sending a busy run's mail (every acknowledgement, every assignment notice with the whole report
in it) costs about as much CPU as making the cases; in the process that fetches and processes,
it would share one GIL with them. The courier is a `Transport`: delivery (claims, the sent
ledger, failures; intake/transport/delivery.py) stays where it was and hands the courier one
message at a time, and the courier holds the SMTP connection and speaks to the server. What the
server said comes back as the transport's own result or error, and the courier's log records
are written by the parent's handlers (their format, level and redaction). The courier has no
database: every record of what was sent is written by the parent, as before, so the crash
window is the one delivery documents.

It is spawned (forking a process that runs threads is unsafe) straight from the parent, and asks
the kernel to kill it when the parent dies (PR_SET_PDEATHSIG, as the parse workers do): however
the daemon ends, SIGKILL included, the courier ends with it, and what it had not yet been told
to send stays queued. It ignores SIGINT and SIGTERM, which reach the whole process group: the
parent finishes the message in hand, as it does with its own stages. A courier that dies is
replaced at the next send, and the message in hand is deferred like any connection failure.

Only SMTP goes through a courier; the directory transport writes files, which costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from intake.engine.parallel import die_with
from intake.errors import DeliveryError
from intake.settings.schema import Settings
from intake.transport.transports import ConnectionLost, Sendable, Transport, make_transport

JOIN_SECONDS = 10.0


class CourierDied(ConnectionLost):
    """The courier process ended during a call. A message in hand may or may not have been
    accepted: it is deferred, as when a connection drops after DATA."""


@dataclass(frozen=True)
class Parcel:
    """What the courier needs of an outbox row to send it (the `Sendable` of a transport)."""

    id: int
    kind: str
    sender: str
    recipients: list[str]
    raw_bytes: bytes


class Courier:
    """A transport that sends through the courier process; one call at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = make_transport(settings).name
        self._turn = asyncio.Lock()
        self._process: Any = None  # multiprocessing's SpawnProcess, once started
        self._pipe: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def open(self) -> None:
        try:
            await self._call("open")
        except CourierDied:  # with nothing in hand: a new courier opens it
            try:
                await self._call("open")
            except CourierDied as exc:
                raise DeliveryError(str(exc)) from None

    async def send(self, row: Sendable) -> None:
        parcel = Parcel(row.id, row.kind, row.sender, list(row.recipients), row.raw_bytes)
        await self._call("send", parcel)

    async def close(self) -> None:
        """Close the connection to the server; the courier stays, for the next run."""
        if self._pipe is not None:
            with contextlib.suppress(CourierDied):  # and its connection with it
                await self._call("close")

    def end(self) -> None:
        """End the courier process (it closes its connection first)."""
        pipe, self._pipe = self._pipe, None
        if pipe is None:
            return
        pipe.close()
        self._process.join(JOIN_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _start(self) -> Connection:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        level = logging.getLogger("intake").getEffectiveLevel()
        self._process = context.Process(
            target=_courier_main,
            args=(self.settings, theirs, os.getpid(), level),
            name="intake-courier",
            daemon=True,  # multiprocessing's exit handler ends it too
        )
        self._process.start()
        theirs.close()
        self._pipe = ours
        return ours

    async def _call(self, what: str, parcel: Parcel | None = None) -> None:
        async with self._turn:
            pipe = self._pipe or self._start()
            answered = False
            try:
                pipe.send((what, parcel))
                error = await self._answer(pipe)
                answered = True
            except (EOFError, OSError):
                detail = f"{self.name}: the courier process ended ({self._process.exitcode})"
                error = CourierDied(detail)
            finally:
                # No answer (the courier died, or this task was cancelled while it worked):
                # its answer must never be read as the next call's. A new courier takes over.
                if not answered:
                    self.end()
            if error is not None:
                raise error

    async def _answer(self, pipe: Connection) -> BaseException | None:
        """The call's error (None: it worked); its log records written on the way."""
        while True:
            kind, value = await _receive(pipe)
            if kind == "log":
                logger = logging.getLogger(value.name)
                if logger.isEnabledFor(value.levelno):
                    logger.handle(value)
            else:
                return value  # type: ignore[no-any-return]


async def _receive(pipe: Connection) -> tuple[str, Any]:
    """The next message, without blocking the event loop while none has come."""
    loop = asyncio.get_running_loop()
    while not pipe.poll():
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(pipe.fileno(), _wake, readable)
        try:
            await readable
        finally:
            loop.remove_reader(pipe.fileno())
    message: tuple[str, Any] = pipe.recv()
    return message


def _wake(readable: asyncio.Future[None]) -> None:
    if not readable.done():
        readable.set_result(None)


_couriers: list[Courier] = []


def outbound_transport(settings: Settings) -> Transport:
    """The transport for these settings: SMTP through this process's courier for them (kept
    for the life of the database, see `end_couriers`), anything else as it is."""
    if settings.outbound.kind != "smtp":
        return make_transport(settings)
    for courier in _couriers:
        if courier.settings == settings:
            return courier
    courier = Courier(settings)
    _couriers.append(courier)
    return courier


def end_couriers() -> None:
    while _couriers:
        _couriers.pop().end()


# The courier's side.


class _ToParent(logging.Handler):
    """Every record goes to the parent, which writes it; the pipe is shared with the answers."""

    def __init__(self, send: _Sender) -> None:
        super().__init__()
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.msg, record.args, record.exc_info = record.getMessage(), None, None
            self.send(("log", record))
        except Exception:
            self.handleError(record)


class _Sender:
    """Sends to the parent from any thread of the courier, one message at a time."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.lock = threading.Lock()

    def __call__(self, message: tuple[str, Any]) -> None:
        with self.lock:
            self.pipe.send(message)


def _courier_main(settings: Settings, pipe: Connection, parent: int, level: int) -> None:
    die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    send = _Sender(pipe)
    root = logging.getLogger()
    root.handlers = [_ToParent(send)]
    root.setLevel(level)
    asyncio.run(_serve(settings, pipe, send))


async def _serve(settings: Settings, pipe: Connection, send: _Sender) -> None:
    """Answer each call in turn until the parent closes the pipe (or dies)."""
    transport = make_transport(settings)
    try:
        while True:
            try:
                what, parcel = await _receive(pipe)
            except (EOFError, OSError):
                return
            try:
                if what == "send":
                    await transport.send(parcel)
                elif what == "open":
                    await transport.open()
                else:
                    await transport.close()
            except Exception as exc:
                send(("done", _portable(exc)))
            else:
                send(("done", None))
    finally:
        await transport.close()


def _portable(exc: Exception) -> Exception:
    """The error itself when it survives pickling (the transports' own errors do), else one
    that says what it was, and is handled as any unexpected error of a send."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc
