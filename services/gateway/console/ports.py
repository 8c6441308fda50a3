"""What the console needs beyond the gateway's own collaborators: its sessions, the live rates
(none without a provider: the pages then show the rate as unavailable), the monitor's last
findings, and the price collar's width (the engine's setting, shown, not enforced, here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.gateway.console.rates import LiveRates
from services.gateway.console.sessions import Sessions
from services.monitor.results import Finding

SESSION_SECONDS = 8 * 3600.0


async def no_findings() -> dict[str, Finding]:
    return {}


@dataclass
class ConsolePorts:
    sessions: Sessions = field(default_factory=lambda: Sessions(SESSION_SECONDS))
    live_rates: LiveRates | None = None
    findings: Callable[[], Awaitable[dict[str, Finding]]] = no_findings
    collar_bps: int = 200
