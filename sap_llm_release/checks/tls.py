"""TLS of an endpoint, asked of the endpoint itself with Python's ``ssl``: the negotiated protocol and cipher, the
lowest protocol it still completes a handshake with (TLS 1.0, 1.1 and 1.2 each offered alone), whether TLS 1.0 / 1.1
handshakes are refused, and how many days the verified certificate has left. An endpoint that serves
plain HTTP, cannot be reached, or presents a certificate that does not verify for its host fails."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold

PROTOCOL_NUMBERS = {"TLSv1": 1.0, "TLSv1.1": 1.1, "TLSv1.2": 1.2, "TLSv1.3": 1.3}
LEGACY = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1}
BELOW_TLS13 = {**LEGACY, "TLSv1.2": ssl.TLSVersion.TLSv1_2}


class TlsEndpointParams(Params):
    endpoint: Literal["blue", "green", "router", "public"]
    metric: Literal["protocol", "lowest_protocol", "legacy_accepted", "certificate_days_left"] = Field(
        description="protocol: negotiated version as a number (1.3); lowest_protocol: the lowest version the "
                    "endpoint completes a handshake with (1.3: TLS 1.3 only); legacy_accepted: how many of TLS 1.0 "
                    "/ 1.1 the endpoint accepted; certificate_days_left: days until the verified certificate expires")
    ca_file: str | None = Field(default=None, description="CA bundle for a private CA; default: the target's CA, "
                                                           "else the system's trust store")
    timeout_s: float = Field(default=5.0, gt=0)


class TlsError(RuntimeError):
    """The handshake the check needs could not be made."""


def _handshake(host: str, port: int, context: ssl.SSLContext, timeout_s: float) -> ssl.SSLSocket:
    sock = socket.create_connection((host, port), timeout=timeout_s)
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def verified_session(host: str, port: int, ca_file: str | None, timeout_s: float) -> tuple[str, str, float]:
    """``(protocol, cipher, days_left)`` of a handshake that verifies the chain and the host name."""
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with _handshake(host, port, context, timeout_s) as tls:
            not_after = tls.getpeercert()["notAfter"]
            days_left = (ssl.cert_time_to_seconds(not_after) - time.time()) / 86400
            return tls.version() or "", tls.cipher()[0], days_left
    except (OSError, ssl.SSLError, KeyError) as exc:
        raise TlsError(f"TLS handshake with {host}:{port} failed: {exc}") from None


def accepted_protocols(host: str, port: int, timeout_s: float, offered: dict[str, ssl.TLSVersion] = LEGACY
                       ) -> list[str]:
    """Which of the ``offered`` protocols (each offered alone) the endpoint completes a handshake with. A client
    that cannot even offer one is an error: refusal was not observed."""
    accepted = []
    for name, version in offered.items():
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        try:
            context.minimum_version = context.maximum_version = version
        except (ValueError, ssl.SSLError) as exc:
            raise TlsError(f"this client cannot offer {name}: {exc}") from None
        try:
            with _handshake(host, port, context, timeout_s):
                accepted.append(name)
        except ssl.SSLError as exc:
            if "NO_PROTOCOLS_AVAILABLE" in str(exc) or "no protocols available" in str(exc):
                raise TlsError(f"this client cannot offer {name}: {exc}") from None
        except OSError as exc:
            raise TlsError(f"{name} handshake with {host}:{port} could not be attempted: {exc}") from None
    return accepted


class TlsEndpoint(Check):
    Params = TlsEndpointParams

    def run(self, params: TlsEndpointParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        url = context.require("endpoints").url(params.endpoint)
        parts = urlsplit(url)
        if parts.scheme != "https":
            return Evidence.unmeasured(threshold, f"{params.endpoint} {url} does not serve TLS", url)
        host, port = parts.hostname or "", parts.port or 443
        try:
            protocol, cipher, days_left = verified_session(host, port, params.ca_file or context.ca_file,
                                                           params.timeout_s)
            if params.metric == "legacy_accepted":
                accepted = accepted_protocols(host, port, params.timeout_s)
                detail = f"{host}:{port} accepted {', '.join(accepted) or 'neither TLS 1.0 nor TLS 1.1'}"
                return Evidence.compare(len(accepted), threshold, detail, evidence_uri=url)
            if params.metric == "lowest_protocol":
                accepted = accepted_protocols(host, port, params.timeout_s, BELOW_TLS13)
                lowest = PROTOCOL_NUMBERS[accepted[0]] if accepted else PROTOCOL_NUMBERS.get(protocol)
                detail = (f"{host}:{port} also accepted {', '.join(accepted)}" if accepted else
                          f"{host}:{port} refused TLS 1.0, 1.1 and 1.2") + f"; negotiated {protocol} with {cipher}"
                return Evidence.compare(lowest, threshold, detail, evidence_uri=url)
        except TlsError as exc:
            return Evidence.unmeasured(threshold, str(exc), url)
        session = f"{host}:{port} negotiated {protocol} with {cipher}; certificate valid {days_left:.1f} more days"
        measured = PROTOCOL_NUMBERS.get(protocol) if params.metric == "protocol" else round(days_left, 2)
        return Evidence.compare(measured, threshold, session, evidence_uri=url)
