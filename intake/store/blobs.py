"""Content-addressed file storage under the data directory (attachments).

Files are named by their SHA-256, never by the name a sender gave them, so a hostile name can
never choose a path. Writing is idempotent: the same content is stored once.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path


def blob_path(data_dir: Path, digest: str) -> Path:
    return data_dir / "attachments" / digest[:2] / digest[2:4] / digest


def store_blob(data_dir: Path, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    final = blob_path(data_dir, digest)
    if final.exists():
        os.utime(final)  # stored again now: a purge of an older copy's case must leave it
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{digest}.{os.getpid()}.partial")
        partial.write_bytes(content)
        os.replace(partial, final)
    return digest


def delete_blob(data_dir: Path, digest: str, stored_before: datetime | None = None) -> bool:
    """Remove one stored file (its folders stay); False when it was not there, or when it was
    stored again after `stored_before`."""
    path = blob_path(data_dir, digest)
    try:
        if stored_before is not None and path.stat().st_mtime > stored_before.timestamp():
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def stored_blobs(data_dir: Path, older_than: datetime) -> list[str]:
    """The digests of the files last stored before `older_than`."""
    folder = data_dir / "attachments"
    if not folder.is_dir():
        return []
    limit = older_than.timestamp()
    return [
        path.name
        for path in folder.glob("*/*/*")
        if path.is_file() and not path.name.startswith(".") and path.stat().st_mtime < limit
    ]
