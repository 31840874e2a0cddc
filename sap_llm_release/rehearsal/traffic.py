"""A steady synthetic traffic source: documents through the router at a fixed rate, for a bounded time.

    SAP_LLM_API_KEY=... python -m sap_llm_release.rehearsal.traffic --url http://127.0.0.1:18080 --rps 20 \
        --duration 3600
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter

import httpx
from sap_llm_contract.documents import synthetic_documents

API_KEY_ENV = "SAP_LLM_API_KEY"  # the service's API key, for every client of the local stack

def run(url: str, rps: float, duration_s: float, workers: int = 4, api_key: str | None = None) -> Counter:
    """Send ``rps`` documents a second for ``duration_s`` (with ``api_key`` as ``X-API-Key``); count answers by
    ``status/served_by``."""
    counts: Counter = Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s
    interval = workers / rps

    def worker(index: int) -> None:
        documents = synthetic_documents(10_000_000, seed=index)
        next_at = time.monotonic() + index * (interval / workers)
        with httpx.Client(timeout=10, headers={"X-API-Key": api_key} if api_key else {}) as client:
            while (now := time.monotonic()) < stop_at:
                if next_at > now:
                    time.sleep(next_at - now)
                next_at += interval
                document = next(documents)
                try:
                    response = client.post(
                        f"{url}/v1/documents",
                        json={"document_id": document["document_id"], "content": document["content"]},
                    )
                    key = f"{response.status_code}/{response.headers.get('x-upstream', '-')}"
                except httpx.HTTPError as exc:
                    key = f"error/{type(exc).__name__}"
                with lock:
                    counts[key] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds; the source stops by itself")
    args = parser.parse_args(argv)
    counts = run(args.url, args.rps, args.duration, api_key=os.environ.get(API_KEY_ENV))
    print(dict(counts), flush=True)


if __name__ == "__main__":
    main()
