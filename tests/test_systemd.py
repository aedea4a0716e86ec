"""Under systemd (Type=notify): the daemon says READY once it runs, pets the watchdog with a
status line of queue figures while it is healthy, and says STOPPING on SIGTERM. The test plays
systemd's part with a datagram socket of its own."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intake.runtime.systemd import Systemd
from tests.daemon import running_daemon, wait_until
from tests.support import intake, make_mail, write_settings


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(0.2)
        yield sock, path


def _drain(sock: socket.socket, into: list[dict[str, str]]) -> bool:
    try:
        while True:
            datagram = sock.recv(4096).decode()
            into.append(dict(line.split("=", 1) for line in datagram.splitlines()))
    except TimeoutError:
        return True


def test_ready_watchdog_status_and_stopping(
    notify_socket: tuple[socket.socket, Path], base_config: dict[str, Any], tmp_path: Path
) -> None:
    sock, path = notify_socket
    new = Path(base_config["mailbox"]["path"]) / "new"
    new.mkdir(parents=True)
    (new / "r.eml").write_bytes(make_mail())
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}  # pet every half second
    received: list[dict[str, str]] = []
    config = write_settings(tmp_path, base_config)
    with running_daemon(config, env=env):
        wait_until(
            lambda: (
                _drain(sock, received)
                and sum("WATCHDOG" in m for m in received) >= 3
                and any("outbound 0 queued" in m.get("STATUS", "") for m in received)
            ),
            "READY, then watchdog pets with the queue figures",
        )
    _drain(sock, received)
    assert received[0] == {"READY": "1", "STATUS": "running"}
    pets = [m for m in received if m.get("WATCHDOG") == "1"]
    assert all(m["STATUS"].startswith("inbound ") for m in pets)
    assert "push: up" in pets[-1]["STATUS"]
    assert received[-1]["STOPPING"] == "1"
    # What the daemon did is in the database for `intake check` to read.
    checked = intake("check", config=config).stdout.splitlines()
    for job in ("fetch", "process", "deliver"):
        assert any(line.startswith(f"ok       job {job}") for line in checked), checked


def test_outside_systemd_nothing_is_sent_and_an_abstract_socket_name_is_understood() -> None:
    assert Systemd({}).address == "" and Systemd({}).watchdog is None
    Systemd({}).ready("running")  # no socket: does nothing, raises nothing
    assert Systemd({"NOTIFY_SOCKET": "@intake/notify"}).address == "\0intake/notify"
    elsewhere = Systemd({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"})
    assert elsewhere.watchdog is None  # the watchdog is another process's
