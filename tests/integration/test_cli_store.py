"""The command line says which store it used, refuses ids it cannot store, and reports why a
PostgreSQL server refuses it in the server's own words (the real command, in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, require_postgres


def run(args: list[str], cwd: Path, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_tokens_create_names_the_store_and_prints_the_token_last(tmp_path: Path) -> None:
    result = run(["tokens", "create", "--account-id", "1", "--user-id", "2"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert f"SQLite {tmp_path / 'session-events.db'}" in lines[0]
    assert lines[-1].startswith("se_") and " " not in lines[-1]


def test_a_relative_sqlite_url_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    result = run(["tokens", "create", "--account-id", "1", "--user-id", "2"], tmp_path, "sqlite:///data/x.db")
    assert result.returncode == 1  # the folder does not exist yet: refused, not created at the root
    assert f"the folder {tmp_path / 'data'} does not exist" in result.stderr
    (tmp_path / "data").mkdir()
    result = run(["tokens", "create", "--account-id", "1", "--user-id", "2"], tmp_path, "sqlite:///data/x.db")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "x.db").exists()


@pytest.mark.parametrize("bad", ["-5", "0", str(2**63), "12abc"])
def test_ids_out_of_range_are_refused(bad: str, tmp_path: Path) -> None:
    result = run(["tokens", "create", "--account-id", bad, "--user-id", "2"], tmp_path)
    assert result.returncode == 2
    assert "--account-id" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "session-events.db").exists()


def test_a_database_that_does_not_exist_is_reported_as_such(tmp_path: Path) -> None:
    require_postgres()
    missing = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/se_no_such_database"
    result = run(["projections", "status"], tmp_path, missing)
    assert result.returncode == 1
    assert 'database "se_no_such_database" does not exist' in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_is_refused_by_name(tmp_path: Path) -> None:
    env_result = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "projections", "status"],
        cwd=tmp_path,
        env={**os.environ, "SESSION_EVENTS_POOL_SIZE": "lots"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert env_result.returncode == 2
    assert "SESSION_EVENTS_POOL_SIZE" in env_result.stderr
