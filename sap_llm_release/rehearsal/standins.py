"""Local HTTP stand-ins for what cannot run here: Slack's Web API and PagerDuty's Events API v2 (HTTPS with a
self-signed certificate, as the pagerduty client refuses plain http). Each records the requests it received and can
be told to fail. The tests wire them in as the release's Slack and PagerDuty connections; so does `make demo`, which
prints what they received."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs


class _StandIn:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_next = 0  # answer this many requests with HTTP 500 (or an API error)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]

    def _handler(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path, _, query = self.path.partition("?")
                self._respond(path, {key: values[0] for key, values in parse_qs(query).items()})

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    body = json.loads(raw or "{}")
                else:
                    body = {key: values[0] for key, values in parse_qs(raw).items()}
                self._respond(self.path, body)

            def _respond(self, path: str, body: dict) -> None:
                stand_in.requests.append({"path": path, "body": body,
                                          "authorization": self.headers.get("Authorization")})
                status, answer = stand_in.answer(path, body)
                encoded = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

        return Handler

    def answer(self, path: str, body: dict) -> tuple[int, dict]:
        raise NotImplementedError

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SlackWebApi(_StandIn):
    """``chat.postMessage``, ``chat.update`` and ``usergroups.users.list`` (``WebClient(base_url=stand_in.url)``),
    and the ``response_url`` of interactions (``stand_in.response_url``)."""

    def __init__(self) -> None:
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}/api/"
        self.response_url = f"http://127.0.0.1:{self.port}/actions/T0/1/answer"
        self.user_groups: dict[str, list[str]] = {}
        self._ts = 0

    def answer(self, path: str, body: dict) -> tuple[int, dict]:
        if self.fail_next:
            self.fail_next -= 1
            return 500, {"ok": False, "error": "internal_error"}
        if path.startswith("/actions/"):
            return 200, {"ok": True}
        method = path.rsplit("/", 1)[-1]
        if method == "usergroups.users.list":
            if body.get("usergroup") not in self.user_groups:
                return 200, {"ok": False, "error": "no_such_subteam"}
            return 200, {"ok": True, "users": self.user_groups[body["usergroup"]]}
        if method == "chat.postMessage":
            self._ts += 1
            return 200, {"ok": True, "channel": body.get("channel"), "ts": f"1700000000.{self._ts:06d}"}
        if method == "chat.update":
            return 200, {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}
        return 200, {"ok": False, "error": "unknown_method"}

    def calls(self, method: str) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"].endswith(method)]


class PagerDutyEvents(_StandIn):
    """``POST /v2/enqueue`` over HTTPS; ``EventsApiV2Client(key, base_url=stand_in.url, verify=stand_in.ca_file)``."""

    def __init__(self, cert_dir: Path) -> None:
        super().__init__()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca_file = _self_signed(cert_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, cert_dir / "key.pem")
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    def answer(self, path: str, body: dict) -> tuple[int, dict]:
        if self.fail_next:
            self.fail_next -= 1
            return 500, {"status": "error"}
        if path != "/v2/enqueue":
            return 404, {"status": "not found"}
        return 202, {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}

    def events(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"] == "/v2/enqueue"]


@contextlib.contextmanager
def slack_and_pagerduty(cert_dir: Path) -> Iterator[tuple[SlackWebApi, PagerDutyEvents]]:
    """Both stand-ins started (PagerDuty's certificate in ``cert_dir``), stopped on exit."""
    slack, pagerduty = SlackWebApi(), PagerDutyEvents(cert_dir)
    slack.start()
    pagerduty.start()
    try:
        yield slack, pagerduty
    finally:
        slack.stop()
        pagerduty.stop()


@contextlib.contextmanager
def alertmanager_to(slack: SlackWebApi, pagerduty: PagerDutyEvents, directory: Path, port: int) -> Iterator[str]:
    """The stack's Alertmanager (its own routes) on ``port``, its receivers posting to the stand-ins; yields
    ``host:port`` and stops it on exit."""
    from sap_llm_release.rehearsal import local_stack
    from sap_llm_release.rehearsal.processes import stop_group

    local_stack.start_alertmanager(directory, port, pagerduty_url=f"{pagerduty.url}/v2/enqueue",
                                   slack_url=f"{slack.url}chat.postMessage", env={"SSL_CERT_FILE": pagerduty.ca_file})
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_group(int((directory / "alertmanager.pid").read_text()))


def _self_signed(cert_dir: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_dir.mkdir(parents=True, exist_ok=True)
    (cert_dir / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    (cert_dir / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(cert_dir / "cert.pem")
