"""If PostgreSQL goes away the API answers 503 with Retry-After within seconds, never hangs,
and recovers when it returns. Uses a throwaway cluster: the shared server is never stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from application.scope import Scope
from tests.conftest import ServerProcess, free_port, require_postgres
from tests.factories import wire_event

PG_BIN = (
    Path("/usr/lib/postgresql")
    / (os.listdir("/usr/lib/postgresql")[0] if Path("/usr/lib/postgresql").exists() else "15")
    / "bin"
)


def as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class ThrowawayCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="se-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            as_postgres(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres"),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        subprocess.run(
            as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.dir / "data"),
                "-w",
                "-l",
                str(self.dir / "log"),
                "-o",
                f"-p {self.port} -k {self.dir} -h 127.0.0.1",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-w", "-m", "immediate", "stop"),
            check=False,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    require_postgres()
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"initdb not found in {PG_BIN}") if os.environ.get("CI") else pytest.skip("no initdb")
    throwaway = ThrowawayCluster()
    throwaway.start()
    yield throwaway
    throwaway.stop()
    shutil.rmtree(throwaway.dir, ignore_errors=True)


def test_store_down_is_a_prompt_503_and_recovery_is_automatic(cluster: ThrowawayCluster, tmp_path: Path) -> None:
    server = ServerProcess(cluster.url, tmp_path)
    try:
        headers = {"Authorization": f"Bearer {server.token(Scope(1, 1))}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            sid = client.post("/api/sessions", json={}).json()["data"]["id"]
            cluster.stop()
            for method, path, body in (
                ("POST", f"/api/sessions/{sid}/events", wire_event()),
                ("GET", f"/api/sessions/{sid}/events", None),
                ("GET", "/health", None),
            ):
                started = time.monotonic()
                response = client.request(method, path, json=body)
                elapsed = time.monotonic() - started
                assert response.status_code == 503, (path, response.text)
                assert response.headers["retry-after"]
                assert elapsed < 10, f"{path} took {elapsed:.1f} s"
            cluster.start()
            deadline = time.monotonic() + 20
            status = None
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    status = client.get(f"/api/sessions/{sid}").status_code
                    if status == 200:
                        break
                time.sleep(0.5)
            assert status == 200
    finally:
        server.stop()
