"""How one stage of the pipeline hears from the stage before it: no polling between stages.

The stage before calls `more()` after each commit and `end()` when it has finished; the stage
after calls `look()` before each query for work, and `wait()` when it found none. Because
`look()` clears the signal before the query, a commit that lands between the query and the
wait sets it again, so no work is ever left waiting for a signal that came too early.
"""

from __future__ import annotations

import asyncio


class Upstream:
    def __init__(self) -> None:
        self._more = asyncio.Event()
        self._ended = False

    def more(self) -> None:
        """Work is committed for the next stage."""
        self._more.set()

    def end(self) -> None:
        """No more work will come."""
        self._ended = True
        self._more.set()

    def look(self) -> bool:
        """Call before looking for work; True when the stage before has ended, so that finding
        nothing means done rather than 'wait for more'."""
        ended = self._ended
        self._more.clear()
        return ended

    async def wait(self) -> None:
        await self._more.wait()

    @classmethod
    def none(cls) -> Upstream:
        """For a stage run on its own: it has nothing to wait for."""
        upstream = cls()
        upstream.end()
        return upstream
