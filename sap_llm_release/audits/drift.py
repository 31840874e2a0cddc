"""``input_drift``: has production's input moved away from what the model was trained on? The population stability
index (PSI) between the training set's mix of a label (document type) and the period's production mix, counted by
that label on a Prometheus counter. Each category adds (production share - training share) * ln(production share /
training share); a category absent on one side counts at ``floor_share`` (the index is undefined at 0).
Conventional reading: PSI up to 0.1 is stable, over 0.1 a shift to watch, over 0.2 a shift that calls for
retraining.

SAP_LLM's server counts ``sap_llm_documents_processed_total`` by ``colour`` and predicted ``document_type``; a period
without that label (a server from before it) has no production mix and says so (no data, never ok)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from sap_llm_release.audits.base import AuditContext, AuditKind, PromqlTemplate
from sap_llm_release.audits.model import Finding, Severity
from sap_llm_release.checks.base import CheckUnavailable, Params

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

LABEL_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
NAMED_CONTRIBUTIONS = 5


class InputDriftParams(Params):
    training_documents: str = Field(min_length=1, description="the training set, one labelled document a JSON line "
                                                              "(the rehearsal model's .models/rehearsal/train.jsonl)")
    training_label: str = Field(default="document_type", min_length=1)
    production: PromqlTemplate = Field(default='sap_llm_documents_processed_total{job="$service"}',
                                       description="the counter selector production's documents are counted on")
    production_label: str = Field(default="document_type", pattern=LABEL_PATTERN)
    floor_share: float = Field(default=1e-4, gt=0, lt=0.01, description="the share of a category absent on one side")


def training_mix(path: Path, label: str) -> Counter[str]:
    """How many training documents carry each value of ``label``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CheckUnavailable(f"the training set {path} cannot be read: {exc}") from exc
    try:
        return Counter(str(json.loads(line)[label]) for line in lines if line.strip())
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckUnavailable(f"the training set {path} has a line without a {label!r}: {exc!r}") from exc


def stability_terms(expected: dict[str, float], actual: dict[str, float], floor_share: float) -> dict[str, float]:
    """Each category's PSI term over the two mixes' shares; their sum is the index."""
    def shares(counts: dict[str, float]) -> dict[str, float]:
        total = sum(counts.values())
        return {name: max(counts.get(name, 0.0) / total, floor_share) for name in expected.keys() | actual.keys()}

    before, after = shares(expected), shares(actual)
    return {name: (after[name] - before[name]) * math.log(after[name] / before[name]) for name in sorted(before)}


class InputDrift(AuditKind):
    """Measured is the PSI; the breakdown is each category's contribution to it."""

    Params = InputDriftParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: InputDriftParams = check.check_params
        path = Path(params.training_documents)
        trained = training_mix(path, params.training_label)
        if not trained:
            raise CheckUnavailable(f"the training set {path} holds no document")
        promql, counted = context.increase_by_label(params.production, params.production_label)
        base = {"check": check.name, "kind": "input_drift", "threshold": check.bounds()}
        produced = {str(name): total for name, total in counted.items() if name is not None and total > 0}
        if not produced:
            why = (f"its series carry no {params.production_label} label, so production's mix cannot be read"
                   if None in counted else "no document was counted in the period")
            return Finding(**base, severity=check.judge(None), measured=None, detail=f"no data: PromQL {promql}: {why}")
        terms = stability_terms(dict(trained), produced, params.floor_share)
        psi = round(sum(terms.values()), 6)
        severity = check.judge(psi)
        detail = (f"PSI {psi:.4f} between the {params.training_label} mix of the training set ({path}, "
                  f"{sum(trained.values())} documents) and production's ({sum(produced.values()):.0f} documents, "
                  f"PromQL {promql}); largest contributions: "
                  + ", ".join(_contribution(name, terms[name], trained, produced) for name in
                              sorted(terms, key=lambda name: -terms[name])[:NAMED_CONTRIBUTIONS]))
        if None in counted:
            detail += f"; {counted[None]:.0f} documents without a {params.production_label} label left out"
        if severity is Severity.CRITICAL:
            detail += "; retraining recommended"
        return Finding(**base, severity=severity, measured=psi, detail=detail,
                       breakdown={name: round(term, 6) for name, term in terms.items()})


def _contribution(name: str, term: float, trained: Counter[str], produced: dict[str, float]) -> str:
    production_share = produced.get(name, 0.0) / sum(produced.values())
    training_share = trained.get(name, 0) / sum(trained.values())
    return f"{name} {term:.4f} (production {production_share:.1%}, training {training_share:.1%})"
