"""The scan the end-to-end logs go through (tests/e2e/test_observability.py) finds a secret
wherever a line holds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import secrets_in

KEY = "otc_k3yK3yK3y_0123456789abcdefghij"


def test_a_key_written_into_a_log_is_found(tmp_path: Path) -> None:
    clean, leaky = tmp_path / "engine.log", tmp_path / "gateway.log"
    clean.write_text('{"message": "RequestQuote ok"}\n')
    leaky.write_text(f'{{"message": "auth with {KEY} refused"}}\n')

    found = secrets_in([clean, leaky], {"demo key": KEY, "password": "s3cret-pass"})

    assert found == ["demo key in gateway.log"]


def test_a_value_too_short_to_be_a_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pin"):
        secrets_in([tmp_path], {"pin": "1234"})
