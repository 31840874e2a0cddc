"""Redis asked with its own client: a real redis-server answers PONG; a port without one, a server that is not Redis,
and a target without Redis fail. MongoDB and a Gremlin server (Cosmos DB's Gremlin API) are asked with their own
clients too, of local stand-ins speaking their wire protocols: they pass, refuse, answer wrongly, are down or stay
silent."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import threading
import time
from urllib.parse import quote

import pytest

from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.services import ServicePing, ServicePingParams
from sap_llm_release.evidence import Threshold, Verdict
from tests.support.gremlin_standin import GremlinStandIn
from tests.support.mongo_standin import MongoStandIn

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


def ask(service: str, url: str | None, timeout_s: float = 1):
    context = CheckContext(service="sap-llm", services={service: url} if url else {})
    return ServicePing().run(ServicePingParams(service=service, timeout_s=timeout_s), ANSWERS, context)


def test_mongodb_answers_ping_through_pymongo_and_the_password_is_not_shown():
    with MongoStandIn(user="kb", password="s3cret") as mongo:
        evidence = ask("mongodb", mongo.url("kb:s3cret@", "?authMechanism=PLAIN"))
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1), evidence.detail
    shown = f"mongodb://kb:***@127.0.0.1:{mongo.port}/?authMechanism=PLAIN"
    assert evidence.detail.startswith(f"ping {shown} -> {{'ok': 1.0}} in ") and evidence.evidence_uri == shown
    assert "s3cret" not in evidence.detail + evidence.evidence_uri
    received = [next(iter(command)) for command in mongo.commands]
    assert received[0].lower() in ("ismaster", "hello") and "saslStart" in received and "ping" in received


@pytest.mark.parametrize(
    ("mode", "credentials", "reason"),
    [
        ("not_ok", "", "node is recovering"),
        ("ok", "kb:wrong@", "Authentication failed."),
    ],
)
def test_mongodb_refusing_the_ping_fails_with_its_reason(mode, credentials, reason):
    with MongoStandIn(mode, user="kb", password="s3cret" if credentials else "") as mongo:
        evidence = ask("mongodb", mongo.url(credentials, "?authMechanism=PLAIN" if credentials else ""))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None) and reason in evidence.detail
    assert "wrong" not in evidence.detail + evidence.evidence_uri


def test_mongodb_with_nothing_listening_fails_and_hides_the_password_of_every_host(free_port):
    url = f"mongodb://kb:s3cret@127.0.0.1:{free_port},localhost:{free_port}/kb?replicaSet=rs0"
    evidence = ask("mongodb", url, timeout_s=0.5)
    shown = f"mongodb://kb:***@127.0.0.1:{free_port},localhost:{free_port}/kb?replicaSet=rs0"
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert evidence.detail.startswith(f"ping {shown} failed: ") and evidence.evidence_uri == shown
    assert "s3cret" not in evidence.detail + evidence.evidence_uri


def test_a_mongodb_that_never_answers_fails_within_the_timeout():
    with MongoStandIn("silent") as mongo:
        started = time.monotonic()
        evidence = ask("mongodb", mongo.url(), timeout_s=0.5)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None) and "Timeout" in evidence.detail
    assert time.monotonic() - started < 3 and mongo.commands


COSMOS_USER, COSMOS_KEY = "/dbs/kb/colls/pmg", "k3y+with/base64=="


def cosmos_url(gremlin: GremlinStandIn, key: str = COSMOS_KEY) -> str:
    return gremlin.url(f"{quote(COSMOS_USER, safe='')}:{quote(key, safe='')}@")


def test_a_gremlin_server_answers_g_inject_1_after_sasl_with_cosmos_credentials():
    with GremlinStandIn(user=COSMOS_USER, password=COSMOS_KEY) as gremlin:
        evidence = ask("cosmos_gremlin", cosmos_url(gremlin))
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1), evidence.detail
    shown = f"ws://%2Fdbs%2Fkb%2Fcolls%2Fpmg:***@127.0.0.1:{gremlin.port}/gremlin"
    assert evidence.detail.startswith(f"g.inject(1) on {shown} -> [1] in ") and evidence.evidence_uri == shown
    assert quote(COSMOS_KEY, safe="") not in evidence.detail + evidence.evidence_uri
    evaluated, signed_in = gremlin.requests
    assert (evaluated["op"], evaluated["args"]["gremlin"], signed_in["op"]) == ("eval", "g.inject(1)", "authentication")
    assert base64.b64decode(signed_in["args"]["sasl"]) == f"\0{COSMOS_USER}\0{COSMOS_KEY}".encode()


@pytest.mark.parametrize(
    ("mode", "key", "measured", "reason"),
    [
        ("wrong", COSMOS_KEY, 0, "-> [2] in "),
        ("error", COSMOS_KEY, None, "597: ScriptEvaluationError"),
        ("ok", "wrong-key", None, "401: Username and/or password are incorrect"),
    ],
)
def test_a_gremlin_server_answering_wrongly_or_refusing_fails_with_its_reason(mode, key, measured, reason):
    with GremlinStandIn(mode, user=COSMOS_USER, password=COSMOS_KEY) as gremlin:
        evidence = ask("cosmos_gremlin", cosmos_url(gremlin, key))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, measured) and reason in evidence.detail
    assert key not in evidence.detail + evidence.evidence_uri


def test_a_gremlin_server_with_nothing_listening_fails(free_port):
    evidence = ask("cosmos_gremlin", f"wss://user:s3cret@127.0.0.1:{free_port}/")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None) and "failed" in evidence.detail
    assert "s3cret" not in evidence.detail + evidence.evidence_uri


@pytest.mark.parametrize("silent_at", ["request", "handshake"])
def test_a_gremlin_server_that_never_answers_fails_within_the_timeout(silent_at):
    with GremlinStandIn("silent") as gremlin, socket.create_server(("127.0.0.1", 0)) as listening_only:
        url = gremlin.url() if silent_at == "request" else f"ws://127.0.0.1:{listening_only.getsockname()[1]}/"
        started = time.monotonic()
        evidence = ask("cosmos_gremlin", url, timeout_s=0.5)
        elapsed_s = time.monotonic() - started
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None) and "TimeoutError" in evidence.detail
    assert elapsed_s < 3


@pytest.mark.parametrize("service", ["mongodb", "cosmos_gremlin"])
def test_an_unconfigured_database_cannot_be_checked(service):
    with pytest.raises(CheckUnavailable, match=f"no {service} is configured for this target"):
        ask(service, None)
