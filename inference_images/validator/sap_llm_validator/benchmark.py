"""``benchmark``: documents per hour per GPU at several batch sizes, P50/P95 latency, peak memory and GPU
utilisation, so capacity against the checklist's 5K docs/hour is a measured number."""

from __future__ import annotations

import statistics
import time

import torch
from sap_llm_model.pipeline import DocumentPipeline

from sap_llm_validator.runtime import GpuUtilisation, PeakMemory, batches


def _percentile(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(quantile * (len(ordered) - 1))))]


def benchmark_batch_size(pipeline: DocumentPipeline, texts: list[str], batch_size: int) -> dict:
    pipeline.process(texts[:batch_size])  # warm-up
    latencies = []
    with PeakMemory(pipeline.device) as memory, GpuUtilisation(pipeline.device) as utilisation:
        started = time.perf_counter()
        for batch in batches(texts, batch_size):
            batch_started = time.perf_counter()
            pipeline.process(batch)
            if pipeline.device.type == "cuda":
                torch.cuda.synchronize(pipeline.device)
            latencies.append(time.perf_counter() - batch_started)
        elapsed = time.perf_counter() - started
    return {
        "batch_size": batch_size,
        "documents": len(texts),
        "docs_per_hour": round(len(texts) / elapsed * 3600, 1),
        "batch_latency_p50_seconds": round(statistics.median(latencies), 5),
        "batch_latency_p95_seconds": round(_percentile(latencies, 0.95), 5),
        "peak_memory_gib": memory.peak_gib,
        "gpu_utilisation": utilisation.mean,
    }


def benchmark(pipeline: DocumentPipeline, texts: list[str], batch_sizes: list[int], target_docs_per_hour: float,
              model: str) -> dict:
    runs = [benchmark_batch_size(pipeline, texts, size) for size in batch_sizes]
    best = max(runs, key=lambda run: run["docs_per_hour"])
    return {
        "kind": "benchmark",
        "model": model,
        "device": str(pipeline.device),
        "dtype": str(pipeline.dtype).removeprefix("torch."),
        "parameters": pipeline.parameters,
        "runs": runs,
        "best_docs_per_hour": best["docs_per_hour"],
        "best_batch_size": best["batch_size"],
        "target_docs_per_hour": target_docs_per_hour,
        "passed": best["docs_per_hour"] >= target_docs_per_hour,
    }
