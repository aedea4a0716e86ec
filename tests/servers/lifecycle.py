"""What every test server shares: ``with Server(...)`` starts and closes it, a crashed run's
leftovers are stopped at exit, and a failed start reports the end of the server's log."""

from __future__ import annotations

import atexit
import contextlib
import weakref
from pathlib import Path
from types import TracebackType
from typing import Self


class Server:
    """A server the tests start and stop: `with Server(...) as server:` starts and closes it."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


live_servers: weakref.WeakSet[Server] = weakref.WeakSet()


@atexit.register
def _close_leftovers() -> None:
    """Stop servers a crashed benchmark or test run forgot, so no daemons outlive us."""
    for server in list(live_servers):
        with contextlib.suppress(Exception):
            server.close()


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` of a server's log, for the error raised when it fails."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])
