"""Operators of the scheduled audits: open the run and fix its period, judge one check, and close the run with its
report, its outcome in the ledger, one Slack summary and PagerDuty pages for what is critical."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from operators.base import ReleaseOperator
from operators.jobs import InferenceJobOperator, JobHost
from operators.notifications import audit_notifier
from operators.runtime import (
    PROMETHEUS_CONN_ID,
    TaskOfRun,
    kubernetes_api_client,
    prometheus_access,
    spec_at,
    with_target,
)
from sap_llm_release.audits.kinds import AUDIT_KINDS, AuditContext
from sap_llm_release.audits.model import AuditRun, Finding, Severity
from sap_llm_release.audits.runner import audit_period, finding_from_dict, finding_to_dict, judge, not_judged
from sap_llm_release.audits.spec import Audit, AuditCheck
from sap_llm_release.audits.trend import EARLIER_RUNS, Trend
from sap_llm_release.checks.base import CheckContext
from sap_llm_release.jobs.base import JobError
from sap_llm_release.spec import ReleaseSpec
from sap_llm_release.targets import Target, build_target

REPORTS_DIR_ENV = "SAP_LLM_AUDIT_REPORTS"
REPORT_URL_KEY = "report_url"
CHECKS_GROUP = "checks"
JOBS_GROUP = "jobs"


def reports_root() -> Path:
    """Where audit reports are written: ``$SAP_LLM_AUDIT_REPORTS``, else ``$AIRFLOW_HOME/sap_llm_audit_reports``
    (the release board serves them from there: on more than one machine, a volume both mount)."""
    if configured := os.environ.get(REPORTS_DIR_ENV):
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "sap_llm_audit_reports"


def report_dir(audit_run_id: str) -> Path:
    """The directory of one run's report: ``<dag id>/<run id>``, each character outside ``[A-Za-z0-9_.-]`` made
    ``_`` (the ledger records the report's exact path; the board serves it from there)."""
    dag_id, run_id = audit_run_id.split(":", 1)
    return reports_root() / dag_id / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def report_url(audit_run_id: str) -> str:
    """The report's page on the release board, behind Airflow's login."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")
    return f"{base}/release-board/audits/{quote(audit_run_id, safe='')}/index.html"


@dataclass
class AuditTaskRun(TaskOfRun):
    """One audit DAG run seen from inside a task."""

    spec_path: str
    audit_name: str
    context: Any

    @cached_property
    def spec(self) -> ReleaseSpec:
        return spec_at(self.spec_path)

    @property
    def audit(self) -> Audit:
        return self.spec.audits.named()[self.audit_name]

    @property
    def audit_run_id(self) -> str:
        return self.run_key

    def scheduled_end(self) -> datetime:
        """The end of the period this run judges: the ``period_end`` parameter, else the time the run was due."""
        given = self.context["params"].get("period_end")
        if given:
            end = datetime.fromisoformat(given)
            return end if end.tzinfo else end.replace(tzinfo=timezone.utc)
        dag_run = self.context["dag_run"]
        return dag_run.logical_date or dag_run.run_after

    def period(self) -> tuple[datetime, datetime]:
        """The period recorded by the run's first task."""
        row = self.ledger.audit_run(self.audit_run_id)
        if row is None:
            raise RuntimeError(f"audit run {self.audit_run_id} is not in the ledger: start_audit did not record it")
        return tuple(_as_utc(row[name]) for name in ("period_start", "period_end"))

    @property
    def profile_name(self) -> str:
        return self.context["params"]["profile"]

    @cached_property
    def target(self) -> Target:
        """The audited profile's target as it runs now (the slots as named: an audit looks at the service as a
        whole, not at a release's blue and green)."""
        return build_target(self.spec.profile(self.profile_name).target, kubernetes_api=kubernetes_api_client)

    def job_variables(self) -> dict[str, str]:
        """The audit jobs' placeholders: the profile's job inputs, ``$version`` the version last promoted."""
        version = self.ledger.promoted_version(self.spec.service, before=self.period()[1])
        try:
            return self.spec.profile(self.profile_name).job_variables({"version": version} if version else {})
        except KeyError as exc:
            raise JobError(f"the job inputs need ${exc.args[0]}, and no release of {self.spec.service} was "
                           "promoted before the period's end: which version serves is unknown") from None

    def audit_context(self, check: AuditCheck) -> AuditContext:
        from sap_llm_release.analysis.prometheus import PrometheusProvider

        start, end = self.period()
        metrics = PrometheusProvider(prometheus_access(PROMETHEUS_CONN_ID))
        context = AuditContext(self.spec.service, start, end, self.audit.step, metrics=metrics, ledger=self.ledger,
                               gates=tuple(gate.name for gate in self.spec.gates),
                               approvals=tuple(approval.name for approval in self.spec.approvals),
                               people=dict(self.spec.people), run_id=self.audit_run_id,
                               job_gates={gate.name: (gate.params["metric"], gate.threshold)
                                          for gate in self.spec.gates if gate.kind == "job_result"},
                               service_levels=self.spec.service_levels)
        if AUDIT_KINDS[check.kind].needs_target:
            self._add_target(context)
        return context

    def _add_target(self, context: AuditContext) -> None:
        """What the release's check kinds read and the service's logs, on the audited profile's target; a target
        that cannot be reached leaves them without data (each check says so)."""
        context.checks = CheckContext(service=self.spec.service, rate_window=self.spec.rate_window(self.profile_name),
                                      metrics=context.metrics)
        try:
            target = self.target
        except Exception as exc:  # noqa: BLE001 - any failure to reach the target is the checks' missing data
            kind = self.spec.profile(self.profile_name).target
            context.checks.unavailable_reason = f"the {kind} target cannot be reached: {type(exc).__name__}: {exc}"
            return
        with_target(context.checks, target)
        context.logs = target.logs


def _as_utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class AuditOperator(ReleaseOperator):
    """An audit task: it knows its spec file and which audit it belongs to."""

    ui_color = "#eaf2f8"

    def __init__(self, *, audit: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audit = audit


class StartAuditOperator(AuditOperator):
    """Fix the period the run judges and record the run: every later task reads the period from the ledger."""

    def execute(self, context: Any) -> dict[str, str]:
        run = AuditTaskRun(self.spec_path, self.audit, context)
        start, end = audit_period(run.scheduled_end(), run.audit.period)
        run.ledger.migrate()
        run.ledger.record_audit_run(
            run.audit_run_id, audit=self.audit, service=run.spec.service, period_start=start, period_end=end,
            triggered_by=context["dag_run"].triggering_user_name or "schedule", spec_digest=run.spec.digest,
            writer=run.writer)
        self.log.info("%s audit of %s over %s to %s", self.audit, run.spec.service, start, end)
        return {"period_start": start.isoformat(), "period_end": end.isoformat()}


class AuditCheckOperator(AuditOperator):
    """Judge one check over the run's period and record its finding; the finding, whatever its severity, is the
    task's result (a critical finding is the report's business, not a task failure)."""

    def __init__(self, *, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def execute(self, context: Any) -> dict[str, Any]:
        run = AuditTaskRun(self.spec_path, self.audit, context)
        check = run.audit.check(self.check)
        finding = judge(check, run.audit_context(check))
        run.ledger.record_audit_finding(run.audit_run_id, finding, run.writer)
        self.log.info("%s: %s (measured %s, bounds %s): %s", check.name, finding.severity.value, finding.measured,
                      finding.threshold, finding.detail)
        return finding_to_dict(finding)


class AuditJobOperator(InferenceJobOperator):
    """Run one of the audit's jobs before its checks, exactly as a release runs its jobs (a local process on the
    local target, a KubernetesPodOperator pod on a cluster), recording the outcome under the audit run."""

    ui_color = "#e8daef"

    def __init__(self, *, audit: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audit = audit

    def host(self, context: Any) -> JobHost:
        run = AuditTaskRun(self.spec_path, self.audit, context)
        return JobHost(run.audit.job(self.job), run.job_variables(), run.target,
                       lambda outcome: run.ledger.record_audit_job_result(run.audit_run_id, outcome, run.writer))


class AuditReportLink(BaseOperatorLink):
    """The run's report on the release board, from the report task's result."""

    name = "Audit report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key=REPORT_URL_KEY) or ""


class AuditFoundCritical(RuntimeError):
    """The audit judged a check critical: the run ends failed, after its report and pages went out."""


class AuditReportOperator(AuditOperator):
    """Collect every check's finding (a check whose task left none is critical: not judged), write the report,
    record the outcome, post the Slack summary, page for critical findings and resolve the ones now clear. Fails the
    run when the audit is critical, once all that is done."""

    ui_color = "#d6eaf8"
    operator_extra_links = (AuditReportLink(),)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trigger_rule="all_done", **kwargs)

    def execute(self, context: Any) -> str:
        from sap_llm_release.audits.report import render_report, summary_text

        run = AuditTaskRun(self.spec_path, self.audit, context)
        start, end = run.period()
        audit_run = AuditRun(self.audit, run.audit_run_id, start, end, self._findings(run))
        earlier = {check.name: run.ledger.audit_check_history(self.audit, check.name, before=end,
                                                               limit=EARLIER_RUNS) for check in run.audit.checks}
        html = render_report(audit_run, report_dir(run.audit_run_id), title=f"{run.spec.service} {self.audit} audit",
                             trends={name: Trend.from_history(rows) for name, rows in earlier.items()})
        url = report_url(run.audit_run_id)
        run.ledger.record_audit_outcome(run.audit_run_id, severity=audit_run.severity.value,
                                        counts=audit_run.counts(), report_uri=html.as_uri(), writer=run.writer)
        context["ti"].xcom_push(key=REPORT_URL_KEY, value=url)
        notifier = audit_notifier(run.ledger, run.spec.service, run.writer)
        notifier.summary(audit_run, summary_text(audit_run, url))
        notifier.pages(audit_run, {name for name, rows in earlier.items()
                                   if rows and rows[-1]["severity"] == Severity.CRITICAL.value})
        self.log.info("%s audit: %s %s; report %s (%s)", self.audit, audit_run.severity.value, audit_run.counts(),
                      html, url)
        if audit_run.severity is Severity.CRITICAL:
            critical = [f.check for f in audit_run.findings if f.severity is Severity.CRITICAL]
            raise AuditFoundCritical(f"{self.audit} audit found critical: {', '.join(critical)}; report {url}")
        return url

    def _findings(self, run: AuditTaskRun) -> list[Finding]:
        findings = []
        for check in run.audit.checks:
            data = run.context["ti"].xcom_pull(task_ids=f"{CHECKS_GROUP}.{check.name}")
            if data is None:
                finding = not_judged(check, "its task left no finding (it failed or did not run); see its log")
                run.ledger.record_audit_finding(run.audit_run_id, finding, run.writer)
            else:
                finding = finding_from_dict(data)
            findings.append(finding)
        return findings
