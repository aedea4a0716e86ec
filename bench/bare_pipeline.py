#!/usr/bin/env python3
"""The bare pipeline: the same work as one `intake poll --once`, with none of Intake's logic.

Fetch every message of one IMAP folder with BODY.PEEK[] in batches, parse each with
``mailparser.parse_from_bytes``, send two short emails per message (to the sender and to a fixed
team address) over ONE reused aiosmtplib connection. Nothing is stored, nothing is moved.

With ``--carry-report`` the email to the team carries the report's text, as Intake's assignment
notice does (UTF-8 text/plain, built by the standard library's EmailMessage): the same bytes
through the SMTP server, so the comparison shows what Intake's own logic costs beyond them.

Run by bench/ingest as its own process, so its wall time and peak RSS compare with Intake's.
Prints one JSON line: {"messages": N, "sent": 2N, "seconds": T} (T excludes interpreter start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Iterator
from email.message import EmailMessage

import aiosmtplib
import mailparser
from imapclient import IMAPClient

SENDER = "info@example.org"
TEAM = "alice@example.org"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--imap-port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-env", required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--carry-report", action="store_true", help="the team's email carries it")
    return parser.parse_args()


def batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def short_email(to: str, subject: str, number: int) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <bare-{number}@example.org>\r\n\r\n{subject}.\r\n"
    ).encode("ascii")


def report_email(mail: mailparser.MailParser, number: int) -> bytes:
    notice = EmailMessage()
    notice["From"], notice["To"], notice["Subject"] = SENDER, TEAM, "New report"
    notice["Message-ID"] = f"<bare-{number}@example.org>"
    notice.set_content(mail.body)
    return notice.as_bytes()


def reporter_of(mail: mailparser.MailParser) -> str:
    addresses = [address for _name, address in mail.from_ if "@" in address]
    return addresses[0] if addresses else TEAM


async def send_pair(
    smtp: aiosmtplib.SMTP, mail: mailparser.MailParser, number: int, carry_report: bool
) -> None:
    reporter = reporter_of(mail)
    await smtp.sendmail(SENDER, [reporter], short_email(reporter, "Received", 2 * number))
    to_team = (
        report_email(mail, 2 * number + 1)
        if carry_report
        else short_email(TEAM, "New report", 2 * number + 1)
    )
    await smtp.sendmail(SENDER, [TEAM], to_team)


async def run(args: argparse.Namespace) -> int:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=args.smtp_port, start_tls=False)
    await smtp.connect()
    imap = IMAPClient("127.0.0.1", port=args.imap_port, ssl=False)
    imap.login(args.user, os.environ[args.password_env])
    try:
        imap.select_folder(args.folder, readonly=True)
        uids = sorted(int(uid) for uid in imap.search("ALL"))
        done = 0
        for batch in batches(uids, args.batch_size):
            fetched = imap.fetch(batch, [b"BODY.PEEK[]"])
            for uid in batch:
                mail = mailparser.parse_from_bytes(bytes(fetched[uid][b"BODY[]"]))
                await send_pair(smtp, mail, done, args.carry_report)
                done += 1
        return done
    finally:
        imap.logout()
        await smtp.quit()


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    count = asyncio.run(run(args))
    seconds = time.perf_counter() - started
    print(json.dumps({"messages": count, "sent": 2 * count, "seconds": round(seconds, 3)}))


if __name__ == "__main__":
    main()
