"""Loopback TCP ports: picking free ones, and waiting until a server answers on one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import cast

LOCALHOST = "127.0.0.1"

_port_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now.

    The kernel picks the port; a port is never handed out twice by this process, so servers
    started one after the other before any of them binds do not collide with each other.
    """
    with _port_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOCALHOST, 0))
                port = cast(int, sock.getsockname()[1])
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port
    raise RuntimeError("could not find a free TCP port")


def wait_for_greeting(
    host: str, port: int, prefix: bytes, deadline: float, alive: Callable[[], bool]
) -> bool:
    """Poll until a TCP server on host:port sends a line starting with ``prefix``.

    Gives up early when ``alive()`` turns false (the server exited, e.g. its port was taken).
    """
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.settimeout(0.5)
                if sock.recv(256).startswith(prefix):
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def port_accepts(host: str, port: int, deadline: float, alive: Callable[[], bool]) -> bool:
    """Poll until host:port accepts a TCP connection; give up early when ``alive()`` is false."""
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False
