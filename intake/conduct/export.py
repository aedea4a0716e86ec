"""`intake export REF`: one case as a self-contained archive, for a legal hold or a hand-over to
an outside body.

A zip file, readable without Intake: README.txt (what it is, who exported it and why),
case.json (the case as `intake ticket --json` shows it), thread.txt and thread.html, every
stored message as it arrived (messages/*.eml) and every email as it was sent (emails/*.eml), the
attachments under their own names, and the audit trail, this export included. Written with
mode 0600, never over an existing file, and audited once it is whole.
"""

from __future__ import annotations

import html
import json
import os
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from intake.conduct.audit import AuditLine, record, trail
from intake.conduct.case_record import case_record, find_case
from intake.errors import IntakeError
from intake.settings.schema import Settings
from intake.store.blobs import blob_path
from intake.store.models import (
    Attachment,
    AuditAction,
    InboundMessage,
    OutboundMessage,
    Ticket,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(name: str) -> str:
    """A sender's file name as a harmless one: no folders, no dot files."""
    return _UNSAFE.sub("_", name).strip("._")[:100] or "attachment"


def _thread_text(case: dict[str, Any]) -> str:
    lines = [
        f"{case['ref']}  {case['kind']}  status: {case['status']}",
        f"reporter: {case['reporter'] or '-'}",
        f"subject: {case['subject']}",
        f"opened: {case['created_at']}",
    ]
    if case["resolution"]:
        lines.append(f"resolution: {case['resolution']} ({case['resolution_reason'] or '-'})")
    for event in case["events"]:
        to = f" -> {', '.join(event['to'])}" if event["to"] else ""
        lines += [
            "",
            f"--- {event['created_at']}  {event['kind']}  {event['author']}{to}"
            f"  ({event['audience']})",
            event["body"],
        ]
    return "\n".join(lines) + "\n"


def _thread_html(case: dict[str, Any]) -> str:
    """The thread as a page; the HTML of messages was sanitised (nh3) when it was stored."""
    entries = []
    for event in case["events"]:
        to = f" &rarr; {html.escape(', '.join(event['to']))}" if event["to"] else ""
        body = event["html"] or f"<pre>{html.escape(event['body'])}</pre>"
        entries.append(
            f"<section><h2>{html.escape(str(event['created_at']))} {html.escape(event['kind'])}"
            f" {html.escape(event['author'])}{to} <small>({html.escape(event['audience'])})"
            f"</small></h2>{body}</section>"
        )
    title = html.escape(f"{case['ref']}: {case['subject']}")
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1><p>{html.escape(case['kind'])}, {html.escape(case['status'])},"
        f" reporter {html.escape(case['reporter'] or '-')}</p>{''.join(entries)}</body></html>\n"
    )


def _audit_text(lines: list[AuditLine]) -> str:
    return "".join(
        f"{line.at:%Y-%m-%d %H:%M:%S} UTC  {line.action:<7} {line.actor}  {line.what}"
        f"{f'  (why: {line.why})' if line.why else ''}\n"
        for line in lines
    )


def _readme(case: dict[str, Any], actor: str, why: str, now: datetime) -> str:
    return (
        f"Case {case['ref']}, exported from Intake on {now:%Y-%m-%d %H:%M} UTC by {actor}.\n"
        f"Why: {why or '(no reason given)'}\n\n"
        "This archive holds confidential personal data. Keep it only as long as it is needed.\n\n"
        "case.json      the case and its thread as data\n"
        "thread.txt     the thread as text; thread.html the same as a page\n"
        "messages/      each message as it arrived (.eml, opens in any mail program)\n"
        "emails/        each email Intake sent about the case, as it was sent\n"
        "attachments/   the files people sent\n"
        "audit.txt      who saw the case, what it was sent to, and this export\n"
    )


async def export_case(
    settings: Settings, ref: str, output: Path, actor: str, why: str
) -> tuple[Ticket, Path]:
    """Write the archive to `output`, a new file: built beside it and linked into place only
    when whole, then audited (the trail it holds names this export already)."""
    ticket = await find_case(ref)
    if output.exists():
        raise IntakeError(f"export: {output} exists; name another file with --output")
    now = datetime.now(UTC)
    this_export = AuditLine(now, actor, str(AuditAction.EXPORT), f"exported to {output.name}", why)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            await _write_archive(settings, ticket, file, actor, why, now, this_export)
        try:
            os.link(partial, output)
        except FileExistsError:
            raise IntakeError(f"export: {output} exists; name another file with --output") from None
    finally:
        partial.unlink(missing_ok=True)
    await record(ticket, actor, AuditAction.EXPORT, this_export.what, why, at=now)
    return ticket, output


async def _write_archive(
    settings: Settings,
    ticket: Ticket,
    file: BinaryIO,
    actor: str,
    why: str,
    now: datetime,
    this_export: AuditLine,
) -> None:
    case = await case_record(ticket)
    folder = ticket.ref
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{folder}/README.txt", _readme(case, actor, why, now))
        archive.writestr(f"{folder}/case.json", json.dumps(case, indent=2, ensure_ascii=False))
        archive.writestr(f"{folder}/thread.txt", _thread_text(case))
        archive.writestr(f"{folder}/thread.html", _thread_html(case))
        for row in await InboundMessage.filter(ticket=ticket).order_by("id"):
            if row.raw_bytes:
                archive.writestr(f"{folder}/messages/{row.id:06d}.eml", bytes(row.raw_bytes))
        for email in await OutboundMessage.filter(ticket=ticket).order_by("id"):
            if email.raw_bytes:
                name = f"{folder}/emails/{email.id:06d}-{email.kind}.eml"
                archive.writestr(name, bytes(email.raw_bytes))
        for index, item in enumerate(await Attachment.filter(ticket=ticket).order_by("id"), 1):
            path = blob_path(settings.data_dir, item.sha256)
            if path.is_file():
                archive.write(path, f"{folder}/attachments/{index:03d}-{_safe_name(item.filename)}")
        lines = [*await trail(ticket), this_export]
        archive.writestr(f"{folder}/audit.txt", _audit_text(lines))
