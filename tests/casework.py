"""Cases worked to a decision on the real servers, for the tests of what happens to records
afterwards (purge, erasure, audit, export)."""

from __future__ import annotations

import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from intake.store.models import Ticket
from tests.mailroom import Mailroom, reply, to_only
from tests.support import make_mail

EVIDENCE = b"%PDF-1.4 screenshot of the insults " + bytes(range(256)) * 4


async def report(
    mailroom: Mailroom,
    *,
    sender: str = "Sam Reporter <sam@example.net>",
    subject: str = "Max insulted me",
    body: str = "In the release thread Max called me an idiot twice.",
    evidence: bytes | None = EVIDENCE,
) -> tuple[Ticket, EmailMessage]:
    """A new report (with a PDF attached when `evidence`): its case, and the assignee's notice."""
    attachments = [("evidence.pdf", "application/pdf", evidence)] if evidence else None
    sent = await mailroom.send(
        make_mail(sender=sender, subject=subject, body=body, attachments=attachments)
    )
    ticket = await Ticket.all().order_by("-id").first().prefetch_related("assignee")
    assert ticket is not None and ticket.assignee is not None
    return ticket, to_only(sent, ticket.assignee.email)


async def decide(
    mailroom: Mailroom,
    ticket: Ticket,
    notice: EmailMessage,
    resolution: str = "warning",
    *,
    close: bool = True,
) -> Ticket:
    """The assignee resolves the case by email (and closes it); returns it as stored."""
    assert ticket.assignee is not None
    member = ticket.assignee.email
    await mailroom.send(reply(notice, member, f"#resolve {resolution} rude language"))
    if close:
        await mailroom.send(reply(notice, member, "#status closed"))
    decided = await Ticket.get(id=ticket.id)
    assert decided.resolution == resolution
    return decided


_SEARCH = """
import sys
from pathlib import Path
wanted = sys.argv[1].encode().lower()
for place in map(Path, sys.argv[2:]):
    files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
    for path in files:
        if wanted in path.read_bytes().lower():
            print(path)
"""


def bytes_found(needle: str, *places: Path) -> list[str]:
    """Every file under `places` (files or folders) that holds `needle`, whatever its case.

    Searched by another process: closing a file this process opened on an SQLite database
    drops every POSIX lock the process holds on it, and the test's own connection would then
    read a stale snapshot."""
    result = subprocess.run(
        [sys.executable, "-c", _SEARCH, needle, *map(str, places)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()
