"""`intake run` as a test drives it: a real process, its log read while it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import DEFAULT_PASSWORD
from tests.support import IMAP_PASSWORD_ENV


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Wait for `condition`, failing with `what` after `seconds` (a generous bound: this waits
    for something to happen at all, it does not time it)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Daemon:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self, text: str) -> list[str]:
        return [line for line in self.log.splitlines() if text in line]

    def wait_for_log(self, text: str, count: int = 1, seconds: float = 60) -> None:
        wait_until(lambda: len(self.lines(text)) >= count, f"{text!r} in the log", seconds)


def start_daemon(
    config: Path,
    name: str = "daemon",
    password: str = DEFAULT_PASSWORD,
    env: dict[str, str] | None = None,
) -> Daemon:
    """`intake run` on `config`, its log in `name`.log beside the settings (appended to, so a
    daemon restarted under the same name keeps one log)."""
    log_path = config.parent / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "intake", "--config", str(config), "run"],
            env={**os.environ, IMAP_PASSWORD_ENV: password, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    return Daemon(process, log_path)


@contextmanager
def running_daemon(
    config: Path,
    password: str = DEFAULT_PASSWORD,
    name: str = "daemon",
    env: dict[str, str] | None = None,
) -> Iterator[Daemon]:
    """`intake run` on `config` until the block ends; then SIGTERM, and it must exit 0 without
    a traceback."""
    daemon = start_daemon(config, name, password, env)
    process = daemon.process
    try:
        yield daemon
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0, daemon.log
    assert "Traceback" not in daemon.log, daemon.log
