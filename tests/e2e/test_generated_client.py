"""A client generated from the running gateway's /openapi.json by a real generator
(openapi-python-client, from PyPI) runs the seed's flow against the running system: selectors,
a quote, its confirmation (Location, a replay by key), the order in the list, a refusal parsed
with its code.

The generator lives in a virtual environment of its own, .run/openapi-generator, at the versions
tests/openapi_client/requirements.txt pins (installed once; again when the pins change): it wants
an older typer than the project's. The client is generated into .run/openapi-client, never
committed; it needs only httpx and attrs, which the project's environment has."""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import System
from tests.e2e.test_api import alice

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "openapi_client"
GENERATOR = ROOT / ".run" / "openapi-generator"
CLIENT = ROOT / ".run" / "openapi-client"
PACKAGE = "otc_client"


def generator() -> Path:
    """openapi-python-client, installed from PyPI into its own environment if it is not yet."""
    pins = SOURCE / "requirements.txt"
    want = hashlib.sha256(pins.read_bytes()).hexdigest()
    stamp = GENERATOR / ".installed"
    if not stamp.is_file() or stamp.read_text() != want:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(GENERATOR)], check=True)  # noqa: S603 - our interpreter, fixed arguments
        pip = [str(GENERATOR / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", str(pins)], check=True, timeout=600)  # noqa: S603 - pinned requirements of ours
        stamp.write_text(want)
    return GENERATOR / "bin" / "openapi-python-client"


@pytest.fixture(scope="module")
def otc_client(system: System) -> Iterator[ModuleType]:
    """The client package generated from the served document, imported."""
    document = httpx.get(f"{system.base_url}/openapi.json", timeout=30).raise_for_status().json()
    CLIENT.mkdir(parents=True, exist_ok=True)
    (CLIENT / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    command = [
        str(generator()),
        "generate",
        "--path",
        str(CLIENT / "openapi.json"),
        "--config",
        str(SOURCE / "config.yaml"),
        "--meta",
        "none",
        "--output-path",
        str(CLIENT / PACKAGE),
        "--overwrite",
        "--fail-on-warning",
    ]
    made = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603 - the generator we installed, our document
    assert made.returncode == 0, made.stdout + made.stderr
    sys.path.insert(0, str(CLIENT))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(CLIENT))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def api(name: str) -> Any:  # noqa: ANN401 - a module of the generated client
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def test_a_generated_client_quotes_confirms_and_lists_orders(
    system: System, otc_client: ModuleType
) -> None:
    me = alice(system)
    models = importlib.import_module(f"{PACKAGE}.models")
    client = otc_client.AuthenticatedClient(
        base_url=system.base_url,
        token=me.write_key,
        auth_header_name="x-api-key",
        prefix="",
        raise_on_unexpected_status=True,
    )

    accounts = api("otc_exchanges.list_accounts").sync(client=client)
    wallets = api("otc_exchanges.list_wallets").sync(client=client)
    [account] = [a for a in accounts.data if str(a.id) == me.active_account]
    [wallet] = [w for w in wallets.data if str(w.id) == me.ethereum_wallet]
    body = models.BuyQuoteRequest(
        source_account_id=account.id, destination_wallet_id=wallet.id, source_amount="100.00"
    )
    quoted = api("otc_exchanges.request_quote").sync_detailed(client=client, body=body)
    assert quoted.status_code == 200, quoted.content
    order = quoted.parsed
    assert isinstance(order, models.OrderView)
    assert order.status is models.Status.QUOTED

    confirm = api("otc_exchanges.confirm_quote")
    # openapi-python-client 0.29 types a `format: uuid` header as UUID but hands it to httpx
    # as it is, which refuses anything but text: the key goes as its text.
    key = str(uuid.uuid4())
    confirmation = models.ConfirmRequest(quote_id=order.id, side=models.Side.BUY)
    confirmed = confirm.sync_detailed(client=client, body=confirmation, idempotency_key=key)
    replayed = confirm.sync_detailed(client=client, body=confirmation, idempotency_key=key)

    assert confirmed.status_code == 201, confirmed.content
    assert confirmed.headers["location"] == f"/otc-exchanges/{order.id}"
    assert confirmed.parsed.status in {models.Status.DEBIT_PENDING, models.Status.PENDING_APPROVAL}
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.parsed.id == order.id

    listed = api("otc_exchanges.list_orders").sync(client=client, page=1, limit=100)
    assert order.id in [item.id for item in listed.data]
    shown = api("otc_exchanges.get_order").sync(client=client, order_id=order.id)
    assert shown.source_amount == "100.00"

    missing = api("otc_exchanges.get_order").sync_detailed(client=client, order_id=uuid.uuid4())
    assert missing.status_code == 404
    assert missing.parsed.code is models.GetOrderResponse404Code.ORDER_NOT_FOUND
