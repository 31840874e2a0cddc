"""Vulnerability findings read from the scanners' own reports (Trivy JSON for images, pip-audit JSON for Python
dependencies; the user's pipeline runs the tools, the gate reads what they wrote), held against a waiver file whose
entries expire; and the scans' coverage: every expected image has a Trivy report, every dependency was audited. A
report that is missing or unreadable fails the gate: a scan nobody can read proves nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")


class ScanReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.json$", description="report file in the reports directory")
    format: Literal["trivy", "pip_audit"]


class VulnerabilityFindingsParams(Params):
    reports: list[ScanReport] = Field(min_length=1)
    min_severity: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] = "HIGH"
    waivers: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+\.ya?ml$",
                                description="waiver file in the reports directory: id, reason, expires")


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=3)
    package: str | None = None
    reason: str = Field(min_length=10)
    expires: date


@dataclass(frozen=True)
class Finding:
    id: str
    package: str
    severity: str
    where: str

    def waived_by(self, waiver: Waiver) -> bool:
        return waiver.id == self.id and waiver.package in (None, self.package)


class ReportError(ValueError):
    """A scanner report or waiver file that cannot be read."""


def trivy_findings(report: dict, source: str) -> list[Finding]:
    """Every vulnerability in a Trivy JSON report (``Results[].Vulnerabilities[]``)."""
    try:
        return [
            Finding(v["VulnerabilityID"], v["PkgName"], str(v.get("Severity", "UNKNOWN")).upper(),
                    f"{report.get('ArtifactName', source)} {result.get('Target', '')}".strip())
            for result in report["Results"] for v in result.get("Vulnerabilities") or []
        ]
    except (KeyError, TypeError) as exc:
        raise ReportError(f"{source}: not a Trivy JSON report ({exc!r})") from None


def pip_audit_findings(report: dict, source: str) -> list[Finding]:
    """Every vulnerability in a pip-audit JSON report. pip-audit gives no severity, so each counts as UNKNOWN,
    which no severity floor lets through. A dependency pip-audit skipped (``skip_reason``: e.g. the advisory
    service was unreachable, and pip-audit still says "No known vulnerabilities found") was not audited: it is an
    ``UNAUDITED`` finding, never a clean one."""
    try:
        findings = []
        for dependency in report["dependencies"]:
            if "skip_reason" in dependency:
                findings.append(Finding("UNAUDITED", dependency["name"], "UNKNOWN", dependency["skip_reason"]))
                continue
            findings += [Finding(vuln["id"], dependency["name"], "UNKNOWN",
                                 f"{dependency['name']} {dependency['version']}") for vuln in dependency["vulns"]]
        return findings
    except (KeyError, TypeError) as exc:
        raise ReportError(f"{source}: not a pip-audit JSON report ({exc!r})") from None


PARSERS = {"trivy": trivy_findings, "pip_audit": pip_audit_findings}


def read_waivers(path: Path) -> list[Waiver]:
    try:
        entries = yaml.safe_load(path.read_text()) or []
        return [Waiver(**entry) for entry in entries]
    except (OSError, yaml.YAMLError, TypeError, ValidationError) as exc:
        raise ReportError(f"waiver file {path}: {exc}") from None


def counts(finding: Finding, min_severity: str) -> bool:
    """At or above the floor; UNKNOWN (no severity given) always counts."""
    return finding.severity not in SEVERITIES or finding.severity == "UNKNOWN" or \
        SEVERITIES.index(finding.severity) >= SEVERITIES.index(min_severity)


def read_report(directory: Path, report: ScanReport) -> dict:
    path = directory / report.file
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{report.format} report {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ReportError(f"{report.format} report {path}: not a JSON object")
    return document


class VulnerabilityFindings(Check):
    """Measured: findings at or above ``min_severity`` (or without a severity) that no unexpired waiver covers."""

    Params = VulnerabilityFindingsParams

    def run(self, params: VulnerabilityFindingsParams, threshold: Threshold | None,
            context: CheckContext) -> Evidence:
        directory: Path = context.require("reports_dir")
        today = date.today()
        try:
            findings = []
            for report in params.reports:
                findings += PARSERS[report.format](read_report(directory, report), report.file)
            waivers = read_waivers(directory / params.waivers) if params.waivers else []
        except ReportError as exc:
            return Evidence.unmeasured(threshold, str(exc), directory.as_uri())
        valid = [w for w in waivers if w.expires >= today]
        expired = sorted({w.id for w in waivers if w.expires < today})
        serious = [f for f in findings if counts(f, params.min_severity)]
        open_findings = [f for f in serious if not any(f.waived_by(w) for w in valid)]
        detail = (f"{len(findings)} findings in {len(params.reports)} reports, {len(serious)} at {params.min_severity}"
                  f" or above (or without severity), {len(serious) - len(open_findings)} waived")
        if open_findings:
            detail += "; open: " + ", ".join(f"{f.id} {f.package} {f.severity} ({f.where})" for f in open_findings[:10])
        if expired:
            detail += f"; expired waivers: {', '.join(expired)}"
        return Evidence.compare(len(open_findings), threshold, detail, evidence_uri=directory.as_uri())


class ScanCoverageParams(Params):
    reports: list[ScanReport] = Field(min_length=1)
    images: list[str] = Field(default_factory=list,
                              description="image repositories that must each have a Trivy report (tag ignored)")

    @model_validator(mode="after")
    def _one_format(self) -> ScanCoverageParams:
        formats = {report.format for report in self.reports}
        if len(formats) != 1:
            raise ValueError("reports: coverage is measured over reports of one format")
        if formats == {"trivy"} and not self.images:
            raise ValueError("images: name the images every Trivy scan must cover")
        if formats == {"pip_audit"} and self.images:
            raise ValueError("images: pip-audit reports cover dependencies, not images")
        return self


def _repository(artifact: str) -> str:
    """``registry/sap-llm-server:1.2.0`` or ``...@sha256:...`` -> ``registry/sap-llm-server``."""
    name = artifact.split("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


class ScanCoverage(Check):
    """Measured: what the scans left out. Trivy: expected images with no report (matched on the artifact's
    repository, its last path part or the whole name). pip-audit: dependencies it skipped; a report that audited no
    dependency at all fails."""

    Params = ScanCoverageParams

    def run(self, params: ScanCoverageParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        directory: Path = context.require("reports_dir")
        try:
            documents = [(report, read_report(directory, report)) for report in params.reports]
            if params.reports[0].format == "trivy":
                missing, detail = _unscanned_images(documents, params.images)
            else:
                missing, detail = _unaudited_dependencies(documents)
        except ReportError as exc:
            return Evidence.unmeasured(threshold, str(exc), directory.as_uri())
        return Evidence.compare(missing, threshold, detail, evidence_uri=directory.as_uri())


def _unscanned_images(documents: list[tuple[ScanReport, dict]], images: list[str]) -> tuple[int, str]:
    scanned = set()
    for report, document in documents:
        artifact = document.get("ArtifactName")
        if not isinstance(artifact, str) or not isinstance(document.get("Results"), list):
            raise ReportError(f"{report.file}: not a Trivy JSON report (no ArtifactName / Results)")
        repository = _repository(artifact)
        scanned |= {repository, repository.rsplit("/", 1)[-1]}
    unscanned = [image for image in images if image not in scanned]
    detail = f"{len(images) - len(unscanned)} of {len(images)} images have a Trivy report"
    return len(unscanned), detail + (f"; not scanned: {', '.join(unscanned)}" if unscanned else "")


def _unaudited_dependencies(documents: list[tuple[ScanReport, dict]]) -> tuple[int, str]:
    audited, skipped = 0, []
    for report, document in documents:
        dependencies = document.get("dependencies")
        if not isinstance(dependencies, list) or not all(isinstance(d, dict) and "name" in d for d in dependencies):
            raise ReportError(f"{report.file}: not a pip-audit JSON report (no dependencies list)")
        skipped += [f"{d['name']} ({d['skip_reason']})" for d in dependencies if "skip_reason" in d]
        audited += sum("skip_reason" not in d for d in dependencies)
    if audited + len(skipped) == 0:
        raise ReportError("the pip-audit reports list no dependency: nothing was audited")
    detail = f"{audited} of {audited + len(skipped)} dependencies audited"
    return len(skipped), detail + (f"; skipped: {', '.join(skipped[:10])}" if skipped else "")


class ScanReportAgeParams(Params):
    reports: list[ScanReport] = Field(min_length=1)


def scanned_at(directory: Path, report: ScanReport) -> tuple[datetime, str]:
    """When a report's scan ran, and where that was read: a Trivy report's ``CreatedAt``; pip-audit writes no time,
    so its file's modification time."""
    if report.format == "trivy":
        created = read_report(directory, report).get("CreatedAt")
        try:
            at = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            raise ReportError(f"{report.file}: no readable CreatedAt ({created!r}); Trivy 0.48+ writes it") from None
        return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)), "CreatedAt"
    read_report(directory, report)
    return datetime.fromtimestamp((directory / report.file).stat().st_mtime, timezone.utc), "file time"


class ScanReportAge(Check):
    """Measured: days since the oldest of the reports' scans ran: findings published after it are not in it."""

    Params = ScanReportAgeParams

    def run(self, params: ScanReportAgeParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        directory: Path = context.require("reports_dir")
        now = datetime.now(timezone.utc)
        try:
            scans = [(report.file, *scanned_at(directory, report)) for report in params.reports]
        except ReportError as exc:
            return Evidence.unmeasured(threshold, str(exc), directory.as_uri())
        ages = {file: (now - at).total_seconds() / 86400 for file, at, _ in scans}
        detail = "; ".join(f"{file} scanned {at:%Y-%m-%d %H:%M} UTC ({source}), {ages[file]:.1f} d ago"
                           for file, at, source in scans)
        return Evidence.compare(round(max(ages.values()), 2), threshold, detail, evidence_uri=directory.as_uri())
