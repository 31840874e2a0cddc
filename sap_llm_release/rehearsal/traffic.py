"""A steady synthetic traffic source: documents through the router at a fixed rate, for a bounded time.

    SAP_LLM_API_KEY=... python -m sap_llm_release.rehearsal.traffic --url http://127.0.0.1:18080 --rps 20 \
        --duration 3600

It runs beside every rehearsal stack for as long as the stack lives, so it uses the standard library's keep-alive
HTTP client: a third of the CPU an httpx client spends on the same requests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

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
        client = _Client(url, api_key)
        while (now := time.monotonic()) < stop_at:
            if next_at > now:
                time.sleep(next_at - now)
            next_at += interval
            document = next(documents)
            key = client.post_document({"document_id": document["document_id"], "content": document["content"]})
            with lock:
                counts[key] += 1
        client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts


class _Client:
    """One keep-alive connection to the router, opened again after a failure."""

    def __init__(self, url: str, api_key: str | None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.headers = {"Content-Type": "application/json", **({"X-API-Key": api_key} if api_key else {})}
        self.connection: http.client.HTTPConnection | None = None

    def post_document(self, document: dict) -> str:
        """``status/upstream`` of the answer, or ``error/<exception>``."""
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            self.connection.request("POST", "/v1/documents", body=json.dumps(document), headers=self.headers)
            response = self.connection.getresponse()
            response.read()
            return f"{response.status}/{response.getheader('x-upstream', '-')}"
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return f"error/{type(exc).__name__}"

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


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
