"""Runs the whole system on the local stack: `python -m services.local.supervisor`
(deploy/local/run).

It starts the sandboxes, sets up what the system needs to move money (services/local/money.py:
the provider token, the treasury's EUR account and USDC wallets, funded), then the engine(s),
relay, expiry sweeper, projector, the treasury workers, the webhook dispatcher and the gateway
(services/local/children.py), each a subprocess with its log under `.run/logs/` and, if it uses
Kafka, its own Kafka principal. It prints what runs where, restarts a process that dies
(`services.local.supervision`: capped backoff, never giving up), and on Ctrl-C or SIGTERM
(`deploy/local/down`) stops them all.
With `--detach` the supervisor itself runs in the background, so a detached system is supervised
too; `deploy/local/down` finds it by its pid file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client import start_http_server

from services.engine.event_store import open_orders
from services.local.children import core, gateway, sandboxes
from services.local.demo import demo_once, saved_demo
from services.local.demo_hints import print_demo, print_keys
from services.local.money import provider_token, set_up_money
from services.local.places import ROOT, SECRETS, Places, supervisor_pid
from services.local.processes import Child
from services.local.supervision import RestartPolicy, Supervisor
from services.local.webhook_settings import local_webhook_env
from services.metrics import SUPERVISOR, expose
from services.settings import Settings


def create_event_store(settings: Settings) -> None:
    """The event store's tables, made once before the processes that all use them start."""
    open_orders(settings).close()


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
        # A detached supervisor's output is a log file: the keys stay out of it (detach prints
        # them to the terminal from .run/demo.json).
        print_demo(settings, await demo_once(settings), say, keys=supervisor.mode == "foreground")
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
        metrics_base_port=settings.metrics_base_port,
        metrics_host=settings.metrics_host,
    )
    expose(SUPERVISOR)
    try:
        start_http_server(settings.metrics_base_port, addr=settings.metrics_host)
    except OSError as error:
        raise SystemExit(
            f"supervisor: metrics port {settings.metrics_base_port} is taken ({error}); "
            "set OTC_METRICS_BASE_PORT"
        ) from None
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
            [sys.executable, "-m", "services.local.supervisor", *args, "--daemon"],
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
            demo = saved_demo() if "--no-demo" not in args else None
            if demo is not None:
                print_keys(demo, say)
            say(f"supervisor: pid {daemon.pid}, detached (log {log_path})")
            return 0
        if daemon.poll() is not None:
            say(f"supervisor: exited with {daemon.returncode} while starting (log {log_path})")
            return daemon.returncode or 1
        if time.monotonic() > deadline:
            say(f"supervisor: not up after {timeout:.0f}s; it keeps trying (log {log_path})")
            return 1
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.local.supervisor", description=__doc__
    )
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
