"""The authentication gate asks the API itself: each refusal and each admission it expects, against the reference
server with and without its authenticator, and against the live stack."""

from __future__ import annotations

import hashlib

import pytest

from sap_llm_release.checks.auth import ApiAuth, ApiAuthParams
from sap_llm_release.checks.base import CheckContext
from sap_llm_release.evidence import Threshold, Verdict

ALL_RIGHT = Threshold(op="==", value=0)
SECRET, API_KEY = "s" * 64, "an-api-key-for-the-gate"


class Endpoints:
    def __init__(self, url: str) -> None:
        self._url = url

    def url(self, endpoint: str) -> str:
        return self._url


def check(url: str, api_key: str | None = API_KEY, jwt_key: str | None = SECRET):
    context = CheckContext(service="sap-llm", endpoints=Endpoints(url),
                           credentials=lambda: (api_key, jwt_key))
    return ApiAuth().run(ApiAuthParams(), ALL_RIGHT, context)


@pytest.fixture
def guarded_server(serve_app, server_module):
    authenticator = server_module.Authenticator(SECRET, {hashlib.sha256(API_KEY.encode()).hexdigest()})
    return serve_app(server_module.create_app("blue", "1.0.0", authenticator=authenticator))


def test_a_guarded_api_refuses_what_it_must_and_admits_valid_credentials(guarded_server):
    evidence = check(guarded_server)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0), evidence.detail
    for case in ("no credentials: 401", "expired JWT: 401", "JWT signed by a stranger: 401", "valid JWT: 200",
                 "valid API key: 200"):
        assert case in evidence.detail


def test_an_open_api_fails_naming_every_request_it_let_through(reference_server):
    evidence = check(reference_server)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 5)
    assert "no credentials: 200 (expected 401)" in evidence.detail


def test_cases_without_a_key_to_run_them_count_against_the_gate(guarded_server):
    evidence = check(guarded_server, jwt_key=None)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 2)
    assert "expired JWT: not run (no key for it)" in evidence.detail


def test_an_unreachable_api_fails(free_port):
    evidence = check(f"http://127.0.0.1:{free_port}")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None) and "failed" in evidence.detail


@pytest.mark.stack
def test_the_stacks_service_is_guarded(local_stack):
    target = local_stack.target
    jwt_key = open(target.jwt_secret_file).read().strip()
    for endpoint in ("router", "public"):
        context = CheckContext(service="sap-llm", endpoints=target, credentials=lambda: (target.api_key, jwt_key),
                               ca_file=target.ca_file)
        evidence = ApiAuth().run(ApiAuthParams(endpoint=endpoint), ALL_RIGHT, context)
        assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0), evidence.detail
