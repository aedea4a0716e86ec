"""Content-addressed file storage under the data directory (attachments).

Files are named by their SHA-256, never by the name a sender gave them, so a hostile name can
never choose a path. Writing is idempotent: the same content is stored once.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def blob_path(data_dir: Path, digest: str) -> Path:
    return data_dir / "attachments" / digest[:2] / digest[2:4] / digest


def store_blob(data_dir: Path, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    final = blob_path(data_dir, digest)
    if not final.exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{digest}.{os.getpid()}.partial")
        partial.write_bytes(content)
        os.replace(partial, final)
    return digest


def delete_blob(data_dir: Path, digest: str) -> bool:
    """Remove one stored file (its folders stay); False when it was not there."""
    try:
        blob_path(data_dir, digest).unlink()
    except FileNotFoundError:
        return False
    return True
