"""Settings: flags > TASSE_* environment > .env > defaults, and bad values named in the error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from tasse.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TASSE_* variables from the outer shell, and a working folder of our own for `.env`."""
    for name in list(os.environ):
        if name.upper().startswith("TASSE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_dotenv(folder: Path, **values: str) -> None:
    lines = [f"{name}={value}" for name, value in values.items()]
    (folder / ".env").write_text("\n".join(lines) + "\n")


def test_defaults() -> None:
    settings = Settings()

    assert settings.data_dir == Path("data")
    assert settings.tasks_dir == Path("data/tasks")
    assert settings.logs_dir == Path("data/logs")
    assert (settings.host, settings.port) == ("127.0.0.1", 4243)
    assert settings.log_level == "INFO"
    assert settings.timezone == "UTC"
    assert settings.watch is True


def test_dotenv_overrides_defaults(clean_env: Path) -> None:
    write_dotenv(clean_env, TASSE_LOG_LEVEL="warning", TASSE_TIMEZONE="Europe/Berlin")

    settings = Settings()

    assert settings.log_level == "WARNING"
    assert settings.timezone == "Europe/Berlin"


def test_environment_overrides_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dotenv(clean_env, TASSE_LOG_LEVEL="WARNING", TASSE_TIMEZONE="Europe/Berlin")
    monkeypatch.setenv("TASSE_LOG_LEVEL", "ERROR")

    settings = Settings()

    assert settings.log_level == "ERROR"
    assert settings.timezone == "Europe/Berlin"  # only in .env, still taken from there


def test_flags_override_environment_and_dotenv(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dotenv(clean_env, TASSE_LOG_LEVEL="WARNING", TASSE_DATA_DIR="/from/dotenv")
    monkeypatch.setenv("TASSE_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("TASSE_DATA_DIR", "/from/env")

    settings = Settings(log_level="DEBUG", data_dir=Path("/from/flag"))

    assert settings.log_level == "DEBUG"
    assert settings.data_dir == Path("/from/flag")


def test_environment_values_are_parsed_to_their_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASSE_WATCH", "false")
    monkeypatch.setenv("TASSE_DEBOUNCE", "0.5")
    monkeypatch.setenv("TASSE_DATA_DIR", "/srv/tasse")
    monkeypatch.setenv("TASSE_HTTP_LISTEN_ADDRESS", "0.0.0.0:8080")

    settings = Settings()

    assert settings.watch is False
    assert settings.debounce == 0.5
    assert settings.tasks_dir == Path("/srv/tasse/tasks")
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)


def test_unrelated_dotenv_entries_are_ignored(clean_env: Path) -> None:
    write_dotenv(clean_env, DATABASE_URL="postgresql://elsewhere/db", TASSE_LOG_LEVEL="DEBUG")

    assert Settings().log_level == "DEBUG"


def test_an_ipv6_listen_address_splits_into_host_and_port() -> None:
    settings = Settings(http_listen_address="[::1]:4243")

    assert (settings.host, settings.port) == ("::1", 4243)


@pytest.mark.parametrize(
    "address", ["4243", "localhost", "localhost:http", "localhost:70000", "localhost:"]
)
def test_a_bad_listen_address_is_rejected_naming_it(address: str) -> None:
    with pytest.raises(ValidationError, match="is not HOST:PORT") as raised:
        Settings(http_listen_address=address)

    assert repr(address) in str(raised.value)


def test_a_bad_listen_address_from_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASSE_HTTP_LISTEN_ADDRESS", "nowhere")

    with pytest.raises(ValidationError, match="'nowhere' is not HOST:PORT") as raised:
        Settings()

    assert "http_listen_address" in str(raised.value)


@pytest.mark.parametrize("level", ["LOUD", "verbose", "5"])
def test_a_bad_log_level_is_rejected_naming_it(level: str) -> None:
    with pytest.raises(ValidationError, match=f"'{level}' is not one of .*DEBUG"):
        Settings(log_level=level)


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING"])
def test_log_level_is_case_insensitive(level: str) -> None:
    assert Settings(log_level=level).log_level == level.upper()


def test_a_bad_timezone_in_dotenv_is_rejected_naming_it(clean_env: Path) -> None:
    write_dotenv(clean_env, TASSE_TIMEZONE="Mars/Olympus")

    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        Settings()


def test_the_store_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert Settings().store_url == "sqlite:///data/tasse.db"
    assert Settings(data_dir=tmp_path / "d").store_url == f"sqlite:///{tmp_path}/d/tasse.db"


def test_an_explicit_store_address_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASSE_STORE_ADDRESS", "postgresql://tasse@db/tasse")

    assert Settings().store_url == "postgresql://tasse@db/tasse"
    assert Settings(store_address="memory://").store_url == "memory://"


def test_the_api_token_can_come_from_a_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  s3cret\n")
    settings = Settings(api_token_file=token_file, _env_file=None)
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("content", [None, ""])
def test_a_missing_or_empty_token_file_is_named(tmp_path: Path, content: str | None) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    with pytest.raises(ValidationError, match="api_token_file"):
        Settings(api_token_file=token_file, _env_file=None)


@pytest.mark.parametrize(
    ("address", "beyond"),
    [
        ("127.0.0.1:1", False),
        ("localhost:1", False),
        ("[::1]:1", False),
        ("0.0.0.0:1", True),
        ("192.0.2.7:1", True),
    ],
)
def test_which_addresses_are_beyond_loopback(address: str, beyond: bool) -> None:
    assert Settings(http_listen_address=address, _env_file=None).listens_beyond_loopback is beyond


def test_crontabs_are_a_list_from_flags_or_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASSE_CRONTAB", "/etc/crontab, /app/jobs.cron")
    assert Settings().crontab == ["/etc/crontab", "/app/jobs.cron"]
    assert Settings(crontab=["/srv/a"]).crontab == ["/srv/a"]
    assert Settings().system_crontab == []
