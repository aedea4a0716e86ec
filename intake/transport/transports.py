"""Where outbound mail goes: an SMTP server (one connection reused across a batch, a password
or an OAuth2 token to log in) or, the embedded default, a directory of .eml files; and how a
send fails: for now (TemporaryFailure), for good (PermanentFailure), or the connection itself
(ConnectionLost)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from pathlib import Path
from typing import Protocol

import aiosmtplib

from intake.errors import (
    DeliveryError,
    DeliveryLoginFailed,
    DeliveryTokenRefused,
    TokenEndpointError,
    TokenRefused,
)
from intake.settings.schema import OutboundSettings, Settings
from intake.transport.credentials import Login, outbound_login
from intake.transport.tls import tls_context

log = logging.getLogger("intake.deliver")

SERVICE_CLOSING = 421  # RFC 5321: the server is closing the session


class TemporaryFailure(Exception):
    """Try again later (4xx, connection trouble)."""


class ConnectionLost(TemporaryFailure):
    """The connection itself failed: stop this run rather than fail every row in turn."""


class PermanentFailure(Exception):
    """The server refused for good (5xx)."""


class Sendable(Protocol):
    """What a transport reads of an outbox row (an OutboundMessage, or a copy of those fields
    handed to another process)."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def recipients(self) -> list[str]: ...
    @property
    def raw_bytes(self) -> bytes: ...


class Transport(Protocol):
    name: str  # where the mail goes, for messages

    async def open(self) -> None:
        """Ready to send; does nothing when it already is."""

    async def send(self, row: Sendable) -> None: ...

    async def close(self) -> None: ...


class DirectoryTransport:
    """Writes each message as NNNNNNNN-kind.eml, atomically: the embedded default outbox."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    async def open(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(f"outbox directory {self.path}: {exc.strerror}") from None

    async def send(self, row: Sendable) -> None:
        final = self.path / f"{row.id:08d}-{row.kind}.eml"
        partial = self.path / f".{final.name}.partial"
        try:
            partial.write_bytes(row.raw_bytes)
            os.replace(partial, final)
        except OSError as exc:
            raise TemporaryFailure(f"{final}: {exc.strerror}") from None

    async def close(self) -> None:
        return None


class SmtpTransport:
    def __init__(self, config: OutboundSettings, login: Login | None, plain_sender: str) -> None:
        self.config = config
        self.login = login
        self.client: aiosmtplib.SMTP | None = None
        self.name = f"smtp://{config.host}:{config.effective_port}"
        # A submission server that insists on the login's own address as the envelope sender
        # refuses VERP senders: from then on this transport sends from the plain address.
        self.plain_sender = plain_sender
        self.verp_refused = False

    async def open(self) -> None:
        """Connect and log in, unless still connected from an earlier run."""
        if self.client is not None and self.client.is_connected:
            return
        config = self.config
        try:
            context = tls_context(config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"{self.name}: outbound.ca_file {config.ca_file}: {exc}") from None
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.effective_port,
            use_tls=config.security == "ssl",
            start_tls=config.security == "starttls",
            tls_context=context,
            timeout=config.timeout_seconds,
        )
        try:
            await client.connect()
            if self.login is not None:
                await log_in(client, self.login)
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _quietly_close(client)
            raise DeliveryLoginFailed(
                f"{self.name}: login refused: {exc.code} {exc.message}"
            ) from None
        except TokenRefused as exc:
            await _quietly_close(client)
            raise DeliveryTokenRefused(f"{self.name}: {exc}") from None
        except TokenEndpointError as exc:
            await _quietly_close(client)
            raise DeliveryError(f"{self.name}: {exc}") from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            await _quietly_close(client)
            raise DeliveryError(f"{self.name}: {exc}") from None
        self.client = client

    async def send(self, row: Sendable) -> None:
        try:
            await self._send(row)
        except ConnectionLost:
            # A reused connection the server closed while idle: one fresh try before deferring.
            await self._send(row)

    async def _send(self, row: Sendable) -> None:
        if self.client is None or not self.client.is_connected:
            await self.open()
        assert self.client is not None
        try:
            await self._transaction(row)
        except (PermanentFailure, TemporaryFailure):
            await self._reset()  # a refused message must not leave the session mid-transaction
            raise

    async def _reset(self) -> None:
        if self.client is None:
            return
        try:
            await self.client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await _quietly_close(self.client)
            self.client = None

    async def _transaction(self, row: Sendable) -> None:
        assert self.client is not None
        sender = self.plain_sender if self.verp_refused else row.sender
        try:
            errors, _ = await self.client.sendmail(sender, list(row.recipients), row.raw_bytes)
        except aiosmtplib.SMTPSenderRefused as exc:
            if sender != self.plain_sender and exc.code >= 500:
                log.warning(
                    "%s refuses VERP envelope senders (%s %s): sending from %s; bounces are"
                    " matched by the Message-ID they quote (set [outbound] verp = false)",
                    self.name,
                    exc.code,
                    exc.message,
                    self.plain_sender,
                )
                self.verp_refused = True
                await self._reset()
                await self._transaction(row)
                return
            if exc.code == SERVICE_CLOSING:  # a kept-open session the server has timed out
                await _quietly_close(self.client)
                self.client = None
                raise ConnectionLost(f"{self.name}: {exc.code} {exc.message}") from None
            # Our own address refused (authentication, relaying): a setup problem, not this
            # message's. Stop the run; the rows stay queued for when the setup is fixed.
            raise DeliveryError(f"{self.name}: sender refused: {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if all(code >= 500 for code in codes):
                raise PermanentFailure(detail) from None
            raise TemporaryFailure(detail) from None
        except aiosmtplib.SMTPResponseException as exc:
            detail = f"{exc.code} {exc.message}"
            if exc.code >= 500:
                raise PermanentFailure(detail) from None
            raise TemporaryFailure(detail) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _quietly_close(self.client)
            self.client = None
            raise ConnectionLost(f"{self.name}: {exc}") from None
        except (ValueError, UnicodeError) as exc:  # a row no server could ever take
            raise PermanentFailure(f"unsendable: {exc}") from None
        if errors:
            log.warning("outbound %d: some recipients refused: %s", row.id, errors)

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                await _quietly_close(client)


async def log_in(client: aiosmtplib.SMTP, login: Login) -> None:
    """AUTH with the password, or XOAUTH2 with an access token: a token the server refuses is
    replaced by a fresh one once (a provider may revoke one early), then the refusal stands.
    Tokens come from the token file, and a refresh is an HTTP request: both off the loop."""
    if login.tokens is None:
        await client.login(login.username, login.password)
        return
    token = await asyncio.to_thread(login.tokens.access_token)
    try:
        await client.auth_xoauth2(login.username, token)
    except aiosmtplib.SMTPAuthenticationError:
        token = await asyncio.to_thread(login.tokens.access_token, token)
        await client.auth_xoauth2(login.username, token)


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, RuntimeError):
        client.close()


def make_transport(settings: Settings) -> Transport:
    config = settings.outbound
    if config.kind == "directory":
        assert config.path is not None
        return DirectoryTransport(config.path)
    return SmtpTransport(config, outbound_login(settings), settings.organisation.address)
