"""The local stack's ports outlive the shell that brought it up (`.run/stack.env`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local import stack

PORTS = ("OTC_PG_PORT", "OTC_KAFKA_PORT", "OTC_KAFKA_CONTROLLER_PORT")


@pytest.fixture(name="env_file")
def env_file_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "stack.env"
    monkeypatch.setattr(stack, "ENV_FILE", path)
    password = tmp_path / "password"
    password.write_text("pw")
    monkeypatch.setattr(stack, "PG_PASSWORD_FILE", password)
    for name in PORTS:
        monkeypatch.delenv(name, raising=False)
    return path


def test_the_env_file_keeps_every_port_the_stack_was_brought_up_with(env_file: Path) -> None:
    config = stack.StackConfig(5452, 9292, 9293, partitions=12, kafka_heap="512m")

    stack.write_env_file(config)

    kept = stack.read_env_file(env_file)
    assert kept["OTC_PG_PORT"] == "5452"
    assert kept["OTC_KAFKA_PORT"] == "9292"
    assert kept["OTC_KAFKA_CONTROLLER_PORT"] == "9293"
    assert kept["OTC_KAFKA_BOOTSTRAP"] == "127.0.0.1:9292"


@pytest.mark.usefixtures("env_file")
def test_a_fresh_shell_finds_the_ports_in_the_env_file() -> None:
    stack.write_env_file(stack.StackConfig(5452, 9292, 9293, partitions=12, kafka_heap="512m"))

    config = stack.StackConfig.from_env()

    assert (config.pg_port, config.kafka_port, config.kafka_controller_port) == (5452, 9292, 9293)


@pytest.mark.usefixtures("env_file")
def test_the_environment_still_wins_over_the_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    stack.write_env_file(stack.StackConfig(5452, 9292, 9293, partitions=12, kafka_heap="512m"))
    monkeypatch.setenv("OTC_KAFKA_PORT", "19092")

    assert stack.StackConfig.from_env().kafka_port == 19092


def test_without_an_env_file_the_defaults_apply(env_file: Path) -> None:
    assert not env_file.exists()

    config = stack.StackConfig.from_env()

    assert (config.pg_port, config.kafka_port) == (5432, 9092)
