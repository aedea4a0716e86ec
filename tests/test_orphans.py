"""No orphans: the daemon's worker processes never outlive it, however it dies."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from tests.daemon import start_daemon, wait_until
from tests.servers import SmtpSink
from tests.support import make_mail, write_settings


def _children(pid: int) -> set[int]:
    """Every process below `pid` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent has not read its status


def test_parse_workers_die_with_a_daemon_killed_by_sigkill(
    base_config: dict[str, Any], tmp_path: Path
) -> None:
    base_config["processing"] = {"parse_workers": 2}
    new = Path(base_config["mailbox"]["path"]) / "new"
    new.mkdir(parents=True)
    for n in range(12):  # enough for a batch to be parsed by the workers
        (new / f"{n}.eml").write_bytes(make_mail(sender=f"r{n}@example.net"))
    config = write_settings(tmp_path, base_config)
    daemon = start_daemon(config).process
    try:
        wait_until(lambda: len(_children(daemon.pid)) >= 2, "the daemon's parse workers")
        workers = _children(daemon.pid)
    finally:
        os.kill(daemon.pid, signal.SIGKILL)  # the daemon alone, not its process group
        daemon.wait()
    try:
        wait_until(lambda: not any(_alive(pid) for pid in workers), "the workers to end", 15)
    finally:
        for pid in workers:  # do not leave them to the rest of the suite if the test failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_courier_dies_with_a_daemon_killed_by_sigkill(
    base_config: dict[str, Any], tmp_path: Path, sink: SmtpSink
) -> None:
    """The daemon's SMTP conversation runs in a process of its own: it ends with the daemon."""
    base_config["processing"] = {"parse_workers": 0}  # no other worker than the courier
    base_config["outbound"] = {"kind": "smtp", "host": sink.host, "port": sink.port}
    base_config["outbound"]["security"] = "none"
    new = Path(base_config["mailbox"]["path"]) / "new"
    new.mkdir(parents=True)
    (new / "report.eml").write_bytes(make_mail(sender="reporter@example.net"))
    config = write_settings(tmp_path, base_config)
    daemon = start_daemon(config).process
    try:
        sink.wait_for(2, timeout=60)  # the acknowledgement and the notice went through it
        couriers = _children(daemon.pid)  # with multiprocessing's resource tracker
        assert couriers
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait()
    try:
        wait_until(lambda: not any(_alive(pid) for pid in couriers), "the courier to end", 15)
    finally:
        for pid in couriers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
