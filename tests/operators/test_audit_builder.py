"""The audit DAGs mirror the spec's audits: scheduled by its cron, catchup off, one run at a time, its jobs after
the run's start, a task per check after them and before its report, and no heavy import when the file is parsed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from operators.audits import AuditCheckOperator, AuditJobOperator, AuditReportOperator, StartAuditOperator
from sap_llm_release.spec import load_spec
from tests.support.runs import ROOT, SPEC_FILE, project_dags


@pytest.fixture(scope="module")
def dags():
    return project_dags()


@pytest.mark.parametrize("name", ["daily", "weekly", "monthly"])
def test_each_audit_is_a_scheduled_dag_with_a_task_per_check(dags, name):
    audit = load_spec(SPEC_FILE).audits.named()[name]
    dag = dags[f"sap_llm_audit_{name}"]
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == (audit.schedule, "UTC")
    assert dag.catchup is False and dag.max_active_runs == 1
    assert {"audit", name} <= set(dag.tags) and "Continuous Monitoring" in dag.doc_md
    checks = [task for task in dag.tasks if isinstance(task, AuditCheckOperator)]
    assert [task.check for task in checks] == [check.name for check in audit.checks]
    jobs = [task for task in dag.tasks if isinstance(task, AuditJobOperator)]
    assert [task.job for task in jobs] == [job.name for job in audit.jobs]
    assert all(task.upstream_task_ids == {"start_audit"} for task in jobs)
    before_checks = {task.task_id for task in jobs} or {"start_audit"}
    assert all(task.upstream_task_ids == before_checks for task in checks)
    # a check runs whether its audit's jobs succeeded or not (without a job's result it says "no data")
    assert {task.trigger_rule for task in checks} == {"all_done" if jobs else "all_success"}
    assert isinstance(dag.get_task("start_audit"), StartAuditOperator)
    report = dag.get_task("report")
    assert isinstance(report, AuditReportOperator) and report.trigger_rule == "all_done" and report.retries == 0
    assert report.upstream_task_ids == {task.task_id for task in checks}


def test_the_weekly_audit_reviews_accuracy_through_a_job(dags):
    (job,) = [task for task in dags["sap_llm_audit_weekly"].tasks if isinstance(task, AuditJobOperator)]
    assert (job.task_id, job.job) == ("jobs.accuracy_review", "accuracy_review")


def test_the_trigger_form_offers_the_profiles_and_an_optional_period_end(dags):
    params = dags["sap_llm_audit_daily"].params
    assert params.get_param("profile").schema["enum"] == ["production", "rehearsal"]
    assert params["profile"] == "production"
    assert params.get_param("period_end").schema["type"] == ["null", "string"] and params["period_end"] is None


def test_the_audit_dag_file_imports_no_heavy_modules():
    code = ("import sys, runpy; runpy.run_path('dags/audit_sap_llm.py'); print(sorted(m for m in ('torch', "
            "'transformers', 'matplotlib', 'kubernetes', 'numpy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
