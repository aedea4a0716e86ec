"""The value types of the settings file: a section, an email address, a duration.

A duration is written as in the file (`'30s'`, `'15m'`, `'72h'`, `'3d'`, `'1w'`) and validated
straight to a `timedelta`, so no caller parses one again.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")
# A year is 365 days: retention periods ("2y") need no calendar.
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> timedelta:
    """'30s', '15m', '72h', '3d', '1w' -> timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like '30m', '72h', '3d' or '1w'")
    amount, unit = match.groups()
    if int(amount) == 0:
        raise ValueError("a duration must be longer than zero")
    return timedelta(seconds=int(amount) * _UNIT_SECONDS[unit])


def format_duration(duration: timedelta) -> str:
    """The inverse of parse_duration, in the largest unit that is exact: 300 s -> '5m'."""
    seconds = int(duration.total_seconds())
    for unit, size in sorted(_UNIT_SECONDS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{duration.total_seconds():g}s"


def _duration_from_file(value: object) -> object:
    """A duration in the file is text; a timedelta (a default, or a settings object built in
    code) passes as it is."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta):
        return value
    raise ValueError(f"{value!r} is not a duration like '30m', '72h', '3d' or '1w'")


def _check_email(text: str) -> str:
    if not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+", text):
        raise ValueError(f"{text!r} is not an email address")
    return text.lower()


Email = Annotated[str, AfterValidator(_check_email)]
Duration = Annotated[timedelta, BeforeValidator(_duration_from_file)]


class Section(BaseModel):
    """A table of the settings file: frozen once loaded, and an unknown key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")
