"""Webhook settings of the local run (services/local/supervisor.py): a key to seal endpoint secrets,
made once and kept under `.run/secrets/` (mode 600) like the run's other generated secrets, and
loopback receivers allowed, so that a receiver on 127.0.0.1 can be registered. Whatever the
environment already sets wins."""

from __future__ import annotations

import os
from pathlib import Path

from services.webhooks.signing import new_box_key

KEY_FILE = "webhook-secrets-key"


def local_webhook_env(secrets_dir: Path) -> dict[str, str]:
    env = {}
    if "OTC_WEBHOOK_SECRETS_KEY" not in os.environ:
        env["OTC_WEBHOOK_SECRETS_KEY"] = local_key(secrets_dir)
    if "OTC_WEBHOOK_ALLOW_LOOPBACK" not in os.environ:
        env["OTC_WEBHOOK_ALLOW_LOOPBACK"] = "true"
    return env


def local_key(secrets_dir: Path) -> str:
    path = secrets_dir / KEY_FILE
    if not path.exists():
        secrets_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(new_box_key())
    return path.read_text().strip()
