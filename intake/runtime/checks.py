"""`intake check`: try each connection once and say, in one line each, what happened."""

from __future__ import annotations

import asyncio

from intake.errors import IntakeError
from intake.runtime.cycle import running
from intake.settings.schema import Settings
from intake.settings.types import format_duration
from intake.transport.delivery import make_transport
from intake.transport.mailbox import open_mailbox

CheckResult = tuple[str, str, str | None]


async def _check_mailbox(settings: Settings) -> CheckResult:
    mailbox = open_mailbox(settings)
    try:
        await asyncio.to_thread(mailbox.open)
    except IntakeError as exc:
        return ("mailbox", mailbox.identity, str(exc).removeprefix(mailbox.identity + ": "))
    try:
        push = _push_line(settings, mailbox.offers_push())
    finally:
        await asyncio.to_thread(mailbox.close)
    return ("mailbox", f"{mailbox.identity} {mailbox.folder}, {push}", None)


def _push_line(settings: Settings, offered: bool) -> str:
    poll = f"polling every {format_duration(settings.schedule.fetch_every)}"
    if not settings.mailbox.push:
        return f"push: off, {poll}"
    if not offered:
        return f"push: IDLE not offered, {poll}"
    how = "IMAP IDLE" if settings.mailbox.kind == "imap" else "watched"
    return f"push: {how}"


async def _check_outbound(settings: Settings) -> CheckResult:
    transport = make_transport(settings)
    target = transport.name
    try:
        await transport.open()
    except IntakeError as exc:
        return ("outbound", target, str(exc).removeprefix(target + ": "))
    await transport.close()
    return ("outbound", target, None)


async def _check_database(settings: Settings) -> CheckResult:
    target = settings.database.url.split("@")[-1]
    try:
        async with running(settings, sync=False):  # a check changes nothing
            pass
    except Exception as exc:  # asyncpg's own errors are neither ORM errors nor OSError
        return ("database", target, f"{type(exc).__name__}: {exc}")
    return ("database", target, None)


async def run_checks(settings: Settings) -> list[CheckResult]:
    return [
        await _check_mailbox(settings),
        await _check_outbound(settings),
        await _check_database(settings),
    ]
