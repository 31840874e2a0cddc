"""error_log_volume: the service's ERROR (and worse) lines over the period, from the local stack's process logs and
from pods' logs through the Kubernetes API (the stand-in); logs that cannot be read are no data, never ok."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import httpx

from sap_llm_release.audits.base import AuditContext
from sap_llm_release.audits.model import Severity
from sap_llm_release.audits.runner import judge
from sap_llm_release.audits.spec import AuditCheck
from sap_llm_release.deployers.local_process import LocalProcessDeployer
from sap_llm_release.polling import poll_until
from sap_llm_release.service_logs.kubernetes_pods import KubernetesPodLogs
from sap_llm_release.service_logs.local_files import LocalProcessLogs
from tests.sap_llm_release.deployers.test_local_process import SERVER_SCRIPT, find_free_port
from tests.sap_llm_release.service_logs.test_kubernetes_pods import NAMESPACE, pod
from tests.sap_llm_release.service_logs.test_local_files import stamp

END = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)
START = END - timedelta(days=1)


def error_check(per: str = "period", no_data: str = "critical", warning: float = 2, critical: float = 5
                ) -> AuditCheck:
    return AuditCheck(name="error_log_volume", kind="error_log_volume", params={"per": per}, no_data=no_data,
                      warning={"op": "<=", "value": warning}, critical={"op": "<=", "value": critical})


def context(logs, start: datetime = START, end: datetime = END) -> AuditContext:
    return AuditContext(service="sap-llm", period_start=start, period_end=end, step=timedelta(hours=1), logs=logs)


def write_log(path, *entries: tuple[datetime, str]) -> None:
    path.write_text("".join(f"{stamp(moment)} {text}\n" for moment, text in entries))


def test_error_lines_of_the_local_processes_in_the_period(tmp_path):
    write_log(tmp_path / "blue.log",
              (START - timedelta(hours=1), "ERROR colour=blue before the period"),
              (START + timedelta(minutes=30), "ERROR colour=blue document=a inference failed"),
              (START + timedelta(hours=5), "AUDIT who=client what=process document=b"),
              (END - timedelta(minutes=1), "CRITICAL colour=blue out of memory"))
    write_log(tmp_path / "green.log",
              (START + timedelta(minutes=45), "WARNING colour=green faults set"),
              (START + timedelta(minutes=50), "ERROR colour=green document=c inference failed"))

    finding = judge(error_check(), context(LocalProcessLogs(tmp_path)))

    assert finding.measured == 3
    assert finding.severity is Severity.WARNING  # over 2, within 5
    assert finding.breakdown == {"blue": 2.0, "green": 1.0}
    assert finding.detail.startswith("3 of 5 log lines match")
    assert "first: " + stamp(START + timedelta(minutes=30)) in finding.detail
    (series,) = finding.series
    assert len(series.points) == 24
    assert series.points[0] == ((START + timedelta(hours=1)).timestamp(), 2.0)
    assert series.points[-1] == (END.timestamp(), 1.0)
    assert sum(value for _, value in series.points) == 3


def test_the_worst_hour_is_judged_against_per_hour_bounds_on_its_day(tmp_path):
    steady = [(START + timedelta(minutes=minute), "ERROR colour=blue") for minute in range(0, 24 * 60, 4)]
    burst = [(START + timedelta(hours=20, seconds=second), "ERROR colour=blue burst") for second in range(10)]
    write_log(tmp_path / "blue.log", *sorted(steady + burst))  # 15 an hour, 25 from 20:00

    per_hour = judge(error_check(per="hour", warning=20, critical=40), context(LocalProcessLogs(tmp_path)))
    quiet = judge(error_check(per="hour", warning=30, critical=40), context(LocalProcessLogs(tmp_path)))

    assert (per_hour.measured, per_hour.severity, per_hour.day) == (25.0, Severity.WARNING, (START + timedelta(
        hours=20)).date())
    assert per_hour.detail.startswith(f"worst hour {START + timedelta(hours=20):%Y-%m-%d %H:%M} UTC: 25 error lines")
    assert per_hour.series[0].bounds == {"warning": 20.0, "critical": 40.0}
    assert (quiet.measured, quiet.severity) == (25.0, Severity.OK)


def test_pod_logs_through_the_kubernetes_api(kube_api):
    now = datetime.now(timezone.utc)
    for name in ("sap-llm-blue-1", "sap-llm-green-1"):
        pod(kube_api, name)
    kube_api.serve_pod_log(NAMESPACE, "sap-llm-blue-1", lambda: [
        (now - timedelta(days=2), "2026-11-29 ERROR outside the period"),
        (now - timedelta(hours=3), "ERROR inference failed"),
        (now - timedelta(hours=2), "INFO fine")])
    kube_api.serve_pod_log(NAMESPACE, "sap-llm-green-1", lambda: [(now - timedelta(hours=1), "FATAL lost the GPU")])
    logs = KubernetesPodLogs(kube_api.api_client(), NAMESPACE, "app=sap-llm")

    finding = judge(error_check(critical=1.5, warning=1), context(logs, now - timedelta(days=1), now))

    assert (finding.measured, finding.severity) == (2, Severity.CRITICAL)
    assert finding.breakdown == {"sap-llm-blue-1": 1.0, "sap-llm-green-1": 1.0}
    assert "pods sap-llm-prod/app=sap-llm" in finding.detail


def test_an_unreachable_kubernetes_api_is_no_data_at_the_configured_severity(kube_api):
    kube_api.fail_next("GET", "/pods", 503, times=1)
    logs = KubernetesPodLogs(kube_api.api_client(), NAMESPACE, "app=sap-llm")
    now = datetime.now(timezone.utc)

    finding = judge(error_check(no_data="warning"), context(logs, now - timedelta(days=1), now))

    assert (finding.measured, finding.severity) == (None, Severity.WARNING)
    assert finding.detail.startswith("no data: pods sap-llm-prod/app=sap-llm: list failed")


def test_missing_log_files_no_lines_or_no_log_source_are_no_data(tmp_path):
    missing = judge(error_check(), context(LocalProcessLogs(tmp_path / "no-stack")))
    write_log(tmp_path / "blue.log", (START - timedelta(hours=2), "ERROR long ago"))
    silent = judge(error_check(), context(LocalProcessLogs(tmp_path)))
    no_source = judge(error_check(), context(None))

    for finding in (missing, silent, no_source):
        assert (finding.measured, finding.severity) == (None, Severity.CRITICAL)
    assert "no service log files" in missing.detail
    assert "no log line of the service in the period" in silent.detail
    assert "this target provides no service logs" in no_source.detail


def test_the_reference_servers_own_error_lines_are_counted_in_utc(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # the server's local time is not UTC: its stamps must be anyway
    deployer = LocalProcessDeployer(state_dir=tmp_path, ports={"blue": find_free_port(), "green": find_free_port()},
                                    server_command=[sys.executable, str(SERVER_SCRIPT), "--enable-fault-injection"])
    try:
        deployer.deploy("blue", "1.0.0")
        assert deployer.wait_ready("blue", 30)[0]
        httpx.post(f"{deployer.url('blue')}/admin/faults", json={"error_rate": 1.0}, timeout=5).raise_for_status()
        for document in ("doc-1", "doc-2"):
            answer = httpx.post(f"{deployer.url('blue')}/v1/documents", timeout=5,
                                json={"document_id": document, "content": "Invoice 4711"})
            assert answer.status_code == 500
        now = datetime.now(timezone.utc)
        period = context(LocalProcessLogs(tmp_path), now - timedelta(minutes=5), now + timedelta(minutes=1))
        finding = poll_until(lambda: judge(error_check(), period), lambda found: found.measured == 2,
                             timeout_s=10, interval_s=0.2)
    finally:
        deployer.remove("blue")

    assert finding.measured == 2, finding.detail
    assert finding.breakdown == {"blue": 2.0, "green": 0.0}
    assert "ERROR colour=blue document=doc-1 inference failed (injected fault)" in finding.detail
