"""Green asked directly whether it answers: its readiness endpoint, one GET, 200 or not.

A dead process keeps its last samples in every rate window for as long as the window lasts, and a router that
retries on blue hides its failed requests from clients; only green's own answer (and its scrape health) tells at
once. The window analysis counts a probe like an SLO check; the shift operator asks it right before each shift.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
import httpx

from sap_llm_release.analysis.window import SLOQuery
from sap_llm_release.deployers.base import Deployer
from sap_llm_release.tls import default_tls

READY_CHECK = "green_ready"
READY_PATH = "/health/ready"


def readiness_url(base_url: str) -> str:
    """A colour's readiness endpoint under its base URL."""
    return base_url.rstrip("/") + READY_PATH


@dataclass(frozen=True)
class ReadinessProbe:
    """One GET of ``url``: answered 200 is ready (1.0); any other answer, or none, is not (0.0)."""

    url: str
    name: str = READY_CHECK
    timeout_s: float = 2.0
    client: aiohttp.ClientSession | None = field(default=None, compare=False, repr=False)  # for check_async

    @property
    def slo(self) -> SLOQuery:
        """How the window analysis counts it: ready must be 1, and no answer is a failed check."""
        return SLOQuery(self.name, f"GET {self.url}", "==", 1.0, "fail")

    def check(self) -> tuple[float, str]:
        """``(1.0, what was seen)`` when ready, else ``(0.0, what was seen)``; never raises on a network error."""
        try:
            response = httpx.get(self.url, timeout=self.timeout_s, verify=default_tls())
        except httpx.HTTPError as exc:
            return self._unanswered(exc)
        return self._answered(response.status_code)

    async def check_async(self) -> tuple[float, str]:
        """As :meth:`check`, awaited, through the probe's ``client`` (an aiohttp session the caller keeps open
        across checks: :func:`probe_session`)."""
        if self.client is None:
            async with probe_session() as client:
                return await ReadinessProbe(self.url, self.name, self.timeout_s, client).check_async()
        try:
            async with self.client.get(self.url, timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as response:
                return self._answered(response.status)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return self._unanswered(exc)

    def _answered(self, status: int) -> tuple[float, str]:
        seen = f"GET {self.url} -> {status}"
        return (1.0, seen) if status == 200 else (0.0, seen)

    def _unanswered(self, exc: Exception) -> tuple[float, str]:
        return 0.0, f"GET {self.url} failed: {type(exc).__name__}: {exc}"


def probe_session() -> aiohttp.ClientSession:
    """The session readiness probes share (call it inside the event loop that uses it), trusting what the blocking
    probe trusts."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=default_tls()))


def green_ready_to_shift(deployer: Deployer, ready_url: str, timeout_s: float) -> tuple[bool, str]:
    """Green ready by its platform's account (the deployer waits up to ``timeout_s``) and answering its readiness
    endpoint itself, asked right now; ``(ready, what was seen)``."""
    ready, seen = deployer.wait_ready("green", timeout_s)
    if not ready:
        return False, seen
    value, answered = ReadinessProbe(ready_url).check()
    return value == 1.0, f"{seen}; {answered}"
