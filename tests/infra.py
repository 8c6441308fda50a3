"""Throwaway infrastructure for the outage tests: a PostgreSQL cluster and a Kafka broker of a
test module's own, on free ports, that the test may stop, kill and restart without disturbing
the shared stack every other test uses. Built from the same binaries and jars as the local
stack (`deploy/local/stack.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from aiokafka.admin import NewTopic
from pydantic import SecretStr

from deploy.local import stack
from services import kafka
from services.kafka_acls import ADMIN
from services.settings import Settings

PASSWORD = "throwaway-password"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ThrowawayPostgres:
    """`initdb` into `root`, a server on `port` with role and database `otc`."""

    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def bin_dir(self) -> Path:
        found = stack.pg_bin_dir()
        assert found is not None, "PostgreSQL is not installed (deploy/local/up installs it)"
        return found

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args]
        return subprocess.run(  # noqa: S603 - the Debian binary, fixed arguments
            stack.as_pg_owner(cmd), check=check, capture_output=True, text=True
        )

    def create(self) -> ThrowawayPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if stack.is_root():
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres", "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        if stack.is_root():
            shutil.chown(pwfile, "postgres", "postgres")
        initdb = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "otc",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]
        subprocess.run(stack.as_pg_owner(initdb), check=True, capture_output=True)  # noqa: S603
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = 200\n"
                "fsync = off\nshared_buffers = 32MB\n"
            )
        self.start()
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE otc")
        return self

    def conninfo(self, dbname: str = "otc") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user=otc password={PASSWORD}"

    def settings(self, base: Settings, dbname: str = "otc") -> Settings:
        return base.model_copy(
            update={
                "pg_port": self.port,
                "pg_user": "otc",
                "pg_dbname": dbname,
                "pg_password": SecretStr(PASSWORD),
            }
        )

    def new_database(self, name: str) -> str:
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def running(self) -> bool:
        return self.pg_ctl("status", check=False).returncode == 0

    def start(self) -> None:
        log = self.root / "postgres.log"
        self.pg_ctl("-l", str(log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: no checkpoint, every connection cut (a crash, as far as clients see)."""
        self.pg_ctl("-m", mode, "-w", "stop")

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class ThrowawayKafka:
    """A single-node KRaft broker with its log dir in `root`, configured as the local stack's
    (SASL, ACLs) and with the same SCRAM users and passwords; the tests use it as the admin."""

    root: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def config(self) -> stack.StackConfig:
        return dataclasses.replace(
            stack.StackConfig.from_env(),
            kafka_port=self.port,
            kafka_controller_port=self.controller_port,
        )

    def admin_settings(self) -> Settings:
        return Settings(
            pg_password=SecretStr(PASSWORD),
            kafka_bootstrap=self.bootstrap,
            kafka_username=ADMIN,
            kafka_password=SecretStr(stack.kafka_password(ADMIN)),
        )

    def create(self) -> ThrowawayKafka:
        self.root.mkdir(parents=True, exist_ok=True)
        stack.write_private(
            self.properties, stack.kafka_properties(self.config, self.root / "data")
        )
        format_cmd = stack.java_cmd(
            stack.kafka_lib_dir(),
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={stack.kafka_cluster_id()}",
            "-c",
            str(self.properties),
        )
        subprocess.run(format_cmd, check=True, capture_output=True)  # noqa: S603 - java, fixed args
        self.spawn()
        users = [
            f"user {stack.SCRAM} {user} {stack.kafka_password(user)}"
            for user in stack.scram_users()
        ]
        # The users and the ACLs of the system's own names, as `deploy/local/up` makes them.
        acls = stack.acl_plan(self.admin_settings())
        stack.provision(stack.kafka_lib_dir(), [*stack.broker_plan(self.config), *users, *acls])
        asyncio.run(self._wait_for_broker())
        return self

    def start(self) -> None:
        self.spawn()
        asyncio.run(self._wait_for_broker())

    def spawn(self) -> None:
        with (self.root / "kafka.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - java with the stack's jars
                stack.java_cmd(stack.kafka_lib_dir(), "kafka.Kafka", str(self.properties)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.root,
            )

    async def _wait_for_broker(self, timeout: float = 90.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, f"the broker exited; see {self.root}/kafka.log"
            admin = kafka.admin(
                self.admin_settings(), client_id="otc-tests", request_timeout_ms=3000
            )
            try:
                await admin.start()
                await admin.describe_cluster()
            except Exception:  # noqa: BLE001 - not up yet
                await asyncio.sleep(0.5)
            else:
                return
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
        raise AssertionError(f"the broker is not up after {timeout}s")

    def stop(self, *, hard: bool = False) -> None:
        """SIGTERM (a clean shutdown) or SIGKILL; waits until the process is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    async def create_topics(self, partitions: int, *names: str) -> None:
        admin = kafka.admin(self.admin_settings(), client_id="otc-tests")
        await admin.start()
        try:
            await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
        finally:
            await admin.close()

    def destroy(self) -> None:
        self.stop(hard=True)
        shutil.rmtree(self.root, ignore_errors=True)


def pids_alive(*pids: int) -> list[int]:
    """The pids among these that are still running processes (not zombies)."""
    return [pid for pid in pids if stack.pid_alive(pid)]


def kill_quietly(pid: int) -> None:
    """SIGKILL a process of this system (one of our `-m services.` modules, nothing else: a
    pid from an old state file may have been reused by an unrelated process)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if (
        b"services." not in cmdline
        or str(ROOT).encode() not in Path(f"/proc/{pid}/cwd").resolve().as_posix().encode()
    ):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
