"""The background sender's life: started by a hook when none runs, gone when there is nothing to do.

One sender per spool: it holds the spool's sender lock for its whole life. A hook that finds the
lock free takes it and hands it to the sender it starts (the child inherits the descriptor), so
200 hooks arriving at once start one sender, not 200. The sender sends about once a second, backs
off with jitter while the service is unreachable or busy, and exits once the spool has been empty
for a while (or the service has been unreachable for an hour: the next hook starts it again).
Before exiting it lets go of the lock and looks at the spool once more, so an event spooled by a
hook that saw the lock still held is never left behind."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from adapters.claude_code.config import ClientConfig
from adapters.claude_code.locks import FileLock, send_lock_path, sender_lock_path
from adapters.claude_code.problem_log import ProblemLog

TYPE_CHECKING = False
if TYPE_CHECKING:
    # The sender's modules load only in the sender: the hook that merely checks for it stays light.
    from adapters.claude_code.sender import ServiceClient

IDLE_EXIT_SECONDS = 60.0
SEND_INTERVAL_SECONDS = 1.0
GIVE_UP_AFTER_SECONDS = 3600.0


def ensure_sender_running(spool: str, command: Sequence[str], log_file: str) -> bool:
    """Starts `command --lock-fd N` detached unless a sender holds the lock; True if started."""
    lock = FileLock(sender_lock_path(spool))
    try:
        if not lock.try_acquire():
            return False
        import subprocess  # only the hook that starts a sender pays for it

        descriptor = lock.fileno()
        try:
            stderr = open(log_file, "ab")  # noqa: SIM115 - closed below, once the child has it
        except OSError:
            stderr = None
        try:
            subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [*command, "--lock-fd", str(descriptor)],
                pass_fds=(descriptor,),
                start_new_session=True,  # outside Claude Code's process group and its signals
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # never Claude Code's pipes: it would wait for them
                stderr=stderr if stderr is not None else subprocess.DEVNULL,
                cwd=os.path.dirname(os.path.abspath(spool)),
                close_fds=True,
            )
        finally:
            if stderr is not None:
                stderr.close()
        return True
    finally:
        lock.close()  # the child keeps the lock through its own descriptor


def run_background_sender(
    config: ClientConfig,
    log: ProblemLog,
    *,
    lock_fd: int | None = None,
    idle_exit: float = IDLE_EXIT_SECONDS,
    interval: float = SEND_INTERVAL_SECONDS,
    give_up_after: float = GIVE_UP_AFTER_SECONDS,
) -> int:
    from adapters.claude_code.sender import ServiceClient

    lock = FileLock(sender_lock_path(config.spool), lock_fd)
    if lock_fd is None and not lock.acquire(timeout=2.0):
        return 0  # another sender is running
    lock.write_owner()
    missing = config.missing()
    if missing is not None or config.url is None or config.token is None:
        log.write(f"background sender not started: {missing}")
        return 0
    try:
        client = ServiceClient(config.url, config.token)
    except ValueError as error:
        log.write(f"background sender not started: {error}")
        return 0
    loop = _SenderLoop(config, client, log, lock, idle_exit=idle_exit, give_up_after=give_up_after)
    log.write(f"background sender started for {config.spool}, sending to {config.url}")
    try:
        return loop.run(interval)
    finally:
        loop.close()


class _SenderLoop:
    """Sends about once a second, backs off while the service cannot take events, exits when idle."""

    def __init__(
        self, config: ClientConfig, client: ServiceClient, log: ProblemLog, lock: FileLock, *, idle_exit: float,
        give_up_after: float,
    ) -> None:
        from adapters.claude_code.sender import Backoff, Sender, SendReport
        from adapters.claude_code.spool import Spool

        self.client = client
        self.log = log
        self.lock = lock
        self.idle_exit = idle_exit
        self.give_up_after = give_up_after
        self.spool = Spool(config.spool)
        self.send_lock = FileLock(send_lock_path(config.spool))
        self.report = SendReport()
        self.sender = Sender(self.spool, client, report=self.report, on_rejected=self._rejected)
        self.backoff = Backoff()
        self.failing: str | None = None
        self.last_progress = self.idle_since = time.monotonic()

    def _rejected(self, count: int, reason: str) -> None:
        self.log.write(f"{count} events rejected, kept aside in the spool: {reason}")

    def run(self, interval: float) -> int:
        from adapters.claude_code.sender import RetryLater

        while True:
            done_before = self.report.sent + self.report.rejected
            try:
                self._send_all()
            except RetryLater as error:
                if not self._may_retry(error.reason):
                    return 1
                time.sleep(self.backoff.next_delay(error.retry_after))
                continue
            now = time.monotonic()
            self._recovered()
            if self.report.sent + self.report.rejected != done_before:
                self.last_progress = self.idle_since = now
            self.spool.tidy()
            if now - self.idle_since >= self.idle_exit:
                # Let go first, then look again: a hook that spooled while we still held the
                # lock did not start a sender, so its events must not be left behind.
                self.lock.release()
                if self.spool.pending_count() == 0 or not self.lock.try_acquire():
                    self.spool.tidy(final=True)
                    return 0
                self.lock.write_owner()
                self.idle_since = now
            time.sleep(interval)

    def _send_all(self) -> None:
        while True:
            with self.send_lock:
                if not self.sender.send_next():
                    return

    def _may_retry(self, reason: str) -> bool:
        if reason != self.failing:
            self.log.write(f"cannot send yet, will retry with backoff: {reason}")
            self.spool.set_state("last_error", reason)
            self.failing = reason
        if time.monotonic() - self.last_progress > self.give_up_after:
            self.log.write(f"background sender stops after {self.give_up_after:.0f} s without progress;"
                           " the events stay spooled until the next hook or flush")
            return False
        return True

    def _recovered(self) -> None:
        self.backoff.reset()
        if self.failing is not None:
            self.log.write("the service answers again; sending resumed")
            self.spool.set_state("last_error", None)
            self.failing = None

    def close(self) -> None:
        self.client.close()
        self.spool.close()
        self.send_lock.close()
        self.lock.close()


def sender_pid(spool: str | os.PathLike[str]) -> int | None:
    """The process id of the spool's running background sender, or None."""
    path = sender_lock_path(spool)
    if not os.path.exists(path):
        return None
    lock = FileLock(path)
    try:
        if lock.try_acquire():
            lock.release()
            return None
        return lock.read_owner()
    finally:
        lock.close()


def stop_sender(spool: str | os.PathLike[str], timeout: float = 5.0) -> bool:
    """Asks the spool's background sender to stop (SIGTERM to the process id it recorded)."""
    import signal

    pid = sender_pid(spool)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while sender_pid(spool) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    return True
