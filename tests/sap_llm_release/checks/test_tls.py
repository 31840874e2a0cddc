"""TLS asked of a real TLS server on loopback (certificate made by the test): protocol, legacy refusal, expiry,
and every way of not seeing fails."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from sap_llm_release.checks.base import CheckContext
from sap_llm_release.checks.tls import TlsEndpoint, TlsEndpointParams
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.rehearsal.standins import _self_signed


class TlsServer:
    """Completes handshakes (and nothing else) with the given protocol range."""

    def __init__(self, cert_dir, minimum=ssl.TLSVersion.TLSv1_3, maximum=ssl.TLSVersion.MAXIMUM_SUPPORTED) -> None:
        self.ca_file = _self_signed(cert_dir)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.ca_file, cert_dir / "key.pem")
        self.context.set_ciphers("DEFAULT:@SECLEVEL=0")
        self.context.minimum_version, self.context.maximum_version = minimum, maximum
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.sock.close()


class Endpoints:
    def __init__(self, url: str) -> None:
        self._url = url

    def url(self, endpoint: str) -> str:
        return self._url


def check(url: str, metric: str, threshold: Threshold, ca_file: str | None = None):
    context = CheckContext(service="sap-llm", endpoints=Endpoints(url))
    params = TlsEndpointParams(endpoint="router", metric=metric, ca_file=ca_file, timeout_s=3)
    return TlsEndpoint().run(params, threshold, context)


TLS13 = Threshold(op=">=", value=1.3)
NO_LEGACY = Threshold(op="==", value=0)
FOURTEEN_DAYS = Threshold(op=">=", value=14)


@pytest.fixture
def tls13(tmp_path):
    server = TlsServer(tmp_path)
    yield server
    server.close()


def test_tls13_is_negotiated_and_reported_with_its_cipher(tls13):
    evidence = check(f"https://127.0.0.1:{tls13.port}", "protocol", TLS13, tls13.ca_file)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1.3)
    assert f"127.0.0.1:{tls13.port} negotiated TLSv1.3 with TLS_" in evidence.detail


def test_legacy_handshakes_are_refused(tls13):
    evidence = check(f"https://127.0.0.1:{tls13.port}", "legacy_accepted", NO_LEGACY, tls13.ca_file)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0), evidence.detail
    assert evidence.detail.endswith("accepted neither TLS 1.0 nor TLS 1.1")


def test_a_certificate_expiring_within_the_margin_fails(tls13):
    evidence = check(f"https://127.0.0.1:{tls13.port}", "certificate_days_left", FOURTEEN_DAYS, tls13.ca_file)
    assert evidence.verdict is Verdict.FAILED and 0.9 < evidence.measured <= 1.0  # the test certificate: one day


def test_tls12_only_fails_the_tls13_gate(tmp_path):
    server = TlsServer(tmp_path, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    try:
        evidence = check(f"https://127.0.0.1:{server.port}", "protocol", TLS13, server.ca_file)
    finally:
        server.close()
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1.2)


def test_tls13_only_is_the_lowest_protocol_accepted(tls13):
    evidence = check(f"https://127.0.0.1:{tls13.port}", "lowest_protocol", TLS13, tls13.ca_file)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1.3), evidence.detail
    assert evidence.detail.startswith(f"127.0.0.1:{tls13.port} refused TLS 1.0, 1.1 and 1.2; negotiated TLSv1.3")


def test_a_server_that_also_accepts_tls12_fails_the_tls13_gate(tmp_path):
    """It negotiates TLS 1.3 with a modern client, so only offering TLS 1.2 alone shows it is not enforced."""
    server = TlsServer(tmp_path, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    try:
        negotiated = check(f"https://127.0.0.1:{server.port}", "protocol", TLS13, server.ca_file)
        evidence = check(f"https://127.0.0.1:{server.port}", "lowest_protocol", TLS13, server.ca_file)
    finally:
        server.close()
    assert negotiated.measured == 1.3
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1.2), evidence.detail
    assert "also accepted TLSv1.2; negotiated TLSv1.3" in evidence.detail


def test_a_certificate_that_does_not_verify_fails(tls13):
    evidence = check(f"https://127.0.0.1:{tls13.port}", "protocol", TLS13)  # not in the system's trust store
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert "CERTIFICATE_VERIFY_FAILED" in evidence.detail


def test_plain_http_and_unreachable_endpoints_fail(free_port):
    plain = check("http://127.0.0.1:8080", "protocol", TLS13)
    assert plain.verdict is Verdict.FAILED and plain.detail == "router http://127.0.0.1:8080 does not serve TLS"
    down = check(f"https://127.0.0.1:{free_port}", "protocol", TLS13)
    assert (down.verdict, down.measured) == (Verdict.FAILED, None) and "handshake" in down.detail


def _client_offers_tls10() -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1
    except (ValueError, ssl.SSLError):
        return False
    return True


def test_an_endpoint_accepting_legacy_protocols_fails(tmp_path):
    server = TlsServer(tmp_path, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_3)
    try:
        legacy = check(f"https://127.0.0.1:{server.port}", "legacy_accepted", NO_LEGACY, server.ca_file)
        lowest = check(f"https://127.0.0.1:{server.port}", "lowest_protocol", TLS13, server.ca_file)
    finally:
        server.close()
    assert legacy.verdict is Verdict.FAILED and lowest.verdict is Verdict.FAILED
    if _client_offers_tls10():  # this Python's OpenSSL can still offer TLS 1.0 at security level 0
        assert (legacy.measured, lowest.measured) == (2, 1.0), (legacy.detail, lowest.detail)
    else:  # refusal cannot be observed, so it is not assumed
        assert legacy.measured is None and "cannot offer TLSv1" in legacy.detail


@pytest.mark.stack
def test_the_stacks_public_endpoint_serves_tls13_only_with_a_certificate_of_its_own_ca(local_stack):
    target = local_stack.target
    context = CheckContext(service="sap-llm", endpoints=target, ca_file=target.ca_file)

    def measure(metric: str, threshold: Threshold):
        return TlsEndpoint().run(TlsEndpointParams(endpoint="public", metric=metric), threshold, context)

    assert measure("protocol", TLS13).measured == 1.3
    assert measure("lowest_protocol", TLS13).measured == 1.3
    assert measure("legacy_accepted", NO_LEGACY).measured == 0
    assert measure("certificate_days_left", FOURTEEN_DAYS).verdict is Verdict.PASSED
    assert target.url("public").startswith("https://") and target.url("router").startswith("http://")
