"""The audit trail (every read on the command line, every email that carried the case) and the
export of one case as a self-contained archive."""

from __future__ import annotations

import getpass
import json
import stat
import zipfile
from email import message_from_bytes, policy
from pathlib import Path

from intake.store.models import InboundMessage
from tests.casework import EVIDENCE, report
from tests.mailroom import Mailroom
from tests.support import intake


async def test_each_read_and_each_email_is_in_the_trail(mailroom: Mailroom, tmp_path: Path) -> None:
    ticket, _ = await report(mailroom)
    assert ticket.assignee is not None
    config = tmp_path / "settings.toml"
    me = getpass.getuser()
    inbound = await InboundMessage.get(ticket=ticket)

    intake("ticket", ticket.ref, "--why", "triage at 2 a.m.", config=config)
    intake("ticket", ticket.ref, "--json", config=config)
    intake("tickets", "--json", config=config)
    intake("tickets", config=config)  # references, kinds and ages only: no content, no read
    intake("inbound", "show", str(inbound.id), config=config)
    intake("inbound", config=config)
    intake("outbox", "--json", config=config)

    trail = json.loads(intake("audit", ticket.ref, "--json", config=config).stdout)
    reads = [
        (line["actor"], line["what"], line["why"]) for line in trail if line["action"] == "read"
    ]
    assert reads == [
        (me, "the case and its thread", "triage at 2 a.m."),
        (me, "the case and its thread (--json)", ""),
        (me, "its reporter and subject (tickets --json)", ""),
        (me, f"the headers of inbound message {inbound.id}", ""),
        (me, "the outcomes of its mail (intake inbound)", ""),
        (me, "the recipients of its emails (intake outbox)", ""),
    ]
    emails = {(line["actor"], line["why"]) for line in trail if line["action"] == "email"}
    assert emails == {
        ("sam@example.net", "acknowledgement, sent"),
        (ticket.assignee.email, "assignment, sent"),
    }
    assert [line["at"] for line in trail] == sorted(line["at"] for line in trail)

    table = intake("audit", ticket.ref, config=config).stdout
    assert "triage at 2 a.m." in table and "acknowledgement" in table
    unknown = intake("audit", "COC-1999-0001", config=config, check=False)
    assert unknown.returncode == 1 and unknown.stderr.strip() == "intake: no ticket COC-1999-0001"


async def test_an_export_holds_the_thread_messages_attachments_and_trail(
    mailroom: Mailroom, tmp_path: Path
) -> None:
    ticket, _ = await report(mailroom)
    config = tmp_path / "settings.toml"
    archive_path = tmp_path / "hand-over.zip"

    done = intake(
        "export", ticket.ref, "--output", str(archive_path), "--why", "hand-over", config=config
    )

    assert f"{ticket.ref} exported to {archive_path}" in done.stdout
    assert stat.S_IMODE(archive_path.stat().st_mode) == 0o600
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
        folder = ticket.ref

        def text(name: str) -> str:
            return archive.read(f"{folder}/{name}").decode()

        assert "called me an idiot twice" in text("thread.txt")
        assert "called me an idiot twice" in text("thread.html")
        assert json.loads(text("case.json"))["ref"] == ticket.ref
        [original] = [name for name in names if name.startswith(f"{folder}/messages/")]
        message = message_from_bytes(archive.read(original), policy=policy.default)
        assert message["Subject"] == "Max insulted me"
        assert archive.read(f"{folder}/attachments/001-evidence.pdf") == EVIDENCE
        emails = [name for name in names if name.startswith(f"{folder}/emails/")]
        assert len(emails) == 2
        audit = text("audit.txt")
        assert "export" in audit and "hand-over" in audit and "acknowledgement" in audit
        assert "hand-over" in text("README.txt")

    again = intake("export", ticket.ref, "--output", str(archive_path), config=config, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"intake: export: {archive_path} exists; name another file with --output"
    )
    trail = json.loads(intake("audit", ticket.ref, "--json", config=config).stdout)
    exports = [line for line in trail if line["action"] == "export"]
    assert [(line["what"], line["why"]) for line in exports] == [
        ("exported to hand-over.zip", "hand-over")
    ]
