"""Where each process of the local run serves its metrics, for Prometheus: metrics ports
handed out by the supervisor, and the file-discovery targets it writes after every change
(`.run/prometheus/targets.json`, read by deploy/prometheus/prometheus.yml)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    process: str
    kind: str
    address: str
    """`host:port`; the metrics are at `/metrics` there."""


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port_after(base: int, taken: set[int], host: str = "127.0.0.1") -> int:
    """The first port after `base` not in `taken` that nothing listens on."""
    port = base + 1
    while port in taken or not port_free(host, port):
        port += 1
    return port


def file_sd(targets: Iterable[Target]) -> list[dict[str, object]]:
    """Prometheus's file discovery format: one group per process, labelled by name and kind."""
    return [
        {"targets": [t.address], "labels": {"process": t.process, "kind": t.kind}} for t in targets
    ]


def write_targets(path: Path, targets: Iterable[Target]) -> None:
    """Replaced atomically: Prometheus never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(json.dumps(file_sd(targets), indent=1))
    scratch.replace(path)
