"""The one configuration object of every process: environment variables with the prefix `OTC_`.

Defaults point at loopback. No secret has a default: the database password and the Kafka
credentials must be given (`deploy/local/up` writes them to `.run/stack.env` for the local stack,
as the `operator` principal; `deploy/local/run` gives each process its own).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Literal

from psycopg.conninfo import make_conninfo
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTC_", extra="ignore", frozen=True)

    pg_host: str = Field(default="127.0.0.1", description="PostgreSQL host")
    pg_port: int = Field(default=5432, description="PostgreSQL port")
    pg_dbname: str = Field(default="otc", description="PostgreSQL database")
    pg_user: str = Field(default="otc", description="PostgreSQL role")
    pg_password: SecretStr = Field(description="PostgreSQL password; required, no default")
    pg_pool_size: int = Field(default=10, ge=1, description="connections per process")
    pg_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="longest wait for a pooled connection before giving up"
    )
    pg_reconnect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="a pool stops retrying one lost connection after this; the next request "
        "starts afresh (psycopg_pool's own backoff would grow past a minute)",
    )

    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="SASL_PLAINTEXT",
        description="SASL_PLAINTEXT on loopback, SASL_SSL anywhere else; never unauthenticated",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = Field(
        default="SCRAM-SHA-512", description="the SASL mechanism of the Kafka credentials"
    )
    kafka_username: str | None = Field(
        default=None, description="this process's Kafka principal (services/kafka_acls.py)"
    )
    kafka_password: SecretStr | None = Field(
        default=None, description="its SCRAM password; no default, required to connect"
    )
    kafka_partitions: int = Field(default=12, ge=1, description="partitions of commands and events")
    commands_topic: str = "otc.commands"
    replies_topic: str = "otc.replies"
    events_topic: str = "otc.order-events"
    dlq_topic: str = "otc.commands.dlq"
    events_dlq_topic: str = "otc.order-events.dlq"

    quote_ttl_seconds: int = Field(default=30, gt=0, description="lifetime of a quote")
    min_eur_amount: Decimal = Field(default=Decimal("10.00"), description="smallest EUR size")
    max_eur_amount: Decimal = Field(default=Decimal("1000000.00"), description="largest EUR size")
    min_usdc_amount: Decimal = Field(default=Decimal("10.000000"), description="smallest USDC size")
    max_usdc_amount: Decimal = Field(
        default=Decimal("1000000.000000"),
        description="largest USDC size",
    )

    approval_collar_bps: int = Field(
        default=200,
        ge=0,
        le=10_000,
        description="how far an operator's rate may be from the live rate, in bps",
    )
    dual_control_eur: Decimal = Field(
        default=Decimal("100000.00"),
        gt=0,
        description="EUR value from which an order needs two different operators' approval",
    )

    upstreams: Literal["fake", "sandbox"] = Field(
        default="sandbox",
        description="fake: in-process fakes of provider and chain; sandbox: the HTTP parties",
    )
    engine_group: str = Field(default="otc-engine", description="the engine's consumer group")
    eur_worker_group: str = Field(default="otc-eur-treasury", description="consumer group")
    chain_worker_group: str = Field(default="otc-usdc-chain", description="consumer group")
    webhook_group: str = Field(default="otc-webhooks", description="the dispatcher's group")
    engine_batch_size: int = Field(default=500, ge=1, description="commands per batch")
    provider_url: str = Field(default="http://127.0.0.1:8101", description="liquidity provider")
    provider_token: SecretStr | None = Field(default=None, description="provider API token")
    bank_url: str = Field(default="http://127.0.0.1:8102", description="EUR core banking")
    chain_url: str = Field(default="http://127.0.0.1:8103", description="USDC chain")
    upstream_timeout_seconds: float = Field(default=5.0, gt=0, description="per HTTP call")
    upstream_max_attempts: int = Field(default=4, ge=1, description="tries of a retryable call")
    lookup_deadline_seconds: float = Field(
        default=6.0,
        gt=0,
        description="the engine's limit on one price or balance lookup, retries included; "
        "below the gateway's reply timeout, so a slow provider answers 503 QUOTE_UNAVAILABLE "
        "rather than a gateway timeout",
    )
    worker_event_attempts: int = Field(
        default=3, ge=1, description="tries of an order event before it is dead-lettered"
    )
    movement_retry_base_seconds: float = Field(
        default=1.0, gt=0, description="first wait before retrying a movement of unknown outcome"
    )
    movement_retry_max_seconds: float = Field(
        default=60.0, gt=0, description="longest wait between retries of such a movement"
    )
    movement_flag_after_seconds: float = Field(
        default=300.0, ge=0, description="unknown this long, a movement is flagged for operators"
    )

    jwt_secret: SecretStr | None = Field(default=None, description="HS256 key for Bearer JWTs")
    jwt_public_key: str | None = Field(default=None, description="PEM key for RS256/ES256 JWTs")
    jwt_algorithms: list[str] = Field(default=["HS256"], description="accepted JWT algorithms")
    jwt_audience: str | None = Field(default=None, description="required `aud`, if set")
    jwt_issuer: str | None = Field(default=None, description="required `iss`, if set")
    gateway_host: str = Field(default="127.0.0.1", description="the REST API's address")
    gateway_port: int = Field(default=8000, description="the REST API's port")
    gateway_reply_timeout_seconds: float = Field(default=10.0, gt=0, description="per command")
    read_your_writes_seconds: float = Field(
        default=2.0,
        ge=0,
        description="longest wait of a write's answer for the order list to show the write",
    )
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="an accepted API key is trusted this long without reading the database "
        "again, so a revoked key stops working within it (0: every request reads it)",
    )
    console_session_seconds: float = Field(
        default=8 * 3600.0,
        gt=0,
        description="how long an operator stays signed in to the console (one shift)",
    )
    retry_after_seconds: int = Field(
        default=5, ge=1, description="Retry-After of a 503 answered while a dependency is away"
    )

    retry_initial_seconds: float = Field(
        default=0.2, gt=0, description="first reconnect delay after an outage starts"
    )
    retry_max_seconds: float = Field(
        default=5.0, gt=0, description="cap of the reconnect backoff (doubling, with jitter)"
    )
    process_name: str | None = Field(default=None, description="this process, in logs and status")
    heartbeat_file: Path | None = Field(
        default=None, description="where this process writes its heartbeat (the supervisor sets it)"
    )
    heartbeat_interval_seconds: float = Field(default=2.0, gt=0, description="between heartbeats")
    probe_timeout_seconds: float = Field(
        default=3.0, gt=0, description="a dependency that does not answer a probe in this is down"
    )

    metrics_host: str = Field(default="127.0.0.1", description="where metrics ports listen")
    metrics_port: int | None = Field(
        default=None,
        description="this process's Prometheus metrics port (the supervisor gives each child "
        "one); none: no metrics server (the gateway serves /metrics on its own port)",
    )
    metrics_base_port: int = Field(
        default=9400,
        description="the supervisor's own metrics port; its children get the next free ones",
    )
    monitor_interval_seconds: float = Field(
        default=15.0, gt=0, description="how often the monitor samples lags and dead letters"
    )
    monitor_check_interval_seconds: float = Field(
        default=60.0, gt=0, description="how often the monitor reconciles the money"
    )

    ready_max_relay_lag: int = Field(
        default=1000, ge=0, description="/ready is 503 when the relay is more events behind"
    )
    ready_max_projector_lag: int = Field(
        default=1000, ge=0, description="/ready is 503 when order_list is more events behind"
    )
    ready_max_consumer_lag: int = Field(
        default=1000, ge=0, description="/ready is 503 when a consumer group is more behind"
    )
    ready_check_timeout_seconds: float = Field(
        default=2.0, gt=0, description="each /ready check answers within this or fails"
    )

    engine_instances: int = Field(default=1, ge=1, description="engines the supervisor runs")
    eur_treasury_instances: int = Field(default=1, ge=1, description="eur-treasury workers")
    usdc_chain_instances: int = Field(default=1, ge=1, description="usdc-chain workers")
    supervisor_backoff_initial_seconds: float = Field(
        default=0.5, gt=0, description="delay before the first restart of a process that died"
    )
    supervisor_backoff_max_seconds: float = Field(
        default=30.0, gt=0, description="cap of the restart delay (doubling, with jitter)"
    )
    supervisor_healthy_seconds: float = Field(
        default=60.0, gt=0, description="a process up this long has its restart backoff reset"
    )
    liveness_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="the supervisor kills (and restarts) a process whose heartbeat is older",
    )

    webhook_secrets_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s) sealing endpoint signing secrets, comma-separated, newest "
        "first; required by the dispatcher and to create or rotate endpoints",
    )
    webhook_allow_loopback: bool = Field(
        default=False, description="accept http://127.0.0.1-style receivers (local runs only)"
    )
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, description="per delivery attempt")
    webhook_retry_schedule_seconds: list[float] = Field(
        default=[5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        min_length=1,
        description="waits before each retry of a failed delivery (jittered by 10%)",
    )
    webhook_max_in_flight: int = Field(default=64, ge=1, description="attempts at once, overall")
    webhook_endpoint_in_flight: int = Field(
        default=8, ge=1, description="attempts at once to one endpoint"
    )
    webhook_secret_grace_seconds: float = Field(
        default=86400.0, ge=0, description="how long a rotated-out secret still signs"
    )
    webhook_max_endpoints: int = Field(default=20, ge=1, description="endpoints per customer")
    webhook_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often the sender looks for due deliveries"
    )

    audit_checkpoint_seconds: float = Field(
        default=10.0,
        gt=0,
        description="how often the projector checkpoints the notification log's new events "
        "(otc audit verify)",
    )
    audit_checkpoint_max_events: int = Field(
        default=10_000, ge=1, description="the most events one audit checkpoint covers"
    )

    @model_validator(mode="after")
    def _lookups_end_before_the_gateway_gives_up(self) -> Settings:
        if self.lookup_deadline_seconds >= self.gateway_reply_timeout_seconds:
            raise ValueError(
                "OTC_LOOKUP_DEADLINE_SECONDS must be below OTC_GATEWAY_REPLY_TIMEOUT_SECONDS"
            )
        return self

    def to_env(self) -> dict[str, str]:
        """These settings as `OTC_` environment variables, to start another process with."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            plain = value.get_secret_value() if isinstance(value, SecretStr) else value
            text = json.dumps(plain) if isinstance(plain, list | dict) else str(plain)
            env[f"OTC_{name.upper()}"] = text
        return env

    def postgres_env(self, schema: str = "public") -> dict[str, str]:
        """The environment of an eventsourcing `Application` on this database."""
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.pg_dbname,
            "POSTGRES_HOST": self.pg_host,
            "POSTGRES_PORT": str(self.pg_port),
            "POSTGRES_USER": self.pg_user,
            "POSTGRES_PASSWORD": self.pg_password.get_secret_value(),
            "POSTGRES_SCHEMA": schema,
            # One connection kept open, the rest opened on demand up to the pool size: an
            # application that keeps pg_pool_size open from the start (eventsourcing's pool
            # size is its minimum, plus 10 overflow by default) made an idle system hold 139
            # connections and a busy one run out of PostgreSQL's.
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": str(self.pg_pool_size - 1),
            "POSTGRES_CONNECT_TIMEOUT": str(max(1, round(self.pg_connect_timeout_seconds))),
            "POSTGRES_PRE_PING": "y",
        }

    def conninfo(self) -> str:
        """A libpq connection string (holds the password: never log it). Connecting gives up
        after the connect timeout, and TCP keepalives notice a server that went away silently."""
        return make_conninfo(
            host=self.pg_host,
            port=self.pg_port,
            dbname=self.pg_dbname,
            user=self.pg_user,
            password=self.pg_password.get_secret_value(),
            connect_timeout=max(2, round(self.pg_connect_timeout_seconds)),
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
