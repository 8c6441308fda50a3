from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from services.settings import Settings


def test_database_password_has_no_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTC_PG_PASSWORD", raising=False)

    with pytest.raises(ValidationError, match="pg_password"):
        Settings()


def test_reads_otc_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTC_PG_PASSWORD", "pw")
    monkeypatch.setenv("OTC_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    monkeypatch.setenv("OTC_QUOTE_TTL_SECONDS", "45")

    settings = Settings()

    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.quote_ttl_seconds == 45


def test_defaults_point_at_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTC_PG_HOST", "OTC_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings(pg_password="pw")

    assert settings.pg_host == "127.0.0.1"
    assert settings.kafka_bootstrap.startswith("127.0.0.1:")


def test_password_is_masked_when_printed() -> None:
    settings = Settings(pg_password="s3cret-value")

    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in settings.model_dump_json()
    assert "s3cret-value" in settings.conninfo()


def test_an_event_store_opens_connections_on_demand_up_to_the_pool_size() -> None:
    env = Settings(pg_password=SecretStr("pw"), pg_pool_size=10).postgres_env()

    assert env["POSTGRES_POOL_SIZE"] == "1"
    assert int(env["POSTGRES_POOL_SIZE"]) + int(env["POSTGRES_MAX_OVERFLOW"]) == 10
