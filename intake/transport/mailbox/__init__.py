"""Mail sources. Each is synchronous (imapclient is); fetch.py runs them in a worker thread."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Protocol

from intake.settings.oauth2 import Mechanism
from intake.settings.schema import Settings

Key = int | str


class Fetched(NamedTuple):
    key: Key
    raw: bytes
    arrived_at: datetime | None  # IMAP's INTERNALDATE, a Maildir file's mtime


class Mailbox(Protocol):
    """A folder that new mail arrives in, and a way to mark mail processed without deleting it."""

    identity: str
    folder: str

    def open(self) -> int | None:
        """Connect and select the folder; returns its UIDVALIDITY (None where there is none)."""

    def pending(self) -> list[Key]:
        """Keys of the messages still in the folder (those fetched before included)."""

    def fetch(self, keys: list[Key]) -> list[Fetched]:
        """Raw bytes of these messages and when each arrived, without marking them read."""

    def offers_push(self) -> bool:
        """Whether new mail can be heard of as it arrives (the server offers IDLE)."""

    def mark_processed(self, keys: list[Key]) -> None:
        """Move these messages out of the folder, never deleting them."""

    def close(self) -> None: ...


def open_mailbox(settings: Settings) -> Mailbox:
    config = settings.mailbox
    if config.kind == "imap":
        from intake.transport.credentials import mailbox_login
        from intake.transport.mailbox.imap import ImapMailbox

        return ImapMailbox(config, mailbox_login(settings), sasl_mechanism(settings))
    from intake.transport.mailbox.maildir import MaildirMailbox

    assert config.path is not None
    return MaildirMailbox(config.path)


def sasl_mechanism(settings: Settings) -> Mechanism:
    return settings.oauth2.mechanism if settings.oauth2 is not None else "xoauth2"
