"""Session-wide real servers (Dovecot, aiosmtpd) and per-test settings with a fresh database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from intake.runtime.cycle import running
from intake.settings.schema import Settings
from tests.mailroom import Mailroom
from tests.servers import DEFAULT_PASSWORD, Dovecot, SmtpSink
from tests.support import IMAP_PASSWORD_ENV, base_settings, settings_from, unique_folder


@pytest.fixture(autouse=True, scope="session")
def _quiet_mailparser() -> Iterator[None]:
    """mail-parser logs a warning for every MIME part type it does not show: noise here."""
    logger = logging.getLogger("mailparser")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    with Dovecot(tmp_path_factory.mktemp("dovecot"), tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def sink(smtp_server: SmtpSink) -> SmtpSink:
    smtp_server.clear()
    return smtp_server


@pytest.fixture
def folder() -> str:
    """A fresh IMAP folder per test, so tests sharing one Dovecot never see each other's mail."""
    return unique_folder()


@pytest.fixture
def imap_config(
    dovecot: Dovecot, sink: SmtpSink, folder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Settings (as data) for the real servers: IMAP without TLS, SMTP without TLS."""
    monkeypatch.setenv(IMAP_PASSWORD_ENV, DEFAULT_PASSWORD)
    data = base_settings(tmp_path)
    data["mailbox"] = {
        "kind": "imap",
        "host": dovecot.host,
        "port": dovecot.port,
        "security": "none",
        "username": dovecot.default_user,
        "password_env": IMAP_PASSWORD_ENV,
        "folder": folder,
        "processed_folder": f"{folder}/Processed",
        "timeout_seconds": 10,
    }
    data["outbound"] = {
        "kind": "smtp",
        "host": sink.host,
        "port": sink.port,
        "security": "none",
        "timeout_seconds": 10,
        "retry_after": "1s",
    }
    dovecot.create_folder(folder)
    return data


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[[dict[str, Any]], Settings]:
    return lambda data: settings_from(tmp_path, data)


@pytest.fixture
def settings(imap_config: dict[str, Any], tmp_path: Path) -> Settings:
    return settings_from(tmp_path, imap_config)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Settings]:
    """The settings, with their fresh SQLite database open, migrated and the team synced."""
    async with running(settings):
        yield settings


@pytest.fixture
def mailroom(db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str) -> Mailroom:
    return Mailroom(db, dovecot, sink, folder)
