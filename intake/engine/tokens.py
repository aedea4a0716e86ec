"""Signed reply addresses: `info+TOKEN@domain` names one party of one case.

Every email about a case carries, in Reply-To, an address whose TOKEN says which case and which
party (the reporter, one team member, a witness) it was sent to, signed with an HMAC. A reply to
it threads into that case as that party; a token whose signature fails, or that arrives from
someone who is not its party, is refused. Like Zulip's email gateway, tokens are credentials:
encode and decode are a tested pair, and tokens are redacted from every log line.

The token is lowercase letters, digits and hyphens only, because mail systems lowercase local
parts and some drop other characters. It is `<ticket id>-<party id>-<signature>`; the signature is
80 bits of HMAC-SHA256 in base32.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from intake.errors import SettingsError

if TYPE_CHECKING:
    from intake.settings.schema import Settings

MIN_SECRET_LENGTH = 32
SECRET_FILE = "reply-secret"
_SIGNATURE_CHARS = 16  # 80 bits in base32
_TOKEN = re.compile(r"^(\d{1,12})-(\d{1,12})-([a-z2-7]{16})$")
# A token anywhere in text: what the log filter hides.
_TOKEN_IN_TEXT = re.compile(r"(?<![\w-])(\d{1,12}-\d{1,12}-)[A-Za-z2-7]{16}(?![\w-])")


@dataclass(frozen=True)
class ReplyToken:
    ticket_id: int
    party_id: int


class ForgedToken(Exception):
    """A token-shaped string whose signature does not verify; `token` is what it claims."""

    def __init__(self, message: str, token: ReplyToken) -> None:
        super().__init__(message)
        self.token = token


def _signature(key: bytes, token: ReplyToken) -> str:
    message = f"intake-reply-v1:{token.ticket_id}:{token.party_id}".encode("ascii")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_SIGNATURE_CHARS]


def encode(key: bytes, token: ReplyToken) -> str:
    return f"{token.ticket_id}-{token.party_id}-{_signature(key, token)}"


def decode(key: bytes, text: str) -> ReplyToken | None:
    """The token `text` carries; None when it is not token-shaped at all.

    Raises ForgedToken when it is shaped like a token but its signature does not verify.
    """
    match = _TOKEN.match(text.strip().lower())
    if match is None:
        return None
    token = ReplyToken(ticket_id=int(match.group(1)), party_id=int(match.group(2)))
    if not hmac.compare_digest(_signature(key, token), match.group(3)):
        raise ForgedToken(f"the signature of reply token {redact(text)} does not verify", token)
    return token


def reply_address(settings: Settings, key: bytes, token: ReplyToken) -> str:
    organisation = settings.organisation
    separator = organisation.reply_separator
    return f"{organisation.local_part}{separator}{encode(key, token)}@{organisation.domain}"


def tokens_in(settings: Settings, text: str) -> list[str]:
    """The tokens of our reply addresses written anywhere in `text` (a header's value)."""
    organisation = settings.organisation
    pattern = _reply_addresses(
        organisation.local_part, organisation.reply_separator, organisation.domain
    )
    return pattern.findall(text)


@lru_cache(maxsize=8)
def _reply_addresses(local_part: str, separator: str, domain: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?<![\w.+=-]){re.escape(local_part)}{re.escape(separator)}"
        rf"([0-9A-Za-z-]+)@{re.escape(domain)}\b",
        re.IGNORECASE,
    )


def redact(text: str) -> str:
    """`text` with the signature of every reply token in it replaced by `…`."""
    return _TOKEN_IN_TEXT.sub(r"\1…", text)


class RedactTokens(logging.Filter):
    """A logging filter that redacts reply tokens from every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _read_secret_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"{path}: the reply-address secret is readable by others; run: chmod 600 {path}"
        )
    return path.read_text(encoding="ascii").strip()


def _generate_secret_file(path: Path) -> None:
    """Write a new random secret, readable only by its owner; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first: use theirs
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(secrets.token_urlsafe(48) + "\n")


def signing_key(settings: Settings) -> bytes:
    """The key for reply tokens: the environment variable `organisation.secret_env` names, else
    the secret kept in the data directory, generated on first use."""
    env_name = settings.organisation.secret_env
    value = os.environ.get(env_name)
    if value is not None:
        if len(value) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"organisation.secret_env: {env_name} is {len(value)} characters long;"
                f" a reply-address secret needs at least {MIN_SECRET_LENGTH}"
            )
        return value.encode("utf-8")
    path = settings.data_dir / SECRET_FILE
    if path not in _kept_secrets:
        _kept_secrets[path] = _kept_secret(path)
    return _kept_secrets[path]


_kept_secrets: dict[Path, bytes] = {}  # read once per process: every outbound email needs it


def _kept_secret(path: Path) -> bytes:
    try:
        if not path.exists():
            _generate_secret_file(path)
        secret = _read_secret_file(path)
    except OSError as exc:
        raise SettingsError(
            f"{path}: cannot keep the reply-address secret: {exc.strerror}"
        ) from None
    if len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(
            f"{path}: the reply-address secret is shorter than {MIN_SECRET_LENGTH} characters"
        )
    return secret.encode("utf-8")
