"""What a database holds, read the way an attacker with a copy of it would: for erasure tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from adapters.database.url import DatabaseSettings


def database_bytes(url: str) -> bytes:
    """Everything the database holds, as the database itself keeps it: a plain `pg_dump`, or the
    SQLite file with its WAL and shared-memory index."""
    settings = DatabaseSettings.from_url(url)
    if settings.kind == "postgres":
        return subprocess.run(["pg_dump", url], capture_output=True, check=True).stdout
    path = Path(settings.sqlite_path)
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(file.read_bytes() for file in files if file.exists())


def holds(raw: bytes, marker: str) -> bool:
    """As text, or hex-encoded as `pg_dump` writes the event store's `bytea` states."""
    return marker.encode() in raw or marker.encode().hex().encode() in raw
