"""The monthly audit's security checks, run as the release's check kinds: TLS against a real TLS server (a
certificate due for renewal is a warning, one past the release gate's floor critical, a protocol floor met ok),
image digests, secret rotation and RBAC drift against the Kubernetes API stand-in, the scans' age and open findings
from scanner reports; a target that cannot be reached, or a report that is not there, is no data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sap_llm_release.audits.kinds import AuditContext
from sap_llm_release.audits.model import Severity
from sap_llm_release.audits.runner import judge
from sap_llm_release.checks.base import CheckContext
from sap_llm_release.checks.kubernetes import KubernetesAccess
from sap_llm_release.spec import load_spec
from tests.sap_llm_release.checks.test_kubernetes import NAMESPACE, secret
from tests.sap_llm_release.checks.test_kubernetes_posture import DIGEST, committed_rbac, deployment
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


def on_cluster(kube_api) -> AuditContext:
    access = KubernetesAccess(kube_api.api_client(), NAMESPACE, request_timeout_s=2)
    return audit_context(CheckContext(service="sap-llm", kubernetes=access))


def test_the_clusters_posture_judged_monthly(kube_api):
    labels = {"app": "sap-llm", "app.kubernetes.io/managed-by": "sap-llm-release"}
    kube_api.put(deployment("sap-llm-blue", {"server": f"registry.example.com/sap-llm/server@{DIGEST}"},
                            labels=labels))
    for name in ("sap-llm-api-keys", "sap-llm-db-credentials"):
        kube_api.put(secret(name, {"key": "value"}))
    for obj in committed_rbac():
        kube_api.put(obj)
    context = on_cluster(kube_api)
    for check in ("images_pinned_by_digest", "secret_rotation", "rbac_drift"):
        finding = judge(MONTHLY.check(check), context)
        assert (finding.severity, finding.kind) == (Severity.OK, "release_check"), finding.detail
    kube_api.put(deployment("sap-llm-green", {"server": "registry.example.com/sap-llm/server:1.2.0"}, labels=labels))
    assert kube_api.delete("rolebindings", "sap-llm-release", NAMESPACE)
    unpinned, drift = (judge(MONTHLY.check(check), context) for check in ("images_pinned_by_digest", "rbac_drift"))
    assert (unpinned.severity, unpinned.measured) == (Severity.CRITICAL, 1)
    assert (drift.severity, drift.measured) == (Severity.CRITICAL, 1)
    assert drift.detail.endswith("drift: RoleBinding sap-llm-release missing")


@pytest.mark.parametrize("check", ["images_pinned_by_digest", "secret_rotation", "rbac_drift"])
def test_no_cluster_is_no_data_at_warning(check):
    finding = judge(MONTHLY.check(check), audit_context(CheckContext(service="sap-llm")))
    assert (finding.severity, finding.measured) == (Severity.WARNING, None)
    assert finding.detail == "no data: this target provides no kubernetes"


@pytest.mark.parametrize("check", ["vulnerability_scans_fresh", "vulnerabilities_open"])
def test_missing_scanner_reports_are_no_data_at_warning(tmp_path, check):
    finding = judge(MONTHLY.check(check), audit_context(CheckContext(service="sap-llm", reports_dir=tmp_path)))
    assert (finding.severity, finding.measured) == (Severity.WARNING, None)
    assert finding.detail.startswith(f"no data: trivy report {tmp_path / 'trivy-images.json'}: [Errno 2]")
