"""What the commands share: the event loop, the settings, the database, JSON and tables."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from intake.runtime.cycle import running
from intake.settings.loading import require_secrets
from intake.settings.schema import Settings
from intake.transport.oauth2.tokens import require_token

T = TypeVar("T")
console = Console()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings_loader"]()
    return settings


def with_database(
    ctx: click.Context, work: Callable[[Settings], Awaitable[T]], *, connects: bool = False
) -> T:
    """Run `work` with the database open. Only commands that connect to the mail servers need
    the secrets and write the team table; the listings read and need neither."""
    settings = settings_of(ctx)
    if connects:
        ready_to_connect(settings)

    async def go() -> T:
        async with running(settings, sync=connects):
            return await work(settings)

    return run_async(go())


def ready_to_connect(settings: Settings) -> None:
    """Every secret the settings name is set, and an OAuth2 side has its token."""
    require_secrets(settings)
    require_token(settings)


def print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=escape(title), title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:  # cells hold text from inbound mail: never rich markup
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


ALL_OPTION = click.option(
    "--all", "show_all", is_flag=True, help="Everything, not only the most recent."
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
WHY_OPTION = click.option(
    "--why", default="", help="Why you read it: recorded in the case's audit trail."
)


def operator() -> str:
    """Who runs this command, for the audit trail: the operating-system user, and the user
    behind sudo when there is one."""
    user = getpass.getuser()
    behind = os.environ.get("SUDO_USER")
    return f"{behind} (as {user})" if behind and behind != user else user
