"""``model_accuracy``: the weekly accuracy review (checklist section 10, "Weekly: model accuracy review"). The
audit's job evaluates the model serving now on a fresh labelled sample through the validator image (the release's
job path: a pod on a cluster, a local process on the local stack); this check holds each metric of its result to the
threshold of the release gate that reads the same metric (section 1's thresholds, one definition). Measured: how
many metrics fall short of their gate's threshold (a metric missing from the result falls short)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from sap_llm_release.audits.base import AuditContext, AuditKind
from sap_llm_release.audits.model import Finding
from sap_llm_release.checks.base import CheckUnavailable, Params
from sap_llm_release.checks.reports import lookup_metric

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck


class ModelAccuracyParams(Params):
    job: str = Field(min_length=1, description="the audit's job whose result is judged")
    gates: list[str] = Field(min_length=1, description="job_result gates whose metric and threshold apply")


class ModelAccuracy(AuditKind):
    """Each named gate's metric read from the audit job's result and held to the gate's threshold. A job that left
    no result is no data."""

    Params = ModelAccuracyParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: ModelAccuracyParams = check.check_params
        result = context.require_ledger().audit_job_result(context.run_id, params.job)
        if result is None:
            raise CheckUnavailable(f"job {params.job} left no result in this audit run (see its task's log)")
        short, parts = 0, []
        for gate in params.gates:
            metric, threshold = context.job_gates[gate]
            value = lookup_metric(result, metric)
            met = isinstance(value, (int, float)) and not isinstance(value, bool) and threshold.met_by(value)
            short += not met
            parts.append(f"{metric} {value if value is not None else 'missing'} ({threshold}: "
                         f"{'met' if met else 'SHORT'})")
        sample = result.get("documents")
        detail = f"{len(params.gates) - short} of {len(params.gates)} metrics meet their release gate" + \
                 (f" on {sample} documents" if sample else "") + f"; {'; '.join(parts)}"
        return Finding(check=check.name, kind="model_accuracy", severity=check.judge(short), measured=short,
                       threshold=check.bounds(), detail=detail)
