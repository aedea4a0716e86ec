"""Logging: one line per event, to stderr (journald adds the timestamps under systemd)."""

from __future__ import annotations

import logging
import sys

from intake.engine.tokens import RedactTokens


def configure_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())  # reply tokens are credentials
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Libraries that log a line per MIME part or per query: keep them to real problems.
    for noisy in ("mailparser", "tortoise", "aiosqlite", "apscheduler", "asyncio", "imapclient"):
        logging.getLogger(noisy).setLevel(logging.ERROR if not verbose else logging.INFO)
