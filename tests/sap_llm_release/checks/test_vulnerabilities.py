"""Scanner reports in Trivy's and pip-audit's own JSON formats, held to a severity floor and an expiring waiver file;
a report that is missing or not what it claims to be fails the gate."""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta, timezone

import pytest
import yaml

from sap_llm_release.checks.base import CheckContext
from sap_llm_release.checks.vulnerabilities import (
    ScanCoverage,
    ScanCoverageParams,
    ScanReportAge,
    VulnerabilityFindings,
    VulnerabilityFindingsParams,
)
from sap_llm_release.evidence import Threshold, Verdict

NONE_OPEN = Threshold(op="==", value=0)
REPORTS = [{"file": "trivy-images.json", "format": "trivy"}, {"file": "pip-audit.json", "format": "pip_audit"}]


def trivy(*vulns: tuple[str, str, str]) -> dict:
    """A Trivy JSON report (schema 2) of one image."""
    return {"SchemaVersion": 2, "ArtifactName": "registry.example/sap-llm/validator:1.1.0", "ArtifactType":
            "container_image", "Results": [{"Target": "Python", "Class": "lang-pkgs", "Type": "python-pkg",
                                            "Vulnerabilities": [
                {"VulnerabilityID": vid, "PkgName": pkg, "InstalledVersion": "1.0", "FixedVersion": "1.1",
                 "Severity": severity} for vid, pkg, severity in vulns]},
                                           {"Target": "debian 12", "Class": "os-pkgs", "Vulnerabilities": None}]}


def pip_audit(*vulns: tuple[str, str]) -> dict:
    """A pip-audit JSON report (``pip-audit -f json``)."""
    return {"dependencies": [{"name": "requests", "version": "2.32.3", "vulns": []}] + [
        {"name": pkg, "version": "1.0", "vulns": [{"id": vid, "fix_versions": ["1.1"], "aliases": [],
                                                   "description": "..."}]} for vid, pkg in vulns], "fixes": []}


def run(tmp_path, trivy_report, pip_audit_report, waivers=None, **params):
    (tmp_path / "trivy-images.json").write_text(json.dumps(trivy_report))
    (tmp_path / "pip-audit.json").write_text(json.dumps(pip_audit_report))
    if waivers is not None:
        (tmp_path / "vulnerability-waivers.yaml").write_text(yaml.safe_dump(waivers, default_flow_style=False))
        params["waivers"] = "vulnerability-waivers.yaml"
    context = CheckContext(service="sap-llm", reports_dir=tmp_path)
    return VulnerabilityFindings().run(VulnerabilityFindingsParams(reports=REPORTS, **params), NONE_OPEN, context)


def waiver(vid: str, days: int) -> dict:
    return {"id": vid, "reason": "not reachable from the service's code paths", "expires": str(
        date.today() + timedelta(days=days))}


def test_clean_reports_pass(tmp_path):
    evidence = run(tmp_path, trivy(("CVE-2024-1", "urllib3", "MEDIUM")), pip_audit())
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0)
    assert evidence.detail.startswith("1 findings in 2 reports, 0 at HIGH or above")


def test_high_and_critical_fail_naming_them(tmp_path):
    evidence = run(tmp_path, trivy(("CVE-2024-2", "jinja2", "HIGH"), ("CVE-2024-3", "torch", "CRITICAL"),
                                   ("CVE-2024-4", "idna", "LOW")), pip_audit())
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 2)
    assert "CVE-2024-2 jinja2 HIGH" in evidence.detail and "CVE-2024-3 torch CRITICAL" in evidence.detail


def test_pip_audit_findings_have_no_severity_and_always_count(tmp_path):
    evidence = run(tmp_path, trivy(), pip_audit(("PYSEC-2024-60", "setuptools")), min_severity="CRITICAL")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    assert "PYSEC-2024-60 setuptools UNKNOWN (setuptools 1.0)" in evidence.detail


def test_dependencies_pip_audit_skipped_are_unaudited_not_clean(tmp_path):
    """What pip-audit writes when PyPI's advisory API cannot be reached (as on this project's build machines): every
    dependency skipped, and "No known vulnerabilities found" on its console."""
    skipped = {"dependencies": [
        {"name": "locust", "skip_reason": "Dependency not found on PyPI and could not be audited: locust (2.37.10)"},
        {"name": "requests", "version": "2.32.3", "vulns": []}], "fixes": []}
    evidence = run(tmp_path, trivy(), skipped)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    assert "UNAUDITED locust UNKNOWN (Dependency not found on PyPI" in evidence.detail


def test_a_waiver_covers_until_it_expires(tmp_path):
    findings = trivy(("CVE-2024-2", "jinja2", "HIGH"), ("CVE-2024-5", "pillow", "HIGH"))
    evidence = run(tmp_path, findings, pip_audit(), [waiver("CVE-2024-2", 30), waiver("CVE-2024-5", -1)])
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    assert "1 waived" in evidence.detail and "open: CVE-2024-5 pillow" in evidence.detail
    assert "expired waivers: CVE-2024-5" in evidence.detail
    assert run(tmp_path, findings, pip_audit(), [waiver("CVE-2024-2", 30), waiver("CVE-2024-5", 0)]).measured == 0


@pytest.mark.parametrize(("trivy_report", "pip_report", "message"), [
    ({"SchemaVersion": 2}, pip_audit(), "trivy-images.json: not a Trivy JSON report"),
    (trivy(), {"deps": []}, "pip-audit.json: not a pip-audit JSON report"),
    ("a JSON string", pip_audit(), "trivy-images.json: not a JSON object"),
])
def test_unreadable_reports_fail(tmp_path, trivy_report, pip_report, message):
    evidence = run(tmp_path, trivy_report, pip_report)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert message in evidence.detail


def test_a_report_that_is_not_json_fails(tmp_path):
    run(tmp_path, trivy(), pip_audit())
    (tmp_path / "pip-audit.json").write_text("pip-audit: error: no such file\n")
    context = CheckContext(service="sap-llm", reports_dir=tmp_path)
    evidence = VulnerabilityFindings().run(VulnerabilityFindingsParams(reports=REPORTS), NONE_OPEN, context)
    assert evidence.verdict is Verdict.FAILED and evidence.detail.startswith("pip_audit report ")


def test_a_missing_report_fails(tmp_path):
    context = CheckContext(service="sap-llm", reports_dir=tmp_path)
    evidence = VulnerabilityFindings().run(VulnerabilityFindingsParams(reports=REPORTS), NONE_OPEN, context)
    assert evidence.verdict is Verdict.FAILED and "trivy-images.json" in evidence.detail


def test_a_malformed_waiver_file_fails(tmp_path):
    evidence = run(tmp_path, trivy(), pip_audit(), [{"id": "CVE-2024-2", "reason": "short"}])
    assert evidence.verdict is Verdict.FAILED and "waiver file" in evidence.detail


# -- coverage: every image scanned, every dependency audited ---------------------------------------------------------

IMAGES = ["sap-llm", "validator", "loadtest"]


def coverage(tmp_path, reports: dict[str, object], fmt: str = "trivy", images=None):
    for name, content in reports.items():
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    params = ScanCoverageParams(reports=[{"file": name, "format": fmt} for name in reports],
                                images=IMAGES if images is None and fmt == "trivy" else images or [])
    return ScanCoverage().run(params, NONE_OPEN, CheckContext(service="sap-llm", reports_dir=tmp_path))


def image_report(artifact: str) -> dict:
    return {**trivy(), "ArtifactName": artifact}


def test_every_image_with_a_trivy_report_passes(tmp_path):
    evidence = coverage(tmp_path, {"a.json": image_report("registry.example/sap-llm:1.1.0"),
                                   "b.json": image_report("registry.example/sap-llm/validator@sha256:ab12"),
                                   "c.json": image_report("loadtest")})
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0)
    assert evidence.detail == "3 of 3 images have a Trivy report"


def test_an_image_without_a_report_fails_naming_it(tmp_path):
    evidence = coverage(tmp_path, {"a.json": image_report("registry.example:5000/sap-llm:1.1.0"),
                                   "b.json": image_report("registry.example/sap-llm/validator-old:1.0")})
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 2)
    assert evidence.detail == "1 of 3 images have a Trivy report; not scanned: validator, loadtest"


@pytest.mark.parametrize("content", ["{not json", {"Results": []}, {"ArtifactName": "x"}, ["a list"]])
def test_an_unreadable_or_foreign_trivy_report_fails(tmp_path, content):
    evidence = coverage(tmp_path, {"a.json": content})
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)


def test_a_missing_coverage_report_fails(tmp_path):
    params = ScanCoverageParams(reports=[{"file": "trivy-images.json", "format": "trivy"}], images=IMAGES)
    evidence = ScanCoverage().run(params, NONE_OPEN, CheckContext(service="sap-llm", reports_dir=tmp_path))
    assert evidence.verdict is Verdict.FAILED and "trivy-images.json" in evidence.detail


def test_dependencies_all_audited_pass(tmp_path):
    evidence = coverage(tmp_path, {"pip-audit.json": pip_audit(("PYSEC-1", "jinja2"))}, fmt="pip_audit")
    assert (evidence.verdict, evidence.measured, evidence.detail) == (Verdict.PASSED, 0, "2 of 2 dependencies audited")


def test_skipped_dependencies_fail_naming_them(tmp_path):
    report = pip_audit()
    report["dependencies"].append({"name": "torch", "skip_reason": "Dependency not found on PyPI"})
    evidence = coverage(tmp_path, {"pip-audit.json": report}, fmt="pip_audit")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    assert evidence.detail == "1 of 2 dependencies audited; skipped: torch (Dependency not found on PyPI)"


@pytest.mark.parametrize("content", [{"dependencies": []}, {"fixes": []}, {"dependencies": [{"version": "1"}]}])
def test_a_pip_audit_report_that_audited_nothing_or_is_foreign_fails(tmp_path, content):
    evidence = coverage(tmp_path, {"pip-audit.json": content}, fmt="pip_audit")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)


@pytest.mark.parametrize(("reports", "images", "message"), [
    ([{"file": "a.json", "format": "trivy"}, {"file": "b.json", "format": "pip_audit"}], [], "reports of one format"),
    ([{"file": "a.json", "format": "trivy"}], [], "name the images every Trivy scan must cover"),
    ([{"file": "a.json", "format": "pip_audit"}], ["x"], "pip-audit reports cover dependencies, not images"),
])
def test_coverage_params_name_the_rule(reports, images, message):
    with pytest.raises(ValueError, match=message):
        ScanCoverageParams(reports=reports, images=images)


def scan_ages(tmp_path, created_at: str | None, pip_audit_days: float):
    report = trivy()
    if created_at is not None:
        report["CreatedAt"] = created_at
    (tmp_path / "trivy-images.json").write_text(json.dumps(report))
    (tmp_path / "pip-audit.json").write_text(json.dumps(pip_audit()))
    stamp = (datetime.now(timezone.utc) - timedelta(days=pip_audit_days)).timestamp()
    os.utime(tmp_path / "pip-audit.json", (stamp, stamp))
    check = ScanReportAge()
    return check.run(check.Params(reports=REPORTS), Threshold(op="<=", value=7, unit="days"),
                     CheckContext(service="sap-llm", reports_dir=tmp_path))


def test_scan_report_age_is_the_oldest_scan(tmp_path):
    created = (datetime.now(timezone.utc) - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    evidence = scan_ages(tmp_path, created, pip_audit_days=1)
    assert evidence.verdict is Verdict.PASSED and 2.99 < evidence.measured <= 3.01
    assert "trivy-images.json scanned " in evidence.detail and "(CreatedAt), 3.0 d ago" in evidence.detail
    assert "pip-audit.json scanned " in evidence.detail and "(file time), 1.0 d ago" in evidence.detail
    stale = scan_ages(tmp_path, created, pip_audit_days=12)
    assert stale.verdict is Verdict.FAILED and 11.99 < stale.measured <= 12.01


@pytest.mark.parametrize("created_at", [None, "yesterday"])
def test_a_trivy_report_without_its_scan_time_is_nothing_measured(tmp_path, created_at):
    evidence = scan_ages(tmp_path, created_at, pip_audit_days=1)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert evidence.detail == f"trivy-images.json: no readable CreatedAt ({created_at!r}); Trivy 0.48+ writes it"
