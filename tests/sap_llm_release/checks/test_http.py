"""http_probe and smoke_documents against the real reference server (uvicorn on a loopback port)."""

from __future__ import annotations

import re

import httpx

from sap_llm_release.checks.base import CheckContext
from sap_llm_release.checks.http import HttpProbe, HttpProbeParams, SmokeDocuments, SmokeDocumentsParams
from sap_llm_release.evidence import Threshold, Verdict

OK = Threshold(op="==", value=200)


class Endpoints:
    def __init__(self, **urls: str) -> None:
        self.urls = urls

    def url(self, endpoint: str) -> str:
        return self.urls[endpoint]


def _context(**urls: str) -> CheckContext:
    return CheckContext(service="sap-llm", gate_name="smoke", endpoints=Endpoints(**urls))


def probe(context: CheckContext, threshold: Threshold = OK, **params):
    return HttpProbe().run(HttpProbeParams(**params), threshold, context)


def smoke(context: CheckContext, threshold: Threshold, **params):
    return SmokeDocuments().run(SmokeDocumentsParams(**params), threshold, context)


def test_probe_health(reference_server):
    evidence = probe(_context(green=reference_server), endpoint="green", path="/health")
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.PASSED, 200, "== 200")
    assert evidence.evidence_uri == f"{reference_server}/health"
    assert evidence.detail.startswith(f"GET {reference_server}/health answered 200 in ")


def test_probe_readiness(reference_server):
    evidence = probe(_context(green=reference_server), endpoint="green", path="/health/ready")
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 200)


def test_probe_unexpected_status_fails(reference_server):
    evidence = probe(_context(green=reference_server), endpoint="green", path="/no/such/path")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 404)
    assert f"GET {reference_server}/no/such/path answered 404" in evidence.detail


def test_probe_post_status(reference_server):
    # an empty POST is refused by the service: 422, which a "== 401" (JWT required) gate does not accept
    evidence = probe(
        _context(router=reference_server), Threshold(op="==", value=401), endpoint="router", path="/v1/documents",
        method="POST",
    )
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, 422, "== 401")


def test_probe_dead_port_fails_with_the_url(free_port):
    url = f"http://127.0.0.1:{free_port}"
    evidence = probe(_context(blue=url), endpoint="blue", path="/health", timeout_s=2)
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, None, "== 200")
    assert evidence.detail.startswith(f"GET {url}/health failed: ConnectError")
    assert evidence.evidence_uri == f"{url}/health"


def test_smoke_documents_pass(reference_server):
    evidence = smoke(_context(green=reference_server), Threshold(op=">=", value=10), endpoint="green", count=10)
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.PASSED, 10, ">= 10")
    assert evidence.detail == f"10/10 documents processed correctly by {reference_server}/v1/documents"
    assert evidence.evidence_uri == f"{reference_server}/v1/documents"


def test_smoke_documents_cover_every_type(reference_server):
    evidence = smoke(_context(green=reference_server), Threshold(op=">=", value=30), endpoint="green", count=30, seed=2)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 30)
    metrics = httpx.get(f"{reference_server}/metrics").text
    counted = re.findall(r'^sap_llm_documents_processed_total\{colour="green",document_type="\w+"\} (\S+)$', metrics,
                         re.MULTILINE)
    assert sum(float(value) for value in counted) == 30


def test_smoke_documents_fail_when_the_model_fails(reference_server):
    response = httpx.post(f"{reference_server}/admin/faults", json={"error_rate": 1.0})
    assert response.status_code == 200
    evidence = smoke(_context(green=reference_server), Threshold(op=">=", value=10), endpoint="green", count=10)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 0)
    assert evidence.detail.startswith(f"0/10 documents processed correctly by {reference_server}/v1/documents; ")
    assert "train-7-00000: HTTP 500" in evidence.detail
    assert evidence.detail.count("HTTP 500") == 5  # the first five problems are listed


def test_a_document_answered_with_a_server_error_once_is_sent_again_and_named(serve_app):
    from fastapi import FastAPI, Response

    app = FastAPI()
    asked: list[str] = []

    @app.post("/v1/documents")
    async def answer(body: dict):
        asked.append(body["document_id"])
        if len(asked) == 1:
            return Response("inference failed", status_code=500)
        return {"document_type": "purchase_order", "fields": {"po_number": "PO-1"}}

    url = serve_app(app)
    evidence = smoke(_context(green=url), Threshold(op=">=", value=1), endpoint="green", count=1)
    assert (evidence.verdict, evidence.measured, asked) == (Verdict.PASSED, 1, ["train-7-00000"] * 2)
    assert evidence.detail.endswith("; processed when sent again after a server error: train-7-00000 (HTTP 500)")


def test_smoke_documents_dead_port(free_port):
    url = f"http://127.0.0.1:{free_port}"
    evidence = smoke(_context(green=url), Threshold(op=">=", value=3), endpoint="green", count=3, timeout_s=2)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 0)
    assert f"by {url}/v1/documents" in evidence.detail
    assert "train-7-00000: request failed: ConnectError" in evidence.detail


def test_smoke_documents_wrong_classification(serve_app):
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/documents")
    async def misclassify(body: dict) -> dict:
        return {"document_type": "quotation", "fields": {"x": "1"}}

    url = serve_app(app)
    evidence = smoke(_context(green=url), Threshold(op=">=", value=2), endpoint="green", count=2)
    # the first synthetic document is a purchase order, the second a supplier invoice
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 0)
    assert "train-7-00000: classified as quotation, expected purchase_order" in evidence.detail


def test_smoke_documents_malformed_answers(serve_app):
    from fastapi import FastAPI, Response

    app = FastAPI()
    answers = iter(
        [
            Response("not json", media_type="text/plain"),
            {"document_type": "invented"},
            {"document_type": "purchase_order", "fields": {}},
        ]
    )

    @app.post("/v1/documents")
    async def answer(body: dict):
        return next(answers)

    url = serve_app(app)
    evidence = smoke(_context(green=url), Threshold(op=">=", value=1), endpoint="green", count=3)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 0)
    assert "train-7-00000: response is not JSON" in evidence.detail
    assert "train-7-00001: unknown document_type 'invented'" in evidence.detail
    assert "train-7-00002: no extracted fields" in evidence.detail
