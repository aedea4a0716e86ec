"""Tortoise set-up: SQLite by default (WAL), PostgreSQL by URL; migrations applied at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate

from intake.store.locks import migration_lock

APP = "intake"


def connection_name(url: str) -> str:
    """Named by dialect: tortoise caches SQL per connection name, so a process that opens SQLite
    and later PostgreSQL (the test suite does) must not reuse one name for both."""
    return "sqlite" if url.startswith("sqlite") else "postgres"


def _connection(url: str) -> str | dict[str, Any]:
    """PostgreSQL by URL as given; SQLite through our client (intake/store/sqlite_backend.py)."""
    if not url.startswith("sqlite"):
        return url
    expanded: dict[str, Any] = expand_db_url(url)
    expanded["engine"] = "intake.store.sqlite_backend"
    return expanded


def tortoise_config(url: str) -> dict[str, Any]:
    name = connection_name(url)
    return {
        "connections": {name: _connection(url)},
        "apps": {
            APP: {
                "models": ["intake.store.models"],
                "migrations": "intake.store.migrations",
                "default_connection": name,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# For `tortoise makemigrations` during development (see [tool.tortoise] in pyproject.toml).
MIGRATIONS_CONFIG = tortoise_config("sqlite://var/dev-migrations.sqlite3")


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite://") and ":memory:" not in url:
        Path(url.removeprefix("sqlite://").split("?", 1)[0]).parent.mkdir(
            parents=True, exist_ok=True
        )


async def open_database(url: str) -> None:
    """Apply pending migrations (one process at a time), then open this process's connections."""
    _ensure_sqlite_dir(url)
    config = tortoise_config(url)
    async with migration_lock(url):
        await migrate(config=config)
    await Tortoise.close_connections()
    await Tortoise.init(config=config)


async def close_database() -> None:
    await connections.close_all()


@asynccontextmanager
async def database(url: str) -> AsyncIterator[None]:
    await open_database(url)
    try:
        yield
    finally:
        await close_database()
