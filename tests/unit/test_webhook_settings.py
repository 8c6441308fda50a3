"""Webhook settings: no sealing key by default, never shown; the local run makes one once."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from services.local.webhook_settings import KEY_FILE, local_webhook_env
from services.settings import Settings


def test_the_sealing_key_has_no_default_and_is_masked_when_printed() -> None:
    key = Fernet.generate_key().decode()

    assert Settings(pg_password="pw").webhook_secrets_key is None
    settings = Settings(pg_password="pw", webhook_secrets_key=key)
    assert key not in repr(settings)
    assert key not in settings.model_dump_json()


def test_loopback_receivers_are_refused_unless_allowed() -> None:
    assert Settings(pg_password="pw").webhook_allow_loopback is False


def test_the_retry_schedule_reads_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTC_WEBHOOK_RETRY_SCHEDULE_SECONDS", "[0.5, 1, 2]")

    assert Settings(pg_password="pw").webhook_retry_schedule_seconds == [0.5, 1.0, 2.0]


def test_the_local_run_makes_a_key_once_private_and_allows_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTC_WEBHOOK_SECRETS_KEY", raising=False)
    monkeypatch.delenv("OTC_WEBHOOK_ALLOW_LOOPBACK", raising=False)

    first = local_webhook_env(tmp_path)
    again = local_webhook_env(tmp_path)

    assert first == again
    assert first["OTC_WEBHOOK_ALLOW_LOOPBACK"] == "true"
    Fernet(first["OTC_WEBHOOK_SECRETS_KEY"].encode())
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o077 == 0


def test_the_local_run_keeps_what_the_environment_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTC_WEBHOOK_SECRETS_KEY", "given")
    monkeypatch.setenv("OTC_WEBHOOK_ALLOW_LOOPBACK", "false")

    assert local_webhook_env(tmp_path) == {}
    assert not (tmp_path / KEY_FILE).exists()
