"""Whom server processes run as, and directories that user can reach.

Running as root (as our machines and CI do) needs care: Dovecot's login processes and PostgreSQL's
``initdb`` refuse to run as root, so their processes run as an unprivileged user (``nobody``), and
that user must be able to reach the server's files. pytest's ``tmp_path`` lives under
``/tmp/pytest-of-root``, which is mode 0700, so when the directory you pass is not reachable by
other users the server's files go to a fresh directory under the system temp dir instead (a
symlink in your directory points at it, and the server's ``close`` removes both).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

AS_ROOT = os.geteuid() == 0


@dataclass(frozen=True)
class ServiceUser:
    """The unprivileged account server processes run as (the current user when not root)."""

    name: str
    group: str
    uid: int
    gid: int

    @classmethod
    def pick(cls) -> ServiceUser:
        entry = pwd.getpwnam("nobody") if AS_ROOT else pwd.getpwuid(os.geteuid())
        return cls(entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name, entry.pw_uid, entry.pw_gid)

    def chown(self, path: Path) -> None:
        if AS_ROOT:
            os.chown(path, self.uid, self.gid)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run as this user (via runuser when we are root)."""
        if not AS_ROOT:
            return argv
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", self.name, "--", *argv]


def _others_can_traverse(path: Path) -> bool:
    """True when every directory from / down to ``path`` has the other-execute bit."""
    resolved = path.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in (resolved, *resolved.parents))


def make_server_dir(directory: Path, prefix: str) -> tuple[Path, bool]:
    """Create a unique, world-traversable directory for one server instance.

    Returns (path, is_fallback). Inside ``directory`` when the service user can reach it,
    else under the system temp dir (with a symlink from ``directory``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not AS_ROOT or _others_can_traverse(directory):
        root = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
        root.chmod(0o755)
        return root, False
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if os.path.isdir(candidate) and _others_can_traverse(Path(candidate)):
            root = Path(tempfile.mkdtemp(prefix=prefix, dir=candidate))
            root.chmod(0o755)
            with contextlib.suppress(OSError):
                (directory / root.name).symlink_to(root)
            return root, True
    raise RuntimeError(f"no directory reachable by unprivileged users for {prefix!r}")


def remove_fallback_dir(directory: Path, root: Path) -> None:
    """Remove a fallback server dir (see make_server_dir) and the symlink pointing at it."""
    shutil.rmtree(root, ignore_errors=True)
    link = directory / root.name
    if link.is_symlink():
        link.unlink(missing_ok=True)
