"""Fixtures: session-wide real servers (Dovecot, aiosmtpd) and per-test settings with a fresh
SQLite database.

A test that needs only a database asks for ``db`` (or ``base_config``, the same settings as
data): its mailbox and outbox are directories in tmp_path and no server is started for it. A test
that needs the servers asks for ``imap_config`` or ``imap_db``, which are the same settings
pointed at the session's Dovecot and SMTP sink, or for ``mailroom``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from intake.runtime.cycle import running
from intake.settings.schema import Settings
from tests.mailroom import Mailroom
from tests.servers import DEFAULT_PASSWORD, Dovecot, Postgres, SmtpSink
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
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster; each test creates its own database in it."""
    with Postgres(tmp_path_factory.mktemp("postgres")) as server:
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
def base_config(tmp_path: Path) -> dict[str, Any]:
    """Settings (as data) that need no server: SQLite, a Maildir and an outbox directory, all in
    tmp_path. A module overrides this fixture to change the settings of both kinds of test."""
    return base_settings(tmp_path)


@pytest.fixture
def imap_config(
    base_config: dict[str, Any],
    dovecot: Dovecot,
    sink: SmtpSink,
    folder: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """``base_config`` for the real servers (a copy): IMAP without TLS, SMTP without TLS."""
    monkeypatch.setenv(IMAP_PASSWORD_ENV, DEFAULT_PASSWORD)
    data = copy.deepcopy(base_config)
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
async def db(base_config: dict[str, Any], tmp_path: Path) -> AsyncIterator[Settings]:
    """The settings of ``base_config``, with their fresh SQLite database open, migrated and the
    team synced; no mail server is started."""
    settings = settings_from(tmp_path, base_config)
    async with running(settings):
        yield settings


@pytest.fixture
async def imap_db(imap_config: dict[str, Any], tmp_path: Path) -> AsyncIterator[Settings]:
    """The settings of ``imap_config`` (the real servers), with their fresh SQLite database open,
    migrated and the team synced."""
    settings = settings_from(tmp_path, imap_config)
    async with running(settings):
        yield settings


@pytest.fixture
def mailroom(imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str) -> Mailroom:
    """A conversation on the real servers, with a fresh database."""
    return Mailroom(imap_db, dovecot, sink, folder)


@pytest.fixture
async def pg_mailroom(
    imap_config: dict[str, Any],
    postgres: Postgres,
    dovecot: Dovecot,
    sink: SmtpSink,
    folder: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Mailroom]:
    """``mailroom`` with a fresh database of its own in the throwaway PostgreSQL cluster."""
    data = copy.deepcopy(imap_config)
    data["database"]["url"] = postgres.create_database(f"mailroom_{folder}".lower())
    settings = settings_from(tmp_path, data)
    async with running(settings):
        yield Mailroom(settings, dovecot, sink, folder)
