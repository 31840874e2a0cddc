"""The router's access logs read for a rollback's lost requests: the local stack's nginx format and ingress-nginx's
upstreaminfo lines (through a log source of the interface's shape), each request within the period counted, and
only what the router could not deliver (502, 503, 504) or the client gave up on (499) counted lost."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sap_llm_release.routers.access_logs import IngressNginxLogs, NginxAccessLog, count_lost
from sap_llm_release.service_logs.base import LogsUnavailable

START = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
END = START + timedelta(seconds=10)


def stamp(offset_s: float) -> str:
    return f"{(START + timedelta(seconds=offset_s)).timestamp():.3f}"


def test_the_local_routers_log_counts_undelivered_requests_as_lost_within_the_period(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("\n".join([
        f'{stamp(-1)} 127.0.0.1:8001 502 0.001 "POST /v1/documents HTTP/1.1"',  # before the switch
        f'{stamp(1)} 127.0.0.1:8001 200 0.010 "POST /v1/documents HTTP/1.1"',
        f'{stamp(2)} 127.0.0.1:8001, 127.0.0.1:8000 200 0.020 "POST /v1/documents HTTP/1.1"',  # retried on blue
        f'{stamp(3)} 127.0.0.1:8001 502 0.003 "POST /v1/documents HTTP/1.1"',
        f'{stamp(4)} - 499 5.000 "POST /v1/documents HTTP/1.1"',
        f'{stamp(5)} 127.0.0.1:8000 404 0.001 "GET /nothing HTTP/1.1"',
        f'{stamp(6)} 127.0.0.1:8001 500 0.001 "POST /v1/documents HTTP/1.1"',  # the service's own answer
        "a line in no format this log writes",
        f'{stamp(11)} 127.0.0.1:8000 500 0.001 "POST /v1/documents HTTP/1.1"',  # after it
    ]) + "\n")
    loss = count_lost(NginxAccessLog(log), START, END)
    assert loss.requests == 6 and [request.status for request in loss.lost] == [502, 499]
    assert loss.lost[0].upstream == "127.0.0.1:8001" and loss.lost[0].request == "POST /v1/documents HTTP/1.1"
    assert not loss.within(1) and loss.within(2)
    assert loss.describe().startswith("2 of 6 requests through the router lost while traffic switched (nginx")
    assert "10:00:03.000 502 POST /v1/documents HTTP/1.1 (upstream 127.0.0.1:8001)" in loss.describe()


def test_a_switch_no_request_went_through_proves_nothing(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(f'{stamp(-5)} 127.0.0.1:8000 200 0.010 "POST /v1/documents HTTP/1.1"\n')
    loss = count_lost(NginxAccessLog(log), START, END)
    assert (loss.requests, loss.lost, loss.within(0)) == (0, (), False)
    assert "nothing shows that none was lost" in loss.describe()


def test_a_missing_log_cannot_be_read(tmp_path):
    with pytest.raises(LogsUnavailable, match="cannot be read"):
        count_lost(NginxAccessLog(tmp_path / "absent.log"), START, END)


class ControllerPods:
    """A log source of the interface's shape: each pod's stamped lines."""

    def __init__(self, lines: dict[str, list[tuple[datetime, str]]]) -> None:
        self.pods = lines

    def describe(self) -> str:
        return "pods ingress-nginx/app.kubernetes.io/name=ingress-nginx"

    def lines(self, start, end):
        return {pod: [(at, line) for at, line in lines if start <= at < end] for pod, lines in self.pods.items()}


def upstreaminfo(status: int, upstream_name: str, upstream: str = "10.0.0.7:8000") -> str:
    return (f'10.1.2.3 - - [01/Dec/2026:10:00:01 +0000] "POST /v1/documents HTTP/1.1" {status} 120 "-" "locust/2.0" '
            f"2048 0.012 [{upstream_name}] [] {upstream} 120 0.012 {status} 4f2e9a")


def test_ingress_nginx_lines_of_the_services_upstreams_are_counted():
    blue, green = "sap-llm-prod-sap-llm-blue-8000", "sap-llm-prod-sap-llm-green-8000"
    at = START + timedelta(seconds=1)
    pods = ControllerPods({
        "controller-a": [(at, upstreaminfo(200, blue)), (at, upstreaminfo(503, green, "10.0.0.8:8000, 10.0.0.9:8000")),
                         (at, upstreaminfo(500, "other-app-80"))],
        "controller-b": [(at + timedelta(seconds=1), upstreaminfo(200, green)),
                         (START - timedelta(seconds=1), upstreaminfo(502, blue))],
    })
    loss = count_lost(IngressNginxLogs(pods, (blue, green)), START, END)
    assert loss.requests == 3 and [(r.status, r.upstream) for r in loss.lost] == [(503, "10.0.0.8:8000, 10.0.0.9:8000")]
    assert "ingress-nginx access logs of pods ingress-nginx" in loss.source
