"""Personal data and audit entries, asked of a running service and read back from its log: the reference service
masks and audits; a service that logs what it is sent, or audits nothing, fails."""

from __future__ import annotations

import hashlib
import io
import logging

import pytest
from fastapi import FastAPI, Request

from sap_llm_release.checks.base import CheckContext
from sap_llm_release.checks.privacy import AuditLog, PiiMasking, ServiceLogParams
from sap_llm_release.evidence import Threshold, Verdict

NONE = Threshold(op="==", value=0)
API_KEY = "privacy-gate-key"


class CapturedService:
    """A service served in this process, with everything its loggers write captured as its log."""

    def __init__(self, url: str, logger: str) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.logger = logging.getLogger(logger)
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        self._url = url

    def url(self, endpoint: str) -> str:
        return self._url

    def logs(self, colour: str) -> str:
        return self.stream.getvalue()

    def close(self) -> None:
        self.logger.removeHandler(self.handler)


def context(service: CapturedService, api_key: str | None = API_KEY) -> CheckContext:
    return CheckContext(service="sap-llm", endpoints=service, deployer=service, credentials=lambda: (api_key, None))


@pytest.fixture
def reference(serve_app, server_module):
    authenticator = server_module.Authenticator(None, {hashlib.sha256(API_KEY.encode()).hexdigest()})
    service = CapturedService(serve_app(server_module.create_app("blue", "1.0.0", authenticator=authenticator)),
                              "sap_llm_server")
    yield service
    service.close()


@pytest.fixture
def leaky(serve_app):
    app = FastAPI()
    log = logging.getLogger("leaky_service")

    @app.post("/v1/documents")
    async def process(request: Request) -> dict:
        log.info("received %s", (await request.body()).decode())
        return {"document_type": "purchase_order"}

    service = CapturedService(serve_app(app), "leaky_service")
    yield service
    service.close()


def test_the_reference_service_masks_personal_data_and_audits(reference):
    pii = PiiMasking().run(ServiceLogParams(settle_s=0.2), NONE, context(reference))
    assert (pii.verdict, pii.measured) == (Verdict.PASSED, 0), pii.detail
    assert "1 log lines mention it; in the clear: none" in pii.detail
    audit = AuditLog().run(ServiceLogParams(settle_s=0.2), NONE, context(reference))
    assert (audit.verdict, audit.measured) == (Verdict.PASSED, 0), audit.detail
    assert "AUDIT who=api-key:" in audit.detail and 'what="POST' in audit.detail


def test_a_service_logging_what_it_is_sent_leaks_every_value_and_audits_nothing(leaky):
    pii = PiiMasking().run(ServiceLogParams(settle_s=0.2), NONE, context(leaky))
    assert (pii.verdict, pii.measured) == (Verdict.FAILED, 5)
    assert "in the clear: Contact Name, Contact Email, IBAN, Tax ID, Phone" in pii.detail
    audit = AuditLog().run(ServiceLogParams(settle_s=0.2), NONE, context(leaky))
    assert (audit.verdict, audit.measured) == (Verdict.FAILED, 1)


def test_a_probe_the_service_refuses_proves_nothing(reference):
    evidence = PiiMasking().run(ServiceLogParams(settle_s=0), NONE, context(reference, api_key=None))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert evidence.detail == "the probe was answered 401: not processed"


@pytest.mark.stack
def test_the_stacks_blue_masks_and_audits(local_stack):
    target = local_stack.target
    live = CheckContext(service="sap-llm", endpoints=target, deployer=target.deployer,
                        credentials=lambda: (target.api_key, None))
    assert PiiMasking().run(ServiceLogParams(), NONE, live).measured == 0
    audit = AuditLog().run(ServiceLogParams(), NONE, live)
    assert audit.measured == 0, audit.detail


def test_a_service_without_a_log_proves_nothing(serve_app):
    app = FastAPI()
    app.post("/v1/documents")(lambda: {"document_type": "purchase_order"})
    service = CapturedService(serve_app(app), "silent_service")
    try:
        evidence = PiiMasking().run(ServiceLogParams(settle_s=0), NONE, context(service))
    finally:
        service.close()
    assert (evidence.verdict, evidence.detail) == (Verdict.FAILED, "no blue log lines to search")
