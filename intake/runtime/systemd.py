"""Telling systemd how the daemon is: readiness, watchdog and status (sd_notify(3)).

This is the documented protocol itself: one datagram of `KEY=value` lines to the socket named by
$NOTIFY_SOCKET (a path, or an abstract name when it starts with "@"). Without the variable
(not started by systemd with Type=notify) every call does nothing. Sending never fails the
daemon: systemd gone away is no reason to stop reading mail.
"""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import timedelta


class Systemd:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        environ = dict(os.environ) if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog = timedelta(microseconds=int(usec)) if usec.isdigit() and mine else None

    def notify(self, **fields: str) -> None:
        if not self.address:
            return
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), self.address)

    def ready(self, status: str) -> None:
        self.notify(ready="1", status=status)

    def alive(self, status: str) -> None:
        """The watchdog's pet, with the status line of the moment."""
        self.notify(watchdog="1", status=status)

    def stopping(self) -> None:
        self.notify(stopping="1", status="stopping: finishing the message in hand")
