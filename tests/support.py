"""Helpers for tests: settings files written as an operator would, test mail, and the `intake`
command run as the team runs it."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from intake.conduct.rules import RuleContext, decide
from intake.engine.compose import Recipient, queue_email
from intake.engine.contract import Verdict
from intake.engine.link import CaseLink
from intake.engine.screen import screen
from intake.mail.parse import ParsedMessage
from intake.settings.loading import load_settings
from intake.settings.policy import KindRule
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import InboundMessage, OutboundMessage

_counter = itertools.count(1)
CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
REPO = Path(__file__).resolve().parents[1]
# The environment variable the settings of the server tests name for the IMAP password.
IMAP_PASSWORD_ENV = "INTAKE_TEST_IMAP_PASSWORD"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the shapes settings use: tables, arrays of tables, scalars."""
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                lines.append(f"[[{key}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
        else:
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


TEAM = [
    {"name": "Alice Lead", "email": "alice@example.org", "roles": ["lead"]},
    {"name": "Bob Member", "email": "bob@example.org", "roles": ["member"]},
]


def base_settings(directory: Path) -> dict[str, Any]:
    return {
        "organisation": {
            "name": "Example Community",
            "address": "info@example.org",
            "display_name": "Example Code of Conduct Team",
            "emergency_notice": "If someone is in immediate danger, call 112.",
        },
        "paths": {"data_dir": str(directory / "var"), "templates": str(REPO / "templates")},
        "mailbox": {"kind": "maildir", "path": str(directory / "mail")},
        "outbound": {"kind": "directory", "path": str(directory / "outbox")},
        "database": {"url": f"sqlite://{directory / 'intake.sqlite3'}"},
        "team": [dict(member) for member in TEAM],
        "roster": {
            "rotation": ["alice@example.org", "bob@example.org"],
            "start": "2026-01-05T09:00:00",
            "period": "1w",
            "timezone": "Europe/Berlin",
        },
    }


def write_settings(directory: Path, data: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "settings.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def settings_from(directory: Path, data: dict[str, Any]) -> Settings:
    return load_settings(write_settings(directory, data))


def unique_folder() -> str:
    return f"T{next(_counter)}"


def make_mail(
    *,
    sender: str = "Sam Reporter <sam@example.net>",
    to: str = "info@example.org",
    subject: str = "Harassment on the forum",
    body: str = "Someone keeps sending me insulting private messages.",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
    html: str | None = None,
    message_id: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Mon, 16 Nov 2026 10:00:00 +0000"
    message["Message-ID"] = message_id or f"<test-{next(_counter)}@example.net>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content_type, payload in attachments or []:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(message)


def intake(*args: str, config: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `intake` command with ``config``; with ``check``, it must exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", "intake", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


OWN_ADDRESS = "info@example.org"


def classify(
    message: ParsedMessage, link: CaseLink | None = None, kind_rules: tuple[KindRule, ...] = ()
) -> Verdict:
    """What the pipeline decides of a message, without the database: the screen, then (for mail it
    lets through) the case rules, given what the link to a case found."""
    return screen(message, frozenset({OWN_ADDRESS})) or decide(
        message, link, RuleContext(kind_rules=kind_rules)
    )


async def stored_inbound(raw: bytes, **fields: Any) -> InboundMessage:
    """A stored inbound row as fetch writes it (its SHA-256 and size from `raw`), for tests that
    need one without a mailbox."""
    return await InboundMessage.create(
        raw_bytes=raw,
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        mailbox="test",
        folder="INBOX",
        **fields,
    )


def delivery_report(original_message_id: str, status: str, diagnostic: str) -> bytes:
    """A delivery status notification (RFC 3464) about our email `original_message_id`."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: info@example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.example.net>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n"
        "--B\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "Your message could not be delivered.\r\n"
        "--B\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; sam@example.net\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n"
        "--B\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        "From: Example Code of Conduct Team <info@example.org>\r\n"
        f"Message-ID: {original_message_id}\r\n"
        "--B--\r\n"
    ).encode()


async def queue_acknowledgements(settings: Settings, count: int) -> list[OutboundMessage]:
    """`count` acknowledgements queued in the outbox, to reporter1@example.net and on."""
    return [
        await queue_email(
            settings,
            template=TemplateName.ACKNOWLEDGEMENT,
            to=[Recipient(f"reporter{n}@example.net", f"Reporter {n}")],
            context={
                "organisation": {
                    "name": "Example Community",
                    "display_name": "Team",
                    "address": "info@example.org",
                    "emergency_notice": "Call 112.",
                    "outside_contact": None,
                    "outside_contact_name": None,
                },
                "ref": f"COC-2026-{n:04d}",
                "reporter_name": "",
                "readers": ["Alice"],
                "next_contact": "3 days",
            },
        )
        for n in range(1, count + 1)
    ]
