"""An SMTP sink: an aiosmtpd server in its own thread that keeps every message it accepts, and
can be told to refuse the next ones."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import email.policy
import json
import re
import ssl
import threading
import time
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.lifecycle import Server, live_servers
from tests.servers.ports import free_port


@dataclass
class CapturedMessage:
    """One message as the SMTP sink received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[str, int] | None = None
    login: str | None = None  # the AUTH login used, if any
    tls: bool = False  # whether the session was encrypted (STARTTLS or implicit TLS)
    received_at: float = field(default_factory=time.time)

    def parsed(self) -> EmailMessage:
        """The message parsed with ``email.policy.default``.

        SMTP turns every line ending into CRLF on the wire; they are turned back into LF first,
        so ``get_content()`` of a part sent as ``"text\n"`` is ``"text\n"`` again. ``data``
        keeps the exact bytes.
        """
        text = self.data.replace(b"\r\n", b"\n")
        return email.message_from_bytes(text, policy=email.policy.default)


_REPLY_RE = re.compile(r"^[2-5]\d\d[ -]")


class _SinkHandler:
    """aiosmtpd handler: captures messages, injects failures."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """XOAUTH2 (`AUTH XOAUTH2 <base64>`): the bearer token is checked by asking the
        authority's introspection endpoint, as a real submission server would."""
        if self.sink.introspection_url is None or len(args) < 2:
            return AuthResult(success=False, handled=False)
        fields = dict(
            part.split("=", 1)
            for part in base64.b64decode(args[1]).decode("utf-8", "replace").split("\x01")
            if "=" in part
        )
        token = fields.get("auth", "").removeprefix("Bearer ")
        loop = asyncio.get_running_loop()
        account = await loop.run_in_executor(None, self.sink._introspect, token)
        if account is None or account != fields.get("user"):
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=account)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.sink.plain_senders_only and "+" in address.split("@")[0]:
            return "553 5.7.1 Sender address must be your login address"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.sink._take_failure("rcpt")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.sink._take_failure("data")
        if reply is not None:
            return reply
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        peer = session.peer if isinstance(session.peer, tuple) else None
        # session.ssl is only filled in after STARTTLS; the transport knows about implicit TLS too
        transport = server.transport
        encrypted = transport is not None and transport.get_extra_info("ssl_object") is not None
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self.sink._capture(
            CapturedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=data,
                peer=cast("tuple[str, int] | None", tuple(peer[:2]) if peer else None),
                login=login,
                tls=encrypted,
            )
        )
        return "250 2.0.0 Message accepted"


class _CountingSMTP(SMTP):
    """Counts sessions that greet (EHLO/HELO) once each.

    aiosmtpd's Controller opens a probe connection of its own on start; counting greetings
    instead of TCP connections leaves it out, and a second EHLO after STARTTLS is not a new
    session.
    """

    def __init__(self, sink: SmtpSink, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sink = sink
        self._greeted = False

    def _count(self) -> None:
        if not self._greeted:
            self._greeted = True
            self._sink._count_connection()

    async def smtp_EHLO(self, hostname: str) -> None:
        self._count()
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        self._count()
        await super().smtp_HELO(hostname)


class _SinkController(Controller):
    def __init__(self, sink: SmtpSink, handler: Any, **kwargs: Any) -> None:
        self._sink = sink
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # "Requiring AUTH while not requiring TLS" - intended for a local test server.
            warnings.simplefilter("ignore", UserWarning)
            return _CountingSMTP(self._sink, self.handler, **self.SMTP_kwargs)


class SmtpSink(Server):
    """An SMTP server (aiosmtpd, in its own thread) that keeps every message it accepts."""

    host: str
    port: int
    messages: list[CapturedMessage]
    connections: int

    def __init__(
        self,
        *,
        hostname: str = "127.0.0.1",
        port: int | None = None,
        auth: dict[str, str] | None = None,
        tls_cert: tuple[Path, Path] | None = None,
        implicit_tls: bool = False,
        data_size_limit: int | None = 64 * 1024 * 1024,
        idle_timeout: float | None = None,
        plain_senders_only: bool = False,
        introspection_url: str | None = None,
    ) -> None:
        if implicit_tls and tls_cert is None:
            raise ValueError("implicit_tls needs tls_cert")
        self.host = hostname
        self.idle_timeout = idle_timeout  # seconds before the server drops an idle session
        # like submission servers that insist on the login's own address as envelope sender
        self.plain_senders_only = plain_senders_only
        # XOAUTH2 logins are checked against this RFC 7662 endpoint (see tests/servers/authority)
        self.introspection_url = introspection_url
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.auth = dict(auth) if auth is not None else None
        self.tls_cert = tls_cert
        self.implicit_tls = implicit_tls
        self.data_size_limit = data_size_limit
        self.messages = []
        self.connections = 0
        self._cond = threading.Condition()
        self._failures: list[tuple[str, str]] = []  # (stage, reply), consumed front first
        self._controller: _SinkController | None = None
        live_servers.add(self)

    # -- lifecycle -----------------------------------------------------------------------------

    def _server_ssl_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.tls_cert[0]), str(self.tls_cert[1]))
        return context

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # handled=False makes aiosmtpd send "535 5.7.8 Authentication credentials invalid";
        # handled=True would leave the client waiting for a reply that never comes.
        if isinstance(auth_data, LoginPassword) and self.auth is not None:
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if login in self.auth and self.auth[login] == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    def _introspect(self, token: str) -> str | None:
        form = urllib.parse.urlencode({"token": token}).encode()
        assert self.introspection_url is not None
        with urllib.request.urlopen(self.introspection_url, data=form, timeout=10) as response:
            answer = json.load(response)
        return answer.get("username") if answer.get("active") else None

    def start(self) -> None:
        if self._controller is not None:
            return
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            context = self._server_ssl_context()
            kwargs: dict[str, Any] = {
                "hostname": self.host,
                "port": self.port,
                "server_hostname": "localhost",  # avoids socket.getfqdn(), slow without DNS
                "ready_timeout": 10.0,
                "data_size_limit": self.data_size_limit,
                "enable_SMTPUTF8": True,
            }
            if self.idle_timeout is not None:
                kwargs["timeout"] = self.idle_timeout
            if self.implicit_tls:
                kwargs["ssl_context"] = context
            elif context is not None:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = False
            if self.auth is not None or self.introspection_url is not None:
                kwargs.update(
                    authenticator=self._authenticate, auth_required=True, auth_require_tls=False
                )
            controller = _SinkController(self, _SinkHandler(self), **kwargs)
            try:
                controller.start()
            except OSError:
                with contextlib.suppress(Exception):
                    controller.stop(no_assert=True)
                if attempt + 1 < attempts:
                    self.port = free_port()
                    continue
                raise
            self._controller = controller
            return

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    close = stop

    def __repr__(self) -> str:
        return f"<SmtpSink {self.host}:{self.port} messages={len(self.messages)}>"

    # -- state ---------------------------------------------------------------------------------

    def _capture(self, message: CapturedMessage) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def _count_connection(self) -> None:
        with self._cond:
            self.connections += 1

    def _take_failure(self, stage: str) -> str | None:
        with self._cond:
            if self._failures and self._failures[0][0] == stage:
                return self._failures.pop(0)[1]
        return None

    def clear(self) -> None:
        """Forget captured messages, the connection count and pending failures."""
        with self._cond:
            self.messages.clear()
            self.connections = 0
            self._failures.clear()

    def fail_next(
        self,
        count: int,
        reply: str = "451 4.3.0 Try again later",
        *,
        at: Literal["data", "rcpt"] = "data",
    ) -> None:
        """Answer the next ``count`` DATA (or, with ``at="rcpt"``, RCPT) commands with ``reply``."""
        if not _REPLY_RE.match(reply + " "):
            raise ValueError(f"reply must start with an SMTP code: {reply!r}")
        with self._cond:
            self._failures.extend([(at, reply)] * count)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[CapturedMessage]:
        """Block until at least ``count`` messages arrived; return a copy of all of them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} messages within {timeout} s, got {len(self.messages)}"
                )
            return list(self.messages)
