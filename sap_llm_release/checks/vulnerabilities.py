"""Vulnerability findings read from the scanners' own reports (Trivy JSON for images, pip-audit JSON for Python
dependencies; the user's pipeline runs the tools, the gate reads what they wrote), held against a waiver file whose
entries expire. A report that is missing or unreadable fails the gate: a scan nobody can read proves nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold, Verdict

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
                path = directory / report.file
                try:
                    document = json.loads(path.read_text())
                except (OSError, ValueError) as exc:
                    raise ReportError(f"{report.format} report {path}: {exc}") from None
                findings += PARSERS[report.format](document, report.file)
            waivers = read_waivers(directory / params.waivers) if params.waivers else []
        except ReportError as exc:
            return Evidence(Verdict.FAILED, None, str(threshold), str(exc), directory.as_uri())
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
