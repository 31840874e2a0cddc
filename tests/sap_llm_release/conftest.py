"""Fixtures shared by the tests of the domain core package ``sap_llm_release``.

* ``spec`` / ``spec_data``: the real release spec, validated and as raw YAML data (a fresh deep copy per test).
* ``free_port``: a loopback port nothing listens on.
* ``serve_app``: run an ASGI app (the reference server) with uvicorn in a background thread on a free port.
* ``reference_server``: the reference SAP_LLM server (fault injection on), one per test.
* ``canned_prometheus``: a tiny ``http.server`` answering the Prometheus HTTP API with scripted JSON.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import uvicorn
import yaml

from sap_llm_release.spec import load_spec
from tests.support.server import load_server_module

ROOT = Path(__file__).resolve().parents[2]

SPEC_PATH = ROOT / "specs" / "sap_llm.yaml"


def find_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def spec():
    return load_spec(SPEC_PATH)


@pytest.fixture(scope="session")
def _spec_yaml():
    return yaml.safe_load(SPEC_PATH.read_text())


@pytest.fixture
def spec_data(_spec_yaml):
    """The real spec as parsed YAML, safe to mutate."""
    return copy.deepcopy(_spec_yaml)


@pytest.fixture
def free_port() -> int:
    return find_free_port()


@contextlib.contextmanager
def _uvicorn_thread(app, port: int):
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def serve_app():
    """``serve_app(app) -> base URL``; every server started is stopped at the end of the test."""
    with contextlib.ExitStack() as stack:

        def serve(app) -> str:
            return stack.enter_context(_uvicorn_thread(app, find_free_port()))

        yield serve


@pytest.fixture(scope="session")
def server_module():
    return load_server_module()


@pytest.fixture
def reference_server(serve_app, server_module) -> str:
    """Base URL of a fresh reference server (colour green, fault injection enabled)."""
    return serve_app(server_module.create_app("green", "2.0.0", enable_fault_injection=True))


class CannedPrometheus:
    """Answers ``/api/v1/query`` from ``queries`` (PromQL -> (status, body)), ``/api/v1/status/flags`` and
    ``/api/v1/rules``, ``/api/v1/targets``, ``/api/v1/alertmanagers``, ``/-/ready``, and an Alertmanager's
    ``/api/v2/status``."""

    def __init__(self, cert_dir: Path | None = None, authorization: str | None = None) -> None:
        """``cert_dir``: serve HTTPS with a certificate of its own CA (``ca_file``); ``authorization``: answer 401
        to any request without exactly this ``Authorization`` header."""
        self.queries: dict[str, tuple[int, object]] = {}
        self.flags: tuple[int, object] = (200, {"status": "success", "data": {}})
        self.rules: tuple[int, object] = (200, {"status": "success", "data": {"groups": []}})
        self.targets: tuple[int, object] = (200, {"status": "success", "data": {"activeTargets": []}})
        self.alertmanagers: tuple[int, object] = (200, {"status": "success", "data": {"activeAlertmanagers": []}})
        self.alertmanager_status: tuple[int, object] = (404, {})
        self.ready: tuple[int, object] = (200, "Prometheus Server is Ready.\n")
        self.seen: list[str] = []
        self.authorizations: list[str | None] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                canned.authorizations.append(self.headers.get("Authorization"))
                if authorization and self.headers.get("Authorization") != authorization:
                    status, body = 401, "Unauthorized\n"
                else:
                    status, body = canned.answer(urlparse(self.path))
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.ca_file = None
        if cert_dir is not None:
            import ssl

            from sap_llm_release.rehearsal.standins import _self_signed

            self.ca_file = _self_signed(cert_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca_file, cert_dir / "key.pem")
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if cert_dir is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def answer(self, url) -> tuple[int, object]:
        """The canned answer for one GET (this server plays an Alertmanager's ``/api/v2/status`` too)."""
        if url.path == "/api/v1/query":
            promql = parse_qs(url.query).get("query", [""])[0]
            self.seen.append(promql)
            return self.queries.get(promql, (400, {"status": "error", "error": "unknown"}))
        endpoints = {"/api/v1/status/flags": self.flags, "/api/v1/rules": self.rules, "/api/v1/targets": self.targets,
                     "/api/v1/alertmanagers": self.alertmanagers, "/-/ready": self.ready,
                     "/api/v2/status": self.alertmanager_status}
        return endpoints.get(url.path, (404, {"status": "error", "error": "not found"}))

    def vector(self, promql: str, *values: str) -> None:
        result = [{"metric": {"series": str(i)}, "value": [1700000000.0, v]} for i, v in enumerate(values)]
        self.queries[promql] = (200, {"status": "success", "data": {"resultType": "vector", "result": result}})

    def scalar(self, promql: str, value: str) -> None:
        body = {"status": "success", "data": {"resultType": "scalar", "result": [1700000000.0, value]}}
        self.queries[promql] = (200, body)

    def set_flags(self, flags: dict[str, str]) -> None:
        self.flags = (200, {"status": "success", "data": flags})

    def set_rules(self, *rules: dict) -> None:
        self.rules = (200, {"status": "success", "data": {"groups": [{"name": "sap-llm-slo", "rules": list(rules)}]}})

    def set_targets(self, *targets: dict) -> None:
        self.targets = (200, {"status": "success", "data": {"activeTargets": list(targets)}})

    def set_alertmanager_config(self, config: str) -> None:
        """Prometheus sends alerts to this same server, whose Alertmanager runs ``config`` (YAML)."""
        self.alertmanagers = (200, {"status": "success", "data": {"activeAlertmanagers": [
            {"url": f"{self.url}/api/v2/alerts"}]}})
        self.alertmanager_status = (200, {"config": {"original": config}, "cluster": {"status": "disabled"}})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def canned_prometheus():
    server = CannedPrometheus()
    try:
        yield server
    finally:
        server.close()
