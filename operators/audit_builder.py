"""Compose an audit DAG from the spec: open the run, run its jobs, judge every check side by side (whether the
jobs succeeded or not: a check without its job's result says so), then report."""

from __future__ import annotations

import os

from airflow.sdk import Param, TaskGroup

from operators.audits import (
    CHECKS_GROUP,
    JOBS_GROUP,
    AuditCheckOperator,
    AuditJobOperator,
    AuditReportOperator,
    StartAuditOperator,
)
from operators.dag_builder import JSON_SCHEMA_DRAFT
from sap_llm_release.spec import ReleaseSpec

AUDIT_PROFILE_ENV = "SAP_LLM_AUDIT_PROFILE"


def audit_params(spec: ReleaseSpec) -> dict[str, Param]:
    """The audit's trigger form: the profile whose target it audits (scheduled runs take the default:
    ``$SAP_LLM_AUDIT_PROFILE``, else production) and, for a manual run, the end of the period to judge."""
    profiles = list(spec.profiles)
    default = os.environ.get(AUDIT_PROFILE_ENV, "production")
    return {
        "profile": Param(default, type="string", enum=profiles, title="Profile",
                         description="whose target and Prometheus to audit", **{"$schema": JSON_SCHEMA_DRAFT}),
        "period_end": Param(None, type=["null", "string"], format="date-time", title="Period end (UTC)",
                            description="the end of the period to judge; empty: when the run was due",
                            **{"$schema": JSON_SCHEMA_DRAFT}),
    }


def compose_audit(spec: ReleaseSpec, spec_path: str, audit: str) -> None:
    """Add the audit's tasks to the DAG being defined."""
    start = StartAuditOperator(task_id="start_audit", spec_path=spec_path, audit=audit)
    if jobs := spec.audits.named()[audit].jobs:
        with TaskGroup(JOBS_GROUP, tooltip="the audit's inference jobs, whose results its checks read") as ran:
            for job in jobs:
                # no retry: a failed job is recorded, and its checks say so (no data)
                AuditJobOperator(task_id=job.name, spec_path=spec_path, audit=audit, job=job.name,
                                 execution_timeout=job.timeout, retries=0)
        start >> ran
        start = ran
    with TaskGroup(CHECKS_GROUP, tooltip="every check of the audit, judged over the run's period") as checks:
        for check in spec.audits.named()[audit].checks:
            AuditCheckOperator(task_id=check.name, spec_path=spec_path, audit=audit, check=check.name,
                               doc_md=check.description or check.kind,
                               trigger_rule="all_done" if jobs else "all_success")
    report = AuditReportOperator(task_id="report", spec_path=spec_path, audit=audit, retries=0)
    start >> checks >> report
