"""Advisory file locks (flock) beside the spool.

flock locks belong to an open file, not to a process: the kernel drops them when the last
descriptor closes, so a sender that crashes or is killed never leaves a stale lock behind, and a
hook can hand a lock it has just taken to the sender it starts (the child inherits the
descriptor), so that no other hook starts a second sender in between."""

from __future__ import annotations

import fcntl
import os
import time


class FileLock:
    __slots__ = ("descriptor", "path")

    def __init__(self, path: str, descriptor: int | None = None) -> None:
        self.path = path
        self.descriptor = descriptor

    def fileno(self) -> int:
        """The lock file's descriptor (opened on first use)."""
        return self._open()

    def _open(self) -> int:
        if self.descriptor is None:
            self.descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self.descriptor

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._open(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self, timeout: float | None = None, poll: float = 0.02) -> bool:
        """Waits for the lock; None waits for ever. Returns whether it was acquired."""
        if timeout is None:
            fcntl.flock(self._open(), fcntl.LOCK_EX)
            return True
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def write_owner(self) -> None:
        """Records this process's id in the lock file, for `hooks status` and for stopping it."""
        descriptor = self._open()
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)

    def read_owner(self) -> int | None:
        try:
            text = os.pread(self._open(), 32, 0).decode("ascii", errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        if self.descriptor is not None:
            fcntl.flock(self.descriptor, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)
            self.descriptor = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def sender_lock_path(spool: str | os.PathLike[str]) -> str:
    """Held by the background sender for its whole life: one sender per spool."""
    return os.fspath(spool) + ".sender.lock"


def send_lock_path(spool: str | os.PathLike[str]) -> str:
    """Held while one batch is sent, so `flush` and the background sender never send together."""
    return os.fspath(spool) + ".send.lock"
