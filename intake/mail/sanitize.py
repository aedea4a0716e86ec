"""Making untrusted text from inbound mail safe to put in headers and to show."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta

import nh3

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def header_text(value: str, limit: int = 200) -> str:
    """Text safe to put in a header: no line breaks or control characters, bounded length."""
    return _CONTROL.sub(" ", value).strip()[:limit]


# No images: a remote image in a report is a tracking pixel that tells the sender it was read.
_HTML_TAGS = nh3.ALLOWED_TAGS - {"img"}


def sanitize_html(html: str) -> str:
    """HTML from inbound mail, safe to store and show: no scripts, handlers, styles or images."""
    return nh3.clean(html, tags=_HTML_TAGS) if html else ""


def db_text(value: str, limit: int | None = None) -> str:
    """Text that any database column takes: no NUL (PostgreSQL refuses it), bounded length."""
    value = value.replace("\x00", "")
    return value[:limit] if limit is not None else value


def display_filename(name: str, limit: int = 120) -> str:
    """An attachment name as it may be shown: no directories, controls or direction overrides."""
    name = unicodedata.normalize("NFC", name)
    name = _BIDI.sub("", _CONTROL.sub("", name))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    if len(name) > limit:
        _stem, dot, suffix = name.rpartition(".")
        keep = suffix[:10] if dot and len(suffix) <= 10 else ""
        name = name[: limit - len(keep) - 2] + "…" + ("." + keep if keep else "")
    return name or "attachment"


def human_size(size: int) -> str:
    amount = float(size)
    for unit in ("bytes", "KB", "MB"):
        if amount < 1024 or unit == "MB":
            return f"{int(amount)} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} bytes"


def short_duration(duration: timedelta) -> str:
    """A wait measured in seconds: '0.4 s', '12.0 s'; from a minute on, as human_duration."""
    seconds = duration.total_seconds()
    return f"{seconds:.1f} s" if seconds < 60 else human_duration(duration)


def human_duration(duration: timedelta) -> str:
    hours = int(duration.total_seconds() // 3600)
    if hours >= 24 and hours % 24 == 0:
        days = hours // 24
        return "1 day" if days == 1 else f"{days} days"
    if hours >= 1:
        return "1 hour" if hours == 1 else f"{hours} hours"
    minutes = max(int(duration.total_seconds() // 60), 1)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
