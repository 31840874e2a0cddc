"""What the router answered, from its access log: the requests a rollback lost while traffic switched back to blue
(checklist section 8, rollback step 3). A request is lost when the router could not deliver it (502, 503, 504: no
upstream took it or answered it, as when green goes away under it) or the client gave up waiting (nginx's 499). A
500 is the service's own answer, delivered: the SLO windows judge those (a faulty green's are why it rolled back).

Two logs: the local stack's nginx (its ``routed`` format: ``$msec $upstream_addr $status $request_time
"$request"``) and ingress-nginx's controller pods on a cluster (their default ``upstreaminfo`` format, read through
the Kubernetes API with the service-log reader)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from sap_llm_release.service_logs.base import LogSource, LogsUnavailable

LOCAL_LINE = re.compile(r'^(?P<msec>\d+(?:\.\d+)?) (?P<upstream>.+) (?P<status>\d{3}) \S+ "(?P<request>.*)"$')
# ingress-nginx's upstreaminfo: ... [$time_local] "$request" $status ... [$proxy_upstream_name]
# [$proxy_alternative_upstream_name] $upstream_addr ...
UPSTREAMINFO_LINE = re.compile(r'"(?P<request>[^"]*)" (?P<status>\d{3}) .*?\[(?P<upstream_name>[^\]]*)\] '
                               r'\[[^\]]*\] (?P<upstream>[^ ,]+(?:, [^ ,]+)*)')
SHOWN_LOST = 5
LOST_STATUSES = frozenset({499, 502, 503, 504})


@dataclass(frozen=True)
class RoutedRequest:
    at: datetime
    status: int
    upstream: str
    request: str

    @property
    def lost(self) -> bool:
        return self.status in LOST_STATUSES

    def describe(self) -> str:
        return f"{self.at:%H:%M:%S.%f}"[:-3] + f" {self.status} {self.request} (upstream {self.upstream})"


class AccessLog(Protocol):
    def describe(self) -> str:
        """Where the log is read."""

    def requests(self, start: datetime, end: datetime) -> list[RoutedRequest]:
        """The requests the router logged within ``[start, end)``, oldest first; raises
        :class:`~sap_llm_release.service_logs.base.LogsUnavailable` when the log cannot be read."""


class NginxAccessLog:
    """The local stack router's access log (``routed`` format, stamped in epoch seconds)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"nginx access log {self.path}"

    def requests(self, start: datetime, end: datetime) -> list[RoutedRequest]:
        try:
            text = self.path.read_text(errors="replace")
        except OSError as exc:
            raise LogsUnavailable(f"{self.describe()} cannot be read: {exc}") from None
        found = []
        for line in text.splitlines():
            parsed = LOCAL_LINE.match(line)
            if parsed is None:
                continue
            at = datetime.fromtimestamp(float(parsed["msec"]), timezone.utc)
            if start <= at < end:
                found.append(RoutedRequest(at, int(parsed["status"]), parsed["upstream"], parsed["request"]))
        return found


class IngressNginxLogs:
    """The access logs of ingress-nginx's controller pods (``upstreaminfo`` format) through ``pods`` (a
    :class:`~sap_llm_release.service_logs.kubernetes_pods.KubernetesPodLogs` of the controller), the lines whose
    upstream is one of ``upstreams`` (``<namespace>-<service>-<port>``, the service's own)."""

    def __init__(self, pods: LogSource, upstreams: tuple[str, ...]) -> None:
        self.pods = pods
        self.upstreams = upstreams

    def describe(self) -> str:
        return f"ingress-nginx access logs of {self.pods.describe()} (upstreams {', '.join(self.upstreams)})"

    def requests(self, start: datetime, end: datetime) -> list[RoutedRequest]:
        found = []
        for lines in self.pods.lines(start, end).values():
            for at, line in lines:
                parsed = UPSTREAMINFO_LINE.search(line)
                if parsed and parsed["upstream_name"] in self.upstreams:
                    found.append(RoutedRequest(at, int(parsed["status"]), parsed["upstream"], parsed["request"]))
        return sorted(found, key=lambda request: request.at)


@dataclass(frozen=True)
class SwitchLoss:
    """The requests the router logged while traffic switched, and those it lost."""

    source: str
    requests: int
    lost: tuple[RoutedRequest, ...]

    def within(self, max_lost: int) -> bool:
        """No more than ``max_lost`` lost, among requests that were counted: a switch nobody sent a request
        through proves nothing."""
        return self.requests > 0 and len(self.lost) <= max_lost

    def describe(self) -> str:
        if not self.requests:
            return (f"no request through the router while traffic switched ({self.source}): nothing shows that "
                    "none was lost")
        if not self.lost:
            return f"{self.requests} requests through the router while traffic switched, none lost ({self.source})"
        shown = "; ".join(request.describe() for request in self.lost[:SHOWN_LOST])
        more = f"; and {len(self.lost) - SHOWN_LOST} more" if len(self.lost) > SHOWN_LOST else ""
        return (f"{len(self.lost)} of {self.requests} requests through the router lost while traffic switched "
                f"({self.source}): {shown}{more}")


def count_lost(log: AccessLog, start: datetime, end: datetime) -> SwitchLoss:
    """What the router answered within ``[start, end)``: how many requests, and which it lost."""
    requests = log.requests(start, end)
    return SwitchLoss(log.describe(), len(requests), tuple(request for request in requests if request.lost))
