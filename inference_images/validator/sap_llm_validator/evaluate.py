"""``evaluate``: the checklist's model-validation metrics of a model over a labelled test set (and a held-out
set), with throughput and peak memory."""

from __future__ import annotations

import time

from sap_llm_contract.schema import adc_schema, normalise_field
from sap_llm_contract.taxonomy import DOCUMENT_TYPES, PO_SUBTYPES
from sap_llm_model.pipeline import DocumentPipeline

from sap_llm_validator.metrics import SchemaCheck, confidence_histogram, coverage, micro_f1, per_field_f1, ratio
from sap_llm_validator.runtime import PeakMemory, batches

# The checklist's bounds (section 1); the release gates hold the same numbers in the release spec.
THRESHOLDS = {
    "vision_encoder.classification_accuracy": 0.95,
    "vision_encoder.field_extraction_f1": 0.94,
    "vision_encoder.document_types_passed": len(DOCUMENT_TYPES),
    "vision_encoder.po_subtypes_passed": len(PO_SUBTYPES),
    "language_decoder.json_schema_compliance": 0.99,
    "language_decoder.extraction_f1": 0.92,
    "language_decoder.self_correction_rate": 0.70,
    "language_decoder.heldout_extraction_f1": 0.92,
    "reasoning_engine.routing_accuracy": 0.97,
    "reasoning_engine.api_selection_accuracy": 1.0,
}


def gold_adc(document: dict) -> dict:
    return {
        "document_type": document["document_type"],
        "po_subtype": document["po_subtype"],
        "fields": {name: normalise_field(name, value) for name, value in document["fields"].items()},
        "route": document["route"],
        "api": document["api"],
    }


def run_pipeline(pipeline: DocumentPipeline, documents: list[dict], batch_size: int) -> tuple[list, list, float]:
    """(vision encoder output, ADC output) per document, and the seconds the whole pipeline took."""
    classified, outputs = [], []
    started = time.perf_counter()
    for batch in batches(documents, batch_size):
        vision, adc = pipeline.run([d["content"] for d in batch])
        classified += vision
        outputs += adc
    return classified, outputs, time.perf_counter() - started


def _pairs(fields: dict) -> set:
    return {(name, str(value)) for name, value in fields.items()}


def vision_metrics(documents: list[dict], classified: list[dict], min_accuracy: float) -> dict:
    type_ok = [c["document_type"] == d["document_type"] for c, d in zip(classified, documents, strict=True)]
    subtype_ok = [ok and c["po_subtype"] == d["po_subtype"] for ok, c, d in zip(type_ok, classified, documents,
                                                                                 strict=True)]
    types = coverage([d["document_type"] for d in documents], type_ok, DOCUMENT_TYPES, min_accuracy, 1)
    subtypes = coverage([d["po_subtype"] for d in documents], subtype_ok, PO_SUBTYPES, min_accuracy, 1)
    return {
        "classification_accuracy": ratio(sum(type_ok), len(documents)),
        "field_extraction_f1": micro_f1([_pairs(c["fields"]) for c in classified],
                                        [_pairs(d["fields"]) for d in documents]),
        "field_extraction_f1_per_field": per_field_f1([c["fields"] for c in classified],
                                                      [d["fields"] for d in documents]),
        "document_types_passed": types["passed"],
        "document_types_missing": types["missing"],
        "per_document_type": types["classes"],
        "po_subtypes_passed": subtypes["passed"],
        "po_subtypes_missing": subtypes["missing"],
        "per_po_subtype": subtypes["classes"],
        "confidence_histogram": confidence_histogram([c["confidence"] for c in classified]),
    }



def self_correction(pipeline: DocumentPipeline, documents: list[dict], schema: SchemaCheck) -> dict:
    """Each gold ADC with one required field broken (removed, or replaced by a value its rule rejects); the
    decoder re-decodes the fields the schema names. Corrected = valid again and equal to the gold output."""
    corrected = attempted = 0
    for index, document in enumerate(documents):
        gold = gold_adc(document)
        field = list(document["fields"])[index % len(document["fields"])]
        draft = {**gold, "fields": dict(gold["fields"])}
        if index % 2:
            draft["fields"].pop(field)
        else:
            draft["fields"][field] = "###"
        failing = schema.failing_fields(draft, DOCUMENT_TYPES[document["document_type"]].fields)
        if not failing:
            continue
        attempted += 1
        classification = {"document_type": gold["document_type"], "po_subtype": gold["po_subtype"]}
        draft["fields"].update(pipeline.redecode(document["content"], classification, failing))
        corrected += int(not schema.errors(draft) and draft == gold)
    return {"self_correction_rate": ratio(corrected, attempted), "self_correction_attempts": attempted}


def decoder_metrics(pipeline: DocumentPipeline, documents: list[dict], outputs: list[dict],
                    schema: SchemaCheck) -> dict:
    invalid = [(d["document_id"], errors) for d, o in zip(documents, outputs, strict=True)
               if (errors := schema.errors(o))]
    golds = [gold_adc(d) for d in documents]
    return {
        "json_schema_compliance": ratio(len(documents) - len(invalid), len(documents)),
        "schema_violations": [{"document_id": i, "errors": e[:3]} for i, e in invalid[:10]],
        "extraction_f1": micro_f1([_pairs(o["fields"]) for o in outputs], [_pairs(g["fields"]) for g in golds]),
        **self_correction(pipeline, documents, schema),
    }


def reasoning_metrics(pipeline: DocumentPipeline, documents: list[dict], batch_size: int) -> dict:
    """Route and API chosen from each document's gold ADC: the reasoning engine measured on its own."""
    decisions = []
    for batch in batches(documents, batch_size):
        decisions += pipeline.reason([(d["document_type"], d["po_subtype"], d["fields"]) for d in batch])
    return {
        "routing_accuracy": ratio(sum(r == d["route"] for (r, _), d in zip(decisions, documents, strict=True)),
                                  len(documents)),
        "api_selection_accuracy": ratio(sum(a == d["api"] for (_, a), d in zip(decisions, documents, strict=True)),
                                        len(documents)),
    }


def _lookup(result: dict, dotted: str):
    for key in dotted.split("."):
        result = result.get(key) if isinstance(result, dict) else None
    return result


def evaluate(pipeline: DocumentPipeline, documents: list[dict], heldout: list[dict] | None, batch_size: int = 32,
             min_class_accuracy: float = 0.95) -> dict:
    schema = SchemaCheck(adc_schema())
    with PeakMemory(pipeline.device) as memory:
        classified, outputs, seconds = run_pipeline(pipeline, documents, batch_size)
        vision_encoder = vision_metrics(documents, classified, min_class_accuracy)
        training = pipeline.components["vision_encoder"][0].config.training
        vision_encoder["training_documents"] = training.get("documents")
        language_decoder = decoder_metrics(pipeline, documents, outputs, schema)
        language_decoder["heldout_extraction_f1"] = None
        if heldout:
            _, heldout_outputs, _ = run_pipeline(pipeline, heldout, batch_size)
            language_decoder["heldout_extraction_f1"] = micro_f1(
                [_pairs(o["fields"]) for o in heldout_outputs], [_pairs(gold_adc(d)["fields"]) for d in heldout])
        reasoning_engine = reasoning_metrics(pipeline, documents, batch_size)
    result = {
        "kind": "evaluate",
        "documents": len(documents),
        "heldout_documents": len(heldout or []),
        "device": str(pipeline.device),
        "dtype": str(pipeline.dtype).removeprefix("torch."),
        "batch_size": batch_size,
        "parameters": pipeline.parameters,
        "docs_per_hour": round(len(documents) / seconds * 3600, 1),
        "peak_memory_gib": memory.peak_gib,
        "vision_encoder": vision_encoder,
        "language_decoder": language_decoder,
        "reasoning_engine": reasoning_engine,
    }
    failures = [f"{metric} = {_lookup(result, metric)} (needs >= {bound})" for metric, bound in THRESHOLDS.items()
                if _lookup(result, metric) is None or _lookup(result, metric) < bound]
    result["failures"] = failures
    result["passed"] = not failures
    return result
