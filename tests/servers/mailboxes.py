"""What tests do to a Dovecot's mailboxes over IMAP: log in, append, list, fetch, make folders."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import cast

import imapclient


class Mailboxes:
    """IMAP helpers for a server with ``host``, a plain-text ``port`` and ``users`` (login to
    password); ``default_user`` is whom they act for unless told otherwise."""

    host: str
    port: int
    users: dict[str, str]
    default_user: str

    def client(self, user: str | None = None, *, timeout: float = 10.0) -> imapclient.IMAPClient:
        """A logged-in IMAPClient on the plain port (the caller logs out)."""
        login = user or self.default_user
        imap = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        try:
            imap.login(login, self.users[login])
        except BaseException:
            with contextlib.suppress(Exception):
                imap.shutdown()
            raise
        return imap

    @contextlib.contextmanager
    def session(self, user: str | None = None) -> Iterator[imapclient.IMAPClient]:
        """``with dovecot.session() as imap:`` - a logged-in client, logged out afterwards."""
        imap = self.client(user)
        try:
            yield imap
        finally:
            try:
                imap.logout()
            except Exception:
                with contextlib.suppress(Exception):
                    imap.shutdown()

    def append(self, raw: bytes, folder: str = "INBOX", user: str | None = None) -> None:
        with self.session(user) as imap:
            imap.append(folder, raw)

    def append_many(
        self, raws: Iterable[bytes], folder: str = "INBOX", user: str | None = None
    ) -> int:
        """APPEND every message over one connection; returns how many were appended."""
        count = 0
        with self.session(user) as imap:
            for raw in raws:
                imap.append(folder, raw)
                count += 1
        return count

    def uids(self, folder: str = "INBOX", user: str | None = None) -> list[int]:
        with self.session(user) as imap:
            imap.select_folder(folder, readonly=True)
            return sorted(cast(list[int], imap.search("ALL")))

    def uidvalidity(self, folder: str = "INBOX", user: str | None = None) -> int:
        with self.session(user) as imap:
            status = imap.folder_status(folder, [b"UIDVALIDITY"])
            return int(status[b"UIDVALIDITY"])

    def fetch_all(self, folder: str = "INBOX", user: str | None = None) -> list[bytes]:
        """Every message's raw bytes in UID order, without setting \\Seen (BODY.PEEK[])."""
        result: list[bytes] = []
        with self.session(user) as imap:
            imap.select_folder(folder, readonly=True)
            uids = sorted(cast(list[int], imap.search("ALL")))
            for start in range(0, len(uids), 500):  # keep command lines short
                batch = uids[start : start + 500]
                fetched = imap.fetch(batch, [b"BODY.PEEK[]"])
                result.extend(bytes(fetched[uid][b"BODY[]"]) for uid in batch)
        return result

    def folders(self, user: str | None = None) -> list[str]:
        with self.session(user) as imap:
            return sorted(str(name) for _flags, _delim, name in imap.list_folders())

    def create_folder(self, folder: str, user: str | None = None) -> None:
        with self.session(user) as imap:
            imap.create_folder(folder)
