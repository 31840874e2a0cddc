"""HTTP checks against the service: a probe of one endpoint, and documents sent through the API."""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import Field
from sap_llm_contract.documents import synthetic_documents
from sap_llm_contract.taxonomy import DOCUMENT_TYPES

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold
from sap_llm_release.tls import default_tls

Endpoint = Literal["blue", "green", "router"]


class HttpProbeParams(Params):
    endpoint: Endpoint
    path: str = Field(pattern=r"^/")
    method: Literal["GET", "POST"] = "GET"
    timeout_s: float = Field(default=5.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)


class HttpProbe(Check):
    """Request one path; the measured value is the HTTP status, held to the threshold (e.g. ``== 200``)."""

    Params = HttpProbeParams

    def run(self, params: HttpProbeParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        url = context.require("endpoints").url(params.endpoint) + params.path
        try:
            response = httpx.request(params.method, url, timeout=params.timeout_s, headers=params.headers,
                                      verify=default_tls())
        except httpx.HTTPError as exc:
            return Evidence.unmeasured(threshold, f"{params.method} {url} failed: {exc!r}", url)
        detail = f"{params.method} {url} answered {response.status_code} in {response.elapsed.total_seconds():.3f}s"
        return Evidence.compare(response.status_code, threshold, detail, evidence_uri=url)


class SmokeDocumentsParams(Params):
    endpoint: Endpoint
    count: int = Field(default=10, ge=1, le=1000)
    timeout_s: float = Field(default=10.0, gt=0)
    seed: int = 7


class SmokeDocuments(Check):
    """POST synthetic labelled documents; measured: how many came back well-formed and correctly classified. A
    document answered with a server error is sent once more, as any client retries a transient 5xx, and the evidence
    names it: a service failing 0.5 % of its requests, under its 1 % SLO, would otherwise fail ten documents one time
    in twenty; a broken one fails both tries."""

    Params = SmokeDocumentsParams

    def run(self, params: SmokeDocumentsParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        url = context.require("endpoints").url(params.endpoint) + "/v1/documents"
        problems: list[str] = []
        retried: list[str] = []
        good = 0
        headers = {"X-API-Key": context.api_key} if context.api_key else {}
        with httpx.Client(timeout=params.timeout_s, headers=headers, verify=default_tls()) as client:
            for document in synthetic_documents(params.count, seed=params.seed):
                problem = _document_problem(client, url, document)
                if problem.startswith("HTTP 5"):
                    first, problem = problem, _document_problem(client, url, document)
                    if not problem:
                        retried.append(f"{document['document_id']} ({first})")
                if problem:
                    problems.append(f"{document['document_id']}: {problem}")
                else:
                    good += 1
        detail = f"{good}/{params.count} documents processed correctly by {url}"
        if problems:
            detail += "; " + "; ".join(problems[:5])
        if retried:
            detail += "; processed when sent again after a server error: " + ", ".join(retried[:5])
        return Evidence.compare(good, threshold, detail, evidence_uri=url)


def _document_problem(client: httpx.Client, url: str, document: dict) -> str:
    try:
        response = client.post(url, json={"document_id": document["document_id"], "content": document["content"]})
    except httpx.HTTPError as exc:
        return f"request failed: {exc!r}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return "response is not JSON"
    if body.get("document_type") not in DOCUMENT_TYPES:
        return f"unknown document_type {body.get('document_type')!r}"
    if body["document_type"] != document["document_type"]:
        return f"classified as {body['document_type']}, expected {document['document_type']}"
    if not isinstance(body.get("fields"), dict) or not body["fields"]:
        return "no extracted fields"
    return ""
