"""Audit SAP_LLM on a schedule (checklist section 10, "Continuous Monitoring"): each day, week and month, every
check of the spec's audit judged over the period against its warning and critical bounds, recorded in the ledger,
written up as a report with plots (linked from the run and the release board), summarised in Slack, and paged to
PagerDuty only when critical. Missing data is a finding, never a pass; a critical audit ends its run failed."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, CronTriggerTimetable

from operators.audit_builder import audit_params, compose_audit
from operators.runtime import release_spec_path
from sap_llm_release.spec import load_spec

SPEC_PATH = release_spec_path()
SPEC = load_spec(SPEC_PATH)

for name, audit in (SPEC.audits.named() if SPEC.audits else {}).items():
    with DAG(
        f"sap_llm_audit_{name}",
        description=f"{name.capitalize()} audit of {SPEC.service} over the last {audit.period}",
        schedule=CronTriggerTimetable(audit.schedule, timezone="UTC"),
        catchup=False,
        max_active_runs=1,
        params=audit_params(SPEC),
        tags=["audit", name, SPEC.service],
        default_args={"retries": 1, "retry_delay": timedelta(minutes=2), "execution_timeout": timedelta(hours=1)},
        doc_md=__doc__,
    ):
        compose_audit(SPEC, SPEC_PATH, name)
