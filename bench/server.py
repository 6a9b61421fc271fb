"""A real `session-events serve` process (black box: the suite speaks HTTP to it), with the
real `session-events tokens create` for its token, and its memory read from /proc."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.load import Connection, RequestFailed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def command(*args: str) -> list[str]:
    """The installed console script beside this interpreter (what an operator runs), or the
    module when the package is not installed as a script."""
    script = Path(sys.executable).with_name("session-events")
    if script.exists():
        return [str(script), *args]
    found = shutil.which("session-events")
    return [found, *args] if found else [sys.executable, "-m", "entrypoints.cli", *args]


class Server:
    def __init__(self, database_url: str, workdir: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.env = {**os.environ, "DATABASE_URL": database_url}
        self.env.pop("SESSION_EVENTS_RATE_LIMIT", None)  # an inherited limit would throttle the load
        self.log_path = workdir / f"server-{self.port}.log"
        with self.log_path.open("w") as log:
            self._process = subprocess.Popen(
                command("serve", "--port", str(self.port), "--workers", str(workers), "--log-level", "warning"),
                cwd=workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_healthy()

    @property
    def pid(self) -> int:
        return self._process.pid

    def _wait_until_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_path.read_text()[-2000:]}")
            connection = Connection(self.port)
            try:
                connection.request("GET", "/health")
                return
            except (OSError, RequestFailed):
                time.sleep(0.1)
            finally:
                connection.close()
        raise RuntimeError(f"the server was not healthy within {timeout} s: {self.log_path.read_text()[-2000:]}")

    def token(self, account_id: int, user_id: int) -> str:
        result = subprocess.run(
            command("tokens", "create", "--account-id", str(account_id), "--user-id", str(user_id), "--name", "bench"),
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    def processes(self) -> list[int]:
        """The server and its descendants (uvicorn's worker processes with --workers > 1)."""
        found = [self.pid]
        for pid in found:
            for task in Path(f"/proc/{pid}/task").glob("*"):
                children = (task / "children").read_text().split() if (task / "children").exists() else []
                found.extend(int(child) for child in children if int(child) not in found)
        return found

    def memory_mib(self, field: str) -> float:
        """`VmHWM` (peak resident set) or `VmRSS` (now), summed over the server's processes, MiB."""
        total_kib = 0
        for pid in self.processes():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            for line in status.splitlines():
                if line.startswith(f"{field}:"):
                    total_kib += int(line.split()[1])
        return total_kib / 1024

    def stop(self, timeout: float = 20) -> None:
        if self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
