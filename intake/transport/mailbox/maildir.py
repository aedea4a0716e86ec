"""A local Maildir an MTA delivers into: new mail is in new/, processed mail moves to cur/."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from intake.errors import MailboxError
from intake.transport.mailbox import Fetched, Key

PROCESSED_FLAGS = ":2,S"


class MaildirMailbox:
    folder = "new"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity = f"maildir:{path}"

    def open(self) -> int | None:
        try:
            for sub in ("new", "cur", "tmp"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MailboxError(f"maildir {self.path}: {exc.strerror}") from None
        return None

    def pending(self) -> list[Key]:
        names = (entry.name for entry in os.scandir(self.path / "new") if entry.is_file())
        return sorted(name for name in names if not name.startswith("."))

    def fetch(self, keys: list[Key]) -> list[Fetched]:
        """The MTA writes into tmp/ and renames into new/, so a file's mtime is its arrival."""
        found: list[Fetched] = []
        for key in keys:
            path = self.path / "new" / str(key)
            try:
                with path.open("rb") as file:
                    arrived = datetime.fromtimestamp(os.fstat(file.fileno()).st_mtime, UTC)
                    found.append(Fetched(key, file.read(), arrived))
            except FileNotFoundError:
                continue  # taken away by someone else between listing and reading
        return found

    def offers_push(self) -> bool:
        return True  # inotify, or a poll twice a second where it is unavailable

    def mark_processed(self, keys: list[Key]) -> None:
        for key in keys:
            name = str(key)
            target = self.path / "cur" / (name + PROCESSED_FLAGS)
            if target.exists():  # a name used twice (files copied in by hand): keep both
                target = self.path / "cur" / f"{name}.{uuid.uuid4().hex[:8]}{PROCESSED_FLAGS}"
            try:
                os.rename(self.path / "new" / name, target)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise MailboxError(f"maildir {self.path}: {name}: {exc.strerror}") from None

    def close(self) -> None:
        return None
