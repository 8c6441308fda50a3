"""services/kafka.py: every Kafka client authenticates as the process's principal."""

from __future__ import annotations

from pathlib import Path

import pytest
from faststream.security import SASLScram256, SASLScram512
from pydantic import SecretStr

from services import kafka
from services.kafka import KafkaCredentialsMissingError
from services.kafka_acls import Principal
from services.local import children
from services.settings import Settings


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("OTC_KAFKA_USERNAME", "OTC_KAFKA_PASSWORD", "OTC_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    return Settings(pg_password="unused")


def with_user(settings: Settings, **update: object) -> Settings:
    return settings.model_copy(
        update={"kafka_username": "relay", "kafka_password": SecretStr("pw-1"), **update}
    )


def test_the_kafka_password_has_no_default(settings: Settings) -> None:
    assert settings.kafka_username is None
    assert settings.kafka_password is None
    assert "OTC_KAFKA_PASSWORD" not in settings.to_env()


def test_no_client_is_made_without_credentials(settings: Settings) -> None:
    with pytest.raises(KafkaCredentialsMissingError):
        kafka.producer(settings, client_id="t")
    with pytest.raises(KafkaCredentialsMissingError):
        kafka.consumer(settings, client_id="t")
    with pytest.raises(KafkaCredentialsMissingError):
        kafka.admin(settings, client_id="t")
    with pytest.raises(KafkaCredentialsMissingError):
        kafka.broker(settings, client_id="t")


def test_clients_authenticate_with_scram_over_sasl(settings: Settings) -> None:
    assert kafka.connection(with_user(settings)) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "relay",
        "sasl_plain_password": "pw-1",
    }


def test_sasl_ssl_brings_a_tls_context(settings: Settings) -> None:
    options = kafka.connection(with_user(settings, kafka_security_protocol="SASL_SSL"))

    assert options["security_protocol"] == "SASL_SSL"
    assert options["ssl_context"] is not None


def test_faststream_gets_the_same_credentials(settings: Settings) -> None:
    scram512 = kafka.security(with_user(settings))
    scram256 = kafka.security(with_user(settings, kafka_sasl_mechanism="SCRAM-SHA-256"))

    assert isinstance(scram512, SASLScram512)
    assert (scram512.username, scram512.password, scram512.use_ssl) == ("relay", "pw-1", False)
    assert isinstance(scram256, SASLScram256)


def test_the_password_is_masked_when_printed(settings: Settings) -> None:
    assert "pw-1" not in repr(with_user(settings))
    assert "pw-1" not in with_user(settings).model_dump_json()


def test_a_child_runs_as_its_own_principal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(children, "RUN", tmp_path)
    (tmp_path / "secrets" / "kafka").mkdir(parents=True)
    (tmp_path / "secrets" / "kafka" / "engine").write_text("engine-pw\n")
    parent = {"OTC_KAFKA_USERNAME": "operator", "OTC_KAFKA_PASSWORD": "operator-pw", "X": "1"}

    engine = children.AsPrincipal(Principal.ENGINE)(parent)
    projector = children.AsPrincipal(None)(parent)

    assert engine == {"OTC_KAFKA_USERNAME": "engine", "OTC_KAFKA_PASSWORD": "engine-pw", "X": "1"}
    assert projector == {"X": "1"}


def test_a_child_without_a_password_file_is_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(children, "RUN", tmp_path)

    with pytest.raises(SystemExit, match="deploy/local/up"):
        children.AsPrincipal(Principal.RELAY)({})
