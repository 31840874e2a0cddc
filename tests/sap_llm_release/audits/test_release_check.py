"""The monthly audit's TLS checks, run as the release's tls_endpoint check kind against a real TLS server: a
certificate due for renewal is a warning, one past the release gate's floor critical, a protocol floor met ok, and a
target that cannot be reached no data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sap_llm_release.audits.kinds import AuditContext
from sap_llm_release.audits.model import Severity
from sap_llm_release.audits.runner import judge
from sap_llm_release.checks.base import CheckContext
from sap_llm_release.spec import load_spec
from tests.sap_llm_release.checks.test_tls import Endpoints, TlsServer
from tests.support.runs import SPEC_FILE

MONTHLY = load_spec(SPEC_FILE).audits.monthly
END = datetime(2026, 12, 1, 8, tzinfo=timezone.utc)


@pytest.fixture
def tls13(tmp_path):
    server = TlsServer(tmp_path)  # its certificate is valid for one day
    yield server
    server.close()


def audit_context(checks: CheckContext) -> AuditContext:
    return AuditContext("sap-llm", END - timedelta(days=30), END, timedelta(hours=1), checks=checks)


def on(server: TlsServer) -> AuditContext:
    return audit_context(CheckContext(service="sap-llm", endpoints=Endpoints(f"https://127.0.0.1:{server.port}"),
                                      ca_file=server.ca_file))


@pytest.mark.parametrize("check, severity", [
    ("tls_certificate_renewal", Severity.WARNING),  # a day left: renewal was due
    ("tls_certificate_expiry", Severity.CRITICAL),  # under the release gate's 14 days
    ("tls_protocol_floor", Severity.OK),
    ("tls_legacy_refused", Severity.OK),
])
def test_the_public_endpoints_tls_judged_monthly(tls13, check, severity):
    finding = judge(MONTHLY.check(check), on(tls13))
    assert finding.severity is severity, finding.detail
    assert finding.kind == "release_check" and finding.measured is not None


def test_a_target_that_cannot_be_reached_is_no_data():
    checks = CheckContext(service="sap-llm", unavailable_reason="the local target cannot be reached: no stack")
    finding = judge(MONTHLY.check("tls_protocol_floor"), audit_context(checks))
    assert (finding.severity, finding.measured) == (Severity.CRITICAL, None)
    assert finding.detail == "no data: the local target cannot be reached: no stack"
