"""What the local run prints once the demo data is loaded: the API's address, the demo keys and
`curl` lines to try it. A detached run's output is its log file (`.run/logs/supervisor.log`),
which must hold no key: it prints the lines with `$KEY` and `$OPERATOR_KEY` in their place,
and the command that detached it prints the keys to its terminal (`print_keys`)."""

from __future__ import annotations

from collections.abc import Callable

from services.local.demo import DemoData
from services.settings import Settings

Say = Callable[[str], None]


def print_keys(data: DemoData, say: Say) -> None:
    say("demo keys (also in .run/demo.json):")
    for customer in data.customers:
        say(f"  {customer.name:<16} read+write {customer.write_key}")
        say(f"  {'':<16} read-only  {customer.read_key}")
    say(f"  {'operator':<16} operate    {data.operator_key}")


def print_demo(settings: Settings, data: DemoData, say: Say, *, keys: bool = True) -> None:
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    first = data.customers[0]
    say(f"\nAPI: {base}  (OpenAPI: {base}/openapi.json, docs: {base}/docs)")
    say(f"operator console: {base}/console  (sign in with the operator key)")
    if keys:
        print_keys(data, say)
        write_key, operator_key = first.write_key, data.operator_key
    else:
        say(
            "demo keys: in .run/demo.json, not in this log; below, $KEY is a read+write key "
            "of the first customer and $OPERATOR_KEY the operator's"
        )
        write_key, operator_key = "$KEY", "$OPERATOR_KEY"
    key = f'-H "x-api-key: {write_key}"'
    say("\ntry:")
    say(f"  curl -s {key} {base}/otc-exchanges/accounts")
    say(f"  curl -s {key} {base}/otc-exchanges/wallets")
    quote = (
        f'{{"side":"buy","sourceAccountId":"{first.active_account}",'
        f'"destinationWalletId":"{first.ethereum_wallet}","sourceAmount":"1000.00"}}'
    )
    json_body = "-H 'content-type: application/json'"
    say(f"  curl -s {key} {json_body} -d '{quote}' {base}/otc-exchanges/quote")
    confirm = '{"quoteId":"QUOTE_ID","side":"buy"}'
    new_key = "-H \"Idempotency-Key: $(python3 -c 'import uuid; print(uuid.uuid4())')\""
    say(f"  curl -s {key} {json_body} {new_key} -d '{confirm}' {base}/otc-exchanges")
    operator = f'-H "x-api-key: {operator_key}"'
    say(f"  curl -s -X POST {operator} {base}/ops/otc-exchanges/QUOTE_ID/approve")
