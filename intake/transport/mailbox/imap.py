"""IMAP source (imapclient): UIDs above the last seen, BODY.PEEK[] in batches, MOVE when stored.

Where the server lacks MOVE: COPY, flag \\Deleted and UID EXPUNGE those UIDs only (UIDPLUS).
Where it lacks UIDPLUS too, nothing is expunged at all: the copy is made and the original is
tagged with a keyword that later searches skip, because a plain EXPUNGE could delete mail that
someone else flagged.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from intake.errors import (
    MailboxError,
    MailboxLoginFailed,
    MailboxTokenRefused,
    TokenEndpointError,
    TokenRefused,
)
from intake.settings.oauth2 import Mechanism
from intake.settings.schema import MailboxSettings
from intake.transport.credentials import Login
from intake.transport.mailbox import Fetched, Key
from intake.transport.tls import tls_context

PROCESSED_KEYWORD = b"$IntakeProcessed"
IMAP_ERRORS: tuple[type[BaseException], ...] = (
    IMAPClientError,
    OSError,
    ssl.SSLError,
    socket.timeout,
    EOFError,
)


class ImapMailbox:
    def __init__(self, config: MailboxSettings, login: Login, mechanism: Mechanism) -> None:
        self.config = config
        self.login = login
        self.mechanism = mechanism
        self.folder = config.folder
        self.identity = f"imap://{config.username}@{config.host}:{config.effective_port}"
        self._client: IMAPClient | None = None

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise MailboxError(f"{self.identity}: not connected")
        return self._client

    def _describe(self, exc: BaseException) -> str:
        return describe(self.identity, exc)

    def open(self) -> int | None:
        client = connect(self.config, self.login, self.mechanism, self.identity)
        self._client = client
        try:
            selected = client.select_folder(self.folder)
            if not client.folder_exists(self.config.processed_folder):
                client.create_folder(self.config.processed_folder)
        except IMAP_ERRORS as exc:
            self.close()
            raise MailboxError(self._describe(exc)) from None
        return int(selected[b"UIDVALIDITY"])

    def offers_push(self) -> bool:
        return bool(self.client.has_capability("IDLE"))

    def _fallback_only(self) -> bool:
        return not (self.client.has_capability("MOVE") or self.client.has_capability("UIDPLUS"))

    def pending(self) -> list[Key]:
        criteria = ["UNKEYWORD", PROCESSED_KEYWORD] if self._fallback_only() else ["ALL"]
        try:
            return sorted(int(uid) for uid in self.client.search(criteria))
        except IMAP_ERRORS as exc:
            raise MailboxError(self._describe(exc)) from None

    def fetch(self, keys: list[Key]) -> list[Fetched]:
        try:
            response = self.client.fetch(
                [int(key) for key in keys], ["BODY.PEEK[]", "INTERNALDATE"]
            )
        except IMAP_ERRORS as exc:
            raise MailboxError(self._describe(exc)) from None
        return [
            Fetched(int(uid), bytes(data[b"BODY[]"]), data.get(b"INTERNALDATE"))
            for uid, data in sorted(response.items())
            if data.get(b"BODY[]") is not None
        ]

    def mark_processed(self, keys: list[Key]) -> None:
        uids = [int(key) for key in keys]
        if not uids:
            return
        client = self.client
        target = self.config.processed_folder
        try:
            if client.has_capability("MOVE"):
                client.move(uids, target)
                return
            client.copy(uids, target)
            client.add_flags(uids, [PROCESSED_KEYWORD])
            if client.has_capability("UIDPLUS"):
                client.add_flags(uids, [b"\\Deleted"])
                client.uid_expunge(uids)
        except IMAP_ERRORS as exc:
            raise MailboxError(self._describe(exc)) from None

    def close(self) -> None:
        client, self._client = self._client, None
        disconnect(client)


def connect(
    config: MailboxSettings, login: Login, mechanism: Mechanism, identity: str
) -> IMAPClient:
    """A logged-in client, its times timezone-aware; MailboxLoginFailed (MailboxTokenRefused
    when the OAuth2 provider refuses our refresh token) or MailboxError."""
    client: IMAPClient | None = None
    try:
        context = tls_context(config.ca_file)
        client = IMAPClient(
            config.host or "",
            port=config.effective_port,
            ssl=config.security == "ssl",
            ssl_context=context,
            timeout=config.timeout_seconds,
        )
        client.normalise_times = False
        if config.security == "starttls":
            client.starttls(context)
        _log_in(client, login, mechanism)
    except LoginError as exc:
        disconnect(client)
        raise MailboxLoginFailed(f"{identity}: login failed: {_text(exc)}") from None
    except TokenRefused as exc:
        disconnect(client)
        raise MailboxTokenRefused(f"{identity}: {exc}") from None
    except TokenEndpointError as exc:
        disconnect(client)
        raise MailboxError(f"{identity}: {exc}") from None
    except IMAP_ERRORS as exc:
        disconnect(client)
        raise MailboxError(describe(identity, exc)) from None
    return client


def _log_in(client: IMAPClient, login: Login, mechanism: Mechanism) -> None:
    """A password login, or SASL with an access token: a token the server refuses is replaced
    by a fresh one once (a provider may revoke one before it expires), then the refusal
    stands."""
    if login.tokens is None:
        client.login(login.username, login.password)
        return
    token = login.tokens.access_token()
    try:
        _sasl(client, login.username, token, mechanism)
    except LoginError:
        _sasl(client, login.username, login.tokens.access_token(refused=token), mechanism)


def _sasl(client: IMAPClient, username: str, token: str, mechanism: Mechanism) -> None:
    if mechanism == "oauthbearer":
        client.oauthbearer_login(username, token)
    else:
        client.oauth2_login(username, token)


def disconnect(client: IMAPClient | None) -> None:
    """Log out, or drop the connection where the server no longer answers."""
    if client is None:
        return
    try:
        client.logout()
    except IMAP_ERRORS:
        with contextlib.suppress(*IMAP_ERRORS):
            client.shutdown()


def abandon(client: IMAPClient | None) -> None:
    """Drop a connection that failed, without a LOGOUT that could wait on a dead link."""
    if client is not None:
        with contextlib.suppress(*IMAP_ERRORS):
            client.shutdown()


def describe(identity: str, exc: BaseException) -> str:
    return f"{identity}: {_text(exc) or type(exc).__name__}"


def _text(exc: BaseException) -> str:
    """imapclient puts the server's bytes in args[0]; other errors read best as str()."""
    detail = exc.args[0] if len(exc.args) == 1 else None
    if isinstance(detail, bytes):
        return detail.decode("utf-8", "replace")
    return str(detail) if isinstance(detail, str) else str(exc)
