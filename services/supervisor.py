"""Runs the whole system on the local stack: `python -m services.supervisor` (deploy/local/run).

It starts the sandboxes, sets up what the system needs to move money (the provider token, the
treasury's EUR account and USDC wallets, funded), then the engine(s), relay, expiry sweeper,
projector, the treasury workers and the gateway, each a subprocess with its log under
`.run/logs/` and, if it uses Kafka, its own Kafka principal (services/kafka_acls.py; passwords
from `.run/secrets/kafka/`). It prints what runs where, restarts a process that dies
(`services.supervision`: capped backoff, never giving up), and on Ctrl-C or SIGTERM
(`deploy/local/down`) stops them all.
With `--detach` the supervisor itself runs in the background, so a detached system is supervised
too; `deploy/local/down` finds it by its pid file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from services.demo import DemoData, demo_once
from services.engine.event_store import open_orders
from services.kafka_acls import Principal, password_file
from services.resources.port import Network
from services.resources.store import PostgresResourceDirectory
from services.settings import Settings
from services.supervision import ROOT, Child, Places, RestartPolicy, Supervisor, supervisor_pid
from services.webhooks.local import local_webhook_env

RUN = ROOT / ".run"
SECRETS = RUN / "secrets"
KAFKA_CREDENTIALS = ("OTC_KAFKA_USERNAME", "OTC_KAFKA_PASSWORD")

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


@dataclass(frozen=True)
class AsPrincipal:
    """A child's environment: the supervisor's, with the Kafka credentials of `principal` in
    place of any others (read when it starts); a process that does not use Kafka gets none."""

    principal: Principal | None

    def __call__(self, env: dict[str, str]) -> dict[str, str]:
        env = {name: value for name, value in env.items() if name not in KAFKA_CREDENTIALS}
        if self.principal is None:
            return env
        path = password_file(RUN, self.principal)
        if not path.exists():
            raise SystemExit(
                f"no Kafka password for {self.principal} in {path.parent}; run deploy/local/up"
            )
        username, password = KAFKA_CREDENTIALS
        return {**env, username: str(self.principal), password: path.read_text().strip()}


def sandboxes(settings: Settings) -> list[Child]:
    return [
        Child(
            name,
            ["-m", "services.sandbox", name, "--port", str(httpx.URL(url).port)],
            address=url,
            health_url=f"{url}/health",
            environ=AsPrincipal(None),
        )
        for name, url in (
            ("provider", settings.provider_url),
            ("bank", settings.bank_url),
            ("chain", settings.chain_url),
        )
    ]


def instances(kind: str, count: int, **fields: Any) -> list[Child]:  # noqa: ANN401 - Child's
    """`count` children of one kind: `engine` alone, or `engine-1`, `engine-2`, ..."""
    names = [kind] if count == 1 else [f"{kind}-{n}" for n in range(1, count + 1)]
    return [Child(name, kind=kind, heartbeat=True, **fields) for name in names]


def core(settings: Settings) -> list[Child]:
    """The engine and workers (as many of each as the settings ask: they share their consumer
    group's partitions), and one relay, sweeper and projector (each holds a lock: a second
    would only wait)."""
    return [
        *instances(
            "engine",
            settings.engine_instances,
            argv=["-m", "services.engine"],
            environ=AsPrincipal(Principal.ENGINE),
            address=f"{settings.commands_topic} -> {settings.replies_topic}",
            ready_text="engine: consuming",
        ),
        *instances(
            "relay",
            1,
            argv=["-m", "services.relay"],
            environ=AsPrincipal(Principal.RELAY),
            address=f"event store -> {settings.events_topic}",
            ready_text="relay: publishing",
        ),
        *instances(
            "sweeper",
            1,
            argv=["-m", "services.sweeper"],
            environ=AsPrincipal(Principal.SWEEPER),
            address=f"expired quotes -> {settings.commands_topic}",
            ready_text="sweeper: expiring",
        ),
        *instances(
            "eur-treasury",
            settings.eur_treasury_instances,
            argv=["-m", "services.workers", "eur-treasury"],
            environ=AsPrincipal(Principal.EUR_TREASURY),
            address=f"{settings.events_topic} -> bank",
            ready_text="eur-treasury: consuming",
        ),
        *instances(
            "projector",
            1,
            argv=["-m", "services.projector"],
            environ=AsPrincipal(None),
            address="event store -> order_list",
            ready_text="projector: following",
        ),
        *instances(
            "usdc-chain",
            settings.usdc_chain_instances,
            argv=["-m", "services.workers", "usdc-chain"],
            environ=AsPrincipal(Principal.USDC_CHAIN),
            address=f"{settings.events_topic} -> chain",
            ready_text="usdc-chain: consuming",
        ),
        *instances(
            "webhooks",
            1,
            argv=["-m", "services.webhooks"],
            environ=AsPrincipal(Principal.WEBHOOKS),
            address=f"{settings.events_topic} -> webhook endpoints",
            ready_text="webhooks: consuming",
        ),
    ]


def gateway(settings: Settings) -> Child:
    url = f"http://{settings.gateway_host}:{settings.gateway_port}"
    return Child(
        "gateway",
        ["-m", "services.gateway"],
        address=url,
        health_url=f"{url}/health",
        environ=AsPrincipal(Principal.GATEWAY),
    )


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


async def wait_ready(
    supervisor: Supervisor,
    child: Child,
    timeout: float = 60.0,  # noqa: ASYNC109 - a start-up bound
) -> None:
    deadline = time.monotonic() + timeout
    log_path = supervisor.log_path(child)
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not child.alive():
                raise SystemExit(f"{child.name} exited while starting; see {log_path}")
            if child.health_url is not None:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(child.health_url)).status_code == httpx.codes.OK:
                        return
            elif child.ready_text is not None and child.ready_text in log_path.read_text(
                errors="replace"
            ):
                return
            await asyncio.sleep(0.2)
    raise SystemExit(f"{child.name} not ready after {timeout:.0f}s; see {log_path}")


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


async def start_group(supervisor: Supervisor, group: list[Child]) -> None:
    for child in group:
        if child.health_url is not None and port_taken(child.health_url):
            raise SystemExit(
                f"{child.name}: {httpx.URL(child.health_url).netloc.decode()} is taken by another"
                " process; stop it or move this one (see services/settings.py)"
            )
        supervisor.start_child(child)
    await asyncio.gather(*(wait_ready(supervisor, child) for child in group))


def port_taken(url: str) -> bool:
    address = httpx.URL(url)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address.host, address.port or 80)) == 0


async def watch(supervisor: Supervisor) -> None:
    """Check the children every half second, for as long as the supervisor runs."""
    while True:
        supervisor.check()
        await asyncio.sleep(0.5)


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


def print_table(supervisor: Supervisor) -> None:
    say("\nrunning:")
    for child in supervisor.children:
        path = supervisor.log_path(child)
        log = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        say(f"  {child.name:<13} pid {child.pid!s:<7} {child.address:<45} log {log}")


async def run(settings: Settings, supervisor: Supervisor, *, demo: bool) -> None:
    """Start everything, then keep it running until cancelled (SIGTERM, SIGINT)."""
    token = provider_token()
    supervisor.env = child_env(settings, token)
    await start_group(supervisor, sandboxes(settings))
    await set_up_money(settings, token)
    await asyncio.to_thread(create_event_store, settings)
    await start_group(supervisor, core(settings))
    await start_group(supervisor, [gateway(settings)])
    print_table(supervisor)
    if demo:
        print_demo(settings, await demo_once(settings))
    supervisor.phase = "running"
    supervisor.write_state()
    say(f"\n{STOP_HINT[supervisor.mode]}")
    say(READY_LINE)
    await watch(supervisor)


STOP_HINT = {
    "foreground": "Ctrl-C (or deploy/local/down from another shell) stops everything.",
    "detached": "Running detached: deploy/local/status shows it, deploy/local/down stops it.",
}
READY_LINE = "supervising: every process is up; a process that dies is restarted"


async def supervise(settings: Settings, places: Places, *, mode: str, demo: bool) -> int:
    """The supervisor's life: its pid file, the run, and on a stop signal every child stopped."""
    supervisor = Supervisor(
        env={},
        places=places,
        policy=RestartPolicy(
            initial=settings.supervisor_backoff_initial_seconds,
            maximum=settings.supervisor_backoff_max_seconds,
            healthy_after=settings.supervisor_healthy_seconds,
        ),
        liveness_timeout=settings.liveness_timeout_seconds,
        mode=mode,
        say=say,
    )
    places.root.mkdir(parents=True, exist_ok=True)
    places.supervisor_pid.write_text(str(os.getpid()))
    main_task = asyncio.current_task()
    assert main_task is not None  # noqa: S101 - called from asyncio.run
    stop_signal: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if not stop_signal:
            stop_signal.append(sig.name)
            main_task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await run(settings, supervisor, demo=demo)
    except asyncio.CancelledError:
        if not stop_signal:
            raise
        say(f"\n{stop_signal[0]}: stopping every process")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await asyncio.to_thread(supervisor.stop_all)
        places.supervisor_pid.unlink(missing_ok=True)
        say("stopped every process this run started")
    return 0


def detach(args: list[str], places: Places, timeout: float = 300.0) -> int:
    """Start the supervisor as a daemon (its own session, output to its log), show its output
    until every process is up, and return: the detached system stays supervised."""
    places.logs.mkdir(parents=True, exist_ok=True)
    log_path = places.supervisor_log
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        daemon = subprocess.Popen(  # noqa: S603 - our own module, fixed interpreter
            [sys.executable, "-m", "services.supervisor", *args, "--daemon"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout
    while True:
        with log_path.open("rb") as log:
            log.seek(offset)
            fresh = log.read()
        offset += len(fresh)
        text = fresh.decode(errors="replace")
        if text:
            print(text, end="", flush=True)  # noqa: T201 - the daemon's words, relayed
        if READY_LINE in text:
            say(f"supervisor: pid {daemon.pid}, detached (log {log_path})")
            return 0
        if daemon.poll() is not None:
            say(f"supervisor: exited with {daemon.returncode} while starting (log {log_path})")
            return daemon.returncode or 1
        if time.monotonic() > deadline:
            say(f"supervisor: not up after {timeout:.0f}s; it keeps trying (log {log_path})")
            return 1
        time.sleep(0.2)


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
    parser.add_argument(
        "--detach", action="store_true", help="run the supervisor in the background, then return"
    )
    parser.add_argument("--no-demo", action="store_true", help="do not load or print demo data")
    parser.add_argument("--state-dir", type=Path, help="state, logs and pid files here, not .run/")
    parser.add_argument("--daemon", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    places = Places(args.state_dir) if args.state_dir is not None else Places()
    running = supervisor_pid(places)
    if running is not None and running != os.getpid():
        raise SystemExit(f"a supervisor already runs (pid {running}); deploy/local/down stops it")
    if args.detach:
        forwarded = [a for a in sys.argv[1:] if a != "--detach"]
        raise SystemExit(detach(forwarded, places))
    mode = "detached" if args.daemon else "foreground"
    raise SystemExit(asyncio.run(supervise(Settings(), places, mode=mode, demo=not args.no_demo)))


if __name__ == "__main__":
    main()
