"""A number read from a JSON report and held to a threshold: a report file another pipeline published (scan, DR
drill, dataset manifest), or the result an inference job of this release recorded in the ledger (model
evaluation, weights verification, smoke and load tests)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold


class ReportMetricParams(Params):
    report: str = Field(pattern=r"^[a-z0-9_]+$", description="report name: <reports_dir>/<report>.json")
    metric: str = Field(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", description="dotted path in the report")


class ReportMetric(Check):
    Params = ReportMetricParams

    def run(self, params: ReportMetricParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        path = context.require("reports_dir") / f"{params.report}.json"
        uri = path.as_uri()
        try:
            report = json.loads(path.read_text())
        except FileNotFoundError:
            return Evidence.unmeasured(threshold, f"report {path} does not exist", uri)
        except (OSError, ValueError) as exc:
            return Evidence.unmeasured(threshold, f"report {path} is unreadable: {exc}", uri)
        return _compare_metric(report, params.metric, threshold, uri, where=str(path), source=path.name)


class JobResultParams(Params):
    job: str = Field(pattern=r"^[a-z][a-z0-9_]{2,60}$", description="the spec's job whose result is read")
    metric: str = Field(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", description="dotted path in the result")


class JobResult(Check):
    """Only a result recorded for this release counts: a job that did not run, or ran for another release,
    leaves the gate failed."""

    Params = JobResultParams

    def run(self, params: JobResultParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        result = context.require("job_results")(params.job)
        uri = f"ledger:job_results/{params.job}"
        if result is None:
            return Evidence.unmeasured(threshold,
                            f"job {params.job} recorded no result for this release", uri)
        return _compare_metric(result, params.metric, threshold, uri, where=f"the {params.job} result",
                               source=f"job {params.job}", booleans_count=True)


def _compare_metric(document: Any, metric: str, threshold: Threshold | None, uri: str, *, where: str, source: str,
                    booleans_count: bool = False) -> Evidence:
    """The number at ``metric`` held to ``threshold``; a missing or non-numeric value fails, naming what was found.
    Booleans are numbers (0 / 1) only where ``booleans_count`` says so."""
    value = lookup_metric(document, metric)
    if booleans_count and isinstance(value, bool):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return Evidence.unmeasured(threshold, f"{metric} in {where} is {value!r}, not a number", uri)
    return Evidence.compare(value, threshold, f"{metric} from {source}", evidence_uri=uri)


def lookup_metric(report: Any, dotted: str) -> Any:
    """The value at ``dotted`` (``vision_encoder.classification_accuracy``) in a result document, or None."""
    for key in dotted.split("."):
        if not isinstance(report, dict) or key not in report:
            return None
        report = report[key]
    return report
