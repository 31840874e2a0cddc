"""The reference SAP_LLM service, in process through FastAPI's TestClient."""

from __future__ import annotations

import json
import re
import socket
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sap_llm_contract.documents import synthetic_documents
from sap_llm_contract.taxonomy import DOCUMENT_TYPES

from sap_llm_release.deployers.local_process import LocalProcessDeployer
from tests.support.server import SERVER_SCRIPT, load_server_module

server = load_server_module()


def _synthetic_documents(count: int, seed: int):
    """The release checks' synthetic documents."""
    return DOCUMENT_TYPES, list(synthetic_documents(count, seed=seed))


@pytest.fixture
def client():
    with TestClient(server.create_app("blue", "1.0.0")) as client:
        yield client


@pytest.fixture
def faulty_client():
    with TestClient(server.create_app("green", "2.0.0", enable_fault_injection=True)) as client:
        yield client


def metric(client: TestClient, name: str, **labels: str) -> float | None:
    """The sum of ``name``'s series that carry ``labels`` (others too: documents are counted by type as well), or
    None when there is none."""
    values = [float(value) for found, text, value in
              re.findall(r"^(\w+)\{([^}]*)\} (\S+)$", client.get("/metrics").text, re.MULTILINE)
              if found == name and labels.items() <= dict(re.findall(r'(\w+)="([^"]*)"', text)).items()]
    return sum(values) if values else None


def test_health(client):
    assert client.get("/health").json() == {"status": "ok", "colour": "blue", "version": "1.0.0"}
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "colour": "blue", "version": "1.0.0"}


def test_not_ready_before_startup():
    client = TestClient(server.create_app("blue", "1.0.0"))  # lifespan not run: the service has not started
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["ready"] is False


def test_classifies_every_synthetic_document_type(client):
    document_types, documents = _synthetic_documents(28, seed=11)
    assert {document["document_type"] for document in documents} == set(document_types)
    for document in documents:
        response = client.post(
            "/v1/documents", json={"document_id": document["document_id"], "content": document["content"]}
        )
        assert response.status_code == 200, document["document_type"]
        body = response.json()
        assert body == {
            "document_id": document["document_id"],
            "document_type": document["document_type"],
            "confidence": 0.97,
            "fields": document["fields"],
            "touchless": True,
            "served_by": "blue",
            "model_version": "1.0.0",
        }


@pytest.mark.parametrize(
    ("content", "document_type", "confidence", "touchless"),
    [
        ("purchase order\nPo Number: 1\nVendor: Acme\nTotal: 1.00\nCurrency: EUR", "purchase_order", 0.97, True),
        ("PURCHASE ORDER\nPo Number: 1", "purchase_order", 0.97, False),  # fields missing
        ("Scanned page\nSee attached SUPPLIER INVOICE\nInvoice Number: 5", "supplier_invoice", 0.6, False),
        ("Dear customer,\nthank you.", "unknown", 0.0, False),
        ("   \n\n", "unknown", 0.0, False),
    ],
)
def test_classification(client, content, document_type, confidence, touchless):
    body = client.post("/v1/documents", json={"document_id": "d1", "content": content}).json()
    assert (body["document_type"], body["confidence"], body["touchless"]) == (document_type, confidence, touchless)


def test_field_extraction():
    assert server.extract_fields("INVOICE\nInvoice Number: 42 \nTotal:  9.50\nnot a field line") == {
        "invoice_number": "42",
        "total": "9.50",
    }


@pytest.mark.parametrize("body", [{"document_id": "d1", "content": ""}, {"document_id": "", "content": "x"}, {}])
def test_invalid_document_is_refused(client, body):
    assert client.post("/v1/documents", json=body).status_code == 422


def test_metrics_exposed(client):
    _, documents = _synthetic_documents(4, seed=1)
    for document in documents:
        client.post("/v1/documents", json={"document_id": document["document_id"], "content": document["content"]})
    client.post("/v1/documents", json={"document_id": "u", "content": "nothing known"})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert metric(client, "sap_llm_requests_total", colour="blue", endpoint="/v1/documents", status="200") == 5
    assert metric(client, "sap_llm_documents_processed_total", colour="blue") == 5
    for document_type, count in Counter(document["document_type"] for document in documents).items():
        assert metric(client, "sap_llm_documents_processed_total", colour="blue", document_type=document_type) >= count
    assert metric(client, "sap_llm_touchless_total", colour="blue") == 4
    assert metric(client, "sap_llm_request_duration_seconds_count", colour="blue") == 5
    assert metric(client, "sap_llm_request_duration_seconds_bucket", colour="blue", le="1.5") == 5
    assert metric(client, "sap_llm_prediction_confidence_count", colour="blue") == 5
    assert metric(client, "sap_llm_prediction_confidence_bucket", colour="blue", le="0.5") == 1  # "nothing known"
    assert metric(client, "sap_llm_prediction_confidence_bucket", colour="blue", le="+Inf") == 5
    assert re.search(r"^process_resident_memory_bytes \S+$", response.text, re.MULTILINE)


def test_each_app_has_its_own_metrics():
    with TestClient(server.create_app("blue", "1.0.0")) as blue, TestClient(server.create_app("green", "2")) as green:
        blue.post("/v1/documents", json={"document_id": "d", "content": "QUOTATION"})
        assert metric(blue, "sap_llm_documents_processed_total", colour="blue") == 1
        assert metric(green, "sap_llm_documents_processed_total", colour="green") == 0
        by_type = re.findall(r'^sap_llm_documents_processed_total\{colour="green",document_type="(\w+)"\} 0\.0$',
                             green.get("/metrics").text, re.MULTILINE)
        assert sorted(by_type) == sorted(DOCUMENT_TYPES)  # every type exported at 0 from the start


def test_fault_injection_gives_500s(faulty_client):
    response = faulty_client.post("/admin/faults", json={"error_rate": 1.0})
    assert response.status_code == 200
    assert response.json() == {"colour": "green", "error_rate": 1.0, "added_latency_s": 0.0, "failed_scrapes": 0}
    for index in range(3):
        response = faulty_client.post("/v1/documents", json={"document_id": f"d{index}", "content": "QUOTATION"})
        assert response.status_code == 500
        assert response.json() == {"detail": "model inference failed"}
    assert metric(faulty_client, "sap_llm_model_inference_failures_total", colour="green") == 3
    assert metric(faulty_client, "sap_llm_requests_total", colour="green", endpoint="/v1/documents", status="500") == 3
    assert metric(faulty_client, "sap_llm_documents_processed_total", colour="green") == 0

    faulty_client.post("/admin/faults", json={"error_rate": 0.0})
    assert faulty_client.post("/v1/documents", json={"document_id": "ok", "content": "QUOTATION"}).status_code == 200


def test_fault_injection_latency(faulty_client):
    faulty_client.post("/admin/faults", json={"added_latency_s": 0.2})
    started = time.monotonic()
    assert faulty_client.post("/v1/documents", json={"document_id": "d", "content": "QUOTATION"}).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_fault_injection_fails_the_next_scrapes_one_each(faulty_client):
    faulty_client.post("/admin/faults", json={"failed_scrapes": 2})
    assert [faulty_client.get("/metrics").status_code for _ in range(3)] == [503, 503, 200]


@pytest.mark.parametrize("faults", [{"error_rate": 1.5}, {"error_rate": -0.1}, {"added_latency_s": 31},
                                    {"failed_scrapes": -1}])
def test_fault_values_are_bounded(faulty_client, faults):
    assert faulty_client.post("/admin/faults", json=faults).status_code == 422


def test_no_fault_injection_without_the_flag(client):
    assert client.post("/admin/faults", json={"error_rate": 1.0}).status_code == 404
    for index in range(3):
        response = client.post("/v1/documents", json={"document_id": f"d{index}", "content": "QUOTATION"})
        assert response.status_code == 200
    assert metric(client, "sap_llm_model_inference_failures_total", colour="blue") == 0


def test_every_series_is_exported_at_zero_before_the_first_request(client):
    assert metric(client, "sap_llm_requests_total", colour="blue", endpoint="/v1/documents", status="500") == 0
    assert metric(client, "sap_llm_requests_total", colour="blue", endpoint="/v1/documents", status="200") == 0
    assert metric(client, "sap_llm_touchless_total", colour="blue") == 0


def test_serves_the_trained_model_through_the_validators_pipeline(tmp_path):
    """With --model-dir (in the validator image's environment) the service answers with the ADC output of the same
    DocumentPipeline the validator evaluates."""
    root = Path(__file__).resolve().parents[2]
    python, model = root / ".venv-validator" / "bin" / "python", root / ".models" / "rehearsal" / "model"
    assert python.exists() and model.exists(), "make setup builds the validator environment and rehearsal model"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env_path = f"{root / 'inference_images'}:{root / 'inference_images' / 'validator'}"
    deployer = LocalProcessDeployer(
        state_dir=tmp_path, ports={"green": port},
        server_command=["env", f"PYTHONPATH={env_path}", "HF_HUB_OFFLINE=1", str(python), str(SERVER_SCRIPT),
                        "--model-dir", str(model)],
    )
    deployer.deploy("green", "2.0.0")
    try:
        ready, seen = deployer.wait_ready("green", 60)
        assert ready, seen
        document = json.loads((root / ".models" / "rehearsal" / "heldout.jsonl").read_text().splitlines()[0])
        body = httpx.post(deployer.url("green") + "/v1/documents", timeout=10,
                          json={"document_id": document["document_id"], "content": document["content"]}).json()
        assert (body["document_type"], body["po_subtype"], body["api"]) == (
            document["document_type"], document["po_subtype"], document["api"])
        assert body["fields"]["po_number"] == document["fields"]["po_number"]
        assert body["touchless"] is True and body["served_by"] == "green"
        assert "model=sap-llm-pipeline:" in deployer.logs("green")
    finally:
        deployer.remove("green")


def _jwt(key: str, expires_in_s: int = 300, **claims) -> str:
    import jwt

    now = int(time.time())
    payload = {"sub": "someone", "aud": "sap-llm", "iat": now, "exp": now + expires_in_s, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm="HS256")


SECRET, API_KEY = "k" * 64, "the-api-key-of-the-tests"


@pytest.fixture
def guarded():
    import hashlib

    authenticator = server.Authenticator(SECRET, {hashlib.sha256(API_KEY.encode()).hexdigest()})
    with TestClient(server.create_app("blue", "1.0.0", authenticator=authenticator)) as client:
        yield client


@pytest.mark.parametrize(("headers", "status", "reason"), [  # tokens made when the test runs: they expire
    (lambda: {}, 401, "missing credentials"),
    (lambda: {"X-API-Key": "guessed"}, 401, "invalid API key"),
    (lambda: {"X-API-Key": API_KEY}, 200, None),
    (lambda: {"Authorization": f"Bearer {_jwt(SECRET)}"}, 200, None),
    (lambda: {"Authorization": f"Bearer {_jwt(SECRET, expires_in_s=-5)}"}, 401, "token expired"),
    (lambda: {"Authorization": f"Bearer {_jwt('x' * 64)}"}, 401, "invalid token: Signature verification failed"),
    (lambda: {"Authorization": f"Bearer {_jwt(SECRET, aud='another-service')}"}, 401, "invalid token: Audience"),
    (lambda: {"Authorization": f"Bearer {_jwt(SECRET, sub=None)}"}, 401, "invalid token"),
    (lambda: {"Authorization": "Basic dXNlcjpwYXNz"}, 401, "missing credentials"),
])
def test_documents_need_a_valid_jwt_or_api_key(guarded, headers, status, reason):
    document = _synthetic_documents(1, seed=4)[1][0]
    response = guarded.post("/v1/documents", headers=headers(),
                            json={"document_id": document["document_id"], "content": document["content"]})
    assert response.status_code == status, response.text
    if reason:
        assert response.json()["detail"].startswith(reason)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert guarded.get("/health").status_code == 200  # health and metrics stay open for probes and scrapes


def test_the_logged_result_masks_personal_data_of_any_shape():
    masked = server.mask_pii({"contact_name": "Jane Doe", "iban": "DE89 3704 0044 0532 0130 00",
                              "notes": "mail jane@example.org, VAT DE123456789", "line_items": [{"qty": 2}],
                              "total": None})
    assert masked["contact_name"] == "<masked>" and masked["iban"] == "<masked>"
    assert masked["notes"] == "mail <email>, VAT <tax-id>"
    assert masked["line_items"] == '[{"qty": 2}]' and masked["total"] == "null"
