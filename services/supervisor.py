"""Runs the whole system on the local stack: `python -m services.supervisor` (deploy/local/run).

It starts the sandboxes, sets up what the system needs to move money (the provider token, the
treasury's EUR account and USDC wallets, funded), then the engine, relay, expiry sweeper and the
two treasury workers, each a subprocess with its log under `.run/logs/`. It prints what runs
where, restarts a process that dies, and on Ctrl-C or SIGTERM (`deploy/local/down`) stops them all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx

from services.demo import DemoData, demo_once
from services.engine.app import open_orders
from services.resources.port import Network
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from services.webhooks.local import local_webhook_env

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / ".run"
SECRETS = RUN / "secrets"

PROVIDER_SCOPES = [
    "partner.currency-exchange-quote.create",
    "partner.currency-exchange-quote.read",
    "partner.currency-exchange.create",
]
TREASURY_EUR = Decimal("10000000.00")
TREASURY_USDC = Decimal("10000000.000000")
TREASURY_ADDRESSES = {
    Network.ETHEREUM: "0x" + "7e" * 20,
    Network.POLYGON: "0x" + "70" * 20,
    Network.SOLANA: "TreasuryUsdcSo1ana1111111111111111111111111",
}
RESTART_LIMIT = 5


@dataclass
class Places:
    """Where the children's logs and pid files go (deploy/local/down reads .run/pids)."""

    logs: Path = RUN / "logs"
    pids: Path = RUN / "pids"


PLACES = Places()


@dataclass
class Child:
    name: str
    argv: list[str]
    address: str = ""
    health_url: str | None = None
    ready_text: str | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    @property
    def log_path(self) -> Path:
        return PLACES.logs / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return PLACES.pids / f"{self.name}.pid"

    def start(self, env: dict[str, str]) -> None:
        PLACES.logs.mkdir(parents=True, exist_ok=True)
        PLACES.pids.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own modules, fixed interpreter
                [sys.executable, *self.argv],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.pid_path.write_text(str(self.process.pid))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
        self.pid_path.unlink(missing_ok=True)

    def wait_stopped(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def sandboxes(settings: Settings) -> list[Child]:
    return [
        Child(
            name,
            ["-m", "services.sandbox", name, "--port", str(httpx.URL(url).port)],
            address=url,
            health_url=f"{url}/health",
        )
        for name, url in (
            ("provider", settings.provider_url),
            ("bank", settings.bank_url),
            ("chain", settings.chain_url),
        )
    ]


def core(settings: Settings) -> list[Child]:
    return [
        Child(
            "engine",
            ["-m", "services.engine"],
            f"{settings.commands_topic} -> {settings.replies_topic}",
            ready_text="engine: consuming",
        ),
        Child(
            "relay",
            ["-m", "services.relay"],
            f"event store -> {settings.events_topic}",
            ready_text="relay: publishing",
        ),
        Child(
            "sweeper",
            ["-m", "services.sweeper"],
            f"expired quotes -> {settings.commands_topic}",
            ready_text="sweeper: expiring",
        ),
        Child(
            "eur-treasury",
            ["-m", "services.workers", "eur-treasury"],
            f"{settings.events_topic} -> bank",
            ready_text="eur-treasury: consuming",
        ),
        Child(
            "projector",
            ["-m", "services.projector"],
            "event store -> order_list",
            ready_text="projector: following",
        ),
        Child(
            "usdc-chain",
            ["-m", "services.workers", "usdc-chain"],
            f"{settings.events_topic} -> chain",
            ready_text="usdc-chain: consuming",
        ),
        Child(
            "webhooks",
            ["-m", "services.webhooks"],
            f"{settings.events_topic} -> webhook endpoints",
            ready_text="webhooks: consuming",
        ),
    ]


def gateway(settings: Settings) -> Child:
    url = f"http://{settings.gateway_host}:{settings.gateway_port}"
    return Child("gateway", ["-m", "services.gateway"], url, health_url=f"{url}/ready")


def create_event_store(settings: Settings) -> None:
    """The event store's tables, made once before the processes that all use them start."""
    open_orders(settings).close()


def provider_token() -> str:
    """A token for the provider sandbox, made once and kept under .run/secrets (mode 600)."""
    path = SECRETS / "provider-token"
    if not path.exists():
        SECRETS.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def wait_ready(child: Child, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not child.alive():
                raise SystemExit(f"{child.name} exited; see {child.log_path}")
            if child.health_url is not None:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(child.health_url)).status_code == httpx.codes.OK:
                        return
            elif child.ready_text is not None and child.ready_text in child.log_path.read_text(
                errors="replace"
            ):
                return
            await asyncio.sleep(0.2)
    raise SystemExit(f"{child.name} not ready after {timeout:.0f}s; see {child.log_path}")


async def set_up_money(settings: Settings, token: str) -> None:
    """The provider token and a funded treasury. Every step is idempotent."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.post(
            f"{settings.provider_url}/admin/tokens",
            json={"token": token, "scopes": PROVIDER_SCOPES},
        )
        if response.status_code not in {httpx.codes.CREATED, httpx.codes.OK, httpx.codes.CONFLICT}:
            raise SystemExit(f"provider: could not register the token ({response.status_code})")
        async with PostgresResourceDirectory(settings) as resources:
            await resources.create_schema()
            account = await resources.treasury_account()
            if account is None:
                record = await resources.create_account(
                    None,
                    name="Treasury EUR",
                    iban="DE02100100100006820101",
                    treasury=True,
                )
                account = record.account
            await fund(
                client,
                f"{settings.bank_url}/admin/accounts/{account.id}/fund",
                TREASURY_EUR,
                "treasury-eur",
            )
            for network, address in TREASURY_ADDRESSES.items():
                wallet = await resources.treasury_wallet(network)
                if wallet is None:
                    wallet = await resources.create_wallet(
                        None,
                        label=f"Treasury {network}",
                        network=network,
                        usdc_address=address,
                        treasury=True,
                    )
                url = f"{settings.chain_url}/admin/wallets/{network}/{wallet.usdc_address}/fund"
                await fund(client, url, TREASURY_USDC, f"treasury-usdc-{network}")


async def fund(client: httpx.AsyncClient, url: str, amount: Decimal, reference: str) -> None:
    response = await client.post(url, json={"amount": str(amount), "reference": reference})
    if response.status_code >= httpx.codes.BAD_REQUEST:
        raise SystemExit(
            f"funding {reference} failed: {response.status_code} {response.text[:200]}"
        )


class Supervisor:
    def __init__(self, settings: Settings, env: dict[str, str]) -> None:
        self.settings = settings
        self.env = env
        self.children: list[Child] = []
        self.stopping = asyncio.Event()

    async def start(self, group: list[Child]) -> None:
        for child in group:
            child.start(self.env)
            self.children.append(child)
        await asyncio.gather(*(wait_ready(child) for child in group))

    async def watch(self) -> None:
        """Restart a child that dies, a few times; then give up on it loudly."""
        while not self.stopping.is_set():
            for child in self.children:
                if child.alive() or child.process is None or child.restarts >= RESTART_LIMIT:
                    continue
                child.restarts += 1
                code = child.process.returncode
                say(f"{child.name} exited with {code}; restart {child.restarts} ({child.log_path})")
                child.start(self.env)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=1.0)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
        for child in reversed(self.children):
            child.wait_stopped(timeout=20)


def child_env(settings: Settings, token: str) -> dict[str, str]:
    return {
        **os.environ,
        **settings.to_env(),
        **local_webhook_env(SECRETS),
        "OTC_UPSTREAMS": "sandbox",
        "OTC_PROVIDER_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
    }


def say(message: str) -> None:
    print(message, flush=True)  # noqa: T201 - the supervisor talks to its terminal


def print_table(children: list[Child]) -> None:
    say("\nrunning:")
    for child in children:
        pid = child.process.pid if child.process else "-"
        log = (
            child.log_path.relative_to(ROOT)
            if child.log_path.is_relative_to(ROOT)
            else child.log_path
        )
        say(f"  {child.name:<13} pid {pid!s:<7} {child.address:<45} log {log}")


async def run(settings: Settings, *, exit_after_start: bool, demo: bool) -> None:
    token = provider_token()
    env = child_env(settings, token)
    supervisor = Supervisor(settings.model_copy(update={"upstreams": "sandbox"}), env)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, supervisor.stopping.set)
    try:
        await supervisor.start(sandboxes(settings))
        await set_up_money(settings, token)
        await asyncio.to_thread(create_event_store, settings)
        await supervisor.start(core(settings))
        await supervisor.start([gateway(settings)])
        print_table(supervisor.children)
        if demo:
            print_demo(settings, await demo_once(settings))
        if exit_after_start:
            return
        say("\nCtrl-C (or deploy/local/down) stops everything.")
        await supervisor.watch()
    finally:
        if not exit_after_start:
            supervisor.stop_all()
            say("stopped every process this run started")


def print_demo(settings: Settings, data: DemoData) -> None:
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    first = data.customers[0]
    say(f"\nAPI: {base}  (OpenAPI: {base}/openapi.json, docs: {base}/docs)")
    say("demo keys (also in .run/demo.json):")
    for customer in data.customers:
        say(f"  {customer.name:<16} read+write {customer.write_key}")
        say(f"  {'':<16} read-only  {customer.read_key}")
    say(f"  {'operator':<16} operate    {data.operator_key}")
    key = f"-H 'x-api-key: {first.write_key}'"
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
    operator = f"-H 'x-api-key: {data.operator_key}'"
    say(f"  curl -s -X POST {operator} {base}/ops/otc-exchanges/QUOTE_ID/approve")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.supervisor", description=__doc__)
    parser.add_argument("--detach", action="store_true", help="start everything, then return")
    parser.add_argument("--no-demo", action="store_true", help="do not load or print demo data")
    parser.add_argument("--state-dir", type=Path, help="logs and pid files here, not in .run/")
    args = parser.parse_args()
    if args.state_dir is not None:
        PLACES.logs = args.state_dir / "logs"
        PLACES.pids = args.state_dir / "pids"
    asyncio.run(run(Settings(), exit_after_start=args.detach, demo=not args.no_demo))


if __name__ == "__main__":
    main()
