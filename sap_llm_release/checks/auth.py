"""Authentication of the document API, asked of the API itself: requests without credentials, with a wrong API key,
with a JWT signed by a stranger, and with an expired JWT must be refused with 401; a valid API key and a valid JWT
must be let through. A case the check cannot run (no key to sign with, no API key) counts against the gate: what was
not tried is not proven."""

from __future__ import annotations

import secrets
import time
from typing import Literal

import httpx
from pydantic import Field
from sap_llm_contract.documents import synthetic_documents

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold

AUDIENCE = "sap-llm"


class ApiAuthParams(Params):
    endpoint: Literal["blue", "green", "router", "public"] = "router"
    path: str = Field(default="/v1/documents", pattern=r"^/")
    timeout_s: float = Field(default=10.0, gt=0)


def _jwt(key: str, expires_in_s: float) -> str:
    import jwt

    now = int(time.time())
    return jwt.encode({"sub": "sap-llm-release-gate", "aud": AUDIENCE, "iat": now,
                       "exp": now + int(expires_in_s)}, key, algorithm="HS256")


def auth_cases(api_key: str | None, jwt_key: str | None) -> list[tuple[str, dict[str, str] | None, bool]]:
    """``(case, headers or None when it cannot be run, expected to be let through)``."""
    return [
        ("no credentials", {}, False),
        ("wrong API key", {"X-API-Key": secrets.token_urlsafe(32)}, False),
        ("JWT signed by a stranger", {"Authorization": f"Bearer {_jwt(secrets.token_hex(32), 300)}"}, False),
        ("malformed bearer token", {"Authorization": "Bearer not.a.jwt"}, False),
        ("expired JWT", {"Authorization": f"Bearer {_jwt(jwt_key, -60)}"} if jwt_key else None, False),
        ("valid JWT", {"Authorization": f"Bearer {_jwt(jwt_key, 300)}"} if jwt_key else None, True),
        ("valid API key", {"X-API-Key": api_key} if api_key else None, True),
    ]


class ApiAuth(Check):
    """Measured: cases whose answer was wrong or that could not be run (0 is the pass)."""

    Params = ApiAuthParams

    def run(self, params: ApiAuthParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        url = context.require("endpoints").url(params.endpoint) + params.path
        document = next(synthetic_documents(1, seed=11, split="test"))
        body = {"document_id": document["document_id"], "content": document["content"]}
        lines, wrong = [], 0
        with httpx.Client(timeout=params.timeout_s, verify=context.ca_file or True) as client:
            for case, headers, allowed in auth_cases(context.api_key, context.jwt_key):
                if headers is None:
                    wrong += 1
                    lines.append(f"{case}: not run (no key for it)")
                    continue
                try:
                    status = client.post(url, json=body, headers=headers).status_code
                except httpx.HTTPError as exc:
                    return Evidence.unmeasured(threshold, f"POST {url} failed: {exc!r}", url)
                ok = status == 200 if allowed else status == 401
                wrong += not ok
                lines.append(f"{case}: {status}{'' if ok else ' (expected ' + ('200' if allowed else '401') + ')'}")
        return Evidence.compare(wrong, threshold, f"POST {url}: " + "; ".join(lines), evidence_uri=url)
