"""A Kafka broker of a test's own (KRaft, single node, from the local stack's jars), on free
ports with its log dir in a temporary folder, to stop and start under running processes
without touching the stack's broker that other tests use. The test stops it at the end."""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

READY_SECONDS = 90.0


def _stack() -> Any:  # noqa: ANN401 - the stack script, loaded by path
    spec = importlib.util.spec_from_file_location(
        "otc_stack", ROOT / "deploy" / "local" / "stack.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayBroker:
    def __init__(self, folder: Path) -> None:
        self.stack = _stack()
        self.folder = folder
        self.port = free_port()
        self.controller_port = free_port()
        self.properties = folder / "server.properties"
        self.log = folder / "kafka.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it (formatting its log dir the first time) and wait until it serves."""
        lib = self.stack.kafka_lib_dir()
        if not self.properties.exists():
            text = (ROOT / "deploy" / "kafka" / "server.properties").read_text()
            text = text.replace("127.0.0.1:9093", f"127.0.0.1:{self.controller_port}")
            text = text.replace("127.0.0.1:9092", f"127.0.0.1:{self.port}")
            text += f"\nlog.dirs={self.folder / 'data'}\n"
            self.properties.write_text(text)
            cluster = self.stack.kafka_cluster_id()
            storage = [
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster,
                "-c",
                str(self.properties),
            ]
            subprocess.run(self.stack.java_cmd(lib, *storage), check=True, capture_output=True)  # noqa: S603 - the stack's java command
        started_before = self._starts()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the stack's java command
                self.stack.java_cmd(lib, "kafka.Kafka", str(self.properties), heap="256m"),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.folder,
            )
        deadline = time.monotonic() + READY_SECONDS
        while self._starts() <= started_before:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the throwaway broker did not start; see {self.log}")
            time.sleep(0.2)

    def _starts(self) -> int:
        if not self.log.exists():
            return 0
        return self.log.read_text(errors="replace").count("Kafka Server started")

    def stop(self) -> None:
        """SIGTERM, as an orderly broker restart would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
