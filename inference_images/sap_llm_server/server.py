"""Reference SAP_LLM document service: classify a business document and extract its fields.

Serves ``/health``, ``/health/ready``, ``POST /v1/documents`` and ``/metrics``. Rehearsals can switch on fault
knobs (``POST /admin/faults``: error rate, added latency, scrapes to fail) to show an automatic rollback, or noise
that must not cause one; the knobs exist only when the server is started with ``--enable-fault-injection``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import random
import re
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from pydantic import BaseModel, Field
from sap_llm_contract.taxonomy import CONFIDENCE_BUCKETS, DOCUMENT_TYPES, FIELDS, heading_to_type

_FIELD_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z ]{1,40}):\s*(.+?)\s*$", re.MULTILINE)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

log = logging.getLogger("sap_llm_server")
audit = logging.getLogger("sap_llm_server.audit")  # one line per document: who, what, when, the masked result


class DocumentIn(BaseModel):
    document_id: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1, max_length=1_000_000)


class Faults(BaseModel):
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    added_latency_s: float = Field(default=0.0, ge=0.0, le=30.0)
    failed_scrapes: int = Field(default=0, ge=0, le=100)  # the next scrapes of /metrics answered 503, one each


def classify(content: str) -> tuple[str, float]:
    """The deterministic fallback model: the document type whose heading opens the document."""
    first_line = content.strip().splitlines()[0].strip().upper() if content.strip() else ""
    headings = heading_to_type()
    if first_line in headings:
        return headings[first_line], 0.97
    for heading, document_type in headings.items():
        if heading in content.upper():
            return document_type, 0.6
    return "unknown", 0.0


def extract_fields(content: str) -> dict[str, str]:
    return {key.strip().lower().replace(" ", "_"): value for key, value in _FIELD_LINE.findall(content)}


def expected_fields(document_type: str) -> tuple[str, ...]:
    return DOCUMENT_TYPES[document_type].fields if document_type in DOCUMENT_TYPES else ()


class FallbackModel:
    """Classification by heading and ``Label: value`` extraction: no weights, for a service started without a
    model directory."""

    name = "deterministic-fallback"

    def predict(self, content: str) -> dict:
        document_type, confidence = classify(content)
        fields = {name: value for name, value in extract_fields(content).items() if name in FIELDS}
        return {"document_type": document_type, "confidence": confidence, "fields": fields}


class PipelineModel:
    """SAP_LLM's three components loaded through the validator's ``DocumentPipeline`` (torch + transformers):
    the service answers with the same ADC output the validator evaluates."""

    def __init__(self, model_dir: str, device: str) -> None:
        from sap_llm_model.pipeline import DocumentPipeline

        self.pipeline = DocumentPipeline.load(model_dir, device)
        self.name = f"sap-llm-pipeline:{model_dir}"

    def predict(self, content: str) -> dict:
        return self.pipeline.process([content])[0]


class ServiceMetrics:
    """The service's Prometheus series, labelled by colour (documents by their predicted type too: the monthly
    audit's input drift reads that mix, and its confidence drift the confidence histogram), in a registry of their
    own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "sap_llm_requests", "HTTP requests by status", ["colour", "endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "sap_llm_request_duration_seconds", "Document request latency", ["colour"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.documents = Counter("sap_llm_documents_processed", "Documents processed by predicted type",
                                 ["colour", "document_type"], registry=self.registry)
        self.confidence = Histogram(
            "sap_llm_prediction_confidence", "The vision encoder's confidence in each document's type", ["colour"],
            buckets=CONFIDENCE_BUCKETS, registry=self.registry,
        )
        self.touchless = Counter("sap_llm_touchless", "Documents processed without human touch", ["colour"],
                                 registry=self.registry)
        self.failures = Counter("sap_llm_model_inference_failures", "Model inference failures", ["colour"],
                                registry=self.registry)

    def start_at_zero(self, colour: str) -> None:
        """Export every series at 0 from the start: a counter that appears only with its first increment is
        invisible to rate() until its second scrape, which would hide a new version's first errors."""
        for status in ("200", "500"):
            self.requests.labels(colour, "/v1/documents", status)
        for series in (self.touchless, self.failures, self.confidence):
            series.labels(colour)
        for document_type in DOCUMENT_TYPES:
            self.documents.labels(colour, document_type)


def process_document(document: DocumentIn, model, colour: str, version: str, metrics: ServiceMetrics) -> dict:
    """Classify and extract one document; count it."""
    prediction = model.predict(document.content)
    document_type, confidence = prediction["document_type"], prediction["confidence"]
    complete = all(name in prediction["fields"] for name in expected_fields(document_type))
    is_touchless = document_type in DOCUMENT_TYPES and confidence >= 0.9 and complete
    metrics.documents.labels(colour, document_type).inc()
    metrics.confidence.labels(colour).observe(confidence)
    if is_touchless:
        metrics.touchless.labels(colour).inc()
    return {
        "document_id": document.document_id,
        **prediction,
        "touchless": is_touchless,
        "served_by": colour,
        "model_version": version,
    }


async def apply_faults(faults: Faults, colour: str, document_id: str, metrics: ServiceMetrics) -> None:
    """The rehearsal's fault knobs: added latency, and a share of documents failing as inference errors."""
    if faults.added_latency_s:
        await asyncio.sleep(faults.added_latency_s)
    if faults.error_rate and random.random() < faults.error_rate:
        metrics.failures.labels(colour).inc()
        log.error("ERROR colour=%s document=%s inference failed (injected fault)", colour, document_id)
        raise HTTPException(status_code=500, detail="model inference failed")


class Authenticator:
    """Who may post documents: a JWT (HS256, ``sub`` and ``exp`` required, audience checked) as a Bearer token, or
    an API key whose SHA-256 is listed. Anything else is 401, before the document is read."""

    def __init__(self, jwt_secret: str | None, api_key_digests: set[str], audience: str = "sap-llm") -> None:
        self.jwt_secret, self.api_key_digests, self.audience = jwt_secret, api_key_digests, audience

    @classmethod
    def from_files(cls, jwt_secret_file: str | None, api_keys_file: str | None) -> Authenticator:
        secret = Path(jwt_secret_file).read_text().strip() if jwt_secret_file else None
        digests = set(Path(api_keys_file).read_text().split()) if api_keys_file else set()
        return cls(secret, digests)

    def principal(self, request: Request) -> str:
        import jwt

        key = request.headers.get("x-api-key")
        if key is not None:
            digest = hashlib.sha256(key.encode()).hexdigest()
            if digest in self.api_key_digests:
                return f"api-key:{digest[:12]}"
            raise _unauthorised("invalid API key")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorised("missing credentials: a Bearer JWT or an X-API-Key")
        if not self.jwt_secret:
            raise _unauthorised("JWTs are not accepted here")
        try:
            claims = jwt.decode(token, self.jwt_secret, algorithms=["HS256"], audience=self.audience,
                                options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise _unauthorised("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthorised(f"invalid token: {exc}") from None
        return f"jwt:{claims['sub']}"


_PII = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), "<iban>"),
    (re.compile(r"\b[A-Z]{2}\d{8,12}\b"), "<tax-id>"),
    (re.compile(r"\+?\d[\d /-]{7,}\d"), "<number>"),
)
# Fields whose values are personal whatever they look like: logged only as masked.
_PERSONAL_FIELDS = re.compile(r"name|contact|email|phone|address|iban|tax|person", re.IGNORECASE)


def mask_pii(fields: dict) -> dict[str, str]:
    """The extracted fields as the service logs them: personal fields replaced whole, e-mail addresses, IBANs, tax
    IDs and long digit runs replaced anywhere else."""
    masked = {}
    for name, value in fields.items():
        if _PERSONAL_FIELDS.search(name):
            masked[name] = "<masked>"
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        for pattern, replacement in _PII:
            text = pattern.sub(replacement, text)
        masked[name] = text
    return masked


def anonymous() -> str:
    return "anonymous"


def _unauthorised(reason: str) -> HTTPException:
    return HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": 'Bearer realm="sap-llm"'})


def create_app(colour: str, version: str, enable_fault_injection: bool = False, model=None,
               authenticator: Authenticator | None = None) -> FastAPI:
    """``authenticator`` None leaves ``POST /v1/documents`` open (tests of the model path only); the local stack and
    production start the service with one."""
    model = model or FallbackModel()
    metrics = ServiceMetrics()
    metrics.start_at_zero(colour)
    faults = Faults()
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        state["ready"] = True
        log.info("INFO colour=%s version=%s model=%s ready", colour, version, model.name)
        yield

    app = FastAPI(title="SAP_LLM reference service", version=version, lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "colour": colour, "version": version}

    @app.get("/health/ready")
    async def ready(response: Response) -> dict:
        if not state["ready"]:
            response.status_code = 503
        return {"ready": state["ready"], "colour": colour, "version": version}

    who = authenticator.principal if authenticator else anonymous

    @app.post("/v1/documents")
    async def process(document: DocumentIn, principal: str = Depends(who)) -> dict:
        started = time.perf_counter()
        status = "200"
        try:
            await apply_faults(faults, colour, document.document_id, metrics)
            result = process_document(document, model, colour, version, metrics)
            audit.info("AUDIT who=%s what=%s document=%s type=%s at=%s fields=%s", principal,
                       '"POST /v1/documents"', document.document_id, result["document_type"],
                       datetime.now(timezone.utc).isoformat(), json.dumps(mask_pii(result["fields"])))
            return result
        except HTTPException as exc:
            status = str(exc.status_code)
            raise
        finally:
            metrics.requests.labels(colour, "/v1/documents", status).inc()
            metrics.latency.labels(colour).observe(time.perf_counter() - started)

    @app.get("/metrics")
    async def expose_metrics() -> Response:
        if faults.failed_scrapes:
            faults.failed_scrapes -= 1
            return Response("scrape failed (injected fault)\n", status_code=503)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if enable_fault_injection:
        _add_fault_injection(app, faults, colour)
    return app


def _add_fault_injection(app: FastAPI, faults: Faults, colour: str) -> None:
    """``POST /admin/faults``: the rehearsals' way to make this slot fail or slow down."""

    @app.post("/admin/faults")
    async def set_faults(new: Faults) -> dict:
        faults.error_rate, faults.added_latency_s, faults.failed_scrapes = (
            new.error_rate, new.added_latency_s, new.failed_scrapes)
        log.warning("WARNING colour=%s faults set: %s", colour, new.model_dump())
        return {"colour": colour, **faults.model_dump()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--colour", choices=("blue", "green"), required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--enable-fault-injection", action="store_true")
    parser.add_argument("--model-dir", help="SAP_LLM model artifacts (needs the validator image's environment); "
                                            "without it the deterministic fallback model answers")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--jwt-secret-file", help="HS256 key that signs the accepted JWTs")
    parser.add_argument("--api-keys-file", help="SHA-256 hex digests of the accepted API keys, one per line")
    args = parser.parse_args(argv)
    logging.Formatter.converter = time.gmtime  # lines stamped in UTC: the error-log audit reads their times
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    model = PipelineModel(args.model_dir, args.device) if args.model_dir else FallbackModel()
    authenticator = Authenticator.from_files(args.jwt_secret_file, args.api_keys_file) \
        if args.jwt_secret_file or args.api_keys_file else None
    app = create_app(args.colour, args.version, args.enable_fault_injection, model, authenticator)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
