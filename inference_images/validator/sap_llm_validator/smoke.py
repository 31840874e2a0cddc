"""``smoke``: load the model on its device, run 10 test documents, check every output is well-formed ADC and
correctly classified, and that latency is sane."""

from __future__ import annotations

import time

from sap_llm_contract.schema import adc_schema
from sap_llm_model.pipeline import DocumentPipeline

from sap_llm_validator.metrics import SchemaCheck

SMOKE_DOCUMENTS = 10


def smoke(pipeline: DocumentPipeline, documents: list[dict], latency_target_s: float, require_gpu: bool) -> dict:
    checks: dict[str, dict] = {}

    def check(name: str, ok: bool, detail: str) -> None:
        checks[name] = {"ok": ok, "detail": detail}

    check("device", pipeline.device.type == "cuda" or not require_gpu,
          f"model on {pipeline.device} ({str(pipeline.dtype).removeprefix('torch.')})")
    schema = SchemaCheck(adc_schema())
    sample = documents[:SMOKE_DOCUMENTS]
    pipeline.process([sample[0]["content"]])  # warm-up: the first call pays for kernel selection
    latencies, problems = [], []
    for document in sample:
        started = time.perf_counter()
        output = pipeline.process([document["content"]])[0]
        latencies.append(time.perf_counter() - started)
        adc = {key: output[key] for key in ("document_type", "po_subtype", "fields", "route", "api")}
        if errors := schema.errors(adc):
            problems.append(f"{document['document_id']}: not ADC: {errors[0]}")
        elif output["document_type"] != document["document_type"]:
            problems.append(f"{document['document_id']}: classified as {output['document_type']}")
    check("documents", len(sample) == SMOKE_DOCUMENTS and not problems,
          f"{len(sample) - len(problems)}/{SMOKE_DOCUMENTS} well-formed and correct"
          + (f"; {problems[:3]}" if problems else ""))
    slowest = max(latencies, default=float("inf"))
    check("latency", slowest < latency_target_s, f"slowest {slowest:.3f}s, target < {latency_target_s}s")
    return {
        "kind": "smoke",
        "device": str(pipeline.device),
        "documents_ok": len(sample) - len(problems),
        "slowest_seconds": round(slowest, 4),
        "checks": checks,
        "passed": all(c["ok"] for c in checks.values()),
    }
