"""The checklist's model metrics from predictions and labels: plain Python, no model needed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from jsonschema import Draft202012Validator
from sap_llm_contract.taxonomy import CONFIDENCE_BUCKETS


def ratio(hits: int, total: int) -> float | None:
    """``hits / total``; None when nothing was measured (a gate reading None fails)."""
    return round(hits / total, 6) if total else None


def confidence_histogram(confidences: list[float]) -> dict[str, int]:
    """How many documents' confidence falls in each bin of the server's histogram, keyed by the bin's upper bound
    as Prometheus labels it (``le``), not cumulative: the monthly audit's reference for production's confidence."""
    bounds = [*CONFIDENCE_BUCKETS, float("inf")]
    counts = dict.fromkeys(bounds, 0)
    for confidence in confidences:
        counts[next(bound for bound in bounds if confidence <= bound)] += 1
    return {("+Inf" if bound == float("inf") else str(bound)): count for bound, count in counts.items()}


def micro_f1(predicted: Iterable[set], expected: Iterable[set]) -> float | None:
    """Micro F1 over sets of (field, value) pairs, one set per document."""
    true_positive = false_positive = false_negative = 0
    for guess, truth in zip(predicted, expected, strict=True):
        true_positive += len(guess & truth)
        false_positive += len(guess - truth)
        false_negative += len(truth - guess)
    if true_positive + false_positive + false_negative == 0:
        return None
    return round(2 * true_positive / (2 * true_positive + false_positive + false_negative), 6)


def per_field_f1(predicted: list[dict], expected: list[dict]) -> dict[str, float | None]:
    fields = sorted({name for document in expected for name in document})
    return {
        field: micro_f1(
            [{(field, str(p[field]))} if field in p else set() for p in predicted],
            [{(field, str(e[field]))} if field in e else set() for e in expected],
        )
        for field in fields
    }


def coverage(keys: list[str | None], correct: list[bool], required: Iterable[str], min_accuracy: float,
             min_documents: int) -> dict:
    """Per class: documents, accuracy and whether it passed; every required class must be present to pass."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, ok in zip(keys, correct, strict=True):
        if key is not None:
            counts[key][0] += 1
            counts[key][1] += int(ok)
    classes = {}
    for name in required:
        documents, hits = counts.get(name, (0, 0))
        accuracy = ratio(hits, documents)
        classes[name] = {"documents": documents, "accuracy": accuracy,
                         "passed": documents >= min_documents and accuracy is not None and accuracy >= min_accuracy}
    return {"classes": classes, "passed": sum(c["passed"] for c in classes.values()),
            "missing": sorted(name for name, c in classes.items() if c["documents"] == 0)}


class SchemaCheck:
    """JSON-schema validation of generated ADC output."""

    def __init__(self, schema: dict) -> None:
        Draft202012Validator.check_schema(schema)
        self.validator = Draft202012Validator(schema)

    def errors(self, document: dict) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in self.validator.iter_errors(document)]

    def failing_fields(self, document: dict, candidates: Iterable[str]) -> list[str]:
        """Fields the schema rejects: a required one missing, or one whose value breaks its rule."""
        failing = set()
        for error in self.validator.iter_errors(document):
            path = list(error.absolute_path)
            if len(path) >= 2 and path[0] == "fields":
                failing.add(str(path[1]))
            elif error.validator == "required" and path == ["fields"]:
                failing.update(name for name in candidates if name not in document.get("fields", {}))
        return sorted(failing)
