"""Redis asked with its own client: a real redis-server answers PONG; a port without one, a server that is not Redis,
and a target without Redis fail."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pytest

from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.services import ServicePing, ServicePingParams
from sap_llm_release.evidence import Threshold, Verdict

ANSWERS = Threshold(op="==", value=1)


def ping(url: str | None):
    context = CheckContext(service="sap-llm", services={"redis": url} if url else {})
    return ServicePing().run(ServicePingParams(service="redis", timeout_s=2), ANSWERS, context)


@pytest.fixture
def redis_server(tmp_path, free_port):
    assert shutil.which("redis-server"), "make setup installs Debian's redis-server"
    process = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(free_port), "--save", "",
                                "--requirepass", "s3cret", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", free_port)) == 0:
                break
        time.sleep(0.1)
    yield free_port
    process.terminate()
    process.wait(timeout=10)


def test_a_real_redis_answers_pong_and_the_password_is_not_shown(redis_server):
    evidence = ping(f"redis://:s3cret@127.0.0.1:{redis_server}/0")
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1)
    assert evidence.detail.startswith(f"PING redis://:***@127.0.0.1:{redis_server}/0 -> True in ")
    assert "s3cret" not in evidence.detail + evidence.evidence_uri


def test_a_wrong_password_fails(redis_server):
    evidence = ping(f"redis://:wrong@127.0.0.1:{redis_server}/0")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None) and "PING" in evidence.detail


def test_nothing_listening_fails(free_port):
    evidence = ping(f"redis://127.0.0.1:{free_port}/0")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None) and "failed" in evidence.detail


def test_a_server_that_is_not_redis_fails(free_port):
    server = socket.create_server(("127.0.0.1", free_port))

    def answer_http() -> None:
        conn, _ = server.accept()
        conn.recv(100)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_http, daemon=True).start()
    try:
        evidence = ping(f"redis://127.0.0.1:{free_port}/0")
    finally:
        server.close()
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)


def test_a_target_without_redis_cannot_check():
    with pytest.raises(CheckUnavailable, match="no redis is configured for this target"):
        ping(None)


@pytest.mark.stack
def test_the_stacks_redis_answers(local_stack):
    evidence = ping(local_stack.target.services["redis"])
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1), evidence.detail


@pytest.mark.parametrize(("service", "path", "body", "ready"), [
    ("loki", "/ready", "ready\n", 1),
    ("loki", "/ready", "Ingester not ready: waiting for 15s after being ready\n", 0),
    ("otel_collector", "/", '{"status":"Server available"}', 1),
    ("jaeger", "/", "", 1),
])
def test_observability_backends_answer_their_readiness_endpoint(serve_app, service, path, body, ready):
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()
    app.get(path)(lambda: PlainTextResponse(body, status_code=200 if ready or service != "loki" else 503))
    url = serve_app(app)
    context = CheckContext(service="sap-llm", services={service: url})
    evidence = ServicePing().run(ServicePingParams(service=service), ANSWERS, context)
    assert evidence.measured == ready and evidence.detail.startswith(f"GET {url}{path} answered ")


def test_an_unconfigured_observability_backend_cannot_be_checked():
    context = CheckContext(service="sap-llm", services={})
    with pytest.raises(CheckUnavailable, match="no loki is configured for this target"):
        ServicePing().run(ServicePingParams(service="loki"), ANSWERS, context)


def test_an_observability_backend_that_is_down_fails(free_port):
    context = CheckContext(service="sap-llm", services={"jaeger": f"http://127.0.0.1:{free_port}"})
    evidence = ServicePing().run(ServicePingParams(service="jaeger", timeout_s=2), ANSWERS, context)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None) and "failed" in evidence.detail
