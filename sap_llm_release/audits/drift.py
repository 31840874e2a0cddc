"""The monthly retraining assessment's two population stability indices (PSI), each between a reference the model
was built or validated on and the period's production, read from Prometheus:

- ``input_drift``: the training set's mix of a label (document type) against production's mix, counted by that
  label on a counter;
- ``confidence_drift``: the model's confidence histogram over its test set (from the validator's evaluation kept
  with the model) against production's, from the server's confidence histogram over the same bins.

Each category adds (production share - reference share) * ln(production share / reference share); a category
absent on one side counts at ``floor_share`` (the index is undefined at 0). Conventional reading: PSI up to 0.1 is
stable, over 0.1 a shift to watch, over 0.2 a shift that calls for retraining.

SAP_LLM's server counts ``sap_llm_documents_processed_total`` by ``colour`` and predicted ``document_type`` and
observes ``sap_llm_prediction_confidence``; a period without them (a server from before them) has no production
distribution and says so (no data, never ok)."""

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


class ConfidenceDriftParams(Params):
    reference_evaluation: str = Field(min_length=1, description="the model's evaluation as the validator wrote it "
                                                                "(the rehearsal model's .models/rehearsal/evaluation"
                                                                ".json): its vision_encoder.confidence_histogram")
    production: PromqlTemplate = Field(default='sap_llm_prediction_confidence_bucket{job="$service"}',
                                       description="the bucket series of production's confidence histogram")
    floor_share: float = Field(default=1e-4, gt=0, lt=0.01, description="the share of a bin empty on one side")


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


def reference_confidences(path: Path) -> dict[float, float]:
    """The evaluation's confidence histogram: documents per bin, keyed by the bin's upper bound."""
    try:
        histogram = json.loads(path.read_text(encoding="utf-8"))["vision_encoder"]["confidence_histogram"]
        return {float(bound): float(count) for bound, count in histogram.items()}
    except OSError as exc:
        raise CheckUnavailable(f"the model's evaluation {path} cannot be read: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckUnavailable(f"the model's evaluation {path} holds no vision_encoder.confidence_histogram of "
                               f"counts by upper bound: {exc!r}") from exc


def per_bin(cumulative: dict[float, float]) -> dict[float, float]:
    """A Prometheus histogram's cumulative bucket counts (by ``le``) as counts per bin."""
    bounds = sorted(cumulative)
    below = [0.0, *(cumulative[bound] for bound in bounds)]
    return {bound: cumulative[bound] - below[index] for index, bound in enumerate(bounds)}


def bin_name(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def bin_labels(bounds: list[float]) -> dict[float, str]:
    """Each bin as people read it, by its upper bound: "0-0.5", "0.5-0.7", ..., "over 1"."""
    ordered = sorted(bounds)
    return {bound: f"over {lower:g}" if math.isinf(bound) else f"{lower:g}-{bound:g}"
            for lower, bound in zip([0.0, *ordered], ordered, strict=False)}


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
        described = (f"the {params.training_label} mix of the training set ({path}, {sum(trained.values())} "
                     f"documents) and production's ({sum(produced.values()):.0f} documents, PromQL {promql})")
        left_out = (f"; {counted[None]:.0f} documents without a {params.production_label} label left out"
                    if None in counted else "")
        return drift_finding(check, base, dict(trained), produced, params.floor_share, described, "training",
                             left_out)


class ConfidenceDrift(AuditKind):
    """Measured is the PSI over the confidence bins; the breakdown is each bin's contribution (by upper bound)."""

    Params = ConfidenceDriftParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: ConfidenceDriftParams = check.check_params
        path = Path(params.reference_evaluation)
        reference = reference_confidences(path)
        if not sum(reference.values()):
            raise CheckUnavailable(f"the model's evaluation {path} counted no document's confidence")
        promql, counted = context.increase_by_label(params.production, "le")
        base = {"check": check.name, "kind": "confidence_drift", "threshold": check.bounds()}
        try:
            cumulative = {float(bound): total for bound, total in counted.items() if bound is not None}
        except ValueError as exc:
            raise CheckUnavailable(f"PromQL {promql}: a bucket's le is not a number: {exc}") from exc
        produced = per_bin(cumulative)
        if not sum(produced.values()):
            return Finding(**base, severity=check.judge(None), measured=None,
                           detail=f"no data: PromQL {promql}: no document's confidence was observed in the period")
        if produced.keys() != reference.keys():
            bins = {side: ", ".join(map(bin_name, sorted(counts))) for side, counts in (("production", produced),
                                                                                        ("evaluation", reference))}
            raise CheckUnavailable(f"production's confidence bins ({bins['production']}; PromQL {promql}) are not "
                                   f"the evaluation's ({bins['evaluation']}; {path}): the server and the validator "
                                   "must bin alike")
        described = (f"the confidence histogram of the model's evaluation ({path}, {sum(reference.values()):.0f} "
                     f"documents) and production's ({sum(produced.values()):.0f} documents, PromQL {promql})")
        labels = bin_labels(list(reference))
        return drift_finding(check, base, {labels[b]: n for b, n in reference.items()},
                             {labels[b]: n for b, n in produced.items()}, params.floor_share, described,
                             "evaluation")


def drift_finding(check: AuditCheck, base: dict, reference: dict[str, float], produced: dict[str, float],
                  floor_share: float, described: str, reference_name: str, note: str = "") -> Finding:
    """The PSI between the two distributions, judged, with its largest contributions named."""
    terms = stability_terms(reference, produced, floor_share)
    psi = round(sum(terms.values()), 6)
    severity = check.judge(psi)

    def contribution(name: str) -> str:
        production_share = produced.get(name, 0.0) / sum(produced.values())
        reference_share = reference.get(name, 0.0) / sum(reference.values())
        return (f"{name} {terms[name]:.4f} (production {production_share:.1%}, {reference_name} "
                f"{reference_share:.1%})")

    detail = (f"PSI {psi:.4f} between {described}; largest contributions: "
              + ", ".join(map(contribution, sorted(terms, key=lambda name: -terms[name])[:NAMED_CONTRIBUTIONS]))
              + note)
    if severity is Severity.CRITICAL:
        detail += "; retraining recommended"
    return Finding(**base, severity=severity, measured=psi, detail=detail,
                   breakdown={name: round(term, 6) for name, term in terms.items()})
