"""The local stack without Docker: PostgreSQL from Debian packages, Apache Kafka from Maven Central.

Everything it keeps (database cluster, Kafka log dir, logs, pid files, the generated database
password and Kafka credentials, the resolved Kafka jars) lives under `.run/` at the repository
root. Every command is idempotent: `up` installs what is missing, starts what is stopped, brings
Kafka's users and ACLs to what services/kafka_acls.py says and waits until both answer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.kafka_acls import Grant
    from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / ".run"
KAFKA_DEPLOY = ROOT / "deploy" / "kafka"
ENV_FILE = RUN / "stack.env"

PG_DIR = RUN / "postgres"
PG_DATA = PG_DIR / "data"
PG_SOCKET = PG_DIR / "socket"
PG_LOG = PG_DIR / "postgres.log"
PG_PASSWORD_FILE = PG_DIR / "otc-password"

KAFKA_DIR = RUN / "kafka"
KAFKA_DATA = KAFKA_DIR / "data"
KAFKA_LOG = KAFKA_DIR / "kafka.log"
KAFKA_PID = KAFKA_DIR / "kafka.pid"
KAFKA_PROPERTIES = KAFKA_DIR / "server.properties"
KAFKA_PROVISIONED = KAFKA_DIR / "provisioned.sha256"
KAFKA_ACLS_APPLIED = KAFKA_DIR / "acls-applied"
KAFKA_SECRETS = RUN / "secrets" / "kafka"
KAFKA_PROVISION = KAFKA_DEPLOY / "Provision.java"
KAFKA_TOOLS_LOGGING = KAFKA_DEPLOY / "log4j2-tools.properties"
SCRAM = "SCRAM-SHA-512"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"

READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class StackConfig:
    """Ports and sizes of the local stack, from `OTC_` environment variables."""

    pg_port: int
    kafka_port: int
    kafka_controller_port: int
    partitions: int
    kafka_heap: str

    @classmethod
    def from_env(cls) -> StackConfig:
        """From the environment; what it does not set, from `.run/stack.env` (the ports the
        stack was brought up with), then the defaults. So `status` and `down` from a fresh
        shell look where `up` put things."""
        kept = read_env_file(ENV_FILE)

        def get(name: str, default: str) -> str:
            return os.environ.get(name) or kept.get(name) or default

        return cls(
            pg_port=int(get("OTC_PG_PORT", "5432")),
            kafka_port=int(get("OTC_KAFKA_PORT", "9092")),
            kafka_controller_port=int(get("OTC_KAFKA_CONTROLLER_PORT", "9093")),
            partitions=int(get("OTC_KAFKA_PARTITIONS", "12")),
            kafka_heap=get("OTC_KAFKA_HEAP", "512m"),
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def topics(self) -> dict[str, int]:
        """The topics of DESIGN.md section 5 with their partition counts."""
        return {
            "otc.commands": self.partitions,
            "otc.replies": self.partitions,
            "otc.order-events": self.partitions,
            "otc.commands.dlq": 3,
            "otc.order-events.dlq": 3,
        }


def read_env_file(path: Path) -> dict[str, str]:
    """The `export NAME=value` lines of an env file written by `write_env_file`."""
    if not path.exists():
        return {}
    pattern = re.compile(r"^export (OTC_[A-Z_]+)=(.*)$")
    found = (pattern.match(line) for line in path.read_text().splitlines())
    return {m.group(1): m.group(2) for m in found if m is not None}


def say(message: str) -> None:
    print(message, flush=True)  # noqa: T201 - this is a command-line tool


def run(
    cmd: list[str], *, check: bool = True, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        check=check,
        text=True,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.PIPE if quiet else None,
    )


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def is_root() -> bool:
    return os.geteuid() == 0


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (mode 600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


# --------------------------------------------------------------------------- PostgreSQL


def pg_bin_dir() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def apt_install(*packages: str) -> None:
    sudo = [] if is_root() else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", *packages], check=True, env=env)


def install_postgres() -> Path:
    found = pg_bin_dir()
    if found is not None:
        return found
    say("postgres: not installed; installing the Debian packages")
    apt_install("postgresql", "postgresql-contrib")
    found = pg_bin_dir()
    if found is None:
        raise SystemExit("postgres: apt-get finished but no initdb was found")
    # The package starts a default cluster of its own; ours runs from .run/ instead.
    version = found.parent.name
    run(["pg_ctlcluster", version, "main", "stop"], check=False, quiet=True)
    return found


def as_pg_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user."""
    if not is_root():
        return cmd
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if Path(p).exists()), "runuser"
    )
    return [runuser, "-u", "postgres", "--", *cmd]


def prepare_pg_dirs() -> None:
    PG_DIR.mkdir(parents=True, exist_ok=True)
    PG_SOCKET.mkdir(parents=True, exist_ok=True)
    if not is_root():
        return
    # The postgres user must be able to reach .run/postgres: give traverse rights on the way.
    for parent in reversed(PG_DIR.parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            say(f"postgres: adding o+x to {parent} so the postgres user can reach {PG_DIR}")
            parent.chmod(mode | 0o001)
    shutil.chown(PG_DIR, "postgres", "postgres")
    shutil.chown(PG_SOCKET, "postgres", "postgres")


def pg_password() -> str:
    if not PG_PASSWORD_FILE.exists():
        PG_PASSWORD_FILE.write_text(secrets.token_urlsafe(24))
        PG_PASSWORD_FILE.chmod(0o600)
    return PG_PASSWORD_FILE.read_text().strip()


def init_cluster(bin_dir: Path, cfg: StackConfig) -> None:
    if (PG_DATA / "PG_VERSION").exists():
        return
    say(f"postgres: creating a cluster in {PG_DATA}")
    run(
        as_pg_owner(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(PG_DATA),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
        ),
        quiet=True,
    )
    with (PG_DATA / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# deploy/local/stack.py\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {cfg.pg_port}\n"
            f"unix_socket_directories = '{PG_SOCKET}'\n"
            "max_connections = 300\n"
            "shared_buffers = 256MB\n"
            "max_prepared_transactions = 0\n",
        )


def pg_running(bin_dir: Path) -> bool:
    if not (PG_DATA / "PG_VERSION").exists():
        return False
    result = run(
        as_pg_owner([str(bin_dir / "pg_ctl"), "-D", str(PG_DATA), "status"]),
        check=False,
        quiet=True,
    )
    return result.returncode == 0


def start_postgres(bin_dir: Path, cfg: StackConfig) -> None:
    if pg_running(bin_dir):
        say(f"postgres: already running on 127.0.0.1:{cfg.pg_port}")
        return
    if port_open(cfg.pg_port):
        raise SystemExit(
            f"postgres: port {cfg.pg_port} is taken by another server; "
            "stop it or set OTC_PG_PORT to a free port",
        )
    started = time.monotonic()
    run(
        as_pg_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(PG_DATA),
                "-l",
                str(PG_LOG),
                "-o",
                f"-p {cfg.pg_port}",
                "-w",
                "-t",
                "60",
                "start",
            ],
        ),
        quiet=True,
    )
    wait_for("postgres", lambda: pg_ready(bin_dir, cfg))
    say(f"postgres: started on 127.0.0.1:{cfg.pg_port} in {time.monotonic() - started:.1f}s")


def pg_ready(bin_dir: Path, cfg: StackConfig) -> bool:
    cmd = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(cfg.pg_port)]
    return run(cmd, check=False, quiet=True).returncode == 0


def psql(bin_dir: Path, cfg: StackConfig, sql: str, database: str = "postgres") -> str:
    cmd = [
        str(bin_dir / "psql"),
        "-X",
        "-q",
        "-t",
        "-A",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        str(PG_SOCKET),
        "-p",
        str(cfg.pg_port),
        "-U",
        "postgres",
        "-d",
        database,
        "-c",
        sql,
    ]
    return run(as_pg_owner(cmd), quiet=True).stdout.strip()


def ensure_role_and_database(bin_dir: Path, cfg: StackConfig) -> None:
    password = pg_password().replace("'", "''")
    psql(
        bin_dir,
        cfg,
        "DO $$ BEGIN "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otc') THEN "
        f"CREATE ROLE otc LOGIN CREATEDB PASSWORD '{password}'; "
        f"ELSE ALTER ROLE otc LOGIN CREATEDB PASSWORD '{password}'; END IF; END $$;",
    )
    # Tests drop their scratch databases WITH (FORCE): that terminates other roles' sessions.
    psql(bin_dir, cfg, "GRANT pg_signal_backend TO otc")
    if psql(bin_dir, cfg, "SELECT 1 FROM pg_database WHERE datname = 'otc'") != "1":
        psql(bin_dir, cfg, "CREATE DATABASE otc OWNER otc")
        say("postgres: created role otc and database otc")


def stop_postgres(mode: str = "fast") -> None:
    """Stop the cluster: `fast` (clean) or `immediate` (no checkpoint: a crash, recovered from
    the WAL at the next start)."""
    bin_dir = pg_bin_dir()
    if bin_dir is None or not pg_running(bin_dir):
        say("postgres: not running")
        return
    result = run(
        as_pg_owner([str(bin_dir / "pg_ctl"), "-D", str(PG_DATA), "-m", mode, "-w", "stop"]),
        check=False,
        quiet=True,
    )
    if result.returncode != 0 and pg_running(bin_dir):
        raise SystemExit(f"postgres: pg_ctl stop failed: {result.stderr.strip()}")
    say(f"postgres: stopped ({mode})")


# --------------------------------------------------------------------------- Kafka


def kafka_version() -> str:
    pom = (KAFKA_DEPLOY / "pom.xml").read_text()
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    if match is None:
        raise SystemExit("kafka: deploy/kafka/pom.xml names no kafka.version")
    return match.group(1)


def kafka_lib_dir() -> Path:
    return RUN / "cache" / f"kafka-{kafka_version()}" / "lib"


def resolve_kafka_jars() -> Path:
    """Copy Kafka and its runtime dependencies from Maven Central into the ignored cache."""
    lib = kafka_lib_dir()
    pom = KAFKA_DEPLOY / "pom.xml"
    stamp = lib / ".pom-sha256"
    want = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return lib
    if shutil.which("mvn") is None:
        raise SystemExit("kafka: Maven (mvn) is required to resolve the Kafka jars")
    say(f"kafka: resolving Apache Kafka {kafka_version()} from Maven Central into {lib}")
    started = time.monotonic()
    if lib.exists():
        shutil.rmtree(lib)
    run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ],
    )
    stamp.write_text(want)
    say(f"kafka: jars resolved in {time.monotonic() - started:.1f}s")
    return lib


def kafka_password(user: str) -> str:
    """A Kafka user's password, generated once into .run/secrets/kafka/ (mode 600)."""
    from services.kafka_acls import password_file  # noqa: PLC0415 - only once the venv exists

    path = password_file(RUN, user)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def scram_users() -> list[str]:
    """The admin and one principal per process kind (the broker's identity is PLAIN's alone)."""
    from services.kafka_acls import ADMIN, Principal  # noqa: PLC0415

    return [ADMIN, *Principal]


def jaas(module: str, user: str, password: str, *extra: str) -> str:
    return (
        " ".join([f"{module} required", f'username="{user}"', f'password="{password}"', *extra])
        + ";"
    )


def kafka_properties(cfg: StackConfig, log_dir: Path = KAFKA_DATA) -> str:
    """deploy/kafka/server.properties with our ports, log dir and the broker's credentials."""
    from services.kafka_acls import BROKER  # noqa: PLC0415

    text = (KAFKA_DEPLOY / "server.properties").read_text()
    text = text.replace("127.0.0.1:9093", f"127.0.0.1:{cfg.kafka_controller_port}")
    text = text.replace("127.0.0.1:9092", f"127.0.0.1:{cfg.kafka_port}")
    password = kafka_password(BROKER)
    # PLAIN is checked against the JAAS `user_<name>` entries: only the broker has one.
    plain = jaas(PLAIN_LOGIN, BROKER, password, f'user_{BROKER}="{password}"')
    return text + (
        "\n# set by deploy/local/stack.py\n"
        f"log.dirs={log_dir}\n"
        f"listener.name.client.scram-sha-512.sasl.jaas.config={SCRAM_LOGIN} required;\n"
        f"listener.name.client.plain.sasl.jaas.config={plain}\n"
        f"listener.name.controller.plain.sasl.jaas.config={plain}\n"
    )


def java_cmd(lib: Path, main_class: str, *args: str, heap: str = "256m") -> list[str]:
    return [
        "java",
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_DEPLOY / 'log4j2.properties'}",
        "-cp",
        f"{lib}/*",
        main_class,
        *args,
    ]


def kafka_cluster_id() -> str:
    """A Kafka `Uuid` in its text form: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def format_kafka_storage(lib: Path) -> None:
    if (KAFKA_DATA / "meta.properties").exists():
        return
    say(f"kafka: formatting the KRaft log dir {KAFKA_DATA}")
    run(
        java_cmd(
            lib,
            "kafka.tools.StorageTool",
            "format",
            # One form for every id: one that starts with "-" would read as an option.
            f"--cluster-id={kafka_cluster_id()}",
            "-c",
            str(KAFKA_PROPERTIES),
        ),
        quiet=True,
    )


def kafka_pid() -> int | None:
    """The pid of our broker if it is alive, judged by its command line."""
    if not KAFKA_PID.exists():
        return None
    pid = int(KAFKA_PID.read_text().strip() or "0")
    cmdline = Path(f"/proc/{pid}/cmdline")
    if pid <= 0 or not cmdline.exists():
        return None
    return pid if b"kafka.Kafka" in cmdline.read_bytes() else None


def start_kafka(cfg: StackConfig) -> None:
    """Start the broker, or restart it when its configuration changed (e.g. a state dir of a
    version without authentication); then provision its users and ACLs and wait for it."""
    lib = resolve_kafka_jars()
    properties = kafka_properties(cfg)
    process: subprocess.Popen[bytes] | None = None
    running = kafka_pid() is not None
    if running and KAFKA_PROPERTIES.exists() and KAFKA_PROPERTIES.read_text() == properties:
        say(f"kafka: already running on {cfg.bootstrap} (pid {kafka_pid()})")
    else:
        if running:
            say("kafka: its configuration changed; restarting the broker")
            stop_kafka()
        if port_open(cfg.kafka_port):
            raise SystemExit(
                f"kafka: port {cfg.kafka_port} is taken by another process; "
                "stop it or set OTC_KAFKA_PORT to a free port",
            )
        write_private(KAFKA_PROPERTIES, properties)
        format_kafka_storage(lib)
        started = time.monotonic()
        with KAFKA_LOG.open("ab") as log:
            process = subprocess.Popen(
                java_cmd(lib, "kafka.Kafka", str(KAFKA_PROPERTIES), heap=cfg.kafka_heap),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=KAFKA_DIR,
            )
        KAFKA_PID.write_text(str(process.pid))
    provision_kafka(cfg, lib)
    asyncio.run(wait_for_broker(cfg, process))
    if process is not None:
        say(f"kafka: broker started on {cfg.bootstrap} in {time.monotonic() - started:.1f}s")


def broker_plan(cfg: StackConfig) -> list[str]:
    """Admin client settings for the broker as itself (PLAIN: that works before any SCRAM user
    exists, e.g. in a log dir formatted by a version without authentication)."""
    from services.kafka_acls import BROKER  # noqa: PLC0415

    return [
        f"config bootstrap.servers={cfg.bootstrap}",
        "config security.protocol=SASL_PLAINTEXT",
        "config sasl.mechanism=PLAIN",
        f"config sasl.jaas.config={jaas(PLAIN_LOGIN, BROKER, kafka_password(BROKER))}",
        # A broker that has just been started may take a while to answer.
        f"config default.api.timeout.ms={READY_TIMEOUT_S * 1000:.0f}",
    ]


def client_plan(settings: Settings) -> list[str]:
    """Admin client settings for the broker, as the principal of `settings` (a super user)."""
    from services.kafka import credentials  # noqa: PLC0415

    user, password = credentials(settings)
    return [
        f"config bootstrap.servers={settings.kafka_bootstrap}",
        f"config security.protocol={settings.kafka_security_protocol}",
        f"config sasl.mechanism={settings.kafka_sasl_mechanism}",
        f"config sasl.jaas.config={jaas(SCRAM_LOGIN, user, password)}",
    ]


def acl_plan(settings: Settings, *, leave: set[Grant] | None = None) -> list[str]:
    """The ACLs of services/kafka_acls.py for the names of `settings`, less those in `leave`."""
    from services.kafka_acls import grants  # noqa: PLC0415

    return [
        f"acl {g.principal} {g.resource} {g.pattern} {g.name} {g.operation}"
        for g in grants(settings)
        if g not in (leave or set())
    ]


def dropped(lines: list[str]) -> list[str]:
    """`acl` plan lines turned into `drop` lines: those bindings are to be deleted."""
    return [line.replace("acl ", "drop ", 1) for line in lines if line.startswith("acl ")]


def provisioner(lib: Path) -> Path:
    """deploy/kafka/Provision.java compiled once into the cache (per version of its source)."""
    source = KAFKA_PROVISION.read_bytes()
    classes = RUN / "cache" / f"provision-{hashlib.sha256(source).hexdigest()[:16]}"
    if (classes / "Provision.class").exists():
        return classes
    if shutil.which("javac") is None:
        say("kafka: no Java compiler (javac); installing the Debian JDK")
        apt_install("default-jdk-headless")
    building = classes.with_name(f"{classes.name}.{os.getpid()}")
    run(["javac", "-cp", f"{lib}/*", "-d", str(building), str(KAFKA_PROVISION)], quiet=True)
    with contextlib.suppress(OSError):  # another `up` may have got there first
        building.rename(classes)
    shutil.rmtree(building, ignore_errors=True)
    return classes


def provision(lib: Path, plan: list[str]) -> None:
    """Run deploy/kafka/Provision.java (one JVM; the plan, passwords included, on its stdin)."""
    result = subprocess.run(
        [
            "java",
            "-Xmx128m",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={KAFKA_TOOLS_LOGGING}",
            "-cp",
            f"{lib}/*:{provisioner(lib)}",
            "Provision",
        ],
        input="\n".join(plan) + "\n",
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"kafka: provisioning failed (broker log: {KAFKA_LOG}):\n{result.stderr.strip()}"
        )
    say(result.stdout.strip())


def provision_kafka(cfg: StackConfig, lib: Path) -> None:
    """Every user's SCRAM credential and every ACL of services/kafka_acls.py for the system's
    topic and group names; the ACLs an earlier `up` made that the table no longer has are
    deleted (ACLs on other names, such as the tests' own, are not `up`'s to touch). Skipped when
    this very plan was applied to this very log dir."""
    from services.kafka_acls import ADMIN  # noqa: PLC0415

    acls = acl_plan(system_settings(cfg, ADMIN))
    earlier = KAFKA_ACLS_APPLIED.read_text().splitlines() if KAFKA_ACLS_APPLIED.exists() else []
    plan = [
        *broker_plan(cfg),
        *(f"user {SCRAM} {user} {kafka_password(user)}" for user in scram_users()),
        *acls,
    ]
    meta = (KAFKA_DATA / "meta.properties").read_text()
    stamp = hashlib.sha256("\n".join([meta, *plan]).encode()).hexdigest()
    done = KAFKA_PROVISIONED.exists() and KAFKA_PROVISIONED.read_text() == stamp
    if done and KAFKA_ACLS_APPLIED.exists():
        return
    provision(lib, [*plan, *dropped([line for line in earlier if line not in acls])])
    KAFKA_ACLS_APPLIED.write_text("\n".join(acls) + "\n")
    write_private(KAFKA_PROVISIONED, stamp)


def system_settings(cfg: StackConfig, user: str) -> Settings:
    """Settings of the system on this stack (its topic and group names), as Kafka user `user`."""
    from pydantic import SecretStr  # noqa: PLC0415

    from services.settings import Settings  # noqa: PLC0415

    return Settings(
        pg_password=SecretStr(pg_password()),
        kafka_bootstrap=cfg.bootstrap,
        kafka_username=user,
        kafka_password=SecretStr(kafka_password(user)),
    )


async def wait_for_broker(cfg: StackConfig, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until a metadata request to the broker, as the admin, succeeds."""
    from services import kafka  # noqa: PLC0415 - only once the venv exists
    from services.kafka_acls import ADMIN  # noqa: PLC0415

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refused connects are expected here
    settings = system_settings(cfg, ADMIN)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"kafka: the broker exited with {process.returncode}; see {KAFKA_LOG}")
        admin = kafka.admin(settings, client_id="otc-stack", request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.describe_cluster()
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"kafka: not ready after {READY_TIMEOUT_S:.0f}s; see {KAFKA_LOG}"
                ) from None
            await asyncio.sleep(0.5)
        else:
            return
        finally:
            with contextlib.suppress(Exception):
                await admin.close()


async def ensure_topics(cfg: StackConfig) -> None:
    from aiokafka.admin import NewTopic  # noqa: PLC0415

    from services import kafka  # noqa: PLC0415
    from services.kafka_acls import ADMIN  # noqa: PLC0415

    admin = kafka.admin(system_settings(cfg, ADMIN), client_id="otc-stack")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=count, replication_factor=1)
            for name, count in cfg.topics().items()
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            say(
                "kafka: created topics "
                + ", ".join(f"{t.name} ({t.num_partitions})" for t in missing)
            )
    finally:
        await admin.close()


def stop_kafka(*, hard: bool = False) -> None:
    """SIGTERM (a clean shutdown), or with `hard` SIGKILL (a crash)."""
    pid = kafka_pid()
    if pid is None:
        say("kafka: not running")
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + 60
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    KAFKA_PID.unlink(missing_ok=True)
    say("kafka: killed" if hard else "kafka: stopped")


def restart(cfg: StackConfig, service: str, *, down_for: float, hard: bool) -> None:
    """Stop PostgreSQL or Kafka, stay down `down_for` seconds, start it again: the outage a
    running system has to ride out."""
    if service == "postgres":
        bin_dir = install_postgres()
        stop_postgres("immediate" if hard else "fast")
        time.sleep(down_for)
        start_postgres(bin_dir, cfg)
    else:
        stop_kafka(hard=hard)
        time.sleep(down_for)
        start_kafka(cfg)


# --------------------------------------------------------------------------- commands


def wait_for(name: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: not ready after {READY_TIMEOUT_S:.0f}s")
        time.sleep(0.2)


def write_env_file(cfg: StackConfig) -> None:
    """Connection settings for `source .run/stack.env`, as the `operator` Kafka principal (what
    the `otc` command line needs); mode 600, for it holds passwords."""
    from services.kafka_acls import Principal  # noqa: PLC0415

    write_private(
        ENV_FILE,
        f"export OTC_PG_HOST=127.0.0.1\n"
        f"export OTC_PG_PORT={cfg.pg_port}\n"
        f"export OTC_PG_DBNAME=otc\n"
        f"export OTC_PG_USER=otc\n"
        f"export OTC_PG_PASSWORD={pg_password()}\n"
        f"export OTC_KAFKA_BOOTSTRAP={cfg.bootstrap}\n"
        f"export OTC_KAFKA_PORT={cfg.kafka_port}\n"
        f"export OTC_KAFKA_CONTROLLER_PORT={cfg.kafka_controller_port}\n"
        f"export OTC_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT\n"
        f"export OTC_KAFKA_SASL_MECHANISM={SCRAM}\n"
        f"export OTC_KAFKA_USERNAME={Principal.OPERATOR}\n"
        f"export OTC_KAFKA_PASSWORD={kafka_password(Principal.OPERATOR)}\n",
    )


def up(cfg: StackConfig) -> None:
    started = time.monotonic()
    RUN.mkdir(exist_ok=True)
    bin_dir = install_postgres()
    prepare_pg_dirs()
    pg_password()
    init_cluster(bin_dir, cfg)
    start_postgres(bin_dir, cfg)
    ensure_role_and_database(bin_dir, cfg)
    start_kafka(cfg)
    asyncio.run(ensure_topics(cfg))
    write_env_file(cfg)
    say(f"stack: up in {time.monotonic() - started:.1f}s")
    say(f"  postgres  postgresql://otc@127.0.0.1:{cfg.pg_port}/otc")
    say(f"  kafka     {cfg.bootstrap}  (topics: {', '.join(cfg.topics())})")
    say(f"            {SCRAM} and ACLs; passwords of its principals in {KAFKA_SECRETS}")
    say(f"  settings  source {ENV_FILE}")


def pid_alive(pid: int) -> bool:
    """A live process (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def terminate(pids: dict[str, int], timeout: float) -> list[str]:
    """SIGTERM each, wait up to `timeout` seconds in all, then SIGKILL what is left; the names
    of those that were running."""
    stopped = []
    for name, pid in pids.items():
        if pid > 0 and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                stopped.append(name)
    deadline = time.monotonic() + timeout
    for pid in pids.values():
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return stopped


def stop_services(state_dir: Path = RUN) -> None:
    """The system deploy/local/run started, foreground or detached: first its supervisor (which
    stops its children and would otherwise restart them), then any child it left behind (a
    supervisor killed with SIGKILL cannot stop them; their pid files are under `pids/`)."""
    from services.local.places import Places, supervisor_pid  # noqa: PLC0415 - needs the venv

    places = Places(state_dir)
    pid = supervisor_pid(places)
    if pid is not None:
        say(f"supervisor: stopping pid {pid} and the processes it runs")
        terminate({"supervisor": pid}, timeout=90)
        places.supervisor_pid.unlink(missing_ok=True)
    left = {}
    for pid_file in sorted(places.pids.glob("*.pid")) if places.pids.exists() else []:
        with contextlib.suppress(ValueError):
            left[pid_file.stem] = int(pid_file.read_text().strip() or "0")
        pid_file.unlink(missing_ok=True)
    stopped = terminate(left, timeout=20)
    if stopped:
        say("services: stopped " + ", ".join(stopped))


def down(*, purge: bool, state_dir: Path = RUN, keep_stack: bool = False) -> None:
    stop_services(state_dir)
    if keep_stack:
        return
    stop_kafka()
    stop_postgres()
    if purge:
        for path in (KAFKA_DIR, KAFKA_SECRETS, PG_DIR, ENV_FILE):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        say("stack: state under .run/ removed (the jar cache is kept)")


def stack_status(cfg: StackConfig) -> dict[str, Any]:
    bin_dir = pg_bin_dir()
    pg_up = bin_dir is not None and pg_running(bin_dir)
    kafka = kafka_pid()
    kafka_up = kafka is not None and port_open(cfg.kafka_port)
    return {
        "postgres": {
            "running": pg_up,
            "installed": bin_dir is not None,
            "port": cfg.pg_port,
            "pid": postgres_pid() if pg_up else None,
            "data": str(PG_DATA),
        },
        "kafka": {
            "running": kafka_up,
            "port": cfg.kafka_port,
            "pid": kafka if kafka_up else None,
            "version": kafka_version(),
            "log": str(KAFKA_LOG),
        },
    }


def postgres_pid() -> int | None:
    """The postmaster's pid, from the first line of its pid file."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((PG_DATA / "postmaster.pid").read_text().splitlines()[0])
    return None


def system_status(state_dir: Path) -> dict[str, Any] | None:
    """The supervisor and each process it runs: pid, state, uptime, restarts, last exit and
    health (a heartbeat's age and what it finds down, or the answer of a /health URL)."""
    from services.local.places import Places, read_state, supervisor_pid  # noqa: PLC0415
    from services.vitals import read_heartbeat  # noqa: PLC0415

    places = Places(state_dir)
    state = read_state(places)
    if state is None:
        return None
    now = time.time()
    alive = supervisor_pid(places)
    processes = []
    for child in state["children"]:
        pid = child["pid"]
        running = pid is not None and pid_alive(pid)
        health = "-"
        if running and child.get("heartbeat"):
            beat = read_heartbeat(Path(child["heartbeat"]))
            if beat is None or beat.get("pid") != pid:
                health = "no heartbeat yet"
            else:
                down_deps = ", ".join(f"{name} down" for name in beat.get("down", {}))
                health = f"heartbeat {now - float(beat['at']):.0f}s ago" + (
                    f"; {down_deps}" if down_deps else ""
                )
        elif running and child.get("health_url"):
            health = http_health(child["health_url"])
        last = child.get("last_exit")
        processes.append(
            {
                "name": child["name"],
                "pid": pid if running else None,
                "state": child["state"] if running or child["state"] != "running" else "dead",
                "uptime": now - child["started_at"] if running and child["started_at"] else None,
                "restarts": child["restarts"],
                "last_exit": last,
                "health": health,
                "log": child["log"],
            }
        )
    return {
        "supervisor": {
            "pid": alive,
            "running": alive is not None,
            "mode": state["mode"],
            "phase": state["phase"] if alive is not None else f"{state['phase']} (not running)",
            "uptime": now - state["started_at"] if alive is not None else None,
        },
        "processes": processes,
    }


def http_health(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
            return f"http {response.status}"
    except urllib.error.HTTPError as error:
        return f"http {error.code}"
    except OSError as error:
        return f"no answer ({type(error).__name__})"


def duration(seconds: float | None) -> str:
    from services.local.processes import format_duration  # noqa: PLC0415

    return "-" if seconds is None else format_duration(seconds)


def exit_text(last: dict[str, Any] | None) -> str:
    if last is None:
        return "-"
    how = f"killed by {last['signal']}" if last["signal"] else f"exit {last['code']}"
    return f"{how}, {duration(time.time() - last['at'])} ago"


ROW = "{:<15} {!s:>7}  {:<10} {:>8} {!s:>8}  {:<30} {}"


def status(cfg: StackConfig, *, state_dir: Path = RUN, as_json: bool = False) -> int:
    """Exit 3 when PostgreSQL or Kafka is stopped, or when a system that should run (its
    supervisor started it and was not stopped) has a process, or its supervisor, missing."""
    found = stack_status(cfg)
    system = system_status(state_dir)
    pg, kafka = found["postgres"], found["kafka"]
    healthy = pg["running"] and kafka["running"]
    if system is not None and not system["supervisor"]["phase"].startswith("stopped"):
        healthy = healthy and system["supervisor"]["running"]
        healthy = healthy and all(p["state"] == "running" for p in system["processes"])
    if as_json:
        print(json.dumps({**found, "system": system}, indent=1))  # noqa: T201 - the command's output
        return 0 if healthy else 3
    pg_text = f"running on 127.0.0.1:{cfg.pg_port}, pid {pg['pid']}" if pg["running"] else "stopped"
    if not pg["installed"]:
        pg_text = "not installed"
    say(f"postgres  {pg_text}  (data {PG_DATA})")
    kafka_text = (
        f"running on {cfg.bootstrap}, pid {kafka['pid']}" if kafka["running"] else "stopped"
    )
    say(f"kafka     {kafka_text}  (Apache Kafka {kafka_version()}, log {KAFKA_LOG})")
    if system is None:
        say("system    never started here (deploy/local/run)")
        return 0 if healthy else 3
    sup = system["supervisor"]
    say(
        f"system    supervisor {sup['phase']}"
        + (
            f", pid {sup['pid']}, {sup['mode']}, up {duration(sup['uptime'])}"
            if sup["running"]
            else ""
        )
    )
    say("  " + ROW.format("process", "pid", "state", "uptime", "restarts", "last exit", "health"))
    for proc in system["processes"]:
        cells = (proc["name"], proc["pid"] or "-", proc["state"], duration(proc["uptime"]))
        more = (proc["restarts"], exit_text(proc["last_exit"]), proc["health"])
        say("  " + ROW.format(*cells, *more))
    return 0 if healthy else 3


def make_secrets() -> None:
    """The Kafka passwords `up` would generate, without starting anything (for compose.yaml)."""
    from services.kafka_acls import BROKER  # noqa: PLC0415

    for user in [BROKER, *scram_users()]:
        kafka_password(user)
    say(f"kafka: passwords of {BROKER} and {', '.join(scram_users())} in {KAFKA_SECRETS}")


def change_acls(*, revoke: bool) -> None:
    """The ACLs of services/kafka_acls.py for the topic and group names of the OTC_ environment,
    granted or revoked as its (super user) principal: for tests that run the real principals on
    topics of their own. Those that `up` made for the system's own names are never touched."""
    from services.kafka_acls import system_grants  # noqa: PLC0415
    from services.settings import Settings  # noqa: PLC0415

    settings = Settings()
    acls = acl_plan(settings, leave=system_grants())
    provision(kafka_lib_dir(), [*client_plan(settings), *(dropped(acls) if revoke else acls)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="install what is missing, start what is stopped, wait until ready")
    down_parser = sub.add_parser("down", help="stop the system, Kafka and PostgreSQL")
    down_parser.add_argument("--purge", action="store_true", help="also delete their state")
    down_parser.add_argument(
        "--keep-stack", action="store_true", help="stop the system only; leave Kafka and PostgreSQL"
    )
    status_parser = sub.add_parser(
        "status", help="say what runs where; exit 3 when something is stopped"
    )
    status_parser.add_argument("--json", action="store_true", help="as JSON, for scripts")
    status_parser.add_argument(
        "--stack", action="store_true", help="only PostgreSQL and Kafka (exit 3 if one is stopped)"
    )
    restart_parser = sub.add_parser(
        "restart", help="restart PostgreSQL or Kafka under the running system (fault drills)"
    )
    restart_parser.add_argument("service", choices=["postgres", "kafka"])
    restart_parser.add_argument(
        "--down-for", type=float, default=0.0, help="seconds to stay stopped before starting again"
    )
    restart_parser.add_argument(
        "--hard",
        action="store_true",
        help="postgres: immediate shutdown (no checkpoint, like a crash); kafka: SIGKILL",
    )
    for each in (down_parser, status_parser):
        each.add_argument("--state-dir", type=Path, default=RUN, help="the run's state (.run/)")
    acl_help = "{} the ACLs for the topic and group names of the OTC_ environment"
    sub.add_parser("grant", help=acl_help.format("grant"))
    sub.add_parser("revoke", help=acl_help.format("revoke"))
    sub.add_parser("secrets", help="generate the Kafka passwords only (for deploy/compose.yaml)")
    args = parser.parse_args()
    cfg = StackConfig.from_env()
    if args.command == "up":
        up(cfg)
    elif args.command == "down":
        down(purge=args.purge, state_dir=args.state_dir, keep_stack=args.keep_stack)
    elif args.command == "restart":
        restart(cfg, args.service, down_for=args.down_for, hard=args.hard)
    elif args.command in {"grant", "revoke"}:
        change_acls(revoke=args.command == "revoke")
    elif args.command == "secrets":
        make_secrets()
    elif args.stack:
        sys.exit(0 if all(v["running"] for v in stack_status(cfg).values()) else 3)
    else:
        sys.exit(status(cfg, state_dir=args.state_dir, as_json=args.json))


if __name__ == "__main__":
    main()
