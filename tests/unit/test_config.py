from pathlib import Path

import pytest

from outcomes.config import ConfigError, Settings, masked


def test_a_production_database_without_secret_key_fails_with_a_clear_message():
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        Settings.from_env({"DATABASE_URL": "postgresql+psycopg://db/outcomes"})


def test_embedded_mode_generates_a_secret_once_and_keeps_it(tmp_path: Path):
    env = {"OUTCOMES_DATA_DIR": str(tmp_path)}
    first = Settings.from_env(env)
    second = Settings.from_env(env)
    assert first.embedded and first.database_url.startswith("sqlite:///")
    assert len(first.secret_key) > 40
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_ports_and_broker_come_from_the_environment(tmp_path: Path):
    settings = Settings.from_env(
        {
            "OUTCOMES_DATA_DIR": str(tmp_path),
            "COLLECTOR_PORT": "9100",
            "DASHBOARD_PORT": "9150",
            "REDIS_URL": "redis://cache:6379/2",
        }
    )
    assert (settings.collector_port, settings.dashboard_port) == (9100, 9150)
    assert settings.broker_url == "redis://cache:6379/2"


def test_network_deadlines_come_from_the_environment_and_only_the_aggregator_limits_sessions(
    tmp_path: Path,
):
    settings = Settings.from_env(
        {
            "OUTCOMES_DATA_DIR": str(tmp_path),
            "DATABASE_TCP_USER_TIMEOUT": "7",
            "AGGREGATOR_LOCK_TIMEOUT": "2.5",
            "REDIS_SOCKET_TIMEOUT": "1.5",
        }
    )
    assert settings.database_timeouts.tcp_user == 7
    assert (settings.database_timeouts.lock, settings.database_timeouts.idle_in_transaction) == (
        0,
        0,
    )
    aggregator = settings.aggregator_database_timeouts
    assert (aggregator.tcp_user, aggregator.lock, aggregator.idle_in_transaction) == (7, 2.5, 30)
    assert settings.redis_socket_timeout == 1.5


def test_a_malformed_number_names_the_variable(tmp_path: Path):
    with pytest.raises(ConfigError, match="COLLECTOR_PORT must be a whole number"):
        Settings.from_env({"OUTCOMES_DATA_DIR": str(tmp_path), "COLLECTOR_PORT": "eighty"})


def test_passwords_in_urls_are_masked_for_printing():
    assert masked("postgresql+psycopg://app:s3cret@db:5432/outcomes") == (
        "postgresql+psycopg://app:***@db:5432/outcomes"
    )
    assert masked("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert masked("sqlite:////var/outcomes.db") == "sqlite:////var/outcomes.db"


def test_the_embedded_secret_key_and_folder_are_private_from_creation(tmp_path):
    settings = Settings.from_env({"OUTCOMES_DATA_DIR": str(tmp_path / "new")})
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "new" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert settings.secret_key
