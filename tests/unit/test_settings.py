"""Settings: read once from the environment; DATABASE_URL parsed into where the data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.database.url import DatabaseSettings, InvalidDatabaseUrl
from entrypoints.settings import InvalidSetting, Settings


def test_no_database_url_means_the_file_in_the_working_directory(tmp_path: Path) -> None:
    settings = Settings.from_environment({}, cwd=tmp_path)
    assert settings.database.kind == "sqlite"
    assert settings.database.sqlite_path == str(tmp_path / "session-events.db")


def test_sqlite_urls_four_slashes_absolute_three_relative_to_the_working_directory(tmp_path: Path) -> None:
    assert DatabaseSettings.from_url("sqlite:////var/data/x.db", tmp_path).sqlite_path == "/var/data/x.db"
    assert DatabaseSettings.from_url("sqlite:///relative.db", tmp_path).sqlite_path == str(tmp_path / "relative.db")
    assert DatabaseSettings.from_url("sqlite:///sub/dir/x.db", tmp_path).sqlite_path == str(tmp_path / "sub/dir/x.db")
    assert DatabaseSettings.from_url("sqlite:///:memory:", tmp_path).sqlite_path == ":memory:"


@pytest.mark.parametrize(
    "url", ["sqlite://host/x.db", "sqlite:///", "sqlite:", "mysql://u@h/db", "x", "postgresql://h/"]
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidDatabaseUrl):
        DatabaseSettings.from_url(url)


def test_postgres_url_parts_and_libpq_options() -> None:
    parsed = DatabaseSettings.from_url("postgres://al%40ice:s%3Acret@db.example:6543/events?sslmode=require&x=1")
    assert (parsed.kind, parsed.host, parsed.port, parsed.dbname) == ("postgres", "db.example", 6543, "events")
    assert (parsed.user, parsed.password) == ("al@ice", "s:cret")
    assert parsed.options == {"sslmode": "require", "x": "1"}
    assert "s:cret" not in parsed.describe() and "s:cret" not in repr(parsed)


def test_postgres_defaults() -> None:
    parsed = DatabaseSettings.from_url("postgresql://127.0.0.1/test")
    assert (parsed.user, parsed.port, parsed.password, parsed.options) == ("postgres", 5432, "", {})


def test_a_password_never_appears_in_the_error() -> None:
    with pytest.raises(InvalidDatabaseUrl) as refused:
        DatabaseSettings.from_url("postgresql://u:topsecret@h:notaport/db")
    assert "topsecret" not in str(refused.value)


def test_pool_and_stream_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_environment(
        {
            "DATABASE_URL": "postgresql://u@h/db",
            "SESSION_EVENTS_POOL_SIZE": "3",
            "SESSION_EVENTS_POOL_MAX_OVERFLOW": "0",
            "SESSION_EVENTS_CONNECT_TIMEOUT": "7",
            "SESSION_EVENTS_KEEPALIVE_SECONDS": "1.5",
        },
        cwd=tmp_path,
    )
    assert (settings.database.pool_size, settings.database.max_overflow) == (3, 0)
    assert settings.database.connect_timeout == 7
    assert settings.keepalive_seconds == 1.5
    assert settings.request_threads == 3
    defaults = Settings.from_environment({}, cwd=tmp_path)
    assert (defaults.database.pool_size, defaults.database.max_overflow, defaults.keepalive_seconds) == (8, 24, 10.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESSION_EVENTS_POOL_SIZE", "0"),
        ("SESSION_EVENTS_POOL_SIZE", "many"),
        ("SESSION_EVENTS_POOL_MAX_OVERFLOW", "-1"),
        ("SESSION_EVENTS_CONNECT_TIMEOUT", "0.5"),
        ("SESSION_EVENTS_KEEPALIVE_SECONDS", "0"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(name: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting, match=name):
        Settings.from_environment({name: value}, cwd=tmp_path)


def test_the_rate_limit_is_off_unless_set_and_must_be_a_positive_whole_number(tmp_path: Path) -> None:
    assert Settings.from_environment({}, cwd=tmp_path).rate_limit is None
    assert Settings.from_environment({"SESSION_EVENTS_RATE_LIMIT": " "}, cwd=tmp_path).rate_limit is None
    assert Settings.from_environment({"SESSION_EVENTS_RATE_LIMIT": "120"}, cwd=tmp_path).rate_limit == 120
    for bad in ("0", "-5", "ten", "1.5"):
        with pytest.raises(InvalidSetting, match="SESSION_EVENTS_RATE_LIMIT"):
            Settings.from_environment({"SESSION_EVENTS_RATE_LIMIT": bad}, cwd=tmp_path)
