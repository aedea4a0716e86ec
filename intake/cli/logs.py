"""Logging: one line per event, to stderr (journald adds the timestamps under systemd), as
text or, for log shippers, as one JSON object per line with the same fields."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from intake.engine.tokens import redact
from intake.transport.oauth2.redaction import redact_secrets

LogFormat = Literal["text", "json"]


class Redact(logging.Filter):
    """Passes every record through the redactors: reply tokens and OAuth2 tokens are
    credentials, and never reach a log line."""

    def __init__(self, *redactors: Callable[[str], str]) -> None:
        super().__init__()
        self.redactors = redactors

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for redactor in self.redactors:
            redacted = redactor(redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonLines(logging.Formatter):
    """`{"time", "level", "logger", "message"}` (and `"exception"` when there is one), the
    fields of the text line; the message is the redacted one, as in the text line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(verbose: bool = False, log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JsonLines() if log_format == "json" else text)
    handler.addFilter(Redact(redact, redact_secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Libraries that log a line per MIME part or per query: keep them to real problems.
    for noisy in ("mailparser", "tortoise", "aiosqlite", "apscheduler", "asyncio", "imapclient"):
        logging.getLogger(noisy).setLevel(logging.ERROR if not verbose else logging.INFO)
