"""Smoke and load tests of a live SAP_LLM endpoint; each run writes one result JSON for the release gates.

    python loadtest.py smoke --url URL --documents docs.jsonl [--log-file service.log] --result smoke.json
    python loadtest.py load --url URL --documents docs.jsonl --docs-per-hour 5000 --duration 60 --result load.json

``docs.jsonl`` holds labelled documents, one JSON object a line: ``document_id``, ``document_type``, ``content``.
Exit status: 0 when every check passed, 1 when one failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import sys
import time
from pathlib import Path

EXPECTED_SERIES = (
    "sap_llm_requests_total",
    "sap_llm_request_duration_seconds_bucket",
    "sap_llm_documents_processed_total",
    "sap_llm_touchless_total",
)
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|Traceback)\b")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def read_documents(path: Path) -> list[dict]:
    documents = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for index, document in enumerate(documents):
        missing = {"document_id", "document_type", "content"} - set(document)
        if missing:
            raise ValueError(f"--documents line {index + 1}: missing {sorted(missing)}")
    if not documents:
        raise ValueError("--documents: the file holds no document")
    return documents


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text exposition as (name, labels, value) samples."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#") or not (match := _SAMPLE.match(line)):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def smoke(url: str, documents: list[dict], log_file: Path | None, latency_target_s: float) -> dict:
    import requests

    checks: dict[str, dict] = {}

    def check(name: str, ok: bool, detail: str) -> None:
        checks[name] = {"ok": ok, "detail": detail}

    for path in ("/health", "/health/ready"):
        try:
            response = requests.get(url + path, timeout=10)
            check(path, response.status_code == 200, f"HTTP {response.status_code}")
        except requests.RequestException as exc:
            check(path, False, f"request failed: {exc}")
    latencies, problems = [], []
    for document in documents[:10]:
        started = time.perf_counter()
        try:
            response = requests.post(f"{url}/v1/documents", timeout=30, headers=_auth_headers(), json={
                "document_id": document["document_id"], "content": document["content"]})
        except requests.RequestException as exc:
            problems.append(f"{document['document_id']}: {exc}")
            continue
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            problems.append(f"{document['document_id']}: HTTP {response.status_code}")
        elif response.json().get("document_type") != document["document_type"]:
            problems.append(f"{document['document_id']}: classified as {response.json().get('document_type')}")
    check("documents", len(documents[:10]) == 10 and not problems,
          f"{10 - len(problems)}/10 well-formed and correct" + (f"; {problems[:3]}" if problems else ""))
    slowest = max(latencies, default=math.inf)
    check("latency", slowest < latency_target_s, f"slowest {slowest:.3f}s, target < {latency_target_s}s")
    try:
        names = {name for name, _, _ in parse_metrics(requests.get(url + "/metrics", timeout=10).text)}
        missing = [series for series in EXPECTED_SERIES if series not in names]
        check("metrics", not missing, f"missing {missing}" if missing else "all expected series exposed")
    except requests.RequestException as exc:
        check("metrics", False, f"request failed: {exc}")
    if log_file is not None:
        lines = log_file.read_text(errors="replace").splitlines() if log_file.exists() else []
        errors = [line for line in lines if ERROR_LINE.search(line)]
        check("log", bool(lines) and not errors,
              f"{len(errors)} error lines of {len(lines)}" + (f"; first: {errors[0][:200]}" if errors else ""))
    return {"kind": "smoke", "url": url, "documents_ok": len(documents[:10]) - len(problems), "checks": checks,
            "passed": all(c["ok"] for c in checks.values())}


def server_histogram(url: str) -> dict[float, float]:
    """Cumulative request-latency bucket counts (all colours summed) from the server's /metrics."""
    import requests

    buckets: dict[float, float] = {}
    for name, labels, value in parse_metrics(requests.get(url + "/metrics", timeout=10).text):
        if name == "sap_llm_request_duration_seconds_bucket":
            bound = math.inf if labels["le"] == "+Inf" else float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    return buckets


def histogram_quantile(quantile: float, before: dict[float, float], after: dict[float, float]) -> float | None:
    """Prometheus-style quantile over the observations made between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = quantile * counts[-1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1e-12)
        lower_bound, lower_count = bound, count
    return None


def resident_memory(url: str) -> float | None:
    import requests

    samples = parse_metrics(requests.get(url + "/metrics", timeout=10).text)
    return next((value for name, _, value in samples if name == "process_resident_memory_bytes"), None)


def memory_slope_per_hour(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of resident memory over time, in bytes per hour; None when the samples cannot show a
    trend (fewer than two, or all at one instant), so a missing trend never reads as "no leak"."""
    if len(samples) < 2:
        return None
    mean_t = sum(t for t, _ in samples) / len(samples)
    mean_m = sum(m for _, m in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    return None if spread == 0 else sum((t - mean_t) * (m - mean_m) for t, m in samples) / spread * 3600


def load(url: str, documents: list[dict], docs_per_hour: float, duration_s: float, users: int,
         p95_target_s: float, max_error_ratio: float, leak_bytes_per_hour: float, rate_tolerance: float) -> dict:
    import gevent
    from locust import FastHttpUser, constant_throughput, task
    from locust.env import Environment

    cycle = itertools.cycle(documents)

    class DocumentUser(FastHttpUser):
        wait_time = constant_throughput(docs_per_hour / 3600 / users)

        @task
        def post_document(self) -> None:
            document = next(cycle)
            body = {"document_id": document["document_id"], "content": document["content"]}
            with self.client.post("/v1/documents", json=body, headers=_auth_headers(),
                                  catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"HTTP {response.status_code}")

    environment = Environment(user_classes=[DocumentUser], host=url)
    runner = environment.create_local_runner()
    memory: list[tuple[float, float]] = []

    def sample_memory() -> None:
        while True:
            value = resident_memory(url)
            if value is not None:
                memory.append((time.monotonic(), value))
            gevent.sleep(1)

    before = server_histogram(url)
    sampler = gevent.spawn(sample_memory)
    started = time.monotonic()
    runner.start(users, spawn_rate=users)
    gevent.spawn_later(duration_s, runner.quit)
    runner.greenlet.join()
    elapsed = time.monotonic() - started
    sampler.kill()
    after = server_histogram(url)

    return _load_result(url, environment.stats.total, elapsed, memory, histogram_quantile(0.95, before, after),
                        docs_per_hour=docs_per_hour, p95_target_s=p95_target_s, max_error_ratio=max_error_ratio,
                        leak_bytes_per_hour=leak_bytes_per_hour, rate_tolerance=rate_tolerance)


def _load_result(url: str, total, elapsed: float, memory: list[tuple[float, float]], server_p95: float | None, *,
                 docs_per_hour: float, p95_target_s: float, max_error_ratio: float, leak_bytes_per_hour: float,
                 rate_tolerance: float) -> dict:
    """The load run's result from locust's totals, the memory samples and the server's own P95; ``passed`` when the
    rate held, client P95 and the error ratio are within their targets and no leak was seen."""
    successes = total.num_requests - total.num_failures
    client_p95 = total.get_response_time_percentile(0.95) / 1000 if total.num_requests else None
    slope = memory_slope_per_hour(memory)
    result = {
        "kind": "load",
        "url": url,
        "duration_seconds": round(elapsed, 3),
        "target_docs_per_hour": docs_per_hour,
        "docs_per_hour": round(successes / elapsed * 3600, 1),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "error_ratio": round(total.fail_ratio, 6),
        "p50_seconds": total.get_response_time_percentile(0.5) / 1000 if total.num_requests else None,
        "p95_seconds": client_p95,
        "p99_seconds": total.get_response_time_percentile(0.99) / 1000 if total.num_requests else None,
        "server_p95_seconds": server_p95,
        "p95_client_over_server": round(client_p95 / server_p95, 3) if client_p95 and server_p95 else None,
        "memory_samples": len(memory),
        "memory_slope_bytes_per_hour": None if slope is None else round(slope),
        "peak_memory_gib": round(max(m for _, m in memory) / 2**30, 4) if memory else None,
        "memory_leak_detected": None if slope is None else int(slope > leak_bytes_per_hour),
    }
    result["rate_sustained"] = result["docs_per_hour"] >= docs_per_hour * (1 - rate_tolerance)
    result["passed"] = bool(
        total.num_requests
        and result["rate_sustained"]
        and client_p95 is not None and client_p95 < p95_target_s
        and result["error_ratio"] <= max_error_ratio
        and result["memory_leak_detected"] == 0
    )
    return result


def _auth_headers() -> dict[str, str]:
    """The service's API key from ``SAP_LLM_API_KEY``, as the service expects it."""
    key = os.environ.get("SAP_LLM_API_KEY")
    return {"X-API-Key": key} if key else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("smoke", "load"):
        command = commands.add_parser(name)
        command.add_argument("--url", required=True)
        command.add_argument("--documents", type=Path, required=True)
        command.add_argument("--result", type=Path, required=True)
    commands.choices["smoke"].add_argument("--log-file", type=Path)
    commands.choices["smoke"].add_argument("--latency-target", type=float, default=1.5)
    load_args = commands.choices["load"]
    load_args.add_argument("--docs-per-hour", type=float, default=5000,
                           help="rate to offer; aim above what the gate requires")
    load_args.add_argument("--rate-tolerance", type=float, default=0.05,
                           help="the achieved rate may fall this fraction short of the offered one (ramp-up)")
    load_args.add_argument("--duration", type=float, default=60)
    load_args.add_argument("--users", type=int, default=4)
    load_args.add_argument("--p95-target", type=float, default=1.5)
    load_args.add_argument("--max-error-ratio", type=float, default=0.01)
    load_args.add_argument("--leak-bytes-per-hour", type=float, default=512 * 2**20)
    args = parser.parse_args(argv)
    try:
        documents = read_documents(args.documents)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    url = args.url.rstrip("/")
    if args.command == "smoke":
        result = smoke(url, documents, args.log_file, args.latency_target)
    else:
        result = load(url, documents, args.docs_per_hour, args.duration, args.users, args.p95_target,
                      args.max_error_ratio, args.leak_bytes_per_hour, args.rate_tolerance)
    args.result.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
