"""A local Maildir's new/ folder watched with inotify (watchfiles: well kept, async, and it
can poll instead where inotify is unavailable, as on some network file systems)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from watchfiles import Change, awatch

from intake.transport.push import Heard, News

POLL_DELAY_MS = 500  # the fallback's look at new/: twice a second


def _delivered(change: Change, path: str) -> bool:
    """A file added to new/ (an MTA renames it in from tmp/); not our own moves out of it."""
    return change != Change.deleted and not Path(path).name.startswith(".")


async def watch_maildir(path: Path, heard: Heard, stop: asyncio.Event) -> None:
    new = path / "new"
    try:
        new.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        heard(News.UNAVAILABLE, f"maildir {path}: {exc.strerror}")
        return
    for force_polling in (False, True):
        how = "polling new/ twice a second" if force_polling else "inotify"
        heard(News.UP, f"maildir {path} watched ({how})")
        try:
            async for _ in awatch(
                new,
                watch_filter=_delivered,
                stop_event=stop,
                step=200,  # quiet this long: a file copied straight into new/ is written
                recursive=False,
                force_polling=force_polling,
                poll_delay_ms=POLL_DELAY_MS,
            ):
                heard(News.ARRIVED, "")
            return
        except (OSError, RuntimeError) as exc:  # inotify refused: too many watches, say
            news = News.UNAVAILABLE if force_polling else News.DOWN
            heard(news, f"maildir {path}: cannot watch with {how}: {exc}")
